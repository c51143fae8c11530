// Uploads sealed batches to S3: one PutObject each, with the body's SHA-256 checksum, the
// contract's object metadata and, with object_lock_mode set, the object's own Object Lock
// retention (retention.ts), retried with exponential backoff and full jitter until S3
// acknowledges. A batch's key and bytes never change, so a retry is harmless.
//
// PUTs are conditional (If-None-Match: *), so an object is never overwritten: a 412 means
// an earlier attempt landed without its acknowledgement reaching us, which is success if
// the stored object has our sha256, and a key conflict to surface if not. Stores without
// conditional writes (501) get plain PUTs, which are idempotent here anyway.

import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { HeadObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import type { StageLog } from "../../../lib/log.ts";
import { INDEX_OBJECT_KIND } from "../../../lib/object/hour-index.ts";
import { LOSS_OBJECT_KIND } from "../../../lib/object/loss.ts";
import {
  fromUserMetadata,
  METADATA_PREFIX,
  type ObjectMetadata,
  toUserMetadata,
} from "../../../lib/object/metadata.ts";
import type { ShipperMetrics } from "../../metrics.ts";
import { objectRetention, type RetentionSettings } from "./retention.ts";

export interface SealedBatch {
  /**
   * A loss record (JSON, docs/shipper.md#loss-records) or an hour index (JSON,
   * docs/retrieval.md#hour-indexes) rather than a batch of lines; absent for batches.
   */
  kind?: "loss" | "index";
  seq: number;
  key: string;
  file: string;
  bytes: number;
  metadata: ObjectMetadata;
}

export interface UploaderOptions {
  s3: S3Client;
  bucket: string;
  concurrency: number;
  timeoutMs: number;
  retryInitialMs: number;
  retryMaxMs: number;
  metrics: ShipperMetrics;
  log: StageLog;
  /** Which objects are PUT with a retention of their own, and how long. */
  retention: RetentionSettings;
  /**
   * Wall clock, ms since the epoch, only to bound a retention to the upload's hour (a late
   * upload, a key's hour ahead of the clock). Default Date.now.
   */
  now?: () => number;
  onUploaded: (batch: SealedBatch) => void;
}

export class Uploader {
  readonly #options: UploaderOptions;
  readonly #queue: SealedBatch[] = [];
  readonly #active = new Set<Promise<void>>();
  /** Keys of the batches queued or uploading (a batch's seq is unique only within its epoch). */
  readonly #queued = new Set<string>();
  #conditional = true;
  #stopped = false;
  #wake: (() => void) | null = null;

  constructor(options: UploaderOptions) {
    this.#options = options;
  }

  /** Queues a batch; a batch already queued or uploading is ignored. */
  enqueue(batch: SealedBatch): void {
    if (this.#queued.has(batch.key)) return;
    this.#queued.add(batch.key);
    this.#queue.push(batch);
    this.#pump();
    this.#options.metrics.uploadQueue.set(this.#queued.size);
  }

  /** Batches queued or uploading. */
  get pending(): number {
    return this.#queued.size;
  }

  /** Resolves when nothing is queued or uploading, or after `timeoutMs`; true if idle. */
  async idle(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.#queued.size > 0 && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        setTimeout(resolve, Math.min(100, Math.max(0, deadline - Date.now())));
      });
    }
    return this.#queued.size === 0;
  }

  /** Stops starting attempts; uploads in flight finish or are abandoned at their next retry. */
  stop(): void {
    this.#stopped = true;
  }

  #pump(): void {
    while (!this.#stopped && this.#active.size < this.#options.concurrency && this.#queue.length > 0) {
      const batch = this.#queue.shift()!;
      const run: Promise<void> = this.#upload(batch).finally(() => {
        this.#active.delete(run);
        this.#pump();
        this.#wake?.();
      });
      this.#active.add(run);
    }
  }

  async #upload(batch: SealedBatch): Promise<void> {
    const { metrics, log } = this.#options;
    try {
      const { size } = await stat(batch.file);
      if (size !== batch.bytes) throw new Error(`it has ${size} bytes, the checkpoint says ${batch.bytes}`);
    } catch (error) {
      // Left in the checkpoint, so every restart tries again and says so; never uploaded damaged.
      this.#queued.delete(batch.key);
      log("error", "spool_file_unreadable", {
        key: batch.key,
        file: batch.file,
        error: (error as Error).message,
      });
      return;
    }
    for (let attempt = 0; !this.#stopped; attempt++) {
      if (attempt > 0) metrics.uploadRetries.inc();
      try {
        await this.#put(batch);
        this.#queued.delete(batch.key);
        metrics.uploadQueue.set(this.#queued.size);
        metrics.batchesUploaded.inc();
        metrics.bytesUploaded.inc(batch.bytes);
        metrics.rawBytesUploaded.inc(batch.metadata.rawBytes);
        this.#options.onUploaded(batch);
        return;
      } catch (error) {
        const code = errorCode(error);
        metrics.uploadFailures.inc({ code });
        const delay =
          Math.random() *
          Math.min(this.#options.retryMaxMs, this.#options.retryInitialMs * 2 ** Math.min(attempt, 30));
        log(attempt < 3 ? "warn" : "error", "upload_failed", {
          key: batch.key,
          attempt: attempt + 1,
          code,
          error: (error as Error).message,
          retryInMs: Math.round(delay),
        });
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  async #put(batch: SealedBatch): Promise<void> {
    const { s3, bucket, timeoutMs } = this.#options;
    const sha256 = Buffer.from(batch.metadata.sha256, "hex").toString("base64");
    const retention = objectRetention(this.#options.retention, batch, this.#options.now?.() ?? Date.now());
    try {
      await s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: batch.key,
          // Streamed from the spool file: up to upload_concurrency bodies of 8 MiB would
          // otherwise sit in memory at once.
          Body: createReadStream(batch.file),
          ContentLength: batch.bytes,
          // Always sent, and what S3 requires of a PUT with Object Lock retention (explicit or
          // the bucket's default): Content-MD5 or an x-amz-checksum-* header.
          ChecksumSHA256: sha256,
          ...(retention === undefined
            ? {}
            : { ObjectLockMode: retention.mode, ObjectLockRetainUntilDate: retention.retainUntil }),
          // A gzip file, not a gzip-encoded NDJSON: no Content-Encoding, so no client or
          // GCS transcoding ever hands a reader decompressed bytes under a .gz name.
          ContentType: batch.kind === undefined ? "application/gzip" : "application/json",
          Metadata: {
            ...toUserMetadata(batch.metadata),
            ...(batch.kind === undefined
              ? {}
              : {
                  [`${METADATA_PREFIX}kind`]: batch.kind === "loss" ? LOSS_OBJECT_KIND : INDEX_OBJECT_KIND,
                }),
          },
          ...(this.#conditional ? { IfNoneMatch: "*" } : {}),
        }),
        { abortSignal: AbortSignal.timeout(timeoutMs) },
      );
    } catch (error) {
      const status = httpStatus(error);
      if (status === 501 && this.#conditional) {
        this.#conditional = false;
        this.#options.log("warn", "conditional_put_unsupported", {
          bucket,
          note: "falling back to plain PUT",
        });
        throw error;
      }
      if (status !== 412) throw error;
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: batch.key }), {
        abortSignal: AbortSignal.timeout(timeoutMs),
      });
      const stored = fromUserMetadata(head.Metadata ?? {});
      if (stored.sha256 !== batch.metadata.sha256) {
        throw Object.assign(
          new Error(
            `s3://${bucket}/${batch.key} already exists with sha256 ${stored.sha256}, not ${batch.metadata.sha256}: two shippers share a state epoch, or something else wrote the key`,
          ),
          { name: "KeyConflict" },
        );
      }
    }
  }
}

function httpStatus(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

function errorCode(error: unknown): string {
  const e = error as { name?: string; code?: string };
  return e.name ?? e.code ?? "Unknown";
}
