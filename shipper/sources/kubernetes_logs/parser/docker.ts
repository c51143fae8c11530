// Docker json-file lines: `{"log":"...","stream":"stdout","time":"..."}` (plus `attrs` when
// the daemon is configured with labels or env).
//
// dockerd splits output longer than 16 KiB; every chunk but the last lacks the `\n` at the
// end of `log`, which is how a partial is recognised. `log` is unescaped into raw bytes:
// dockerd already replaced invalid UTF-8 with U+FFFD, so the result is normally valid
// UTF-8; a lone surrogate escape (which Go never writes) becomes U+FFFD, as JSON.parse
// followed by Buffer.from would make it. The scanner reads bytes; it builds no strings.

import type { ParsedLine } from "./parsed_line.ts";
import { parseRfc3339Bytes } from "./timestamp.ts";

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const NEWLINE = 0x0a;

function skipWs(b: Buffer, i: number, end: number): number {
  while (i < end) {
    const c = b[i];
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
    i++;
  }
  return i;
}

/** Index past the string starting at the quote `b[i]`, or -1 when it does not end on this line. */
function skipString(b: Buffer, i: number, end: number): number {
  for (i++; i < end; i++) {
    const c = b[i];
    if (c === QUOTE) return i + 1;
    if (c === BACKSLASH) i++;
  }
  return -1;
}

/** Index past the JSON value at `b[i]`, checked only as far as needed to find its end; -1 if malformed. */
function skipValue(b: Buffer, i: number, end: number): number {
  const c = b[i];
  if (c === QUOTE) return skipString(b, i, end);
  if (c === 0x7b || c === 0x5b) {
    let depth = 0;
    while (i < end) {
      const d = b[i];
      if (d === QUOTE) {
        i = skipString(b, i, end);
        if (i < 0) return -1;
        continue;
      }
      if (d === 0x7b || d === 0x5b) depth++;
      else if (d === 0x7d || d === 0x5d) {
        depth--;
        if (depth === 0) return i + 1;
      }
      i++;
    }
    return -1;
  }
  const from = i;
  while (i < end) {
    const d = b[i];
    if (d === 0x2c || d === 0x7d || d === 0x5d || d === 0x20 || d === 0x09 || d === 0x0a || d === 0x0d) break;
    i++;
  }
  return i > from ? i : -1;
}

function hex4(b: Buffer, i: number, end: number): number {
  if (i + 4 > end) return -1;
  let v = 0;
  for (let k = i; k < i + 4; k++) {
    const c = b[k]!;
    let d: number;
    if (c >= 0x30 && c <= 0x39) d = c - 0x30;
    else if (c >= 0x61 && c <= 0x66) d = c - 0x57;
    else if (c >= 0x41 && c <= 0x46) d = c - 0x37;
    else return -1;
    v = (v << 4) | d;
  }
  return v;
}

function putCodePoint(dst: Buffer, o: number, cp: number): number {
  if (cp < 0x80) {
    dst[o] = cp;
    return o + 1;
  }
  if (cp < 0x800) {
    dst[o] = 0xc0 | (cp >> 6);
    dst[o + 1] = 0x80 | (cp & 0x3f);
    return o + 2;
  }
  if (cp < 0x10000) {
    dst[o] = 0xe0 | (cp >> 12);
    dst[o + 1] = 0x80 | ((cp >> 6) & 0x3f);
    dst[o + 2] = 0x80 | (cp & 0x3f);
    return o + 3;
  }
  dst[o] = 0xf0 | (cp >> 18);
  dst[o + 1] = 0x80 | ((cp >> 12) & 0x3f);
  dst[o + 2] = 0x80 | ((cp >> 6) & 0x3f);
  dst[o + 3] = 0x80 | (cp & 0x3f);
  return o + 4;
}

const SIMPLE_ESCAPES: Record<number, number> = {
  34: 0x22,
  92: 0x5c,
  47: 0x2f,
  98: 0x08,
  102: 0x0c,
  110: 0x0a,
  114: 0x0d,
  116: 0x09,
};

/**
 * Unescapes the JSON string whose opening quote is `b[i]` into `out.scratch` from 0.
 * Returns the index past the closing quote, with the decoded length in `out.end`, or -1.
 */
function decodeString(b: Buffer, i: number, end: number, out: ParsedLine): number {
  // Unescaping never lengthens a string, so the raw length bounds the output.
  if (out.scratch.length < end - i)
    out.scratch = Buffer.allocUnsafeSlow(Math.max(end - i, out.scratch.length * 2));
  const dst = out.scratch;
  let o = 0;
  for (i++; i < end; ) {
    const c = b[i]!;
    if (c === QUOTE) {
      out.end = o;
      return i + 1;
    }
    if (c !== BACKSLASH) {
      if (c < 0x20) return -1;
      dst[o++] = c;
      i++;
      continue;
    }
    const e = b[i + 1];
    if (e === 0x75) {
      let cp = hex4(b, i + 2, end);
      if (cp < 0) return -1;
      i += 6;
      if (cp >= 0xd800 && cp <= 0xdbff && b[i] === BACKSLASH && b[i + 1] === 0x75) {
        const lo = hex4(b, i + 2, end);
        if (lo >= 0xdc00 && lo <= 0xdfff) {
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          i += 6;
        }
      }
      if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
      o = putCodePoint(dst, o, cp);
      continue;
    }
    const simple = e === undefined || i + 1 >= end ? undefined : SIMPLE_ESCAPES[e];
    if (simple === undefined) return -1;
    dst[o++] = simple;
    i += 2;
  }
  return -1;
}

/** True when `b` at `i` holds the ASCII `key` followed by a closing quote. */
function keyIs(b: Buffer, i: number, end: number, key: string): boolean {
  if (i + key.length >= end || b[i + key.length] !== QUOTE) return false;
  for (let k = 0; k < key.length; k++) if (b[i + k] !== key.charCodeAt(k)) return false;
  return true;
}

/** The stream named by the JSON string at `b[i]`, or null when it is neither (or not a string). */
function streamValue(b: Buffer, i: number, end: number): "stdout" | "stderr" | null {
  if (b[i] !== QUOTE) return null;
  if (keyIs(b, i + 1, end, "stdout")) return "stdout";
  return keyIs(b, i + 1, end, "stderr") ? "stderr" : null;
}

/**
 * Parses one Docker json-file line, `b[start, end)` without its `\n`, into `out`. The
 * message lands in `out.scratch`. Returns false with `out.error` set when malformed.
 */
export function parseDockerLine(b: Buffer, start: number, end: number, out: ParsedLine): boolean {
  out.reset();
  if (start >= end) return out.fail("empty line", b, start, end);
  let i = skipWs(b, start, end);
  if (b[i] !== 0x7b || i >= end) return out.fail("not a JSON object", b, start, end);
  let logLength = -1;
  let stream: "stdout" | "stderr" | null = null;
  i = skipWs(b, i + 1, end);
  if (b[i] === 0x7d && i < end) i++;
  else {
    for (;;) {
      if (i >= end || b[i] !== QUOTE) return out.fail("invalid JSON", b, start, end);
      const keyStart = i + 1;
      const afterKey = skipString(b, i, end);
      if (afterKey < 0) return out.fail("invalid JSON", b, start, end);
      i = skipWs(b, afterKey, end);
      if (b[i] !== 0x3a || i >= end) return out.fail("invalid JSON", b, start, end);
      i = skipWs(b, i + 1, end);
      if (i >= end) return out.fail("invalid JSON", b, start, end);
      if (keyIs(b, keyStart, end, "log")) {
        if (b[i] !== QUOTE) return out.fail("log is not a string", b, start, end);
        i = decodeString(b, i, end, out);
        if (i < 0) return out.fail("invalid JSON string in log", b, start, end);
        logLength = out.end;
      } else if (keyIs(b, keyStart, end, "stream")) {
        stream = streamValue(b, i, end);
        if (stream === null) return out.fail("unknown stream", b, start, end);
        i += 8;
      } else if (keyIs(b, keyStart, end, "time")) {
        const after = b[i] === QUOTE ? skipString(b, i, end) : -1;
        if (after < 0 || !parseRfc3339Bytes(b, i + 1, after - 1, out)) {
          return out.fail("invalid time", b, start, end);
        }
        out.hasTime = true;
        i = after;
      } else {
        i = skipValue(b, i, end);
        if (i < 0) return out.fail("invalid JSON", b, start, end);
      }
      i = skipWs(b, i, end);
      if (i >= end) return out.fail("invalid JSON", b, start, end);
      if (b[i] === 0x2c) {
        i = skipWs(b, i + 1, end);
        continue;
      }
      if (b[i] !== 0x7d) return out.fail("invalid JSON", b, start, end);
      i++;
      break;
    }
  }
  if (skipWs(b, i, end) !== end) return out.fail("bytes after the JSON object", b, start, end);
  out.stream = stream;
  if (logLength < 0) return out.fail("missing log", b, start, end);
  if (stream === null) return out.fail("missing stream", b, start, end);
  if (!out.hasTime) return out.fail("missing time", b, start, end);
  const full = logLength > 0 && out.scratch[logLength - 1] === NEWLINE;
  out.partial = !full;
  out.bytes = out.scratch;
  out.start = 0;
  out.end = full ? logLength - 1 : logLength;
  return true;
}
