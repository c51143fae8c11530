// One batch: the records of one namespace and one UTC hour (or, in stream delivery, of
// one destination table and one UTC hour), gzipped as they arrive into a spool file. gzip runs in node:zlib's thread pool, off the event loop.
//
// Durability works in steps the checkpoint can name:
// - syncFlush() ends the deflate output at a byte boundary (Z_SYNC_FLUSH) and fsyncs, so
//   the first `spoolBytes` bytes of the file hold every record added so far, readable
//   without the rest; the checkpoint records that length with the read offsets.
// - seal() ends the gzip stream and fsyncs; from then on the file is the object's body,
//   byte for byte, and is uploaded under a key fixed by the batch's sequence number.
// - After a crash, an open batch is rebuilt from its committed prefix into a new spool
//   file generation (recover()), never by writing into the committed file.

import { createHash, type Hash } from "node:crypto";
import { type FileHandle, open, readFile } from "node:fs/promises";
import { join } from "node:path";
import { createGzip, type Gzip, gunzipSync, constants as zlibConstants } from "node:zlib";
import {
  type BatchIdentity,
  batchId,
  formatObjectKey,
  formatStreamKey,
  STREAM_TIER,
  type Tier,
} from "../../../lib/keys/layout.ts";
import type { InstantSlot } from "../../sources/kubernetes_logs/parser/timestamp.ts";
import type { OpenBatchCheckpoint } from "../../state/checkpoint.ts";
import { batchFieldsFragment, OutputBuffer } from "../../transforms/record_encoder.ts";

/** Staged NDJSON is handed to gzip in chunks of about this size. */
export const FEED_BYTES = 256 * 1024;
/** A staging buffer's size: a chunk plus room for the record that crosses FEED_BYTES. */
const STAGING_BYTES = FEED_BYTES + 64 * 1024;
/**
 * Chunks a batch may have handed to gzip that gzip has not finished with. Past it the
 * shipper waits (drained()) before it reads on, so memory stays bounded by the number of
 * batches being written to, whatever the backlog.
 */
const MAX_QUEUED_CHUNKS = 1;
/** zlib's output buffer size: one per batch; each compressed chunk of input comes out in one piece. */
const GZIP_CHUNK_BYTES = 64 * 1024;
/** Compressed output is written to the spool file in writes of about this size (or at a flush). */
const SPOOL_WRITE_BYTES = 64 * 1024;
/** Free staging buffers kept for reuse, shared by every batch. */
const POOLED_BUFFERS = 16;
/**
 * Staging buffers batches may hold at once. A batch holds one from its first staged record
 * until it is fed to gzip (at FEED_BYTES or at the next commit), and a backlog that spans
 * hours keeps tens of batches open (54 on the 1 GiB benchmark in stream delivery), most of
 * them written to now and then: uncapped, their buffers were a large share of the peak RSS.
 * Past the cap the batch that took its buffer first is fed early; the few busy batches
 * still feed gzip in full chunks.
 */
export const MAX_HELD_STAGING = 8;

/**
 * Staging buffers gzip has finished with, for the next batch that needs one. Shared,
 * because the batch that fills a buffer is rarely the one that needs the next. Reusing
 * them matters more than the allocation itself: V8 counts new Buffer memory towards its
 * old-generation limit, so dropping them made it run a full GC every 10 MB or so.
 */
const stagingPool: Buffer[] = [];
const NO_BYTES = Buffer.alloc(0);
/** Staging buffers that hold staged records, in the order they were taken (oldest first). */
const holders = new Set<StagingBuffer>();

/**
 * Batches whose records were fed to gzip early (MAX_HELD_STAGING) while gzip was behind with
 * them: their writer did not see it, so the reader waits for them (takeFedEarly()) instead.
 */
const fedEarly = new Set<OpenBatch>();

/** The batches fed early while gzip was behind with them, since the last call. */
export function takeFedEarly(): OpenBatch[] {
  const batches = [...fedEarly];
  fedEarly.clear();
  return batches;
}

/** How many batches hold a staging buffer now (at most MAX_HELD_STAGING). */
export function heldStagingBuffers(): number {
  return holders.size;
}

function takeStaging(): Buffer {
  return stagingPool.pop() ?? Buffer.allocUnsafeSlow(STAGING_BYTES);
}

function returnStaging(buffer: Buffer): void {
  // One grown for an outsized record is left to GC.
  if (stagingPool.length < POOLED_BUFFERS && buffer.length === STAGING_BYTES) stagingPool.push(buffer);
}

/**
 * A batch's staging: the encoder appends records here and feed() hands them to gzip.
 * Its memory is one pooled buffer of STAGING_BYTES, held only while records are staged,
 * and it does not grow for a long record: when one does not fit, reserve() hands what is
 * staged to gzip (through `spill`, the batch's feed()) and goes on in a fresh buffer.
 * gzip compresses the chunks into one stream, so a record may span two of them.
 */
export class StagingBuffer extends OutputBuffer {
  /** Bytes handed to gzip so far: `handedOff + length` counts every byte appended. */
  handedOff = 0;
  readonly #spill: () => void;
  readonly #spilledEarly: () => void;

  /** `spilledEarly` runs after release() handed staged records to gzip for another batch's sake. */
  constructor(spill: () => void, spilledEarly: () => void = () => {}) {
    super(0);
    this.#spill = spill;
    this.#spilledEarly = spilledEarly;
  }

  override reserve(extra: number): Buffer {
    if (this.length + extra <= this.bytes.length) return this.bytes;
    if (this.length > 0) this.#spill();
    if (this.bytes.length === 0) {
      if (holders.size >= MAX_HELD_STAGING) holders.values().next().value?.release();
      this.bytes = takeStaging();
      holders.add(this);
    }
    // Only a record head larger than a staging buffer grows it (outsized metadata).
    return extra <= this.bytes.length ? this.bytes : super.reserve(extra);
  }

  /**
   * Gives up the buffer: staged records go to gzip now (through `spill`), an empty buffer
   * back to the pool. The batch takes a buffer again at its next record.
   */
  release(): void {
    holders.delete(this);
    if (this.length > 0) {
      this.#spill();
      this.#spilledEarly();
    } else if (this.bytes.length > 0) {
      returnStaging(this.bytes);
      this.bytes = NO_BYTES;
    }
  }

  /** Lets go of the staged bytes and their buffer, which the caller has handed to gzip. */
  handOff(): void {
    holders.delete(this);
    this.handedOff += this.length;
    this.bytes = NO_BYTES;
    this.length = 0;
  }
}

/** The partition a batch's object goes to: one namespace's, or (stream delivery) one table's. */
export type BatchTarget = NamespaceBatchTarget | StreamBatchTarget;

export interface NamespaceBatchTarget {
  tier: Tier;
  namespace: string;
  dt: string;
  hour: string;
}

export interface StreamBatchTarget {
  tier: typeof STREAM_TIER;
  dataset: string;
  table: string;
  dt: string;
  hour: string;
}

/** The object key of a batch with this target and identity. */
export function batchKey(prefix: string, target: BatchTarget, identity: BatchIdentity): string {
  if (target.tier === STREAM_TIER) {
    const { dataset, table, dt, hour } = target;
    return formatStreamKey({ prefix, dataset, table, dt, hour, ...identity });
  }
  const { tier, namespace, dt, hour } = target;
  return formatObjectKey({ prefix, tier, namespace, dt, hour, ...identity });
}

/** The target as the checkpoint stored it (only its own fields, whatever else the entry holds). */
export function targetOf(cp: OpenBatchCheckpoint): BatchTarget {
  if (cp.tier === STREAM_TIER)
    return { tier: cp.tier, dataset: cp.dataset, table: cp.table, dt: cp.dt, hour: cp.hour };
  return { tier: cp.tier, namespace: cp.namespace, dt: cp.dt, hour: cp.hour };
}

export interface BatchSettings {
  spoolDir: string;
  prefix: string;
  gzipLevel: number;
}

export class OpenBatch {
  readonly identity: BatchIdentity;
  readonly target: BatchTarget;
  readonly id: string;
  readonly key: string;
  /** `,"batch_id":"…","seq":` for appendBatchFields(). */
  readonly fragment: Buffer;
  /** Encoded records not yet handed to gzip. */
  readonly staging = new StagingBuffer(
    () => this.feed(),
    () => {
      if (this.backlogged) fedEarly.add(this);
    },
  );
  records = 0;
  /** NDJSON bytes added, before gzip. */
  rawBytes = 0;
  first: InstantSlot = { epochSeconds: Number.POSITIVE_INFINITY, nanos: 0 };
  last: InstantSlot = { epochSeconds: Number.NEGATIVE_INFINITY, nanos: 0 };
  openedAt: number;
  /** Spool file generation; a recovered batch gets a new one. */
  readonly generation: number;
  readonly file: string;
  /** Compressed bytes written to the spool file so far. */
  written = 0;
  /** Compressed bytes known durable (after the last syncFlush()). */
  spoolBytes = 0;
  /** Cut from the sink's open batches (sealed or being sealed): add no more records. */
  retired = false;
  readonly #gzip: Gzip;
  readonly #hash: Hash = createHash("sha256");
  #handle: Promise<FileHandle>;
  #writes: Promise<void> = Promise.resolve();
  /** Compressed output not yet queued for writing, and its length. */
  #unwritten: Buffer[] = [];
  #unwrittenBytes = 0;
  #error: unknown = null;
  #sealed = false;
  /** Chunks written to gzip whose callback has not run yet. */
  #queued = 0;
  #dequeued: (() => void)[] = [];

  constructor(
    settings: BatchSettings,
    identity: BatchIdentity,
    target: BatchTarget,
    generation = 0,
    openedAt = Date.now(),
  ) {
    this.identity = identity;
    this.target = target;
    this.id = batchId(identity);
    this.key = batchKey(settings.prefix, target, identity);
    this.fragment = batchFieldsFragment(this.id);
    this.openedAt = openedAt;
    this.generation = generation;
    this.file = join(settings.spoolDir, `${this.id}.${generation}.ndjson.gz`);
    this.#handle = open(this.file, "w");
    this.#handle.catch((error: unknown) => {
      this.#error ??= error;
    });
    this.#gzip = createGzip({ level: settings.gzipLevel, chunkSize: GZIP_CHUNK_BYTES });
    this.#gzip.on("data", (chunk: Buffer) => {
      this.#hash.update(chunk);
      this.#unwritten.push(chunk);
      this.#unwrittenBytes += chunk.length;
      if (this.#unwrittenBytes >= SPOOL_WRITE_BYTES) this.#queueWrite();
    });
    this.#gzip.on("error", (error) => {
      this.#error ??= error;
    });
  }

  /** Accounts one record appended to `staging` by the encoder. */
  noteRecord(epochSeconds: number, nanos: number, rawBytes: number): void {
    this.records++;
    this.rawBytes += rawBytes;
    // Updated in place: one call per record, so no object per record.
    const first = this.first;
    if (epochSeconds < first.epochSeconds || (epochSeconds === first.epochSeconds && nanos < first.nanos)) {
      first.epochSeconds = epochSeconds;
      first.nanos = nanos;
    }
    const last = this.last;
    if (epochSeconds > last.epochSeconds || (epochSeconds === last.epochSeconds && nanos > last.nanos)) {
      last.epochSeconds = epochSeconds;
      last.nanos = nanos;
    }
  }

  /**
   * Hands staged records to gzip. Returns false when gzip has MAX_QUEUED_CHUNKS of this
   * batch to finish (see `backlogged`).
   */
  feed(): boolean {
    const { bytes, length } = this.staging;
    if (length > 0) {
      this.staging.handOff();
      this.#queued++;
      // gzip holds the chunk until it has compressed it; then the buffer goes back to the pool.
      this.#gzip.write(bytes.subarray(0, length), () => {
        returnStaging(bytes);
        this.#queued--;
        const waiting = this.#dequeued;
        this.#dequeued = [];
        for (const wake of waiting) wake();
      });
    }
    return this.#queued < MAX_QUEUED_CHUNKS;
  }

  /** gzip has MAX_QUEUED_CHUNKS of this batch to finish: await drained() before reading on. */
  get backlogged(): boolean {
    return this.#queued >= MAX_QUEUED_CHUNKS;
  }

  /** Resolves once gzip has fewer than MAX_QUEUED_CHUNKS of this batch left to compress. */
  async drained(): Promise<void> {
    while (this.#queued >= MAX_QUEUED_CHUNKS && !this.#gzip.destroyed) {
      await new Promise<void>((resolve) => this.#dequeued.push(resolve));
    }
  }

  /** Queues the compressed output gathered so far for one write (writev) at the end of the file. */
  #queueWrite(): void {
    if (this.#unwrittenBytes === 0) return;
    const chunks = this.#unwritten;
    this.#unwritten = [];
    this.#unwrittenBytes = 0;
    this.#writes = this.#writes.then(async () => {
      if (this.#error !== null) return;
      try {
        const handle = await this.#handle;
        let rest = chunks;
        while (rest.length > 0) {
          const { bytesWritten } = await handle.writev(rest, this.written);
          if (bytesWritten === 0) throw new Error("the spool file took no bytes");
          this.written += bytesWritten;
          rest = dropBytes(rest, bytesWritten);
        }
      } catch (error) {
        this.#error ??= error;
      }
    });
  }

  /** Everything added so far is durable in the spool file up to `spoolBytes`. */
  async syncFlush(): Promise<void> {
    this.feed();
    await new Promise<void>((resolve) => this.#gzip.flush(zlibConstants.Z_SYNC_FLUSH, () => resolve()));
    this.#queueWrite();
    await this.#writes;
    this.#throwIfFailed();
    await (await this.#handle).sync();
    this.spoolBytes = this.written;
  }

  /** Ends the gzip stream; the spool file is then the object body. Returns its size and sha256. */
  async seal(): Promise<{ bytes: number; sha256: string }> {
    this.feed();
    this.#sealed = true;
    const ended = new Promise<void>((resolve, reject) => {
      this.#gzip.once("end", resolve);
      this.#gzip.once("error", reject);
    });
    this.#gzip.end();
    await ended;
    this.#queueWrite();
    await this.#writes;
    this.#throwIfFailed();
    const handle = await this.#handle;
    await handle.sync();
    await handle.close();
    this.spoolBytes = this.written;
    return { bytes: this.written, sha256: this.#hash.digest("hex") };
  }

  /**
   * NDJSON bytes not yet compressed (staged, or queued in gzip), for the spool limit. They
   * will take far less spool once compressed, but counting them raw keeps the limit a
   * limit while S3 is down.
   */
  get bufferedBytes(): number {
    return this.staging.length + this.#gzip.writableLength;
  }

  /** Closes the spool file without sealing (shutdown after the checkpoint is written). */
  async abandon(): Promise<void> {
    if (this.#sealed) return;
    // Staged records are in no checkpointed prefix; only the buffer is given back.
    this.staging.handOff();
    this.#gzip.destroy();
    await this.#writes;
    await (await this.#handle.catch(() => null))?.close();
  }

  checkpoint(): OpenBatchCheckpoint {
    return {
      seq: this.identity.seq,
      epoch: this.identity.epoch,
      node: this.identity.node,
      generation: this.generation,
      file: this.file,
      ...this.target,
      spoolBytes: this.spoolBytes,
      records: this.records,
      rawBytes: this.rawBytes,
      firstTimestamp: { ...this.first },
      lastTimestamp: { ...this.last },
      openedAt: this.openedAt,
    };
  }

  #throwIfFailed(): void {
    if (this.#error !== null) {
      throw new Error(`spool file ${this.file}: ${(this.#error as Error).message ?? this.#error}`, {
        cause: this.#error,
      });
    }
  }

  /**
   * Rebuilds an open batch after a restart from the committed prefix of its spool file,
   * into the next generation's file. The committed prefix ends at a sync-flush point, so
   * it inflates completely without the gzip trailer.
   */
  static async recover(settings: BatchSettings, epoch: string, cp: OpenBatchCheckpoint): Promise<OpenBatch> {
    const identity = { node: cp.node, epoch: cp.epoch ?? epoch, seq: cp.seq };
    const previous = cp.file;
    const committed = (await readFile(previous)).subarray(0, cp.spoolBytes);
    const raw = gunzipSync(committed, { finishFlush: zlibConstants.Z_SYNC_FLUSH });
    if (raw.length !== cp.rawBytes) {
      throw new Error(
        `spool file ${previous}: committed prefix holds ${raw.length} NDJSON bytes, checkpoint says ${cp.rawBytes}; the spool is damaged`,
      );
    }
    const batch = new OpenBatch(settings, identity, targetOf(cp), cp.generation + 1, cp.openedAt);
    batch.records = cp.records;
    batch.rawBytes = cp.rawBytes;
    batch.first = { ...cp.firstTimestamp };
    batch.last = { ...cp.lastTimestamp };
    // Through staging in chunks, as records come, so recovery needs no buffer of its size.
    for (let i = 0; i < raw.length; i += FEED_BYTES) {
      batch.staging.append(raw.subarray(i, i + FEED_BYTES));
      batch.feed();
      await batch.drained();
    }
    await batch.syncFlush();
    return batch;
  }
}

/** `chunks` without their first `n` bytes (what a short write left to write). */
function dropBytes(chunks: Buffer[], n: number): Buffer[] {
  let i = 0;
  while (i < chunks.length && n >= chunks[i]!.length) n -= chunks[i++]!.length;
  if (i === chunks.length) return [];
  return [chunks[i]!.subarray(n), ...chunks.slice(i + 1)];
}
