// CRI log lines: `<RFC3339Nano> <stdout|stderr> <P|F>[:ext...] <message>`.
//
// containerd writes a variable-width timestamp (trailing zeros trimmed, `Z` or a local
// offset); CRI-O writes nine digits and a numeric offset. Tags are `:`-separated and only
// the first (P or F) matters, as in kubelet; later ones are runtime extensions and are
// accepted, unlike Fluent Bit's and Vector's bare `P|F` patterns.
//
// The message is kept byte for byte. containerd already drops a `\r` that preceded the
// `\n`; CRI-O keeps it, and then it is part of what the container wrote.

import type { ParsedLine } from "./parsed_line.ts";
import { parseRfc3339Bytes } from "./timestamp.ts";

const SPACE = 0x20;
const COLON = 0x3a;
/** Longest RFC 3339 timestamp parseRfc3339Bytes accepts: 2026-11-21T11:17:37.123456789+01:00. */
const MAX_TIMESTAMP = 35;

function isStream(b: Buffer, i: number, end: number): "stdout" | "stderr" | null {
  // "stdout" / "stderr" followed by a space
  if (i + 7 > end || b[i + 6] !== SPACE) return null;
  if (b[i] !== 0x73 || b[i + 1] !== 0x74 || b[i + 2] !== 0x64) return null;
  const c3 = b[i + 3];
  const c4 = b[i + 4];
  const c5 = b[i + 5];
  if (c3 === 0x6f && c4 === 0x75 && c5 === 0x74) return "stdout";
  if (c3 === 0x65 && c4 === 0x72 && c5 === 0x72) return "stderr";
  return null;
}

/**
 * Parses one CRI line, `b[start, end)` without its `\n`, into `out`. Returns true when it
 * parsed; on false, `out.error` says why and `out.bytes[start, end)` is the raw line.
 */
export function parseCriLine(b: Buffer, start: number, end: number, out: ParsedLine): boolean {
  out.reset();
  if (start >= end) return out.fail("empty line", b, start, end);

  const limit = Math.min(end, start + MAX_TIMESTAMP + 1);
  let i = start;
  while (i < limit && b[i] !== SPACE) i++;
  if ((i === limit && i < end) || !parseRfc3339Bytes(b, start, i, out)) {
    return out.fail("invalid timestamp", b, start, end);
  }
  out.hasTime = true;

  const stream = isStream(b, i + 1, end);
  if (stream === null) return out.fail(i + 1 >= end ? "missing stream" : "unknown stream", b, start, end);
  out.stream = stream;

  const tags = i + 8;
  let t = tags;
  while (t < end && b[t] !== SPACE && b[t] !== COLON) t++;
  if (t - tags !== 1) return out.fail(t === tags ? "missing tag" : "invalid tag", b, start, end);
  const tag = b[tags];
  if (tag === 0x50) out.partial = true;
  else if (tag !== 0x46) return out.fail("invalid tag", b, start, end);
  while (t < end && b[t] !== SPACE) t++;

  out.bytes = b;
  // A line ending right after the tags carries an empty message; runtimes always write the
  // space, but nothing is lost by reading the line that way.
  out.start = t < end ? t + 1 : end;
  out.end = end;
  return true;
}
