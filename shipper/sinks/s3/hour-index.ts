// The hour-index ledger (docs/retrieval.md#hour-indexes): which batch numbers the sink handed
// out in which UTC hour of its clock, and what S3 has acknowledged of them, kept in the
// checkpoint so an index is sealed exactly when its hour has closed and every batch numbered
// in it is acknowledged, and is the same after any crash:
// - a number is noted in the same in-memory step that hands it out, so the checkpoint that
//   first names its batch also names its hour;
// - an acknowledgement moves a batch from `sealed` to `acked` in memory, and the next save
//   holds it in one place or the other, never both or neither;
// - sealing an index takes its entries out of `acked` and puts the index into `sealed` in
//   the same save, and the body is a pure function of those entries, so a crash before the
//   save seals the same bytes again and a crash after it uploads the spooled ones.
// Numbers before `from` (a shipper upgraded in the middle of an epoch) are in no index.
//
// Numbers go into the hour of the clock, never into an hour already numbered into before (an
// index key is per node, epoch and hour). When the clock is more than an hour behind the hour
// numbers last went into (it was stepped forward and back), that hour is closed by number: it
// is sealed once its batches are acknowledged, and numbering goes on in the clock's hour, the
// next index linking to it by number although its hour is earlier. Without that, every number
// would go into the future hour, sealed only when real time reached it, and the checkpoint
// would hold every acknowledged batch until then.

import {
  formatIndexKey,
  indexId,
  isStreamKey,
  parseLossKey,
  parseObjectKey,
} from "../../../lib/keys/layout.ts";
import type { StageLog } from "../../../lib/log.ts";
import {
  encodeHourIndex,
  HOUR_INDEX_FORMAT,
  HOUR_INDEX_VERSION,
  type HourIndexEntry,
  hourStartText,
} from "../../../lib/object/hour-index.ts";
import type { SealedBatch } from "./uploader.ts";

const HOUR_MS = 3_600_000;

/** The ledger as the checkpoint stores it (Checkpoint.index). */
export interface IndexLedgerState {
  /** The first number the ledger covers: 0 for a new epoch. */
  from: number;
  /**
   * Hours in which numbers were handed out, in number order (each runs up to the next one's
   * `first`, the last up to nextSeq). Indexed hours are pruned, except where a waiting hour
   * needs them: its predecessor (the chain link) and its successor (where its numbers end).
   */
  hours: { hour: number; first: number; sealed?: true }[];
  /** The last hour pruned from the front and its last number: the chain link of the next index. */
  previous: { hour: number; last: number } | null;
  /**
   * Hours a clock stepped back left numbered into: those after the hour numbers go into now
   * (numbers never go into them again), and the latest one numbering has passed since (a later
   * step back starts after it, as an interior hour pruned may have been no later). Absent
   * until the clock is first stepped back.
   */
  reserved?: number[];
  /** Acknowledged batches and loss records whose hour's index is not sealed yet. */
  acked: HourIndexEntry[];
}

export interface SealedIndex {
  key: string;
  hour: number;
  first: number;
  last: number;
  body: Buffer;
  entries: number;
}

export class IndexLedger {
  readonly state: IndexLedgerState;
  readonly #node: string;
  readonly #epoch: string;
  readonly #prefix: string;
  readonly #log: StageLog;

  constructor(node: string, epoch: string, prefix: string, state: IndexLedgerState, log?: StageLog) {
    this.#node = node;
    this.#epoch = epoch;
    this.#prefix = prefix;
    this.state = state;
    this.#log = log ?? (() => {});
  }

  /** A ledger starting at `nextSeq`, for a new epoch or a checkpoint written before indexes. */
  static fresh(nextSeq: number): IndexLedgerState {
    return { from: nextSeq, hours: [], previous: null, acked: [] };
  }

  /**
   * Notes that `seq` was handed out now. The hour never goes back to an hour numbered into
   * before: it stays in the last one while the clock is in it, behind it by at most an hour
   * (a small step back), or the clock is behind every hour that is still free; it moves past a
   * sealed last hour; and with the clock more than an hour behind the last hour it goes to the
   * clock's hour (or the first free one after it), closing the last hour by number.
   */
  numbered(seq: number, nowMs: number): void {
    const s = this.state;
    const clock = Math.floor(nowMs / HOUR_MS);
    const last = s.hours.at(-1);
    if (last === undefined) {
      s.hours.push({ hour: Math.max(clock, s.previous === null ? clock : s.previous.hour + 1), first: seq });
      return;
    }
    if (clock < last.hour - 1) {
      const hour = Math.max(clock, this.#usedBelow(last.hour) + 1);
      if (hour < last.hour) {
        s.reserved = [...new Set([...(s.reserved ?? []), last.hour])].sort((a, b) => a - b);
        s.hours.push({ hour, first: seq });
        this.#log("warn", "index_clock_stepped_back", {
          clockHour: hourStartText(clock),
          closedHour: hourStartText(last.hour),
          newHour: hourStartText(hour),
          firstNumber: seq,
        });
        return;
      }
    }
    let hour = Math.max(clock, last.sealed ? last.hour + 1 : last.hour);
    if (hour === last.hour) return;
    const used = new Set([...(s.reserved ?? []), ...s.hours.map((h) => h.hour)]);
    while (used.has(hour)) hour++;
    s.hours.push({ hour, first: seq });
    if (s.reserved !== undefined) {
      const passed = s.reserved.filter((h) => h < hour);
      s.reserved = [...passed.slice(-1), ...s.reserved.filter((h) => h > hour)];
    }
  }

  /** The latest hour below `hour` that numbers went into (kept, pruned or reserved), or -Infinity. */
  #usedBelow(hour: number): number {
    const s = this.state;
    const known = [...s.hours.map((h) => h.hour), ...(s.reserved ?? [])];
    if (s.previous !== null) known.push(s.previous.hour);
    return Math.max(-Infinity, ...known.filter((h) => h < hour));
  }

  /** S3 acknowledged `batch`: it becomes an entry of its hour's index. */
  acknowledged(batch: SealedBatch): void {
    if (batch.kind === "index" || isStreamKey(batch.key)) return;
    const parsed =
      batch.kind === "loss" ? { ...parseLossKey(batch.key), tier: null } : parseObjectKey(batch.key);
    if (parsed.epoch !== this.#epoch || parsed.seq < this.state.from) return;
    if (this.state.acked.some((e) => e.seq === parsed.seq)) return;
    // A second acknowledgement of a number whose hour is indexed (an upload repeated after a
    // restart) would otherwise stay in `acked` for ever: no index will take it again.
    if (this.#indexed(parsed.seq)) return;
    this.state.acked.push({
      seq: parsed.seq,
      kind: batch.kind === "loss" ? "loss" : "batch",
      key: batch.key,
      namespace: parsed.namespace,
      tier: parsed.tier,
      sha256: batch.metadata.sha256,
      bytes: batch.bytes,
      records: batch.metadata.records,
      firstTimestamp: batch.metadata.firstTimestamp,
      lastTimestamp: batch.metadata.lastTimestamp,
    });
  }

  /** Whether `seq`'s hour is indexed (sealed, or pruned as sealed). */
  #indexed(seq: number): boolean {
    const s = this.state;
    const hour = s.hours.findLast((h) => h.first <= seq);
    if (hour !== undefined) return hour.sealed === true;
    return s.previous !== null && seq <= s.previous.last;
  }

  /**
   * The indexes that can be sealed now: hours closed (the clock is past them, or numbers have
   * moved on to another hour) whose every number is acknowledged. Their entries leave `acked`;
   * the caller saves the ledger with the indexes.
   */
  seal(nowMs: number, nextSeq: number): SealedIndex[] {
    const s = this.state;
    const currentHour = Math.floor(nowMs / HOUR_MS);
    const out: SealedIndex[] = [];
    const bySeq = new Map(s.acked.map((e) => [e.seq, e]));
    s.hours.forEach((h, i) => {
      const closed = h.hour < currentHour || i < s.hours.length - 1;
      if (h.sealed || !closed) return;
      const last = (s.hours[i + 1]?.first ?? nextSeq) - 1;
      if (last < h.first) return;
      const entries: HourIndexEntry[] = [];
      for (let seq = h.first; seq <= last; seq++) {
        const entry = bySeq.get(seq);
        if (entry === undefined) return;
        entries.push(entry);
      }
      const before = i > 0 ? s.hours[i - 1]! : undefined;
      const previous =
        before !== undefined
          ? { hour: hourStartText(before.hour), last: h.first - 1 }
          : s.previous !== null && s.previous.last === h.first - 1
            ? { hour: hourStartText(s.previous.hour), last: s.previous.last }
            : null;
      const hourText = hourStartText(h.hour);
      const body = encodeHourIndex({
        format: HOUR_INDEX_FORMAT,
        version: HOUR_INDEX_VERSION,
        node: this.#node,
        epoch: this.#epoch,
        hour: hourText,
        first: h.first,
        last,
        previous,
        batches: entries,
      });
      out.push({
        key: formatIndexKey({
          prefix: this.#prefix,
          dt: hourText.slice(0, 10),
          hour: hourText.slice(11, 13),
          node: this.#node,
          epoch: this.#epoch,
        }),
        hour: h.hour,
        first: h.first,
        last,
        body,
        entries: entries.length,
      });
      h.sealed = true;
      for (const e of entries) bySeq.delete(e.seq);
    });
    if (out.length > 0) s.acked = s.acked.filter((e) => bySeq.has(e.seq));
    this.#prune();
    return out;
  }

  /**
   * Drops indexed hours nothing needs: a sealed hour is kept only as the last (numbers go on
   * from it) or next to a waiting hour (its predecessor is the waiting index's chain link, its
   * successor's `first` ends the waiting hour's numbers). Those at the front leave their hour
   * and last number in `previous`. So one hour waiting for good keeps three entries, not
   * every hour since.
   */
  #prune(): void {
    const s = this.state;
    while (s.hours.length > 1 && s.hours[0]!.sealed) {
      const done = s.hours.shift()!;
      s.previous = { hour: done.hour, last: s.hours[0]!.first - 1 };
    }
    const waiting = (i: number) => s.hours[i] !== undefined && s.hours[i]!.sealed !== true;
    s.hours = s.hours.filter(
      (h, i) => !h.sealed || i === 0 || i === s.hours.length - 1 || waiting(i - 1) || waiting(i + 1),
    );
  }

  /** `<node>_<epoch>`, the index's id in its object metadata. */
  get id(): string {
    return indexId(this.#node, this.#epoch);
  }
}
