// `logarchive ship`: the kubernetes_logs source → record encoder → archive sink → S3
// uploader, driven by one loop so that reading, batching and committing never race:
//
//   scan (every scan_interval) → read a chunk per container → encode into the batch of its
//   namespace and hour (and in stream delivery, for an analytics namespace, copy into the
//   stream batch of its table and hour) → commit (every commit_interval, or when a batch
//   is due) → upload.
//
// Offsets are committed only together with the spooled batches that hold their records
// (see sinks/s3/sink.ts), and a batch's key and bytes are fixed when it is sealed, so a
// crash at any point replays into the same objects: nothing lost, nothing doubled.

import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { S3Client } from "@aws-sdk/client-s3";
import type { Logger, StageLog } from "../lib/log.ts";
import {
  classifyNamespace,
  type Destination,
  type NamespacePolicy,
  type StreamDelivery,
  streamDelivery,
} from "../lib/policy/policy.ts";
import type { ShipperConfig } from "./config.ts";
import { parseListen } from "./config.ts";
import { startShipperHttp } from "./http.ts";
import { ShipperMetrics } from "./metrics.ts";
import { FEED_BYTES, type OpenBatch, takeFedEarly } from "./sinks/s3/batch.ts";
import { ArchiveSink } from "./sinks/s3/sink.ts";
import { Uploader } from "./sinks/s3/uploader.ts";
import type { DecodedLine, DecodedLineSink } from "./sources/kubernetes_logs/file_decoder.ts";
import { KubernetesLogsSource } from "./sources/kubernetes_logs/source.ts";
import type { TrackedFile } from "./sources/kubernetes_logs/tracked_file.ts";
import { CheckpointStore } from "./state/checkpoint.ts";
import { appendBatchFields } from "./transforms/record_encoder.ts";

export interface ShipperOptions {
  config: ShipperConfig;
  policy: NamespacePolicy;
  logger: Logger;
  version: string;
  /** Defaults to a client for config.s3Endpoint/region with the SDK's credential chain. */
  s3?: S3Client;
  metrics?: ShipperMetrics;
}

export interface ShipperSummary {
  bytesRead: number;
  records: number;
  batchesUploaded: number;
}

const IDLE_SLEEP_MS = 50;
/**
 * The longest a quiet live file goes unread (it is also read as soon as a scan sees it grow):
 * polling every file every IDLE_SLEEP_MS was most of an idle shipper's CPU (docs/benchmarks.md).
 */
const QUIET_POLL_MAX_MS = 1000;

export class Shipper {
  readonly config: ShipperConfig;
  readonly metrics: ShipperMetrics;
  readonly #logger: Logger;
  readonly #s3: S3Client;
  readonly #sink: ArchiveSink;
  readonly #policy: NamespacePolicy;
  readonly #streamDelivery: StreamDelivery | null;
  readonly #source: KubernetesLogsSource;
  readonly #uploader: Uploader;
  readonly #needDrain = new Set<OpenBatch>();
  readonly #recordsByNamespace = new Map<string, number>();
  #parseErrors = 0;
  #stopping = false;
  #lastLoopAt = Date.now();
  #http: { stop(): Promise<void>; url: string } | null = null;
  #sinks = new WeakMap<TrackedFile, DecodedLineSink>();

  private constructor(
    options: ShipperOptions,
    parts: { sink: ArchiveSink; s3: S3Client; metrics: ShipperMetrics; restoreFiles: ShipperFileRestore },
  ) {
    this.config = options.config;
    this.#logger = options.logger;
    this.#s3 = parts.s3;
    this.metrics = parts.metrics;
    this.#sink = parts.sink;
    this.#policy = options.policy;
    this.#streamDelivery = parts.sink.options.streamDelivery;
    const log = this.#log;
    this.#uploader = new Uploader({
      s3: parts.s3,
      bucket: options.config.bucket,
      concurrency: options.config.uploadConcurrency,
      timeoutMs: options.config.uploadTimeoutMs,
      retryInitialMs: options.config.retryInitialMs,
      retryMaxMs: options.config.retryMaxMs,
      metrics: parts.metrics,
      log,
      retention: {
        mode: options.config.objectLockMode,
        streamExpirationDays: options.policy.analytics.stream_expiration_days,
        landingDays: options.config.landingDays,
      },
      onUploaded: (batch) => {
        this.#sink.uploaded(batch);
        log("info", "batch_uploaded", {
          key: batch.key,
          records: batch.metadata.records,
          bytes: batch.bytes,
        });
      },
    });
    this.#source = new KubernetesLogsSource(
      {
        globs: options.config.logs,
        node: options.config.node,
        maxLineBytes: options.config.maxLineBytes,
        multiline: options.config.multiline,
        policy: options.policy,
        finishGraceMs: Math.max(2000, 2 * options.config.scanIntervalMs),
        once: options.config.once,
        quietPollMaxMs: QUIET_POLL_MAX_MS,
        metrics: parts.metrics,
        log,
        lineSink: (tf) => this.#lineSinkFor(tf),
        onLoss: (facts) => {
          const record = this.#sink.recordLoss(facts);
          log("info", "loss_recorded", {
            batchId: record.batchId,
            reason: facts.reason,
            path: facts.file.path,
          });
        },
      },
      parts.restoreFiles,
    );
  }

  /** Restores the checkpoint and spool, and queues sealed batches for upload. */
  static async open(options: ShipperOptions): Promise<Shipper> {
    const c = options.config;
    const metrics = options.metrics ?? new ShipperMetrics();
    metrics.spoolLimitBytes.set(c.spoolMaxBytes);
    const spoolDir = join(c.stateDir, "spool");
    await mkdir(spoolDir, { recursive: true });
    const store = new CheckpointStore(c.stateDir);
    const checkpoint = await store.load();
    const sink = await ArchiveSink.restore(
      {
        spoolDir,
        prefix: c.prefix ?? options.policy.archive.prefix,
        gzipLevel: c.gzipLevel,
        node: c.node,
        batchMaxBytes: c.batchMaxBytes,
        batchMaxAgeMs: c.batchMaxAgeMs,
        streamDelivery: streamDelivery(options.policy),
        shipperVersion: options.version,
        metrics,
        log: (level, event, fields) => options.logger[level]({ event, ...fields }, event),
      },
      store,
      checkpoint,
    );
    const s3 =
      options.s3 ??
      new S3Client({
        region: c.region,
        ...(c.s3Endpoint ? { endpoint: c.s3Endpoint, forcePathStyle: true } : {}),
        // The uploader retries with its own backoff and metrics.
        maxAttempts: 1,
      });
    const shipper = new Shipper(options, { sink, s3, metrics, restoreFiles: checkpoint.files });
    for (const batch of sink.sealed.values()) shipper.#uploader.enqueue(batch);
    for (const f of checkpoint.files) {
      shipper.#log("debug", "file_restored", {
        path: f.path,
        ino: f.ino,
        order: f.order,
        offset: f.reader.offset,
        done: f.done,
        fingerprintBytes: f.fingerprintBytes,
      });
    }
    shipper.#log("info", "shipper_started", {
      node: c.node,
      epoch: sink.epoch,
      nextSeq: sink.nextSeq,
      resumedFiles: checkpoint.files.length,
      openBatches: sink.open.size,
      sealedBatches: sink.sealed.size,
    });
    return shipper;
  }

  #log: StageLog = (level, event, fields) => {
    this.#logger[level]({ event, ...fields }, event);
  };

  #lineSinkFor(tf: TrackedFile): DecodedLineSink {
    let sink = this.#sinks.get(tf);
    if (sink !== undefined) return sink;
    const tier = tf.context.tier;
    const namespace = tf.namespace;
    const encoder = tf.encoder;
    // Stream delivery: an analytics namespace's lines also go to its table's stream.
    const destination: Destination | null =
      this.#streamDelivery === null ? null : this.#streamDestination(namespace);
    // A file's lines go to one batch until the hour changes or the batch is cut, so the
    // batch is looked up (which builds a map key) only then, not once per line.
    let batch: OpenBatch | null = null;
    let batchHour = Number.NaN;
    let stream: OpenBatch | null = null;
    let streamHour = Number.NaN;
    sink = (line: DecodedLine) => {
      const hour = Math.floor(line.epochSeconds / 3600);
      if (batch === null || batch.retired || hour !== batchHour) {
        batch = this.#sink.batchFor(tier, namespace, line.epochSeconds);
        batchHour = hour;
      }
      const out = batch.staging;
      const handedOff = out.handedOff;
      const start = out.length;
      encoder.encodeLine(out, line);
      if (destination !== null) {
        if (stream === null || stream.retired || hour !== streamHour) {
          stream = this.#sink.streamBatchFor(destination, line.epochSeconds);
          streamHour = hour;
        }
        this.#addToStream(stream, out, handedOff, start, line, encoder);
      }
      appendBatchFields(out, batch.fragment, batch.records);
      batch.noteRecord(line.epochSeconds, line.nanos, out.handedOff + out.length - (handedOff + start));
      tf.lastLineSeconds = line.epochSeconds;
      tf.lastLineNanos = line.nanos;
      this.#recordsByNamespace.set(namespace, (this.#recordsByNamespace.get(namespace) ?? 0) + 1);
      if (line.parseError !== null) this.#parseErrors++;
      if (out.length >= FEED_BYTES) batch.feed();
      // Fed (here, or by the staging when a record did not fit): wait for gzip if it is behind.
      if (out.handedOff !== handedOff && batch.backlogged) this.#needDrain.add(batch);
    };
    this.#sinks.set(tf, sink);
    return sink;
  }

  #streamDestination(namespace: string): Destination | null {
    const c = classifyNamespace(this.#policy, namespace);
    return c.archived ? c.destination : null;
  }

  /**
   * Appends the record just encoded into `archive` (from `start`, without its batch
   * fields) to `stream` with the stream batch's own batch_id and seq. The body is copied,
   * not encoded again, unless the archive staging handed part of it to gzip on the way
   * (a record that did not fit its buffer, rare): then it is encoded a second time, which
   * writes the same bytes.
   */
  #addToStream(
    stream: OpenBatch,
    archive: OpenBatch["staging"],
    archiveHandedOff: number,
    start: number,
    line: DecodedLine,
    encoder: TrackedFile["encoder"],
  ): void {
    const out = stream.staging;
    const handedOff = out.handedOff;
    const before = handedOff + out.length;
    if (archive.handedOff === archiveHandedOff) out.append(archive.bytes.subarray(start, archive.length));
    else encoder.encodeLine(out, line);
    appendBatchFields(out, stream.fragment, stream.records);
    stream.noteRecord(line.epochSeconds, line.nanos, out.handedOff + out.length - before);
    if (out.length >= FEED_BYTES) stream.feed();
    if (out.handedOff !== handedOff && stream.backlogged) this.#needDrain.add(stream);
  }

  /** Starts /metrics, /healthz and /readyz when `listen` is set. */
  async startHttp(): Promise<string | null> {
    const listen = this.config.listen === "" ? null : parseListen(this.config.listen);
    if (listen === null) return null;
    this.#http = await startShipperHttp({
      host: listen.host,
      port: listen.port,
      registry: this.metrics.registry,
      health: () => {
        const loopAgeMs = Date.now() - this.#lastLoopAt;
        return {
          live: loopAgeMs < 60_000,
          ready: !this.#stopping,
          detail: { loopAgeMs, spoolBytes: this.#sink.spoolBytes(), uploadQueue: this.#uploader.pending },
        };
      },
    });
    return this.#http.url;
  }

  /** Asks the loop to stop reading and drain. */
  stop(): void {
    this.#stopping = true;
  }

  /** Runs until stop() (or, with `once`, until everything present is shipped), then drains. */
  async run(): Promise<void> {
    const c = this.config;
    const buf = Buffer.allocUnsafe(c.readChunkBytes);
    let lastScan = 0;
    let lastCommit = Date.now();
    let backpressureSince: number | null = null;
    while (!this.#stopping) {
      this.#lastLoopAt = Date.now();
      if (this.#lastLoopAt - lastScan >= c.scanIntervalMs || this.#source.needsScan) {
        await this.#source.scan();
        lastScan = Date.now();
      }
      const full = this.#sink.spoolBytes() >= c.spoolMaxBytes;
      if (full !== (backpressureSince !== null)) {
        this.metrics.backpressure.set(full ? 1 : 0);
        if (full) {
          backpressureSince = Date.now();
          this.#log("warn", "backpressure", { spoolBytes: this.#sink.spoolBytes(), limit: c.spoolMaxBytes });
        } else {
          this.metrics.backpressureSeconds.inc((Date.now() - backpressureSince!) / 1000);
          backpressureSince = null;
        }
      }
      if (full && this.#uploader.pending === 0 && this.#sink.open.size > 0) {
        // The spool holds only open batches: cut them so they can be uploaded and free it.
        await this.#commit(true);
        lastCommit = Date.now();
      }
      // Between files too: gzip's queue then holds at most a read chunk's worth per batch.
      const read = full ? 0 : await this.#source.readStep(buf, this.#drainGzip);
      await this.#drainGzip();
      if (this.#sink.due() || Date.now() - lastCommit >= c.commitIntervalMs) {
        await this.#commit(false);
        lastCommit = Date.now();
      }
      if (c.once && this.#source.scans > 0 && read === 0 && this.#source.caughtUp()) break;
      if (read === 0) await sleep(IDLE_SLEEP_MS);
    }
    if (backpressureSince !== null)
      this.metrics.backpressureSeconds.inc((Date.now() - backpressureSince) / 1000);
    await this.#drain();
  }

  #drainGzip = async (): Promise<void> => {
    // Also batches another batch's staging had fed early (MAX_HELD_STAGING in batch.ts).
    for (const b of takeFedEarly()) this.#needDrain.add(b);
    if (this.#needDrain.size === 0) return;
    const batches = [...this.#needDrain];
    this.#needDrain.clear();
    await Promise.all(batches.map((b) => b.drained()));
  };

  async #commit(sealAll: boolean): Promise<void> {
    const sealed = await this.#sink.commit(this.#source.checkpoints(), sealAll);
    for (const [namespace, n] of this.#recordsByNamespace) this.metrics.records.inc({ namespace }, n);
    this.#recordsByNamespace.clear();
    if (this.#parseErrors > 0) this.metrics.parseErrors.inc(this.#parseErrors);
    this.#parseErrors = 0;
    for (const batch of sealed) this.#uploader.enqueue(batch);
  }

  /**
   * Cuts every open batch, commits, and waits for uploads: until all are done with `once`,
   * else up to drain_timeout. What is not uploaded by then stays in the spool, named by the
   * checkpoint, and is uploaded by the next start.
   */
  async #drain(): Promise<void> {
    const started = Date.now();
    this.#source.flushMultiline();
    await this.#drainGzip();
    await this.#commit(true);
    // With `once` the drain waits for S3 however long it takes, until a signal asks it to
    // stop; from then on, and always without `once`, drain_timeout bounds it.
    let deadline =
      this.#stopping || !this.config.once ? started + this.config.drainTimeoutMs : Number.POSITIVE_INFINITY;
    // Two rounds: the acknowledgements of the first can complete an hour whose index
    // (docs/retrieval.md#hour-indexes) the second commit seals and uploads.
    for (let round = 0; round < 2; round++) {
      if (round === 1) {
        if (this.#uploader.pending > 0 || Date.now() >= deadline) break;
        await this.#commit(false);
      }
      while (this.#uploader.pending > 0 && Date.now() < deadline) {
        await this.#uploader.idle(Math.min(deadline - Date.now(), 1000));
        if (this.#stopping && deadline === Number.POSITIVE_INFINITY)
          deadline = Date.now() + this.config.drainTimeoutMs;
      }
    }
    this.#uploader.stop();
    await this.#commit(false);
    await this.#sink.close();
    await this.#source.close();
    this.#log(this.#uploader.pending === 0 ? "info" : "warn", "shipper_drained", {
      ms: Date.now() - started,
      batchesLeftInSpool: this.#uploader.pending,
    });
  }

  async close(): Promise<void> {
    await this.#http?.stop();
    this.#s3.destroy();
  }
}

type ShipperFileRestore = ConstructorParameters<typeof KubernetesLogsSource>[1];

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
