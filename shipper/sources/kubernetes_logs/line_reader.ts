// Splits a file's byte stream into `\n`-terminated physical lines, tracking offsets.
//
// A line that lies inside one chunk is handed out as a view of that chunk, never copied;
// only a line spanning chunks is assembled in a carry buffer. The carry is capped: a
// newline-less run longer than `maxLineBytes` (a multi-GB file without `\n`, a runtime
// with line splitting disabled) is handed out as its first `maxLineBytes` bytes flagged
// `cut`, and the bytes up to the next `\n` are dropped and counted, so memory per file
// stays at most `maxLineBytes` whatever the input.
//
// Offsets are absolute file offsets (decompressed, for .gz). checkpoint() gives a place
// to resume: the first byte not yet accounted for, i.e. the start of the carried tail,
// with `discarding` set when that place is inside a cut line's dropped remainder.

export const DEFAULT_MAX_PHYSICAL_LINE_BYTES = 1024 * 1024 + 128 * 1024;
const RETAINED_CARRY_BYTES = 64 * 1024;
const NEWLINE = 0x0a;

/**
 * Receives one line, `bytes[start, end)` without its `\n`, valid only during the call.
 * `endOffset` is the file offset just past what the line accounts for: its `\n`, or for
 * a cut line whose `\n` has not been read yet, the last byte read (see checkpoint()).
 * `cut`: the line is a prefix of a longer one. `unterminated`: end() found it with no `\n`.
 */
export type LineSink = (
  bytes: Buffer,
  start: number,
  end: number,
  endOffset: number,
  cut: boolean,
  unterminated: boolean,
) => void;

export interface LineReaderCheckpoint {
  offset: number;
  discarding: boolean;
}

export interface LineReaderStats {
  lines: number;
  cutLines: number;
  /** Bytes of cut lines that were not handed out. */
  droppedBytes: number;
}

export class LineReader {
  readonly maxLineBytes: number;
  readonly stats: LineReaderStats = { lines: 0, cutLines: 0, droppedBytes: 0 };
  /** File offset of the next byte push() will receive. */
  private readOffset: number;
  private discarding: boolean;
  private carry: Buffer | null = null;
  private carryLength = 0;

  constructor(options: { maxLineBytes?: number; resumeFrom?: LineReaderCheckpoint } = {}) {
    const cap = options.maxLineBytes ?? DEFAULT_MAX_PHYSICAL_LINE_BYTES;
    if (!Number.isSafeInteger(cap) || cap < 1)
      throw new RangeError(`maxLineBytes must be a positive integer, got ${cap}`);
    this.maxLineBytes = cap;
    this.readOffset = options.resumeFrom?.offset ?? 0;
    this.discarding = options.resumeFrom?.discarding ?? false;
  }

  /** Where to resume reading after a restart; everything before it has been handed out or dropped. */
  checkpoint(): LineReaderCheckpoint {
    return { offset: this.readOffset - this.carryLength, discarding: this.discarding };
  }

  /** Bytes held for a line whose `\n` has not arrived. */
  get carriedBytes(): number {
    return this.carryLength;
  }

  push(chunk: Buffer, onLine: LineSink): void {
    const n = chunk.length;
    const base = this.readOffset;
    this.readOffset += n;
    const cap = this.maxLineBytes;
    let pos = 0;

    if (this.discarding) {
      const nl = chunk.indexOf(NEWLINE);
      this.stats.droppedBytes += nl < 0 ? n : nl;
      if (nl < 0) return;
      this.discarding = false;
      pos = nl + 1;
    }

    if (this.carryLength > 0) {
      const nl = chunk.indexOf(NEWLINE, pos);
      const stop = nl < 0 ? n : nl;
      const room = cap - this.carryLength;
      if (stop - pos > room) {
        this.appendCarry(chunk, pos, pos + room);
        const carry = this.carry!;
        const length = this.carryLength;
        this.clearCarry();
        this.stats.droppedBytes += stop - pos - room;
        this.emitCut(onLine, carry, 0, length, nl < 0 ? this.readOffset : base + nl + 1, nl < 0);
        if (nl < 0) return;
      } else {
        this.appendCarry(chunk, pos, stop);
        if (nl < 0) return;
        const carry = this.carry!;
        const length = this.carryLength;
        this.clearCarry();
        this.stats.lines++;
        onLine(carry, 0, length, base + nl + 1, false, false);
      }
      pos = nl + 1;
    }

    while (pos < n) {
      const nl = chunk.indexOf(NEWLINE, pos);
      if (nl < 0) {
        if (n - pos > cap) {
          this.stats.droppedBytes += n - pos - cap;
          this.emitCut(onLine, chunk, pos, pos + cap, this.readOffset, true);
        } else {
          this.appendCarry(chunk, pos, n);
        }
        return;
      }
      if (nl - pos > cap) {
        this.stats.droppedBytes += nl - pos - cap;
        this.emitCut(onLine, chunk, pos, pos + cap, base + nl + 1, false);
      } else {
        this.stats.lines++;
        onLine(chunk, pos, nl, base + nl + 1, false, false);
      }
      pos = nl + 1;
    }
  }

  /**
   * The input has ended for good (EOF of a file its writer left): hands out a carried
   * tail that has no `\n` as an `unterminated` line. Do not call at a live file's EOF,
   * where the tail is a line still being written.
   */
  end(onLine: LineSink): void {
    this.discarding = false;
    if (this.carryLength === 0) return;
    const carry = this.carry!;
    const length = this.carryLength;
    this.clearCarry();
    this.stats.lines++;
    onLine(carry, 0, length, this.readOffset, false, true);
  }

  private emitCut(
    onLine: LineSink,
    bytes: Buffer,
    start: number,
    end: number,
    endOffset: number,
    discard: boolean,
  ): void {
    this.discarding = discard;
    this.stats.lines++;
    this.stats.cutLines++;
    onLine(bytes, start, end, endOffset, true, false);
  }

  private appendCarry(chunk: Buffer, start: number, end: number): void {
    const need = this.carryLength + (end - start);
    if (this.carry === null || this.carry.length < need) {
      const size = Math.min(this.maxLineBytes, Math.max(need, 4096, (this.carry?.length ?? 0) * 2));
      // Its own memory: a slice of Buffer's shared 64 KiB pool would keep the whole slab alive.
      const next = Buffer.allocUnsafeSlow(size);
      if (this.carry !== null) this.carry.copy(next, 0, 0, this.carryLength);
      this.carry = next;
    }
    chunk.copy(this.carry, this.carryLength, start, end);
    this.carryLength = need;
  }

  private clearCarry(): void {
    this.carryLength = 0;
    // The returned line still references the old buffer; a fresh one is allocated on demand.
    if (this.carry !== null && this.carry.length > RETAINED_CARRY_BYTES) this.carry = null;
  }
}
