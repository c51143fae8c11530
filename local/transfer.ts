// The local stand-in for Storage Transfer Service's event-driven transfer: it long-polls the
// SQS queue the bucket notification feeds and copies each newly created S3 object into the
// GCS landing bucket, with its user metadata, content type and content encoding, as STS does.
//
// Delivery rules, chosen so the pipeline stays exactly-once over at-least-once transports:
// - A message is deleted only once every object it names is in GCS (or is gone from S3).
//   Until then it stays invisible while a copy runs (the visibility is extended) and comes
//   back after the timeout if this process dies; the local GCS, like GCS, finalizes only
//   completed uploads, so a copy cut short leaves nothing behind.
// - An object already in GCS with the same content is not copied again (sha256 from the
//   object metadata, else size and MD5), so a duplicate event makes no second finalize. An
//   object changed in S3 under the same key is copied again; the loader reports it.
// - Writes are conditional on the GCS generation seen, so two workers racing on one key make
//   one finalize, and the loser re-checks instead of overwriting.
// - A message that is not an S3 event is not ours to destroy: it is logged as an error and
//   left in the queue, where the redrive policy moves it to the dead-letter queue after
//   maxReceiveCount receives. Its visibility backs off with each receive, so a queue without
//   a DLQ (like the local one) re-logs it rarely instead of on every poll.

import { type Readable, Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { GetObjectCommand, HeadObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type { File, FileMetadata, Storage } from "@google-cloud/storage";
import { isObjectCreated, parseS3EventMessage, type S3ObjectEvent } from "../lib/events/s3-event.ts";
import type { StageLog } from "../lib/log.ts";
import { METADATA_PREFIX } from "../lib/object/metadata.ts";

export interface TransferWorkerOptions {
  sqs: SQSClient;
  queueUrl: string;
  s3: S3Client;
  storage: Storage;
  gcsBucket: string;
  /** Seconds a received message stays hidden; renewed while its copy runs. Default 60. */
  visibilityTimeoutSeconds?: number;
  /** Long-poll wait of each receive, 0-20 s. Default 20. */
  waitTimeSeconds?: number;
  /** Messages per receive, 1-10. Default 10. */
  maxMessages?: number;
  /** Objects at least this large go up as resumable uploads. Default 8 MiB. */
  resumableThresholdBytes?: number;
  /** Caps each copy's rate, to emulate a slow link (and make a copy slow enough to interrupt). */
  maxBytesPerSecond?: number;
  log?: StageLog;
}

export interface TransferStats {
  /** ReceiveMessage calls that answered. */
  receives: number;
  /** Messages received, including redeliveries. */
  messages: number;
  messagesDeleted: number;
  testEvents: number;
  /** Messages that are not S3 events, left for the dead-letter queue. */
  messagesRejected: number;
  /** Messages given back to the queue by stop() before their copy finished. */
  messagesAbandoned: number;
  objectsCopied: number;
  /** Objects already in GCS with the same content. */
  skippedDuplicates: number;
  /** Objects gone from S3 before they could be copied. */
  objectsMissing: number;
  /** Records that are not object creations (deletions are not transferred, as with STS). */
  eventsIgnored: number;
  bytesCopied: number;
  /** Failed receives, copies, deletes and visibility changes. */
  errors: number;
  visibilityExtensions: number;
  /** Copies running now, and the bytes they have moved so far. */
  copiesInFlight: number;
  bytesInFlight: number;
}

export interface StopOptions {
  /**
   * How long in-flight copies may run before they are abandoned: their uploads are cut (so
   * nothing is finalized) and their messages made visible again. Default: no limit.
   */
  graceMs?: number;
}

/** SQS's limit on a message's visibility timeout. */
const MAX_VISIBILITY_SECONDS = 12 * 60 * 60;
const COPY_ATTEMPTS = 3;
/**
 * How soon an abandoned message is visible again. Not 0: fauxqs (the local SQS), persisted
 * in SQLite, loses a message whose visibility is set to 0 (its NOT NULL receive count is
 * written as NULL, the update throws after the message left the in-flight set). One second
 * is as good as immediate for a redelivery.
 */
const RELEASE_VISIBILITY_SECONDS = 1;

class SourceChangedError extends Error {
  override name = "SourceChangedError";
}

export class TransferStoppedError extends Error {
  override name = "TransferStoppedError";
}

/** What S3 says about the object, read before copying. */
interface SourceObject {
  bucket: string;
  key: string;
  size: number;
  eTag: string;
  contentType: string | undefined;
  contentEncoding: string | undefined;
  cacheControl: string | undefined;
  contentDisposition: string | undefined;
  contentLanguage: string | undefined;
  userMetadata: Record<string, string>;
}

type Outcome = "copied" | "skipped" | "missing" | "ignored";

export class TransferWorker {
  readonly #o: Required<Omit<TransferWorkerOptions, "maxBytesPerSecond" | "log">> &
    Pick<TransferWorkerOptions, "maxBytesPerSecond">;
  readonly #log: StageLog;
  readonly #counters: TransferStats = {
    receives: 0,
    messages: 0,
    messagesDeleted: 0,
    testEvents: 0,
    messagesRejected: 0,
    messagesAbandoned: 0,
    objectsCopied: 0,
    skippedDuplicates: 0,
    objectsMissing: 0,
    eventsIgnored: 0,
    bytesCopied: 0,
    errors: 0,
    visibilityExtensions: 0,
    copiesInFlight: 0,
    bytesInFlight: 0,
  };
  /** Aborts the long poll when stopping. */
  readonly #poll = new AbortController();
  /** Aborts in-flight copies when the stop grace runs out. */
  readonly #abandon = new AbortController();
  /** Serializes work on one object, so duplicate events in one batch make one copy. */
  readonly #keyLocks = new Map<string, Promise<unknown>>();
  #drainWaiters: { resolve: () => void; reject: (error: Error) => void }[] = [];
  #loop: Promise<void> | undefined;
  #stopping = false;
  #stoppedLogged = false;

  constructor(options: TransferWorkerOptions) {
    const waitTimeSeconds = options.waitTimeSeconds ?? 20;
    const maxMessages = options.maxMessages ?? 10;
    const visibilityTimeoutSeconds = options.visibilityTimeoutSeconds ?? 60;
    if (!Number.isInteger(waitTimeSeconds) || waitTimeSeconds < 0 || waitTimeSeconds > 20) {
      throw new RangeError("waitTimeSeconds must be an integer 0-20");
    }
    if (!Number.isInteger(maxMessages) || maxMessages < 1 || maxMessages > 10) {
      throw new RangeError("maxMessages must be an integer 1-10");
    }
    if (
      !Number.isInteger(visibilityTimeoutSeconds) ||
      visibilityTimeoutSeconds < 1 ||
      visibilityTimeoutSeconds > MAX_VISIBILITY_SECONDS
    ) {
      throw new RangeError(`visibilityTimeoutSeconds must be an integer 1-${MAX_VISIBILITY_SECONDS}`);
    }
    this.#o = {
      sqs: options.sqs,
      queueUrl: options.queueUrl,
      s3: options.s3,
      storage: options.storage,
      gcsBucket: options.gcsBucket,
      visibilityTimeoutSeconds,
      waitTimeSeconds,
      maxMessages,
      resumableThresholdBytes: options.resumableThresholdBytes ?? 8 * 1024 * 1024,
      maxBytesPerSecond: options.maxBytesPerSecond,
    };
    this.#log = options.log ?? (() => {});
  }

  /** Starts polling; returns at once. */
  start(): void {
    if (this.#loop !== undefined) throw new Error("transfer worker already started");
    this.#log("info", "transfer_started", {
      queueUrl: this.#o.queueUrl,
      gcsBucket: this.#o.gcsBucket,
      visibilityTimeoutSeconds: this.#o.visibilityTimeoutSeconds,
      waitTimeSeconds: this.#o.waitTimeSeconds,
    });
    this.#loop = this.#run();
  }

  stats(): TransferStats {
    return { ...this.#counters };
  }

  /**
   * Resolves at the next receive that comes back empty with nothing in flight: every message
   * that was visible has been handled. Rejects with TransferStoppedError if the worker stops
   * first. For `--once` runs and tests.
   */
  drained(): Promise<void> {
    if (this.#stopping) return Promise.reject(new TransferStoppedError("transfer worker is stopping"));
    return new Promise((resolve, reject) => this.#drainWaiters.push({ resolve, reject }));
  }

  /**
   * Stops polling and lets in-flight copies finish within `graceMs`; past it they are
   * abandoned cleanly (nothing finalized, their messages visible again within a second).
   * A second call may shorten the grace (a second SIGTERM abandons at once).
   */
  async stop(options: StopOptions = {}): Promise<void> {
    if (!this.#stopping) {
      this.#stopping = true;
      this.#poll.abort();
      const waiters = this.#drainWaiters;
      this.#drainWaiters = [];
      for (const w of waiters) w.reject(new TransferStoppedError("transfer worker stopped before draining"));
    }
    const graceMs = options.graceMs ?? Number.POSITIVE_INFINITY;
    let timer: NodeJS.Timeout | undefined;
    if (graceMs <= 0) this.#abandon.abort();
    else if (Number.isFinite(graceMs)) timer = setTimeout(() => this.#abandon.abort(), graceMs);
    try {
      await this.#loop;
    } finally {
      clearTimeout(timer);
    }
    if (!this.#stoppedLogged) this.#log("info", "transfer_stopped", { ...this.#counters });
    this.#stoppedLogged = true;
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#stopping) {
      let messages: Message[];
      try {
        const response = await this.#o.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: this.#o.queueUrl,
            MaxNumberOfMessages: this.#o.maxMessages,
            WaitTimeSeconds: this.#o.waitTimeSeconds,
            VisibilityTimeout: this.#o.visibilityTimeoutSeconds,
            MessageSystemAttributeNames: ["ApproximateReceiveCount"],
          }),
          { abortSignal: this.#poll.signal },
        );
        messages = response.Messages ?? [];
        failures = 0;
      } catch (error) {
        if (this.#stopping) break;
        failures++;
        this.#counters.errors++;
        const retryInMs = Math.min(30_000, 250 * 2 ** Math.min(failures, 7));
        this.#log("error", "transfer_receive_failed", { error: describe(error), retryInMs });
        await sleep(retryInMs, undefined, { signal: this.#poll.signal }).catch(() => {});
        continue;
      }
      this.#counters.receives++;
      if (messages.length === 0) {
        const waiters = this.#drainWaiters;
        this.#drainWaiters = [];
        for (const w of waiters) w.resolve();
        continue;
      }
      this.#counters.messages += messages.length;
      await Promise.all(
        messages.map((m) =>
          this.#handleMessage(m).catch((error: unknown) => {
            // Not expected (each step handles its own failures); the message comes back anyway.
            this.#counters.errors++;
            this.#log("error", "transfer_message_failed", { messageId: m.MessageId, error: describe(error) });
          }),
        ),
      );
    }
  }

  async #handleMessage(message: Message): Promise<void> {
    const messageId = message.MessageId;
    let parsed: ReturnType<typeof parseS3EventMessage>;
    try {
      parsed = parseS3EventMessage(message.Body ?? "");
    } catch (error) {
      await this.#reject(message, error);
      return;
    }
    if (parsed.kind === "test") {
      this.#counters.testEvents++;
      this.#log("info", "transfer_test_event", { messageId, bucket: parsed.bucket });
      await this.#delete(message);
      return;
    }
    const heartbeat = this.#keepInvisible(message);
    try {
      const outcomes: Outcome[] = [];
      for (const record of parsed.records) outcomes.push(await this.#transferRecord(record));
      this.#log("debug", "transfer_message_done", { messageId, outcomes });
    } catch (error) {
      heartbeat.stop();
      if (this.#abandon.signal.aborted) {
        this.#counters.messagesAbandoned++;
        this.#log("warn", "transfer_message_abandoned", { messageId, error: describe(error) });
        await this.#changeVisibility(message, RELEASE_VISIBILITY_SECONDS);
      } else {
        this.#counters.errors++;
        this.#log("error", "transfer_copy_failed", {
          messageId,
          error: describe(error),
          retry: `the message comes back after the visibility timeout (${this.#o.visibilityTimeoutSeconds} s)`,
        });
      }
      return;
    }
    heartbeat.stop();
    await this.#delete(message);
  }

  async #transferRecord(record: S3ObjectEvent): Promise<Outcome> {
    if (!isObjectCreated(record)) {
      this.#counters.eventsIgnored++;
      this.#log("debug", "transfer_event_ignored", { eventName: record.eventName, key: record.key });
      return "ignored";
    }
    return this.#withKeyLock(`${record.bucket}/${record.key}`, () => this.#copyObject(record));
  }

  async #copyObject(record: S3ObjectEvent): Promise<Outcome> {
    const file = this.#o.storage.bucket(this.#o.gcsBucket).file(record.key);
    for (let attempt = 1; ; attempt++) {
      const source = await this.#headSource(record);
      if (source === null) return this.#missing(record, "HeadObject");
      const existing = await headTarget(file);
      if (existing !== null && sameContent(source, existing)) {
        this.#counters.skippedDuplicates++;
        this.#log("info", "transfer_object_skipped", {
          key: record.key,
          reason: "already in GCS with the same content",
          generation: existing.generation,
        });
        return "skipped";
      }
      try {
        const generation = existing?.generation === undefined ? undefined : String(existing.generation);
        const copied = await this.#upload(file, source, generation);
        if (copied === null) return this.#missing(record, "GetObject");
        return "copied";
      } catch (error) {
        // Another writer got there first, or the object changed under us: look again.
        const retry = isPreconditionFailed(error) || error instanceof SourceChangedError;
        if (!retry || attempt >= COPY_ATTEMPTS || this.#abandon.signal.aborted) throw error;
        this.#log("info", "transfer_copy_retry", { key: record.key, attempt, reason: describe(error) });
      }
    }
  }

  #missing(record: S3ObjectEvent, step: string): Outcome {
    this.#counters.objectsMissing++;
    this.#log("warn", "transfer_object_missing", {
      key: record.key,
      bucket: record.bucket,
      step,
      reason: "the object is no longer in S3 (deleted after the event); nothing to copy",
    });
    return "missing";
  }

  async #headSource(record: S3ObjectEvent): Promise<SourceObject | null> {
    try {
      const head = await this.#o.s3.send(new HeadObjectCommand({ Bucket: record.bucket, Key: record.key }), {
        abortSignal: this.#abandon.signal,
      });
      return {
        bucket: record.bucket,
        key: record.key,
        size: head.ContentLength ?? 0,
        eTag: head.ETag ?? "",
        contentType: head.ContentType,
        contentEncoding: head.ContentEncoding,
        cacheControl: head.CacheControl,
        contentDisposition: head.ContentDisposition,
        contentLanguage: head.ContentLanguage,
        userMetadata: head.Metadata ?? {},
      };
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  /** Streams the object into GCS; null when it vanished from S3 in between. */
  async #upload(
    file: File,
    source: SourceObject,
    generation: string | undefined,
  ): Promise<FileMetadata | null> {
    let body: Readable;
    try {
      const got = await this.#o.s3.send(
        new GetObjectCommand({ Bucket: source.bucket, Key: source.key, IfMatch: source.eTag || undefined }),
        { abortSignal: this.#abandon.signal },
      );
      body = got.Body as Readable;
      if (got.ETag !== source.eTag) {
        body.destroy();
        throw new SourceChangedError(`${source.key} changed between HeadObject and GetObject`);
      }
    } catch (error) {
      if (isNotFound(error)) return null;
      if (isPreconditionFailed(error)) throw new SourceChangedError(`${source.key} changed since HeadObject`);
      throw error;
    }
    const md5 = md5FromEtag(source.eTag);
    const metadata: FileMetadata = { metadata: { ...source.userMetadata } };
    if (source.contentType !== undefined) metadata.contentType = source.contentType;
    if (source.contentEncoding !== undefined) metadata.contentEncoding = source.contentEncoding;
    if (source.cacheControl !== undefined) metadata.cacheControl = source.cacheControl;
    if (source.contentDisposition !== undefined) metadata.contentDisposition = source.contentDisposition;
    if (source.contentLanguage !== undefined) metadata.contentLanguage = source.contentLanguage;
    // GCS refuses to finalize an upload whose bytes do not match S3's MD5: a torn read
    // never becomes an object.
    if (md5 !== undefined) metadata.md5Hash = md5;
    const write = file.createWriteStream({
      resumable: source.size >= this.#o.resumableThresholdBytes,
      gzip: false,
      metadata,
      // 0 = only if absent; else only over the generation that was compared.
      preconditionOpts: { ifGenerationMatch: generation ?? 0 },
    });
    const meter = new CopyMeter(this.#o.maxBytesPerSecond, (n) => {
      this.#counters.bytesInFlight += n;
    });
    const started = Date.now();
    this.#counters.copiesInFlight++;
    this.#log("debug", "transfer_copy_started", { key: source.key, bytes: source.size, generation });
    try {
      await pipeline(body, meter, write, { signal: this.#abandon.signal });
    } finally {
      this.#counters.copiesInFlight--;
      this.#counters.bytesInFlight -= meter.bytes;
    }
    this.#counters.objectsCopied++;
    this.#counters.bytesCopied += meter.bytes;
    const written = file.metadata;
    this.#log("info", "transfer_object_copied", {
      key: source.key,
      bytes: meter.bytes,
      ms: Date.now() - started,
      generation: written.generation,
      replaced: generation ?? null,
    });
    return written;
  }

  /** Renews the message's visibility at half the timeout while its copies run. */
  #keepInvisible(message: Message): { stop(): void } {
    const everyMs = Math.max(500, (this.#o.visibilityTimeoutSeconds * 1000) / 2);
    const timer = setInterval(() => {
      void this.#changeVisibility(message, this.#o.visibilityTimeoutSeconds).then((ok) => {
        if (ok) this.#counters.visibilityExtensions++;
      });
    }, everyMs);
    return { stop: () => clearInterval(timer) };
  }

  async #reject(message: Message, error: unknown): Promise<void> {
    this.#counters.messagesRejected++;
    const receiveCount = Number(message.Attributes?.ApproximateReceiveCount ?? 1);
    const hiddenForSeconds = Math.min(
      MAX_VISIBILITY_SECONDS,
      this.#o.visibilityTimeoutSeconds * 2 ** Math.min(Math.max(receiveCount - 1, 0), 16),
    );
    this.#log("error", "transfer_message_rejected", {
      messageId: message.MessageId,
      receiveCount,
      error: describe(error),
      body: (message.Body ?? "").slice(0, 300),
      action: `left in the queue for its dead-letter queue; hidden for ${hiddenForSeconds} s`,
    });
    await this.#changeVisibility(message, hiddenForSeconds);
  }

  async #delete(message: Message): Promise<void> {
    try {
      await this.#o.sqs.send(
        new DeleteMessageCommand({ QueueUrl: this.#o.queueUrl, ReceiptHandle: message.ReceiptHandle }),
      );
      this.#counters.messagesDeleted++;
    } catch (error) {
      // The copy is done; a redelivery will find it in GCS and skip it.
      this.#counters.errors++;
      this.#log("error", "transfer_delete_failed", { messageId: message.MessageId, error: describe(error) });
    }
  }

  async #changeVisibility(message: Message, seconds: number): Promise<boolean> {
    try {
      await this.#o.sqs.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: this.#o.queueUrl,
          ReceiptHandle: message.ReceiptHandle,
          VisibilityTimeout: seconds,
        }),
      );
      return true;
    } catch (error) {
      this.#counters.errors++;
      this.#log("warn", "transfer_visibility_change_failed", {
        messageId: message.MessageId,
        seconds,
        error: describe(error),
      });
      return false;
    }
  }

  async #withKeyLock<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#keyLocks.get(key) ?? Promise.resolve();
    const run = previous.then(work, work);
    const tail = run.catch(() => {});
    this.#keyLocks.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.#keyLocks.get(key) === tail) this.#keyLocks.delete(key);
    }
  }
}

/** Counts the bytes of a copy as they pass and, if asked, holds them to a rate. */
class CopyMeter extends Transform {
  bytes = 0;
  readonly #maxBytesPerSecond: number | undefined;
  readonly #onBytes: (n: number) => void;
  readonly #started = Date.now();

  constructor(maxBytesPerSecond: number | undefined, onBytes: (n: number) => void) {
    super();
    this.#maxBytesPerSecond = maxBytesPerSecond;
    this.#onBytes = onBytes;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    this.#onBytes(chunk.length);
    const rate = this.#maxBytesPerSecond;
    const waitMs = rate === undefined ? 0 : this.#started + (this.bytes / rate) * 1000 - Date.now();
    if (waitMs <= 0) done(null, chunk);
    else setTimeout(() => done(null, chunk), waitMs);
  }
}

async function headTarget(file: File): Promise<FileMetadata | null> {
  try {
    const [metadata] = await file.getMetadata();
    return metadata;
  } catch (error) {
    if ((error as { code?: unknown }).code === 404) return null;
    throw error;
  }
}

const SHA256_KEY = `${METADATA_PREFIX}sha256`;

/**
 * Whether GCS already holds this S3 object's content: the contract's sha256 when both carry
 * it, else size and MD5 (S3's ETag is the MD5 of a single-part upload). A multipart ETag
 * without the sha256 cannot be compared, so such an object is copied again.
 */
export function sameContent(
  source: { size: number; eTag: string; userMetadata: Record<string, string> },
  target: FileMetadata,
): boolean {
  const sourceSha = lowerKeys(source.userMetadata)[SHA256_KEY];
  const targetSha = lowerKeys(target.metadata ?? {})[SHA256_KEY];
  if (sourceSha !== undefined && targetSha !== undefined) return sourceSha === targetSha;
  if (Number(target.size) !== source.size) return false;
  const md5 = md5FromEtag(source.eTag);
  return md5 !== undefined && md5 === target.md5Hash;
}

function lowerKeys(m: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m)) if (typeof v === "string") out[k.toLowerCase()] = v;
  return out;
}

/** The base64 MD5 GCS reports, from a single-part S3 ETag (`"<32 hex>"`); else undefined. */
export function md5FromEtag(eTag: string): string | undefined {
  const hex = eTag.replaceAll('"', "");
  return /^[0-9a-f]{32}$/i.test(hex) ? Buffer.from(hex, "hex").toString("base64") : undefined;
}

function isNotFound(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === "NoSuchKey" || e.name === "NotFound" || e.$metadata?.httpStatusCode === 404;
}

function isPreconditionFailed(error: unknown): boolean {
  const e = error as { code?: unknown; name?: string; $metadata?: { httpStatusCode?: number } };
  return e.code === 412 || e.name === "PreconditionFailed" || e.$metadata?.httpStatusCode === 412;
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
