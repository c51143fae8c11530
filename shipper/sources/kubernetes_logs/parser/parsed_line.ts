// The one result object the line parsers fill, reused line after line.
//
// The parsers run once per physical log line, millions of times a minute, so they write
// into a caller-owned ParsedLine instead of returning a fresh object. Its fields are only
// valid until the next parse call with the same ParsedLine: `bytes` may be the input
// buffer (CRI) or the ParsedLine's own decode scratch (Docker), which the next line
// overwrites. Copy what must outlive the call.

import type { InstantSlot } from "./timestamp.ts";

export type Stream = "stdout" | "stderr";

const EMPTY = Buffer.alloc(0);

export class ParsedLine implements InstantSlot {
  /** null when the line parsed; otherwise a short reason, and `bytes` holds the whole raw line. */
  error: string | null = null;
  /** The stream, or null when the line failed before it was read. */
  stream: Stream | null = null;
  /** CRI `P` tag, or a Docker `log` without its trailing newline: more of this line follows. */
  partial = false;
  /** True when `epochSeconds`/`nanos` hold the line's timestamp. */
  hasTime = false;
  epochSeconds = 0;
  nanos = 0;
  /** The message (or, on error, the raw line) is `bytes[start, end)`. */
  bytes: Buffer = EMPTY;
  start = 0;
  end = 0;
  /** Docker `log` strings are unescaped here; allocated on first use, grows to the longest line seen. */
  scratch: Buffer = EMPTY;

  /** Marks the line malformed, keeping the raw bytes as its message. */
  fail(reason: string, raw: Buffer, start: number, end: number): false {
    this.error = reason;
    this.partial = false;
    this.bytes = raw;
    this.start = start;
    this.end = end;
    return false;
  }

  reset(): void {
    this.error = null;
    this.stream = null;
    this.partial = false;
    this.hasTime = false;
  }
}
