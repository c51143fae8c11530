// Reassembles runtime-split lines (CRI `P`...`F`, Docker chunks without `\n`) into the
// logical line the container wrote, per stream, under a hard size cap.
//
// Semantics, chosen against peers' known failures (Fluent Bit mixing stdout and stderr
// partials, Vector's cap applied before merging):
// - stdout and stderr have separate state; a chunk only ever joins its own stream.
// - The line's timestamp is its first chunk's.
// - Cap: a logical line longer than `maxLineBytes` is emitted as soon as it crosses the
//   cap, cut to at most `maxLineBytes` and flagged `truncated`. The cut backs off to a
//   UTF-8 character boundary, so a valid line stays valid (and is not base64'd whole).
//   Chunks after that, up to and including the `F`, are dropped; their bytes and the cut
//   tail are counted in `stats.droppedBytes`. Emitting at the cap rather than at `F`
//   keeps a never-ending `P` run (a writer that never prints `\n`) from stalling output
//   and keeps checkpoints small: a discarding stream's snapshot holds no bytes.
// - A chunk flagged `cut` (the line reader already shortened the physical line) makes
//   its logical line truncated the same way, also cut back to a character boundary.
// - flush() is for when the writer is gone (container exited, file removed): it emits
//   each stream's pending `P` run as a line flagged `unterminated`, which is what the
//   container wrote (`printf` without `\n`), not an error, so records carry no flag for
//   it; it is counted in `stats.unterminatedLines`. Never flush at the end of a rotated
//   file: containerd writes the `P` into the rotated file and the `F` into the new one,
//   so the state must travel in snapshot() instead. There is no timeout (Vector's is
//   30 s), because a timeout splits one line into two records: a `P` run stays open
//   across a size split, a rotation, or, with CRI-O, which tags every read's unterminated
//   tail `P`, until a prompt-style writer prints again or exits. Held runs are at most
//   the cap and go into snapshots.
// Memory: each stream holds at most `maxLineBytes` of pending bytes, and only while a `P`
// run is open: once its line is emitted the buffer goes back to a small pool shared by all
// mergers, so memory follows the runs open at once, not the number of files.

import { MAX_RECORD_MESSAGE_BYTES } from "../../../lib/record/limits.ts";
import type { Stream } from "./parser/parsed_line.ts";

export const DEFAULT_MAX_LINE_BYTES = MAX_RECORD_MESSAGE_BYTES;
/** Size of the pending buffers that are reused; longer runs get one of their own. */
const RETAINED_BUFFER_BYTES = 64 * 1024;
/** Free pending buffers kept, shared by every merger (most streams have no `P` run open). */
const SPARE_PENDING_BUFFERS = 16;
const sparePending: Buffer[] = [];

export interface MergedLine {
  stream: Stream;
  epochSeconds: number;
  nanos: number;
  /** The line is `bytes[start, end)`. */
  bytes: Buffer;
  start: number;
  end: number;
  truncated: boolean;
  unterminated: boolean;
}

export interface MergerStats {
  /** Bytes cut from truncated lines, including whole chunks dropped while discarding. */
  droppedBytes: number;
  truncatedLines: number;
  unterminatedLines: number;
}

/** JSON-able state of one stream, for a checkpoint. */
export interface StreamSnapshot {
  stream: Stream;
  /** A truncated line was emitted; chunks up to the next `F` are dropped. */
  discarding?: true;
  /** Bytes of the pending `P` run, base64; absent when discarding. */
  pending?: string;
  epochSeconds?: number;
  nanos?: number;
}

export interface MergerSnapshot {
  version: 1;
  streams: StreamSnapshot[];
}

/**
 * Where to cut `b[start, end)` when the line continues past `end`: `end`, or earlier so
 * that an incomplete multi-byte UTF-8 character is not split.
 */
export function utf8CutPoint(b: Uint8Array, start: number, end: number): number {
  let k = end - 1;
  const floor = Math.max(start, end - 4);
  while (k >= floor && (b[k]! & 0xc0) === 0x80) k--;
  if (k < floor) return end;
  const lead = b[k]!;
  const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return k + need > end ? k : end;
}

class StreamState {
  /** A `P` run is pending in `buf[0, length)`. */
  active = false;
  discarding = false;
  buf: Buffer | null = null;
  length = 0;
  epochSeconds = 0;
  nanos = 0;

  reserve(n: number, cap: number): Buffer {
    const have = this.buf;
    if (have !== null && have.length >= n) return have;
    const next =
      have === null && n <= RETAINED_BUFFER_BYTES
        ? (sparePending.pop() ?? Buffer.allocUnsafeSlow(RETAINED_BUFFER_BYTES))
        : Buffer.allocUnsafeSlow(Math.min(Math.max(n, (have?.length ?? 0) * 2), Math.max(cap, n)));
    if (have !== null) have.copy(next, 0, 0, this.length);
    this.buf = next;
    return next;
  }

  /**
   * The run was emitted: its buffer goes back to the shared spares. The emitted line
   * still points into it, which is safe because the caller is done with the line before
   * any merger takes a buffer again (lines are valid only during the call).
   */
  release(): void {
    this.active = false;
    this.length = 0;
    const buf = this.buf;
    this.buf = null;
    if (buf !== null && buf.length === RETAINED_BUFFER_BYTES && sparePending.length < SPARE_PENDING_BUFFERS)
      sparePending.push(buf);
  }
}

export class PartialMerger {
  readonly maxLineBytes: number;
  readonly stats: MergerStats = { droppedBytes: 0, truncatedLines: 0, unterminatedLines: 0 };
  private readonly stdout = new StreamState();
  private readonly stderr = new StreamState();
  private readonly out: MergedLine = {
    stream: "stdout",
    epochSeconds: 0,
    nanos: 0,
    bytes: Buffer.alloc(0),
    start: 0,
    end: 0,
    truncated: false,
    unterminated: false,
  };

  constructor(options: { maxLineBytes?: number } = {}) {
    const cap = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    if (!Number.isSafeInteger(cap) || cap < 1)
      throw new RangeError(`maxLineBytes must be a positive integer, got ${cap}`);
    this.maxLineBytes = cap;
  }

  /** Bytes held for unfinished lines, both streams. */
  get pendingBytes(): number {
    return this.stdout.length + this.stderr.length;
  }

  /**
   * Adds one chunk. Returns the completed (or cap-truncated) line, or null while the line
   * is pending or being discarded. The returned object and its bytes are valid until the
   * next push() or flush(); `bytes` may be the caller's own buffer.
   */
  push(
    stream: Stream,
    partial: boolean,
    epochSeconds: number,
    nanos: number,
    bytes: Buffer,
    start: number,
    end: number,
    cut = false,
  ): MergedLine | null {
    const st = stream === "stdout" ? this.stdout : this.stderr;
    const cap = this.maxLineBytes;
    const len = end - start;
    if (st.discarding) {
      this.stats.droppedBytes += len;
      if (!partial) st.discarding = false;
      return null;
    }
    if (!st.active) {
      if (!partial || len > cap || cut) {
        // The common case, a whole line in one chunk, is returned as a view: no copy.
        const stop = len > cap || cut ? utf8CutPoint(bytes, start, start + Math.min(len, cap)) : end;
        const truncated = stop < end || cut;
        if (truncated) this.truncate(st, partial, end - stop);
        return this.emit(stream, epochSeconds, nanos, bytes, start, stop, truncated, false);
      }
      st.active = true;
      st.epochSeconds = epochSeconds;
      st.nanos = nanos;
      st.length = 0;
    }
    if (st.length + len <= cap && !cut) {
      st.reserve(st.length + len, cap);
      bytes.copy(st.buf!, st.length, start, end);
      st.length += len;
      if (partial) return null;
      return this.emitPending(st, stream, false, false);
    }
    // Crossing the cap: keep what fits, cut at a character boundary, drop the rest.
    const total = st.length + len;
    const held = Math.min(st.length, cap);
    const take = Math.min(len, cap - held);
    const buf = st.reserve(held + take, cap);
    bytes.copy(buf, held, start, start + take);
    const stop = held + take < total || cut ? utf8CutPoint(buf, 0, held + take) : held + take;
    st.length = stop;
    this.truncate(st, partial, total - stop);
    return this.emitPending(st, stream, true, false);
  }

  /**
   * Emits every pending `P` run as an `unterminated` line (copied) and resets both streams.
   * Call only when the writer is gone; see the module comment.
   */
  flush(): MergedLine[] {
    const lines: MergedLine[] = [];
    for (const stream of ["stdout", "stderr"] as const) {
      const st = stream === "stdout" ? this.stdout : this.stderr;
      st.discarding = false;
      if (!st.active) continue;
      // Only a snapshot restored under a smaller cap can hold more than the cap.
      const over = st.length > this.maxLineBytes;
      if (over) {
        const stop = utf8CutPoint(st.buf!, 0, this.maxLineBytes);
        this.stats.droppedBytes += st.length - stop;
        this.stats.truncatedLines++;
        st.length = stop;
      }
      const line = this.emitPending(st, stream, over, true);
      const bytes = Buffer.from(line.bytes.subarray(line.start, line.end));
      lines.push({ ...line, bytes, start: 0, end: bytes.length });
      this.stats.unterminatedLines++;
    }
    return lines;
  }

  snapshot(): MergerSnapshot {
    const streams: StreamSnapshot[] = [];
    for (const stream of ["stdout", "stderr"] as const) {
      const st = stream === "stdout" ? this.stdout : this.stderr;
      if (st.discarding) streams.push({ stream, discarding: true });
      else if (st.active) {
        streams.push({
          stream,
          pending: st.buf === null ? "" : st.buf.toString("base64", 0, st.length),
          epochSeconds: st.epochSeconds,
          nanos: st.nanos,
        });
      }
    }
    return { version: 1, streams };
  }

  /**
   * A merger continuing from `snapshot`. A pending run longer than the new cap (the cap
   * was lowered) is kept and cut when its line next moves.
   */
  static restore(snapshot: MergerSnapshot, options: { maxLineBytes?: number } = {}): PartialMerger {
    const merger = new PartialMerger(options);
    if (snapshot?.version !== 1 || !Array.isArray(snapshot.streams)) {
      throw new TypeError("merger snapshot: expected {version: 1, streams: [...]}");
    }
    for (const s of snapshot.streams) {
      if (s.stream !== "stdout" && s.stream !== "stderr") throw new TypeError("merger snapshot: bad stream");
      const st = s.stream === "stdout" ? merger.stdout : merger.stderr;
      if (s.discarding === true) {
        st.discarding = true;
        continue;
      }
      if (
        typeof s.pending !== "string" ||
        !Number.isSafeInteger(s.epochSeconds) ||
        !Number.isSafeInteger(s.nanos)
      ) {
        throw new TypeError(`merger snapshot: ${s.stream} needs pending, epochSeconds and nanos`);
      }
      const bytes = Buffer.from(s.pending, "base64");
      st.buf = bytes;
      st.length = bytes.length;
      st.active = true;
      st.epochSeconds = s.epochSeconds!;
      st.nanos = s.nanos!;
    }
    return merger;
  }

  private truncate(st: StreamState, partial: boolean, dropped: number): void {
    this.stats.droppedBytes += dropped;
    this.stats.truncatedLines++;
    st.discarding = partial;
  }

  private emitPending(
    st: StreamState,
    stream: Stream,
    truncated: boolean,
    unterminated: boolean,
  ): MergedLine {
    const line = this.emit(stream, st.epochSeconds, st.nanos, st.buf!, 0, st.length, truncated, unterminated);
    st.release();
    return line;
  }

  private emit(
    stream: Stream,
    epochSeconds: number,
    nanos: number,
    bytes: Buffer,
    start: number,
    end: number,
    truncated: boolean,
    unterminated: boolean,
  ): MergedLine {
    const o = this.out;
    o.stream = stream;
    o.epochSeconds = epochSeconds;
    o.nanos = nanos;
    o.bytes = bytes;
    o.start = start;
    o.end = end;
    o.truncated = truncated;
    o.unterminated = unterminated;
    return o;
  }
}
