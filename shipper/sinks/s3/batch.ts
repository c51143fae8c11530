// One batch: the records of one namespace and one UTC hour, gzipped as they arrive into
// a spool file. gzip runs in node:zlib's thread pool, off the event loop.
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
import { type BatchIdentity, batchId, formatObjectKey, type Tier } from "../../../lib/keys/layout.ts";
import type { Instant } from "../../../lib/record/timestamp.ts";
import type { OpenBatchCheckpoint } from "../../state/checkpoint.ts";
import { batchFieldsFragment, OutputBuffer } from "../../transforms/record_encoder.ts";

/** Staged NDJSON is handed to gzip in chunks of about this size. */
export const FEED_BYTES = 256 * 1024;
/** Staging buffers kept per batch for reuse once gzip has consumed them. */
const SPARE_BUFFERS = 2;

export interface BatchTarget {
  tier: Tier;
  namespace: string;
  dt: string;
  hour: string;
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
  staging = new OutputBuffer(FEED_BYTES + 64 * 1024);
  records = 0;
  /** NDJSON bytes added, before gzip. */
  rawBytes = 0;
  first: Instant = { epochSeconds: Number.POSITIVE_INFINITY, nanos: 0 };
  last: Instant = { epochSeconds: Number.NEGATIVE_INFINITY, nanos: 0 };
  openedAt: number;
  /** Spool file generation; a recovered batch gets a new one. */
  readonly generation: number;
  readonly file: string;
  /** Compressed bytes written to the spool file so far. */
  written = 0;
  /** Compressed bytes known durable (after the last syncFlush()). */
  spoolBytes = 0;
  readonly #gzip: Gzip;
  readonly #spare: OutputBuffer[] = [];
  readonly #hash: Hash = createHash("sha256");
  #handle: Promise<FileHandle>;
  #writes: Promise<void> = Promise.resolve();
  #error: unknown = null;
  #sealed = false;

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
    this.key = formatObjectKey({ prefix: settings.prefix, ...target, ...identity });
    this.fragment = batchFieldsFragment(this.id);
    this.openedAt = openedAt;
    this.generation = generation;
    this.file = join(settings.spoolDir, `${this.id}.${generation}.ndjson.gz`);
    this.#handle = open(this.file, "w");
    this.#handle.catch((error: unknown) => {
      this.#error ??= error;
    });
    this.#gzip = createGzip({ level: settings.gzipLevel });
    this.#gzip.on("data", (chunk: Buffer) => {
      this.#hash.update(chunk);
      this.#writes = this.#writes.then(async () => {
        if (this.#error !== null) return;
        try {
          const handle = await this.#handle;
          const { bytesWritten } = await handle.write(chunk, 0, chunk.length, this.written);
          this.written += bytesWritten;
        } catch (error) {
          this.#error ??= error;
        }
      });
    });
    this.#gzip.on("error", (error) => {
      this.#error ??= error;
    });
  }

  /** Accounts one record appended to `staging` by the encoder. */
  noteRecord(epochSeconds: number, nanos: number, rawBytes: number): void {
    this.records++;
    this.rawBytes += rawBytes;
    if (
      epochSeconds < this.first.epochSeconds ||
      (epochSeconds === this.first.epochSeconds && nanos < this.first.nanos)
    ) {
      this.first = { epochSeconds, nanos };
    }
    if (
      epochSeconds > this.last.epochSeconds ||
      (epochSeconds === this.last.epochSeconds && nanos > this.last.nanos)
    ) {
      this.last = { epochSeconds, nanos };
    }
  }

  /** Hands staged records to gzip; returns false when gzip's buffer is full (await drained()). */
  feed(): boolean {
    if (this.staging.length === 0) return true;
    const full = this.staging;
    // gzip holds the chunk until it has compressed it; then the buffer is reused. Dropping
    // it instead would leave GC hundreds of MB of dead 256 KiB buffers to find on a backlog.
    this.staging = this.#spare.pop() ?? new OutputBuffer(FEED_BYTES + 64 * 1024);
    return this.#gzip.write(full.bytes.subarray(0, full.length), () => {
      full.reset();
      if (this.#spare.length < SPARE_BUFFERS) this.#spare.push(full);
    });
  }

  drained(): Promise<void> {
    return this.#gzip.writableNeedDrain
      ? new Promise((resolve) => this.#gzip.once("drain", resolve))
      : Promise.resolve();
  }

  /** Everything added so far is durable in the spool file up to `spoolBytes`. */
  async syncFlush(): Promise<void> {
    this.feed();
    await new Promise<void>((resolve) => this.#gzip.flush(zlibConstants.Z_SYNC_FLUSH, () => resolve()));
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
    this.#gzip.destroy();
    await this.#writes;
    await (await this.#handle.catch(() => null))?.close();
  }

  checkpoint(): OpenBatchCheckpoint {
    return {
      seq: this.identity.seq,
      node: this.identity.node,
      generation: this.generation,
      file: this.file,
      ...this.target,
      spoolBytes: this.spoolBytes,
      records: this.records,
      rawBytes: this.rawBytes,
      firstTimestamp: this.first,
      lastTimestamp: this.last,
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
    const identity = { node: cp.node, epoch, seq: cp.seq };
    const previous = cp.file;
    const committed = (await readFile(previous)).subarray(0, cp.spoolBytes);
    const raw = gunzipSync(committed, { finishFlush: zlibConstants.Z_SYNC_FLUSH });
    if (raw.length !== cp.rawBytes) {
      throw new Error(
        `spool file ${previous}: committed prefix holds ${raw.length} NDJSON bytes, checkpoint says ${cp.rawBytes}; the spool is damaged`,
      );
    }
    const target = { tier: cp.tier, namespace: cp.namespace, dt: cp.dt, hour: cp.hour };
    const batch = new OpenBatch(settings, identity, target, cp.generation + 1, cp.openedAt);
    batch.records = cp.records;
    batch.rawBytes = cp.rawBytes;
    batch.first = cp.firstTimestamp;
    batch.last = cp.lastTimestamp;
    batch.staging.append(raw);
    await batch.syncFlush();
    return batch;
  }
}
