// Merges the lines of one multi-line stack trace into one record, per stream of one
// container file chain, after partial (P/F) merging. The rules (rules.ts) say which line
// starts a trace and which lines continue it; this class holds the open trace ("group"),
// bounds it, and says when it ends.
//
// Semantics, chosen against peers' known failures:
// - stdout and stderr have separate groups, and a FileDecoder (one container file chain)
//   owns its merger, so a trace never takes a line from the other stream or another
//   container (Fluent Bit #4387 mixed streams for partials; Vector #15852 interlaced
//   events when several sources fed one merger).
// - A group ends, and is emitted before the line that ended it is looked at afresh, when:
//   the next line of its stream does not continue it; the group has been idle for
//   `flushTimeoutMs` (checked by flushIdle(), wall clock, so the last trace before a
//   quiet spell is not held until the next line: Fluent Bit #5504); the next line's
//   timestamp is more than `flushTimeoutMs` after the group's last line (the same rule on
//   the log's own clock, so a backlog and `logarchive parse` group lines as live reading
//   would have); the file chain ends (flush()); or the shipper drains.
// - The timeout counts from the group's last line, not its first: a long trace written
//   steadily is not cut in the middle (Vector #6855).
// - Bounds: a group holds at most `maxLines` lines and `maxBytes` bytes (a single line
//   longer than `maxBytes`, at most max_line_bytes, forms a group of its own). A line that
//   would pass a bound ends the group, which is emitted marked `truncated`, and starts the
//   next group in the same state, so the rest of the trace continues in the next record.
//   Nothing is dropped, and memory per stream stays at max(maxBytes, one line).
// - A group's timestamp is its first line's; it is `truncated` if any of its lines was
//   or if it was cut at a bound; `unterminated` if its last line was.
// - Lines that start nothing while no group is open are emitted as they are (a view, no
//   copy). A group that gets no continuation is emitted as the one line it holds, with
//   that line's flags: merging never changes a line that is not part of a trace.
// - snapshot()/restore() carry open groups through checkpoints and rotations exactly as
//   the partial merger carries `P` runs: the read offset moves past a held line only
//   together with the line's bytes in the checkpoint.

import type { Stream } from "../../sources/kubernetes_logs/parser/parsed_line.ts";
import { type MultilineMode, START, STATE_NAMES, stateNumber, TraceRules } from "./rules.ts";

export interface MultilineSettings {
  /** `off` starts no group; it only finishes groups restored from a checkpoint. */
  mode: MultilineMode | "off";
  maxLines: number;
  maxBytes: number;
  flushTimeoutMs: number;
}

export const MULTILINE_DEFAULTS = {
  maxLines: 1000,
  maxBytes: 512 * 1024,
  flushTimeoutMs: 2000,
} as const;

/** Receives one record's message `bytes[start, end)`, valid only during the call. */
export type MultilineEmit = (
  stream: Stream,
  epochSeconds: number,
  nanos: number,
  bytes: Buffer,
  start: number,
  end: number,
  truncated: boolean,
  unterminated: boolean,
) => void;

/** What ended a merged record. */
export type FlushReason = "next_line" | "timeout" | "limit" | "end";

export interface MultilineStats {
  /** Records merged from two or more lines, by what ended them. */
  records: Record<FlushReason, number>;
  /** Lines in those records. */
  lines: number;
}

/** JSON-able open group of one stream, for a checkpoint. */
export interface MultilineGroupSnapshot {
  stream: Stream;
  /** Rule state name (rules.ts STATE_NAMES). */
  state: string;
  lines: number;
  /** The group's message so far (lines joined by `\n`), base64. */
  message: string;
  epochSeconds: number;
  nanos: number;
  lastEpochSeconds: number;
  lastNanos: number;
  truncated?: true;
}

export interface MultilineSnapshot {
  version: 1;
  groups: MultilineGroupSnapshot[];
}

const RETAINED_BUFFER_BYTES = 64 * 1024;
const NEWLINE = 0x0a;

class Group {
  /** START: no group open. */
  state = START;
  buf: Buffer | null = null;
  length = 0;
  lines = 0;
  epochSeconds = 0;
  nanos = 0;
  lastEpochSeconds = 0;
  lastNanos = 0;
  truncated = false;
  unterminated = false;
  /** Wall-clock ms of the last line added. */
  touchedAt = 0;

  reserve(n: number): Buffer {
    const have = this.buf;
    if (have !== null && have.length >= n) return have;
    // Its own memory, not a slice of Buffer's shared pool, which it would keep alive.
    const next = Buffer.allocUnsafeSlow(Math.max(n, 4096, (have?.length ?? 0) * 2));
    if (have !== null) have.copy(next, 0, 0, this.length);
    this.buf = next;
    return next;
  }

  append(b: Buffer, start: number, end: number): void {
    const sep = this.lines > 0 ? 1 : 0;
    const buf = this.reserve(this.length + sep + end - start);
    if (sep === 1) buf[this.length] = NEWLINE;
    b.copy(buf, this.length + sep, start, end);
    this.length += sep + end - start;
    this.lines++;
  }

  reset(): void {
    this.state = START;
    this.length = 0;
    this.lines = 0;
    this.truncated = false;
    this.unterminated = false;
    if (this.buf !== null && this.buf.length > RETAINED_BUFFER_BYTES) this.buf = null;
  }
}

export class MultilineMerger {
  readonly settings: MultilineSettings;
  readonly rules: TraceRules;
  readonly stats: MultilineStats = { records: { next_line: 0, timeout: 0, limit: 0, end: 0 }, lines: 0 };
  readonly #stdout = new Group();
  readonly #stderr = new Group();

  constructor(settings: MultilineSettings) {
    for (const [name, v, min] of [
      ["maxLines", settings.maxLines, 1],
      ["maxBytes", settings.maxBytes, 1],
      ["flushTimeoutMs", settings.flushTimeoutMs, 0],
    ] as const) {
      if (!Number.isSafeInteger(v) || v < min)
        throw new RangeError(`${name} must be an integer ≥ ${min}, got ${v}`);
    }
    this.settings = settings;
    this.rules = new TraceRules(settings.mode);
  }

  /** Whether a group is open on either stream. */
  get open(): boolean {
    return this.#stdout.state !== START || this.#stderr.state !== START;
  }

  /** Bytes held in open groups. */
  get pendingBytes(): number {
    return this.#stdout.length + this.#stderr.length;
  }

  /**
   * Adds one logical line; emits, synchronously, whatever records it completes: the group
   * it ended, and the line itself when it starts no group. `now` is the wall clock in ms.
   */
  push(
    stream: Stream,
    epochSeconds: number,
    nanos: number,
    bytes: Buffer,
    start: number,
    end: number,
    truncated: boolean,
    unterminated: boolean,
    now: number,
    emit: MultilineEmit,
  ): void {
    const g = stream === "stdout" ? this.#stdout : this.#stderr;
    if (g.state !== START) {
      const gapMs = (epochSeconds - g.lastEpochSeconds) * 1000 + (nanos - g.lastNanos) / 1e6;
      const next = gapMs > this.settings.flushTimeoutMs ? START : this.rules.next(g.state, bytes, start, end);
      if (next !== START) {
        const len = end - start;
        if (g.lines >= this.settings.maxLines || g.length + 1 + len > this.settings.maxBytes) {
          g.truncated = true;
          this.#finish(g, stream, "limit", emit);
        }
        this.#add(g, next, epochSeconds, nanos, bytes, start, end, truncated, unterminated, now);
        return;
      }
      this.#finish(g, stream, gapMs > this.settings.flushTimeoutMs ? "timeout" : "next_line", emit);
    }
    const state = this.rules.start(bytes, start, end);
    if (state === START) {
      emit(stream, epochSeconds, nanos, bytes, start, end, truncated, unterminated);
      return;
    }
    this.#add(g, state, epochSeconds, nanos, bytes, start, end, truncated, unterminated, now);
  }

  /** Emits the groups that got no line for `flushTimeoutMs` up to `now`. */
  flushIdle(now: number, emit: MultilineEmit): void {
    const limit = this.settings.flushTimeoutMs;
    if (this.#stdout.state !== START && now - this.#stdout.touchedAt >= limit)
      this.#finish(this.#stdout, "stdout", "timeout", emit);
    if (this.#stderr.state !== START && now - this.#stderr.touchedAt >= limit)
      this.#finish(this.#stderr, "stderr", "timeout", emit);
  }

  /** Emits every open group: the file chain ended, or the shipper drains. */
  flush(emit: MultilineEmit): void {
    if (this.#stdout.state !== START) this.#finish(this.#stdout, "stdout", "end", emit);
    if (this.#stderr.state !== START) this.#finish(this.#stderr, "stderr", "end", emit);
  }

  /** Open groups, or undefined when there are none (the common case: no checkpoint field). */
  snapshot(): MultilineSnapshot | undefined {
    if (!this.open) return undefined;
    const groups: MultilineGroupSnapshot[] = [];
    for (const stream of ["stdout", "stderr"] as const) {
      const g = stream === "stdout" ? this.#stdout : this.#stderr;
      if (g.state === START) continue;
      groups.push({
        stream,
        state: STATE_NAMES[g.state] ?? "unknown",
        lines: g.lines,
        message: g.buf === null ? "" : g.buf.toString("base64", 0, g.length),
        epochSeconds: g.epochSeconds,
        nanos: g.nanos,
        lastEpochSeconds: g.lastEpochSeconds,
        lastNanos: g.lastNanos,
        ...(g.truncated ? { truncated: true as const } : {}),
      });
    }
    return { version: 1, groups };
  }

  /**
   * A merger continuing from `snapshot` under `settings` (which may differ from those the
   * snapshot was taken under: a restored group keeps its state and ends by the usual
   * rules). Restored groups count as touched at `now`.
   */
  static restore(
    snapshot: MultilineSnapshot | undefined,
    settings: MultilineSettings,
    now: number,
  ): MultilineMerger {
    const merger = new MultilineMerger(settings);
    if (snapshot === undefined) return merger;
    if (snapshot?.version !== 1 || !Array.isArray(snapshot.groups)) {
      throw new TypeError("multiline snapshot: expected {version: 1, groups: [...]}");
    }
    for (const s of snapshot.groups) {
      if (s.stream !== "stdout" && s.stream !== "stderr")
        throw new TypeError("multiline snapshot: bad stream");
      if (
        typeof s.message !== "string" ||
        typeof s.state !== "string" ||
        !Number.isSafeInteger(s.lines) ||
        s.lines < 1 ||
        ![s.epochSeconds, s.nanos, s.lastEpochSeconds, s.lastNanos].every(Number.isSafeInteger)
      ) {
        throw new TypeError(`multiline snapshot: ${s.stream} needs state, lines, message and timestamps`);
      }
      const g = s.stream === "stdout" ? merger.#stdout : merger.#stderr;
      const bytes = Buffer.from(s.message, "base64");
      g.buf = bytes;
      g.length = bytes.length;
      g.lines = s.lines;
      g.state = stateNumber(s.state);
      g.epochSeconds = s.epochSeconds;
      g.nanos = s.nanos;
      g.lastEpochSeconds = s.lastEpochSeconds;
      g.lastNanos = s.lastNanos;
      g.truncated = s.truncated === true;
      g.touchedAt = now;
    }
    return merger;
  }

  #add(
    g: Group,
    state: number,
    epochSeconds: number,
    nanos: number,
    bytes: Buffer,
    start: number,
    end: number,
    truncated: boolean,
    unterminated: boolean,
    now: number,
  ): void {
    if (g.lines === 0) {
      g.epochSeconds = epochSeconds;
      g.nanos = nanos;
    }
    g.append(bytes, start, end);
    g.state = state;
    g.lastEpochSeconds = epochSeconds;
    g.lastNanos = nanos;
    g.truncated ||= truncated;
    g.unterminated = unterminated;
    g.touchedAt = now;
  }

  #finish(g: Group, stream: Stream, reason: FlushReason, emit: MultilineEmit): void {
    if (g.lines > 1) {
      this.stats.records[reason]++;
      this.stats.lines += g.lines;
    }
    const { epochSeconds, nanos, truncated, unterminated } = g;
    const buf = g.buf ?? Buffer.alloc(0);
    const length = g.length;
    g.reset();
    emit(stream, epochSeconds, nanos, buf, 0, length, truncated, unterminated);
  }
}
