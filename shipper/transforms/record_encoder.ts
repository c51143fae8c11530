// The hot-path NDJSON encoder: one record per log line, written as bytes into a growing
// buffer, equal byte for byte to encodeRecord in lib/record/codec.ts (a test checks).
//
// Split at batch_id: a record's last two fields, `batch_id` and `seq`, are only known
// once the batcher has picked the record's batch (namespace and hour) and position.
// encode() writes everything before `,"batch_id":` into the buffer the batcher hands in,
// which is normally that batch's own buffer, so nothing is copied; the batcher then calls
// appendBatchFields() with a fragment it encoded once per batch. A batcher that routes
// after encoding copies the body and appends the same way.
//
// The message is never turned into a JS string when it is valid UTF-8: one pass over the
// bytes validates UTF-8 (WHATWG rules: no overlongs, surrogates or code points past
// U+10FFFF) and applies JSON.stringify's escaping (`"`, `\`, \b \f \n \r \t, other
// controls as \u00xx; U+2028/2029 and DEL raw), in WebAssembly SIMD for all but the
// shortest messages (json_escape_simd.ts; the JavaScript loop below is the fallback and
// the reference). Only invalid UTF-8 takes the slow path:
// `message` gets the text with U+FFFD as Buffer#toString (= TextDecoder) decodes it, and
// `message_base64` the exact bytes.

import { isUtf8 } from "node:buffer";
import { clampToRecordRange, formatRecordTimestamp } from "../../lib/record/timestamp.ts";
import type { Stream } from "../sources/kubernetes_logs/parser/parsed_line.ts";
import { escapeJsonSimd, MAX_INPUT as SIMD_MAX_INPUT } from "./json_escape_simd.ts";

/** Per-file fields of the record; encoded once per file, not per line. */
export interface RecordMetadata {
  namespace: string;
  pod: string;
  podUid?: string;
  container: string;
  containerId?: string;
  restartCount?: number;
  node: string;
}

const EMPTY = Buffer.alloc(0);

/**
 * A byte buffer that grows by doubling; `bytes[0, length)` is the content. Writers call
 * reserve() and then read `length`, because a subclass may hand the content on and start
 * over at 0 instead of growing (the shipper's batch staging does).
 */
export class OutputBuffer {
  bytes: Buffer;
  length = 0;

  constructor(capacity = 64 * 1024) {
    this.bytes = capacity === 0 ? EMPTY : Buffer.allocUnsafe(Math.max(capacity, 16));
  }

  /** Makes room for `extra` more bytes and returns the (possibly new) backing buffer. */
  reserve(extra: number): Buffer {
    const need = this.length + extra;
    if (need > this.bytes.length) {
      const next = Buffer.allocUnsafe(Math.max(need, this.bytes.length * 2));
      this.bytes.copy(next, 0, 0, this.length);
      this.bytes = next;
    }
    return this.bytes;
  }

  append(b: Uint8Array): void {
    this.reserve(b.length).set(b, this.length);
    this.length += b.length;
  }

  /** The content, as a view that the next write may overwrite. */
  view(): Buffer {
    return this.bytes.subarray(0, this.length);
  }

  /** A copy of the content, then empties the buffer; for handing bytes to async writers. */
  take(): Buffer {
    const copy = Buffer.from(this.bytes.subarray(0, this.length));
    this.length = 0;
    return copy;
  }

  reset(): void {
    this.length = 0;
  }
}

const enc = (s: string): Buffer => Buffer.from(s, "utf8");
/**
 * Bytes kept for as long as their encoder (a file's lifetime): a buffer of their own, since
 * a slice of Buffer's shared 64 KiB pool would keep the whole slab alive.
 */
function ownBytes(s: string): Buffer {
  const b = Buffer.allocUnsafeSlow(Buffer.byteLength(s));
  b.write(s, 0, "utf8");
  return b;
}
/**
 * Messages longer than this are escaped in slices of it, each reserving its own worst
 * case (6 bytes per byte), so a long line does not make the output buffer reserve 6× its
 * length at once. (Also the most the SIMD escape takes in one call.)
 */
const MESSAGE_SLICE = SIMD_MAX_INPUT;
/** Messages (or slices) at least this long are escaped with SIMD, where the call and its two copies pay. */
const SIMD_MIN_BYTES = 64;
const OPEN_TIMESTAMP = '{"timestamp":"';
const NANOS_FIELD = enc('","timestamp_nanos":');
const BASE64_FIELD = enc(',"message_base64":"');
const TRUNCATED_FIELD = enc(',"truncated":true');
const PARSE_ERROR_FIELD = enc(',"parse_error":');
const RECORD_END = enc("}\n");
const QUOTE = enc('"');
const HEX = enc("0123456789abcdef");
/** 1 for the bytes JSON.stringify keeps as they are: ASCII from 0x20 up, except `"` and `\`. */
const PLAIN = new Uint8Array(256);
for (let c = 0x20; c < 0x80; c++) PLAIN[c] = c === 0x22 || c === 0x5c ? 0 : 1;
/** JSON.stringify's two-character escapes; 0 means \u00XX. */
const SHORT_ESCAPE = new Uint8Array(128);
for (const [c, e] of [
  [0x22, 0x22],
  [0x5c, 0x5c],
  [0x0a, 0x6e],
  [0x09, 0x74],
  [0x0d, 0x72],
  [0x08, 0x62],
  [0x0c, 0x66],
] as const) {
  SHORT_ESCAPE[c] = e;
}

/** Writes the decimal digits of a non-negative safe integer at `o`; returns the end. */
function writeUint(dst: Buffer, o: number, n: number): number {
  let digits = 1;
  for (let p = 10; p <= n && digits < 16; p *= 10) digits++;
  if (n >= 1e16) return o + dst.write(String(n), o, "latin1");
  for (let k = o + digits - 1; k >= o; k--) {
    dst[k] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  }
  return o + digits;
}

function field(name: string, value: string | number | undefined): string {
  return value === undefined || value === null ? "" : `,"${name}":${JSON.stringify(value)}`;
}

/** The fields of a decoded line the record needs (FileDecoder's DecodedLine has them). */
export interface EncodableLine {
  stream: Stream;
  epochSeconds: number;
  nanos: number;
  bytes: Buffer;
  start: number;
  end: number;
  truncated: boolean;
  parseError: string | null;
}

export class RecordEncoder {
  private readonly stdoutFields: Buffer;
  private readonly stderrFields: Buffer;
  /** `{"timestamp":"YYYY-MM-DD HH:MM:SS.` of `cachedSecond`; lines share seconds. */
  private cachedPrefix: Buffer = Buffer.alloc(0);
  private cachedSecond = Number.NaN;

  constructor(meta: RecordMetadata) {
    const fields =
      field("namespace", meta.namespace) +
      field("pod", meta.pod) +
      field("pod_uid", meta.podUid) +
      field("container", meta.container) +
      field("container_id", meta.containerId) +
      field("restart_count", meta.restartCount) +
      field("node", meta.node);
    this.stdoutFields = ownBytes(`${fields},"stream":"stdout","message":"`);
    this.stderrFields = ownBytes(`${fields},"stream":"stderr","message":"`);
  }

  /** encode() for a decoded line, as the shipper and `logarchive parse` hand them over. */
  encodeLine(out: OutputBuffer, l: EncodableLine): void {
    this.encode(out, l.epochSeconds, l.nanos, l.stream, l.bytes, l.start, l.end, l.truncated, l.parseError);
  }

  /**
   * Appends one record to `out`, up to but not including `,"batch_id":`; finish it with
   * appendBatchFields() (or appendRecordEnd() outside a batch). `truncated` false and
   * `parseError` null are omitted, as unset nullable fields are. Each reservation is at
   * most the head plus 6 bytes per byte of a MESSAGE_SLICE, so `out` need not grow with
   * the line.
   */
  encode(
    out: OutputBuffer,
    epochSeconds: number,
    nanos: number,
    stream: Stream,
    bytes: Buffer,
    start: number,
    end: number,
    truncated: boolean,
    parseError: string | null,
  ): void {
    if (epochSeconds !== this.cachedSecond) {
      // The parsers and instantFromMs only give times a record can hold; the clamp makes sure
      // no caller can write a `timestamp` the loader rejects, which would cost the whole object.
      const second = clampToRecordRange(epochSeconds);
      const head = OPEN_TIMESTAMP + formatRecordTimestamp({ epochSeconds: second, nanos: 0 }).slice(0, -6);
      if (head.length !== this.cachedPrefix.length) this.cachedPrefix = Buffer.allocUnsafeSlow(head.length);
      this.cachedPrefix.write(head, 0, "latin1");
      this.cachedSecond = epochSeconds;
    }
    const fields = stream === "stdout" ? this.stdoutFields : this.stderrFields;
    const prefixLength = this.cachedPrefix.length;
    let dst = out.reserve(prefixLength + 6 + NANOS_FIELD.length + 10 + fields.length);
    let o = out.length;
    // set() rather than Buffer#copy for these short fixed parts: copy's JavaScript wrapper
    // and native call cost more than the bytes.
    dst.set(this.cachedPrefix, o);
    o += prefixLength;
    let micros = Math.floor(nanos / 1000);
    for (let k = o + 5; k >= o; k--) {
      dst[k] = 0x30 + (micros % 10);
      micros = Math.floor(micros / 10);
    }
    o += 6;
    dst.set(NANOS_FIELD, o);
    o = writeUint(dst, o + NANOS_FIELD.length, nanos);
    dst.set(fields, o);
    o += fields.length;
    out.length = o;
    if (end - start <= MESSAGE_SLICE) {
      // Room for the worst case, every byte escaped as \u00XX, so the loop needs no checks.
      dst = out.reserve(6 * (end - start) + 1);
      o = writeEscaped(bytes, start, end, dst, out.length);
      if (o >= 0) {
        dst[o] = 0x22;
        out.length = o + 1;
      } else {
        this.encodeInvalid(out, bytes, start, end);
      }
    } else if (isUtf8(bytes.subarray(start, end))) {
      // Checked whole first (natively, and by the same rules), so the slices never fail
      // halfway through a message that `out` may already have handed on.
      writeEscapedSlices(out, bytes, start, end);
      out.append(QUOTE);
    } else {
      this.encodeInvalid(out, bytes, start, end);
    }
    if (truncated) out.append(TRUNCATED_FIELD);
    if (parseError !== null) {
      out.append(PARSE_ERROR_FIELD);
      writeString(out, JSON.stringify(parseError));
    }
  }

  private encodeInvalid(out: OutputBuffer, bytes: Buffer, start: number, end: number): void {
    // JSON.stringify's output minus its opening quote, which the fields fragment wrote.
    const json = JSON.stringify(bytes.toString("utf8", start, end));
    writeString(out, json.slice(1));
    out.append(BASE64_FIELD);
    writeString(out, bytes.toString("base64", start, end));
    out.append(QUOTE);
  }
}

/** writeEscapedUtf8(), in SIMD when the input is long enough to pay for the call (at most MESSAGE_SLICE). */
function writeEscaped(src: Buffer, i: number, end: number, dst: Buffer, o: number): number {
  return escapeJsonSimd !== null && end - i >= SIMD_MIN_BYTES
    ? escapeJsonSimd(src, i, end, dst, o)
    : writeEscapedUtf8(src, i, end, dst, o);
}

/**
 * JSON-escapes `src[i, end)` into `dst` from `o` (which has room for 6 bytes per input
 * byte) while checking that it is UTF-8. Returns the end in `dst`, or -1 at the first
 * invalid sequence.
 */
export function writeEscapedUtf8(src: Buffer, i: number, end: number, dst: Buffer, o: number): number {
  while (i < end) {
    // Plain ASCII, the bulk of log text, is copied as it is scanned: one pass, one table
    // load per byte. (Scanning a run and then copying it was ~30% slower: in log text
    // a `"` or `\` comes every 15 bytes or so, too often for memcpy to pay.)
    let c = src[i]!;
    while (PLAIN[c] === 1) {
      dst[o++] = c;
      if (++i === end) return o;
      c = src[i]!;
    }
    if (c < 0x80) {
      dst[o] = 0x5c;
      const short = SHORT_ESCAPE[c]!;
      if (short !== 0) {
        dst[o + 1] = short;
        o += 2;
      } else {
        dst[o + 1] = 0x75;
        dst[o + 2] = 0x30;
        dst[o + 3] = 0x30;
        dst[o + 4] = HEX[c >> 4]!;
        dst[o + 5] = HEX[c & 15]!;
        o += 6;
      }
      i++;
      continue;
    }
    // UTF-8 by the WHATWG/Unicode table: second-byte ranges exclude overlongs (E0, F0),
    // surrogates (ED) and code points past U+10FFFF (F4).
    if (c < 0xc2) return -1;
    if (c < 0xe0) {
      if (i + 1 >= end || (src[i + 1]! & 0xc0) !== 0x80) return -1;
      dst[o] = c;
      dst[o + 1] = src[i + 1]!;
      o += 2;
      i += 2;
      continue;
    }
    if (c < 0xf0) {
      if (i + 2 >= end) return -1;
      const c1 = src[i + 1]!;
      if (
        c1 < (c === 0xe0 ? 0xa0 : 0x80) ||
        c1 > (c === 0xed ? 0x9f : 0xbf) ||
        (src[i + 2]! & 0xc0) !== 0x80
      ) {
        return -1;
      }
      dst[o] = c;
      dst[o + 1] = c1;
      dst[o + 2] = src[i + 2]!;
      o += 3;
      i += 3;
      continue;
    }
    if (c >= 0xf5 || i + 3 >= end) return -1;
    const c1 = src[i + 1]!;
    if (
      c1 < (c === 0xf0 ? 0x90 : 0x80) ||
      c1 > (c === 0xf4 ? 0x8f : 0xbf) ||
      (src[i + 2]! & 0xc0) !== 0x80 ||
      (src[i + 3]! & 0xc0) !== 0x80
    ) {
      return -1;
    }
    dst[o] = c;
    dst[o + 1] = c1;
    dst[o + 2] = src[i + 2]!;
    dst[o + 3] = src[i + 3]!;
    o += 4;
    i += 4;
  }
  return o;
}

/**
 * writeEscapedUtf8() for `src[i, end)` of any length, known to be valid UTF-8, in slices
 * of MESSAGE_SLICE cut between characters.
 */
function writeEscapedSlices(out: OutputBuffer, src: Buffer, i: number, end: number): void {
  while (i < end) {
    let stop = end - i > MESSAGE_SLICE ? i + MESSAGE_SLICE : end;
    while (stop < end && (src[stop]! & 0xc0) === 0x80) stop--;
    const dst = out.reserve(6 * (stop - i));
    const o = writeEscaped(src, i, stop, dst, out.length);
    if (o < 0) throw new Error("record encoder: a message that isUtf8() accepted failed UTF-8 validation");
    out.length = o;
    i = stop;
  }
}

/** Appends `s` as UTF-8, in slices, so that no reservation is much larger than a slice. */
function writeString(out: OutputBuffer, s: string): void {
  for (let i = 0; i < s.length; ) {
    let stop = Math.min(s.length, i + MESSAGE_SLICE);
    // Never between the two halves of a surrogate pair, which would encode as two U+FFFD.
    const last = s.charCodeAt(stop - 1);
    if (stop < s.length && last >= 0xd800 && last <= 0xdbff) stop--;
    const part = i === 0 && stop === s.length ? s : s.slice(i, stop);
    const dst = out.reserve(part.length * 3);
    out.length += dst.write(part, out.length, "utf8");
    i = stop;
  }
}

/** `,"batch_id":"<id>","seq":`, encoded once per batch for appendBatchFields(). */
export function batchFieldsFragment(batchId: string): Buffer {
  return ownBytes(`,"batch_id":${JSON.stringify(batchId)},"seq":`);
}

/** Completes a record written by encode(): the batch fields, `}` and the newline. */
export function appendBatchFields(out: OutputBuffer, fragment: Buffer, seq: number): void {
  const dst = out.reserve(fragment.length + 20);
  dst.set(fragment, out.length);
  let o = out.length + fragment.length;
  o = writeUint(dst, o, seq);
  dst[o] = 0x7d;
  dst[o + 1] = 0x0a;
  out.length = o + 2;
}

/** Completes a record without batch fields (`logarchive parse` output). */
export function appendRecordEnd(out: OutputBuffer): void {
  out.append(RECORD_END);
}
