// The archive sink: batches per (tier, namespace, UTC hour), and in stream delivery also
// per (destination table, UTC hour); the spool, and the commit that makes a set of read
// offsets and the batches holding their records durable together. A batch never crosses
// an hour, so every object sits in its hour partition. Both kinds of batch take their
// sequence numbers from counters in the one checkpoint (stream batches under an epoch of
// their own, so the archive's numbers stay contiguous) and are named by the same commit, so
// a line written to an archive batch and a stream batch is replayed into both or neither.
//
// Commit order, which is what makes replays exact:
//   1. seal the batches that are due (gzip trailer, fsync) and sync-flush the others;
//   2. write the checkpoint: file offsets, open batches with their durable spool length,
//      sealed batches with sha256 and metadata, and the next sequence number;
//   3. only then hand the newly sealed batches to the uploader, and delete spool files of
//      batches the checkpoint no longer names.
// A crash before 2 leaves the previous checkpoint, whose offsets precede every record
// not yet committed; a crash after 2 finds every committed batch in the spool.

import { createHash } from "node:crypto";
import { open as openFile, readdir, unlink } from "node:fs/promises";
import { join } from "node:path";
import { batchId, formatLossKey, STREAM_TIER, type Tier } from "../../../lib/keys/layout.ts";
import type { StageLog } from "../../../lib/log.ts";
import { HOUR_INDEX_VERSION, hourStartText } from "../../../lib/object/hour-index.ts";
import {
  encodeLossRecord,
  LOSS_RECORD_VERSION,
  type LossFacts,
  type LossRecord,
} from "../../../lib/object/loss.ts";
import type { Destination, StreamDelivery } from "../../../lib/policy/policy.ts";
import { RECORD_SCHEMA_VERSION } from "../../../lib/record/schema.ts";
import { formatRfc3339Nano, hourPartition, parseRfc3339 } from "../../../lib/record/timestamp.ts";
import type { ShipperMetrics } from "../../metrics.ts";
import {
  type Checkpoint,
  type CheckpointStore,
  type FileCheckpoint,
  newEpoch,
  syncDirectory,
} from "../../state/checkpoint.ts";
import { type BatchSettings, type BatchTarget, OpenBatch, targetOf } from "./batch.ts";
import { IndexLedger } from "./hour-index.ts";
import type { SealedBatch } from "./uploader.ts";

export interface ArchiveSinkOptions extends BatchSettings {
  node: string;
  batchMaxBytes: number;
  batchMaxAgeMs: number;
  /**
   * Stream delivery's ages (lib/policy streamDelivery): per-namespace batches are then cut
   * at its archive age instead of batchMaxAgeMs, and stream batches at its stream age.
   * Null in per-namespace delivery.
   */
  streamDelivery: StreamDelivery | null;
  shipperVersion: string;
  metrics: ShipperMetrics;
  /** Wall clock, ms since the epoch: hour indexes file batches under the hour it numbered them in. Default Date.now. */
  clock?: () => number;
  /** Where the sink reports what the operator should see (the hour-index ledger's clock steps). */
  log?: StageLog;
}

export class ArchiveSink {
  readonly options: ArchiveSinkOptions;
  readonly store: CheckpointStore;
  readonly epoch: string;
  nextSeq: number;
  /** Stream delivery's own sequence (see Checkpoint.stream); made when the first stream batch opens. */
  stream: { epoch: string; nextSeq: number } | undefined;
  readonly open = new Map<string, OpenBatch>();
  /** Sealed batches not yet acknowledged by S3, by object key. */
  readonly sealed = new Map<string, SealedBatch>();
  /** Spool files to delete once a checkpoint no longer names them. */
  #garbage: string[] = [];
  /** Loss records numbered since the last commit, written to the spool and named by the next one. */
  #losses: { batch: SealedBatch; body: Buffer; record: LossRecord }[] = [];
  #flushedRecords = new WeakMap<OpenBatch, number>();
  /** Which numbers were handed out in which hour, and which are acknowledged (hour indexes). */
  readonly index: IndexLedger;
  #hourKey = Number.NaN;
  #hour = { dt: "", hour: "" };

  private constructor(options: ArchiveSinkOptions, store: CheckpointStore, checkpoint: Checkpoint) {
    this.options = options;
    this.store = store;
    this.epoch = checkpoint.epoch;
    this.nextSeq = checkpoint.nextSeq;
    this.stream = checkpoint.stream === undefined ? undefined : { ...checkpoint.stream };
    this.index = new IndexLedger(
      options.node,
      checkpoint.epoch,
      options.prefix,
      structuredClone(checkpoint.index) ?? IndexLedger.fresh(checkpoint.nextSeq),
      options.log,
    );
  }

  #now(): number {
    return this.options.clock?.() ?? Date.now();
  }

  /** The next number of the per-namespace sequence, noted in the hour-index ledger. */
  #number(): number {
    const seq = this.nextSeq++;
    this.index.numbered(seq, this.#now());
    return seq;
  }

  /**
   * Rebuilds the sink from the committed checkpoint: open batches from their durable
   * prefix, sealed batches as they are; spool files the checkpoint does not name are
   * leftovers of an uncommitted step and are deleted.
   */
  static async restore(
    options: ArchiveSinkOptions,
    store: CheckpointStore,
    checkpoint: Checkpoint,
  ): Promise<ArchiveSink> {
    const sink = new ArchiveSink(options, store, checkpoint);
    const keep = new Set<string>();
    for (const cp of checkpoint.open) {
      const batch = await OpenBatch.recover(options, checkpoint.epoch, cp);
      sink.open.set(targetMapKey(targetOf(cp)), batch);
      sink.#flushedRecords.set(batch, batch.records);
      keep.add(batch.file);
      // The committed generation stays until a checkpoint names the new one.
      keep.add(cp.file);
      sink.#garbage.push(cp.file);
    }
    for (const s of checkpoint.sealed) {
      sink.sealed.set(s.key, s);
      keep.add(s.file);
    }
    for (const name of await readdir(options.spoolDir).catch(() => [] as string[])) {
      const file = join(options.spoolDir, name);
      if (!keep.has(file)) await unlink(file);
    }
    await syncDirectory(options.spoolDir);
    return sink;
  }

  /** The open batch for a record of `namespace` at `epochSeconds`, opened on first use. */
  batchFor(tier: Tier, namespace: string, epochSeconds: number): OpenBatch {
    const { dt, hour } = this.#partition(epochSeconds);
    return this.#batch({ tier, namespace, dt, hour }, () => ({ epoch: this.epoch, seq: this.#number() }));
  }

  /** Stream delivery: the open batch of `destination`'s stream for a record at `epochSeconds`. */
  streamBatchFor(destination: Destination, epochSeconds: number): OpenBatch {
    const { dt, hour } = this.#partition(epochSeconds);
    return this.#batch(
      { tier: STREAM_TIER, dataset: destination.dataset, table: destination.table, dt, hour },
      () => {
        this.stream ??= { epoch: newEpoch(this.epoch), nextSeq: 0 };
        return { epoch: this.stream.epoch, seq: this.stream.nextSeq++ };
      },
    );
  }

  /**
   * A loss the source counted: numbered now from the archive batch sequence, and written to
   * the spool and the checkpoint by the next commit, the one that also saves the file state
   * without the lost bytes. Filed under the namespace and the hour of the last line read
   * before the loss (where the lost lines follow), else the hour it was detected in.
   */
  recordLoss(facts: LossFacts): LossRecord {
    const identity = { node: this.options.node, epoch: this.epoch, seq: this.#number() };
    const id = batchId(identity);
    const record: LossRecord = {
      version: LOSS_RECORD_VERSION,
      batchId: id,
      node: identity.node,
      ...facts,
      shipperVersion: this.options.shipperVersion,
    };
    const filedAt = parseRfc3339(facts.window.lastLineBefore ?? facts.detectedAt);
    if (filedAt === null) throw new Error(`loss record time ${facts.detectedAt} is not RFC 3339`);
    const { dt, hour } = hourPartition(filedAt);
    const key = formatLossKey({
      prefix: this.options.prefix,
      namespace: facts.namespace,
      dt,
      hour,
      ...identity,
    });
    const body = encodeLossRecord(record);
    this.#losses.push({
      record,
      body,
      batch: {
        kind: "loss",
        seq: identity.seq,
        key,
        file: join(this.options.spoolDir, `${id}.loss.json`),
        bytes: body.length,
        metadata: {
          schemaVersion: RECORD_SCHEMA_VERSION,
          records: 0,
          firstTimestamp: formatRfc3339Nano(filedAt),
          lastTimestamp: facts.detectedAt,
          sha256: createHash("sha256").update(body).digest("hex"),
          rawBytes: body.length,
          batchId: id,
          shipperVersion: this.options.shipperVersion,
        },
      },
    });
    return record;
  }

  #partition(epochSeconds: number): { dt: string; hour: string } {
    const hourKey = Math.floor(epochSeconds / 3600);
    if (hourKey !== this.#hourKey) {
      this.#hourKey = hourKey;
      this.#hour = hourPartition({ epochSeconds, nanos: 0 });
    }
    return this.#hour;
  }

  #batch(target: BatchTarget, number: () => { epoch: string; seq: number }): OpenBatch {
    const mapKey = targetMapKey(target);
    let batch = this.open.get(mapKey);
    if (batch === undefined) {
      batch = new OpenBatch(this.options, { node: this.options.node, ...number() }, target);
      this.open.set(mapKey, batch);
      this.options.metrics.openBatches.set(this.open.size);
    }
    return batch;
  }

  /** Whether a batch has reached its size or age, so a commit should run now. */
  due(now = Date.now()): boolean {
    for (const b of this.open.values()) if (this.#isDue(b, now)) return true;
    return false;
  }

  #isDue(b: OpenBatch, now: number): boolean {
    return b.written >= this.options.batchMaxBytes || now - b.openedAt >= this.#maxAgeMs(b);
  }

  // An `analytics` batch (per-namespace delivery, or restored from a checkpoint written
  // before a switch to stream) is loaded from, so it keeps batch_max_age's freshness.
  #maxAgeMs(b: OpenBatch): number {
    const stream = this.options.streamDelivery;
    const tier = b.target.tier;
    if (stream === null || tier === "analytics") return this.options.batchMaxAgeMs;
    const t = b.target;
    return t.tier === STREAM_TIER ? stream.streamBatchMaxAgeMs : stream.archiveBatchMaxAgeMsFor(t.namespace);
  }

  /** Bytes the spool holds or will hold: open batches (incl. data still compressing) and sealed ones. */
  spoolBytes(): number {
    let total = 0;
    for (const b of this.open.values()) total += b.written + b.bufferedBytes;
    for (const s of this.sealed.values()) total += s.bytes;
    return total;
  }

  /**
   * Commits: seals due batches (all of them with `sealAll`), makes the rest durable, and
   * writes the checkpoint with `files`. Returns the batches sealed by this commit, which
   * may now be uploaded.
   */
  async commit(files: FileCheckpoint[], sealAll = false): Promise<SealedBatch[]> {
    const now = Date.now();
    const sealing: OpenBatch[] = [];
    const flushing: OpenBatch[] = [];
    for (const [mapKey, b] of this.open) {
      if (sealAll || this.#isDue(b, now)) {
        sealing.push(b);
        b.retired = true;
        this.open.delete(mapKey);
      } else if (this.#flushedRecords.get(b) !== b.records) {
        flushing.push(b);
      }
    }
    const newlySealed = await Promise.all(sealing.map((b) => this.#seal(b)));
    await Promise.all(
      flushing.map(async (b) => {
        await b.syncFlush();
        this.#flushedRecords.set(b, b.records);
      }),
    );
    const losses = this.#losses;
    this.#losses = [];
    await Promise.all(losses.map((l) => writeDurably(l.batch.file, l.body)));
    for (const l of losses) newlySealed.push(l.batch);
    const indexes = await this.#sealIndexes();
    newlySealed.push(...indexes);
    if (sealing.length + flushing.length + losses.length + indexes.length > 0)
      await syncDirectory(this.options.spoolDir);
    for (const s of newlySealed) this.sealed.set(s.key, s);
    // Taken before the save, which serialises the checkpoint before it awaits anything: a
    // batch acknowledged while the save runs is still in this checkpoint's `sealed`, so its
    // spool file must outlive it (the next commit deletes it).
    const garbage = this.#garbage;
    this.#garbage = [];
    try {
      await this.store.save({
        version: 1,
        epoch: this.epoch,
        nextSeq: this.nextSeq,
        ...(this.stream === undefined ? {} : { stream: { ...this.stream } }),
        files,
        open: [...this.open.values()].map((b) => b.checkpoint()),
        sealed: [...this.sealed.values()],
        index: this.index.state,
      });
    } catch (error) {
      // The committed checkpoint may still name them: the next commit deletes them.
      this.#garbage.push(...garbage);
      throw error;
    }
    await Promise.all(garbage.map((f) => unlink(f).catch(() => undefined)));
    const m = this.options.metrics;
    m.commits.inc();
    m.lastCommit.set(Date.now() / 1000);
    m.batchesSealed.inc(newlySealed.length - losses.length - indexes.length);
    m.openBatches.set(this.open.size);
    m.spoolBytes.set(this.spoolBytes());
    return newlySealed;
  }

  async #seal(b: OpenBatch): Promise<SealedBatch> {
    const { bytes, sha256 } = await b.seal();
    return {
      seq: b.identity.seq,
      key: b.key,
      file: b.file,
      bytes,
      metadata: {
        schemaVersion: RECORD_SCHEMA_VERSION,
        records: b.records,
        firstTimestamp: formatRfc3339Nano(b.first),
        lastTimestamp: formatRfc3339Nano(b.last),
        sha256,
        rawBytes: b.rawBytes,
        batchId: b.id,
        shipperVersion: this.options.shipperVersion,
      },
    };
  }

  /**
   * Hour indexes whose hour has closed with every number acknowledged, spooled durably; the
   * commit's save names them in `sealed` and takes their entries out of the ledger together.
   */
  async #sealIndexes(): Promise<SealedBatch[]> {
    const ready = this.index.seal(this.#now(), this.nextSeq);
    return Promise.all(
      ready.map(async (index) => {
        const hour = hourStartText(index.hour);
        const file = join(this.options.spoolDir, `${this.index.id}_${hour.slice(0, 13)}.index.json`);
        await writeDurably(file, index.body);
        const sealed: SealedBatch = {
          kind: "index",
          seq: index.last,
          key: index.key,
          file,
          bytes: index.body.length,
          metadata: {
            schemaVersion: HOUR_INDEX_VERSION,
            records: index.entries,
            firstTimestamp: hour,
            lastTimestamp: hourStartText(index.hour + 1),
            sha256: createHash("sha256").update(index.body).digest("hex"),
            rawBytes: index.body.length,
            batchId: this.index.id,
            shipperVersion: this.options.shipperVersion,
          },
        };
        return sealed;
      }),
    );
  }

  /** S3 has the batch: it leaves the next checkpoint, then its spool file goes. */
  uploaded(batch: SealedBatch): void {
    if (this.sealed.delete(batch.key)) {
      this.#garbage.push(batch.file);
      // In the same in-memory step: the next save holds it in the ledger instead of `sealed`.
      this.index.acknowledged(batch);
    }
    this.options.metrics.spoolBytes.set(this.spoolBytes());
  }

  /** Closes open batches' files without sealing, after a final checkpoint (they resume next start). */
  async close(): Promise<void> {
    await Promise.all([...this.open.values()].map((b) => b.abandon()));
  }
}

/** Writes `body` to a new file and fsyncs it. */
async function writeDurably(file: string, body: Buffer): Promise<void> {
  const handle = await openFile(file, "w");
  try {
    await handle.writeFile(body);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function targetMapKey(t: BatchTarget): string {
  const what = t.tier === STREAM_TIER ? `${t.dataset}\u0000${t.table}` : t.namespace;
  return `${t.tier}\u0000${what}\u0000${t.dt}\u0000${t.hour}`;
}
