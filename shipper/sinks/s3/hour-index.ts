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

import {
  formatIndexKey,
  indexId,
  isStreamKey,
  parseLossKey,
  parseObjectKey,
} from "../../../lib/keys/layout.ts";
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
  /** Hours in which numbers were handed out, oldest first, from the first not yet pruned. */
  hours: { hour: number; first: number; sealed?: true }[];
  /** The last pruned (sealed) hour and its last number: the chain link of the next index. */
  previous: { hour: number; last: number } | null;
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

  constructor(node: string, epoch: string, prefix: string, state: IndexLedgerState) {
    this.#node = node;
    this.#epoch = epoch;
    this.#prefix = prefix;
    this.state = state;
  }

  /** A ledger starting at `nextSeq`, for a new epoch or a checkpoint written before indexes. */
  static fresh(nextSeq: number): IndexLedgerState {
    return { from: nextSeq, hours: [], previous: null, acked: [] };
  }

  /**
   * Notes that `seq` was handed out now. The hour never goes back: not below the last hour
   * numbered into, and past it once that hour's index is sealed, so a clock stepped back
   * cannot add a number to an index already written.
   */
  numbered(seq: number, nowMs: number): void {
    const s = this.state;
    const last = s.hours.at(-1);
    let floor = Math.floor(nowMs / HOUR_MS);
    if (last !== undefined) floor = Math.max(floor, last.sealed ? last.hour + 1 : last.hour);
    else if (s.previous !== null) floor = Math.max(floor, s.previous.hour + 1);
    if (last === undefined || floor > last.hour) s.hours.push({ hour: floor, first: seq });
  }

  /** S3 acknowledged `batch`: it becomes an entry of its hour's index. */
  acknowledged(batch: SealedBatch): void {
    if (batch.kind === "index" || isStreamKey(batch.key)) return;
    const parsed =
      batch.kind === "loss" ? { ...parseLossKey(batch.key), tier: null } : parseObjectKey(batch.key);
    if (parsed.epoch !== this.#epoch || parsed.seq < this.state.from) return;
    if (this.state.acked.some((e) => e.seq === parsed.seq)) return;
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

  /**
   * The indexes that can be sealed now: hours before the current one whose every number is
   * acknowledged. Their entries leave `acked`; the caller saves the ledger with the indexes.
   */
  seal(nowMs: number, nextSeq: number): SealedIndex[] {
    const s = this.state;
    const currentHour = Math.floor(nowMs / HOUR_MS);
    const out: SealedIndex[] = [];
    const bySeq = new Map(s.acked.map((e) => [e.seq, e]));
    s.hours.forEach((h, i) => {
      if (h.sealed || h.hour >= currentHour) return;
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
    // Sealed hours at the front carry nothing the next index needs but their last number.
    while (s.hours.length > 1 && s.hours[0]!.sealed) {
      const done = s.hours.shift()!;
      s.previous = { hour: done.hour, last: s.hours[0]!.first - 1 };
    }
    return out;
  }

  /** `<node>_<epoch>`, the index's id in its object metadata. */
  get id(): string {
    return indexId(this.#node, this.#epoch);
  }
}
