// Size limits of the archived record, shared by the shipper (which must never write more)
// and the loader (which refuses more, before reading further).

/**
 * Most bytes of log text in one record's `message`: the shipper's cap on a merged line
 * (CRI `P`…`F` runs, Docker chunks) and on a multiline group. Longer lines are cut and
 * marked `truncated`.
 */
export const MAX_RECORD_MESSAGE_BYTES = 1024 * 1024;

/**
 * Room for every field but the message: path-derived names (each path component is at
 * most 255 bytes, escaped at most 6 bytes per byte), node, batch_id, timestamps, integers,
 * flags, parse_error and the JSON punctuation, with a wide margin.
 */
const RECORD_FRAMING_BYTES = 64 * 1024;

/**
 * Most bytes of one encoded record line, without its newline. The worst case of the
 * message is a text of control characters (each escaped as `\u00XX`, 6 bytes per byte)
 * that is not valid UTF-8, so `message_base64` carries the bytes again (4 per 3).
 */
export const MAX_RECORD_LINE_BYTES =
  6 * MAX_RECORD_MESSAGE_BYTES + 4 * Math.ceil(MAX_RECORD_MESSAGE_BYTES / 3) + RECORD_FRAMING_BYTES;
