// One container log file's bytes → the logical lines the shipper archives: line
// splitting, format detection, parsing and partial merging, in the order the shipper and
// `logarchive parse` share, so both produce the same records.
//
// A line that does not parse is never dropped: it comes out with its raw bytes (capped
// like any line) and a `parseError` reason. Its `stream` and timestamp are whatever the
// parser read before failing; otherwise the stream is `stdout` and the timestamp is that
// of the previous good line of the file, or, before any, the caller's `fallbackTime`
// (the file's mtime for `logarchive parse`). Unlike the time of reading, this gives a
// replay the same records, given the same fallback; the previous good time is not in the
// checkpoint, so after a resume the fallback applies until the next good line. Parse
// errors never join or break a pending partial. Truncation counts, including of lines
// that bypass the merger, are in `merger.stats`; the line reader's own cuts in `reader.stats`.
//
// With `multiline` set, the logical lines then go through a MultilineMerger, which joins
// the lines of a stack trace into one record (transforms/multiline/merger.ts). Parse
// errors bypass it too. Off (the default), the only cost is one null check per line.

import {
  MULTILINE_DEFAULTS,
  type MultilineEmit,
  MultilineMerger,
  type MultilineSettings,
  type MultilineSnapshot,
} from "../../transforms/multiline/merger.ts";
import type { EncodableLine } from "../../transforms/record_encoder.ts";
import { LineReader, type LineReaderCheckpoint } from "./line_reader.ts";
import { FormatDetector } from "./parser/detect.ts";
import { ParsedLine, type Stream } from "./parser/parsed_line.ts";
import type { InstantSlot } from "./parser/timestamp.ts";
import {
  DEFAULT_MAX_LINE_BYTES,
  type MergerSnapshot,
  PartialMerger,
  utf8CutPoint,
} from "./partial_merger.ts";

/** Room for the CRI or Docker framing around a message of `maxLineBytes`. */
const PHYSICAL_LINE_OVERHEAD = 128 * 1024;

/** A logical line; the message (or a malformed line's raw bytes) is `bytes[start, end)`. */
export interface DecodedLine extends EncodableLine {
  /** Without merging: whether the physical line was a partial chunk. Always false when merging. */
  partial: boolean;
  /** A partial run the writer never finished (see PartialMerger.flush). */
  unterminated: boolean;
}

export interface FileDecoderOptions {
  /** Join partial chunks into logical lines (default true); false gives one line per physical line. */
  merge?: boolean;
  /** Cap on a logical line's message bytes (default 1 MiB). */
  maxLineBytes?: number;
  /** Timestamp for malformed lines before the file's first good one. */
  fallbackTime: InstantSlot;
  /** Merge multi-line stack traces into one record (only when merging partials); null: off. */
  multiline?: MultilineSettings | null;
  /** Continue a file from a checkpoint: the reader's position and the mergers' pending state. */
  resumeFrom?: DecoderCheckpoint;
}

/** Where a file's decoding stands: all a checkpoint needs to continue it exactly. */
export interface DecoderCheckpoint {
  reader: LineReaderCheckpoint;
  merger: MergerSnapshot;
  /** Open stack-trace groups; absent when there are none. */
  multiline?: MultilineSnapshot;
}

/** Receives each decoded line; the object and its bytes are valid only during the call. */
export type DecodedLineSink = (line: DecodedLine) => void;

export class FileDecoder {
  readonly reader: LineReader;
  readonly merger: PartialMerger;
  /** null when multiline merging is off and nothing was restored. */
  readonly multiline: MultilineMerger | null;
  readonly detector = new FormatDetector();
  readonly maxLineBytes: number;
  private readonly merge: boolean;
  private readonly parsed = new ParsedLine();
  private readonly lastTime: InstantSlot;
  private readonly line: DecodedLine = {
    stream: "stdout",
    epochSeconds: 0,
    nanos: 0,
    bytes: Buffer.alloc(0),
    start: 0,
    end: 0,
    truncated: false,
    parseError: null,
    partial: false,
    unterminated: false,
  };
  private sink: DecodedLineSink = () => {};
  private readonly onPhysicalLine = (
    bytes: Buffer,
    start: number,
    end: number,
    _endOffset: number,
    cut: boolean,
  ): void => this.decodePhysical(bytes, start, end, cut);
  private readonly onRecord: MultilineEmit = (
    stream,
    epochSeconds,
    nanos,
    bytes,
    start,
    end,
    truncated,
    unterminated,
  ) => this.emit(stream, epochSeconds, nanos, bytes, start, end, truncated, null, false, unterminated);
  /** Wall clock of the current push(), for multiline idle timeouts. */
  private now = 0;

  constructor(options: FileDecoderOptions) {
    this.merge = options.merge ?? true;
    this.maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    const resume = options.resumeFrom;
    this.merger =
      resume === undefined
        ? new PartialMerger({ maxLineBytes: this.maxLineBytes })
        : PartialMerger.restore(resume.merger, { maxLineBytes: this.maxLineBytes });
    // A group restored with multiline now off is still finished, by an `off` merger.
    const ml =
      this.merge && options.multiline
        ? options.multiline
        : resume?.multiline !== undefined
          ? { mode: "off" as const, ...MULTILINE_DEFAULTS }
          : null;
    if (ml !== null) this.now = Date.now();
    this.multiline = ml === null ? null : MultilineMerger.restore(resume?.multiline, ml, this.now);
    this.reader = new LineReader({
      maxLineBytes: this.maxLineBytes + PHYSICAL_LINE_OVERHEAD,
      resumeFrom: resume?.reader,
    });
    this.lastTime = { epochSeconds: options.fallbackTime.epochSeconds, nanos: options.fallbackTime.nanos };
  }

  /**
   * Where this file stands, for a checkpoint taken between push() calls. The line reader
   * resumes at a line boundary and the merger keeps partials that span it (or a rotation).
   */
  checkpoint(): DecoderCheckpoint {
    const multiline = this.multiline?.snapshot();
    const cp: DecoderCheckpoint = { reader: this.reader.checkpoint(), merger: this.merger.snapshot() };
    if (multiline !== undefined) cp.multiline = multiline;
    return cp;
  }

  push(chunk: Buffer, sink: DecodedLineSink): void {
    this.sink = sink;
    if (this.multiline !== null) this.now = Date.now();
    this.reader.push(chunk, this.onPhysicalLine);
  }

  /** The file is finished and its writer gone: emits a `\n`-less tail, pending partials and open traces. */
  end(sink: DecodedLineSink): void {
    this.sink = sink;
    this.reader.end(this.onPhysicalLine);
    for (const m of this.merger.flush()) {
      if (this.multiline !== null) {
        this.multiline.push(
          m.stream,
          m.epochSeconds,
          m.nanos,
          m.bytes,
          m.start,
          m.end,
          m.truncated,
          true,
          this.now,
          this.onRecord,
        );
      } else {
        this.emit(m.stream, m.epochSeconds, m.nanos, m.bytes, m.start, m.end, m.truncated, null, false, true);
      }
    }
    this.multiline?.flush(this.onRecord);
  }

  /**
   * The file is finished but its pending partials go on in the next file of its chain:
   * hands out only a `\n`-less tail (a damaged .gz cut mid-line), which no later file continues.
   */
  endUnterminatedTail(sink: DecodedLineSink): void {
    if (this.reader.carriedBytes === 0) return;
    this.sink = sink;
    this.reader.end(this.onPhysicalLine);
  }

  /** Emits stack-trace groups idle for their flush timeout at `now` (wall clock, ms). */
  flushIdle(now: number, sink: DecodedLineSink): void {
    if (this.multiline === null || !this.multiline.open) return;
    this.sink = sink;
    this.multiline.flushIdle(now, this.onRecord);
  }

  /** Emits every open stack-trace group (the shipper drains); partial lines stay pending. */
  flushMultiline(sink: DecodedLineSink): void {
    if (this.multiline === null || !this.multiline.open) return;
    this.sink = sink;
    this.multiline.flush(this.onRecord);
  }

  private decodePhysical(bytes: Buffer, start: number, end: number, cut: boolean): void {
    const p = this.parsed;
    if (!this.detector.parse(bytes, start, end, p)) {
      const stream = p.stream ?? "stdout";
      const t = p.hasTime ? p : this.lastTime;
      this.emitCapped(stream, t.epochSeconds, t.nanos, p.bytes, p.start, p.end, cut, p.error, false);
      return;
    }
    this.lastTime.epochSeconds = p.epochSeconds;
    this.lastTime.nanos = p.nanos;
    const stream = p.stream!;
    if (!this.merge) {
      this.emitCapped(stream, p.epochSeconds, p.nanos, p.bytes, p.start, p.end, cut, null, p.partial);
      return;
    }
    const m = this.merger.push(stream, p.partial, p.epochSeconds, p.nanos, p.bytes, p.start, p.end, cut);
    if (m === null) return;
    if (this.multiline === null)
      this.emit(stream, m.epochSeconds, m.nanos, m.bytes, m.start, m.end, m.truncated, null, false, false);
    else
      this.multiline.push(
        stream,
        m.epochSeconds,
        m.nanos,
        m.bytes,
        m.start,
        m.end,
        m.truncated,
        false,
        this.now,
        this.onRecord,
      );
  }

  /** Lines that bypass the merger get the same cap and character-boundary cut. */
  private emitCapped(
    stream: Stream,
    epochSeconds: number,
    nanos: number,
    bytes: Buffer,
    start: number,
    end: number,
    cut: boolean,
    parseError: string | null,
    partial: boolean,
  ): void {
    let stop = end;
    if (cut || end - start > this.maxLineBytes) {
      stop = utf8CutPoint(bytes, start, start + Math.min(end - start, this.maxLineBytes));
      this.merger.stats.droppedBytes += end - stop;
      this.merger.stats.truncatedLines++;
    }
    this.emit(stream, epochSeconds, nanos, bytes, start, stop, stop < end || cut, parseError, partial, false);
  }

  private emit(
    stream: Stream,
    epochSeconds: number,
    nanos: number,
    bytes: Buffer,
    start: number,
    end: number,
    truncated: boolean,
    parseError: string | null,
    partial: boolean,
    unterminated: boolean,
  ): void {
    const l = this.line;
    l.stream = stream;
    l.epochSeconds = epochSeconds;
    l.nanos = nanos;
    l.bytes = bytes;
    l.start = start;
    l.end = end;
    l.truncated = truncated;
    l.parseError = parseError;
    l.partial = partial;
    l.unterminated = unterminated;
    this.sink(l);
  }
}
