// The whole pipeline on this machine, on embedded parts, as `logarchive local` runs it:
//
//   sample workload or --logs ─▶ shipper ─▶ S3 (s3rver) ─▶ notification bridge ─▶ SQS (fauxqs)
//   ─▶ transfer worker ─▶ GCS (local/gcs) ─▶ Eventarc delivery ─▶ loader functions in the
//   functions-framework server ─▶ DuckDB (DATA_DIR/warehouse.duckdb)
//
// A timer stands in for Cloud Scheduler and calls the flush function over HTTP.

import { EventEmitter } from "node:events";
import { mkdir } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { SQSClient } from "@aws-sdk/client-sqs";
import { getTestServer } from "@google-cloud/functions-framework/testing";
import { Storage } from "@google-cloud/storage";
import { FINALIZE_FUNCTION, FLUSH_FUNCTION, registerLoaderFunctions } from "../functions/handlers.ts";
import { resolveLoaderConfig } from "../functions/loader/config.ts";
import { Loader } from "../functions/loader/loader.ts";
import { type ReconcileReport, reconcile } from "../functions/loader/reconcile.ts";
import { DuckDbWarehouse } from "../functions/warehouse/duckdb.ts";
import type { Logger, StageLog } from "../lib/log.ts";
import type { NamespacePolicy } from "../lib/policy/policy.ts";
import { RECORD_MAX_EPOCH_SECONDS, RECORD_MIN_EPOCH_SECONDS } from "../lib/record/timestamp.ts";
import { resolveShipperConfig } from "../shipper/config.ts";
import { Shipper } from "../shipper/shipper.ts";
import { EventarcDelivery } from "./eventarc.ts";
import type { GcsObjectResource } from "./gcs/server.ts";
import { keepIdleConnections } from "./keep-alive.ts";
import { localS3Client } from "./s3.ts";
import { LOCAL_SQS_CREDENTIALS } from "./sqs.ts";
import { deployedArchiveBucket, type LocalCloud, type ShipperLockOptions, startLocalCloud } from "./stack.ts";
import { TransferWorker } from "./transfer.ts";

export interface LocalPipelineOptions {
  dataDir: string;
  policy: NamespacePolicy;
  /** Globs of container logs to ship; the sample workload's files when unset. */
  logs: readonly string[];
  /** Ship what is present and exit (shipper --once), instead of tailing. */
  once: boolean;
  host?: string;
  s3Port?: number;
  sqsPort?: number;
  gcsPort?: number;
  /** The archive bucket has S3 Object Lock (and so versions), as infra deploys it: `logarchive hold` works on it. */
  objectLock?: boolean;
  /** Archive compaction on (needs objectLock): the shipper keeps archive originals the landing days. */
  compaction?: boolean;
  /** How often the local scheduler calls the flush function. Default 2 s. */
  flushIntervalMs?: number;
  /**
   * The shipper's batch age (in stream delivery, the stream's); short locally so rows show
   * up within seconds. Default 5s.
   */
  batchMaxAge?: string;
  /** Deliver every finalize event twice (fault injection). */
  duplicateEvents?: boolean;
  /** Run no transfer worker in this process (a test runs it as a child process). */
  externalTransfer?: boolean;
  logger: Logger;
  version: string;
}

export interface PipelineParts {
  cloud: LocalCloud;
  loader: Loader;
  eventarc: EventarcDelivery;
  transfer: TransferWorker | null;
  finalizeUrl: string;
  flushUrl: string;
}

const FAILURE_EVENT = /_(error|failed)$/;

/** The shipper's object_lock_mode and landing_days flags for the local bucket; none for a plain bucket. */
function lockFlags(lock: ShipperLockOptions | null): { object_lock_mode?: string; landing_days?: string } {
  return lock === null
    ? {}
    : { object_lock_mode: lock.object_lock_mode, landing_days: String(lock.landing_days) };
}

const MARKER_READS_AT_ONCE = 8;

function sqlString(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

async function forEachLimited<T>(items: readonly T[], limit: number, each: (item: T) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await each(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function stageLog(logger: Logger, component: string): StageLog {
  const child = logger.child({ component });
  return (level, event, fields) => child[level]({ event, ...fields }, event);
}

// Downloads made inside a function invocation reach teeny-request's response stream with
// 9 to 11 listeners already on it (functions-framework's per-request domain adds its own),
// one over Node's default of 10. It is a fixed number per download, not a leak; without
// this the local run prints a MaxListenersExceededWarning per object.
EventEmitter.defaultMaxListeners = Math.max(EventEmitter.defaultMaxListeners, 20);

export class LocalPipeline {
  readonly options: LocalPipelineOptions;
  readonly parts: PipelineParts;
  readonly #stops: (() => Promise<void> | void)[];
  #scheduler: NodeJS.Timeout | null = null;
  #flushing: Promise<unknown> | null = null;
  #shipper: Shipper | null = null;
  #redelivering: Promise<number> = Promise.resolve(0);
  /** Done marker path → its batch and when its load finished. */
  readonly #loadedAt = new Map<string, { batchId: string; at: number }>();

  private constructor(
    options: LocalPipelineOptions,
    parts: PipelineParts,
    stops: (() => Promise<void> | void)[],
  ) {
    this.options = options;
    this.parts = parts;
    this.#stops = stops;
  }

  static async start(options: LocalPipelineOptions): Promise<LocalPipeline> {
    const stops: (() => Promise<void> | void)[] = [];
    const stopAll = async () => {
      for (const stop of stops.reverse()) await stop();
    };
    try {
      const cloud = await startLocalCloud({
        dataDir: options.dataDir,
        policy: options.policy,
        ...(options.host ? { host: options.host } : {}),
        ...(options.s3Port ? { s3Port: options.s3Port } : {}),
        ...(options.sqsPort ? { sqsPort: options.sqsPort } : {}),
        ...(options.gcsPort ? { gcsPort: options.gcsPort } : {}),
        ...(options.objectLock ? { archiveBucket: deployedArchiveBucket() } : {}),
        ...(options.compaction ? { archiveCompaction: true } : {}),
        log: (event, fields) =>
          options.logger[FAILURE_EVENT.test(event) ? "warn" : "debug"](
            { component: "local", event, ...fields },
            event,
          ),
      });
      stops.push(() => cloud.stop());
      const e = cloud.endpoints;
      const storage = new Storage({ apiEndpoint: e.gcs.apiEndpoint, projectId: e.gcs.projectId });
      const warehouse = await DuckDbWarehouse.open({
        database: cloud.warehouse.instance,
        storage,
        defaultDataset: options.policy.warehouse.dataset,
      });
      // The loader's markers live in their own bucket, as infra/ deploys them, so marker
      // writes never fire the landing bucket's finalize trigger.
      const stateBucket = `${e.gcs.bucket}-loader-state`;
      const [stateExists] = await storage.bucket(stateBucket).exists();
      if (!stateExists) await storage.createBucket(stateBucket);
      const flushIntervalMs = options.flushIntervalMs ?? 2000;
      const loader = new Loader({
        config: resolveLoaderConfig(
          {},
          {
            landing_bucket: e.gcs.bucket,
            state_bucket: stateBucket,
            warehouse: "duckdb",
            gcs_endpoint: e.gcs.apiEndpoint,
            duckdb_path: e.warehouse.path,
            flush_interval: `${flushIntervalMs}ms`,
            // One embedded table and no BigQuery quota: a window per flush, for fresh rows
            // on a laptop (the 3m default floor is for a fleet's load-job budget).
            min_window: "0s",
            allow_forced_flush: "true",
            job_poll_interval: "50ms",
          },
        ),
        policy: options.policy,
        storage,
        warehouse,
        log: stageLog(options.logger, "loader"),
      });
      stops.push(() => loader.close());

      // The functions, in the functions-framework's own HTTP server, as Cloud Run serves them.
      const functionLog = options.logger.child({ component: "function" });
      registerLoaderFunctions(
        async () => loader,
        (line) => functionLog.debug(line),
      );
      const urls: string[] = [];
      for (const name of [FINALIZE_FUNCTION, FLUSH_FUNCTION]) {
        const server = getTestServer(name);
        keepIdleConnections(server);
        await new Promise<void>((resolve) => server.listen(0, options.host ?? "127.0.0.1", resolve));
        stops.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
        urls.push(`http://${options.host ?? "127.0.0.1"}:${(server.address() as AddressInfo).port}/`);
      }
      const [finalizeUrl, flushUrl] = urls as [string, string];

      const eventarc = new EventarcDelivery({
        target: finalizeUrl,
        ...(options.duplicateEvents ? { duplicate: true } : {}),
        log: stageLog(options.logger, "eventarc"),
      });
      // An Eventarc trigger watches one bucket: the landing bucket, not the loader's state.
      cloud.onGcsFinalize((object) => {
        if (object.bucket === e.gcs.bucket) eventarc.deliver(object);
      });
      stops.push(() => eventarc.stop());

      let transfer: TransferWorker | null = null;
      if (!options.externalTransfer) {
        const sqs = new SQSClient({
          endpoint: e.sqs.endpoint,
          region: e.region,
          credentials: LOCAL_SQS_CREDENTIALS,
        });
        const s3 = localS3Client(e.s3.endpoint, e.region);
        transfer = new TransferWorker({
          sqs,
          queueUrl: e.sqs.queueUrl,
          s3,
          storage,
          gcsBucket: e.gcs.bucket,
          waitTimeSeconds: 1,
          visibilityTimeoutSeconds: 30,
          log: stageLog(options.logger, "transfer"),
        });
        transfer.start();
        stops.push(async () => {
          await transfer?.stop({ graceMs: 5000 });
          sqs.destroy();
          s3.destroy();
        });
      }
      const pipeline = new LocalPipeline(
        options,
        { cloud, loader, eventarc, transfer, finalizeUrl, flushUrl },
        stops,
      );
      pipeline.#scheduler = setInterval(() => void pipeline.flushOverHttp(false), flushIntervalMs);
      pipeline.#redelivering = pipeline.redeliverUnqueued().catch((error: unknown) => {
        options.logger.warn(
          { event: "finalize_redelivery_failed", error: String(error) },
          "finalize_redelivery_failed",
        );
        return 0;
      });
      stops.push(async () => {
        await pipeline.#redelivering;
      });
      stops.push(async () => {
        if (pipeline.#scheduler) clearInterval(pipeline.#scheduler);
        // A flush in flight would otherwise meet the function servers closing.
        while (pipeline.#flushing) await pipeline.#flushing;
      });
      return pipeline;
    } catch (error) {
      await stopAll();
      throw error;
    }
  }

  /** Calls the flush function the way Cloud Scheduler does; one call at a time. */
  async flushOverHttp(force: boolean): Promise<void> {
    while (this.#flushing) await this.#flushing;
    const call = fetch(`${this.parts.flushUrl}${force ? "?force=true" : ""}`, { method: "POST" })
      .then(async (response) => {
        if (!response.ok) {
          this.options.logger.warn({
            event: "flush_http_failed",
            status: response.status,
            body: await response.text(),
          });
        }
      })
      .catch((error: unknown) =>
        this.options.logger.warn({ event: "flush_http_failed", error: String(error) }),
      );
    this.#flushing = call;
    try {
      await call;
    } finally {
      this.#flushing = null;
    }
  }

  /** Opens the shipper on the pipeline's S3, with its state under DATA_DIR/shipper. */
  async openShipper(): Promise<Shipper> {
    const e = this.parts.cloud.endpoints;
    const stateDir = join(this.options.dataDir, "shipper");
    await mkdir(stateDir, { recursive: true });
    const config = resolveShipperConfig({
      flags: {
        logs: [...this.options.logs],
        state_dir: stateDir,
        bucket: e.s3.bucket,
        s3_endpoint: e.s3.endpoint,
        region: e.region,
        node: "local-node",
        batch_max_age: this.options.batchMaxAge ?? "5s",
        listen: "",
        once: this.options.once,
        // As the stack configures the DaemonSet for its bucket: lock headers in the default's mode.
        ...lockFlags(this.parts.cloud.shipperLock),
      },
      env: {},
    });
    // In stream delivery the stream's age is what makes rows show up: locally it is the
    // same short batch age (the archive batches keep the policy's, and are cut on exit).
    const policy = this.options.policy;
    const shipperPolicy: NamespacePolicy =
      policy.analytics.delivery === "stream"
        ? {
            ...policy,
            analytics: { ...policy.analytics, stream_batch_max_age: this.options.batchMaxAge ?? "5s" },
          }
        : policy;
    this.#shipper = await Shipper.open({
      config,
      policy: shipperPolicy,
      logger: this.options.logger.child({ component: "shipper" }),
      version: this.options.version,
      s3: localS3Client(e.s3.endpoint, e.region),
    });
    return this.#shipper;
  }

  /**
   * Reconciles the whole archive against the warehouse: every time a record can hold
   * (years 0001-9999; the end stops a millisecond short of year 10000, which neither a
   * Date's ISO form nor the warehouses' TIMESTAMP can spell), not just 1970 to now, since a
   * log line's own time is what files it.
   */
  async reconcile(
    from = new Date(RECORD_MIN_EPOCH_SECONDS * 1000),
    to = new Date(RECORD_MAX_EPOCH_SECONDS * 1000 + 999),
    namespace?: string,
  ): Promise<ReconcileReport> {
    const e = this.parts.cloud.endpoints;
    const s3 = localS3Client(e.s3.endpoint, e.region);
    try {
      const storage = new Storage({ apiEndpoint: e.gcs.apiEndpoint, projectId: e.gcs.projectId });
      return await reconcile({
        s3,
        s3Bucket: e.s3.bucket,
        landing: storage.bucket(e.gcs.bucket),
        state: this.parts.loader.state,
        warehouse: this.parts.loader.warehouse,
        policy: this.options.policy,
        from,
        to,
        ...(namespace === undefined ? {} : { namespace }),
      });
    } finally {
      s3.destroy();
    }
  }

  /**
   * Delivers again the finalize event of every landed object the loader never queued. The
   * local Eventarc keeps undelivered events in memory only (Eventarc keeps them 24 h), so a
   * run stopped before it delivered them leaves such objects; start() calls this once. An
   * event delivered twice is loaded once.
   */
  async redeliverUnqueued(): Promise<number> {
    const e = this.parts.cloud.endpoints;
    const landing = new Storage({ apiEndpoint: e.gcs.apiEndpoint, projectId: e.gcs.projectId }).bucket(
      e.gcs.bucket,
    );
    const report = await this.reconcile();
    let delivered = 0;
    for (const o of report.objects) {
      if (o.verdict !== "not-queued") continue;
      const [resource] = await landing.file(o.key).getMetadata();
      this.parts.eventarc.deliver(resource as unknown as GcsObjectResource);
      delivered++;
    }
    if (delivered > 0) {
      this.options.logger.info({ event: "finalize_redelivered", objects: delivered }, "finalize_redelivered");
    }
    return delivered;
  }

  /**
   * Waits until every analytics object in S3 is loaded, quarantined or excluded: the
   * transfer has drained, events are delivered, and a forced flush has loaded the rest.
   */
  async settle(timeoutMs: number): Promise<ReconcileReport> {
    const deadline = Date.now() + timeoutMs;
    const inFlight = new Set(["queued", "not-transferred", "not-queued"]);
    await this.#redelivering;
    for (;;) {
      await this.parts.eventarc.idle();
      await this.flushOverHttp(true);
      const report = await this.reconcile();
      const waiting = report.objects.filter((o) => inFlight.has(o.verdict)).length;
      if (waiting === 0 || Date.now() >= deadline) return report;
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /** Rows per namespace across every table the loader made (stream objects mix namespaces). */
  async rowsByNamespace(): Promise<Map<string, number>> {
    const connection = await this.parts.cloud.warehouse.connect();
    try {
      const tables = (
        await connection.runAndReadAll(
          "SELECT table_schema, table_name FROM information_schema.columns WHERE column_name = 'batch_id'",
        )
      ).getRows() as [string, string][];
      const out = new Map<string, number>();
      if (tables.length === 0) return out;
      const q = (name: string) => `"${name.replaceAll('"', '""')}"`;
      const all = tables
        .map(([schema, table]) => `SELECT namespace FROM ${q(schema)}.${q(table)}`)
        .join(" UNION ALL ");
      const rows = (
        await connection.runAndReadAll(`SELECT namespace, count(*)::DOUBLE FROM (${all}) GROUP BY namespace`)
      ).getRows() as [string, number][];
      for (const [namespace, n] of rows) out.set(namespace, Number(n));
      return out;
    } finally {
      connection.closeSync();
    }
  }

  /**
   * Line-to-row freshness of loaded rows: when its batch's load finished minus the line's
   * timestamp. `sinceMs` keeps only rows loaded from then on (a live run on an old data dir).
   * A live run asks every few seconds for as long as it runs, so each done marker is read
   * once (they never change), a few at a time, and the rows are aggregated in DuckDB.
   */
  async freshness(
    sinceMs = 0,
  ): Promise<{ rows: number; p50Ms: number; p95Ms: number; maxMs: number } | null> {
    const state = this.parts.loader.state;
    const unread = (await state.list("done/")).map((d) => d.path).filter((p) => !this.#loadedAt.has(p));
    await forEachLimited(unread, MARKER_READS_AT_ONCE, async (path) => {
      const marker = await state.read<{ batchId: string; loadedAt: string }>(path);
      const at = marker ? Date.parse(marker.loadedAt) : Number.NaN;
      if (marker?.batchId && Number.isFinite(at)) this.#loadedAt.set(path, { batchId: marker.batchId, at });
    });
    const loads: string[] = [];
    for (const { batchId, at } of this.#loadedAt.values()) {
      if (at >= sinceMs) loads.push(`(${sqlString(batchId)}, ${at}::DOUBLE)`);
    }
    if (loads.length === 0) return null;
    const connection = await this.parts.cloud.warehouse.connect();
    try {
      // Every table the loader made, in any schema (routes to other datasets, {namespace} tables).
      const tables = (
        await connection.runAndReadAll(
          "SELECT table_schema, table_name FROM information_schema.columns WHERE column_name = 'batch_id'",
        )
      ).getRows() as [string, string][];
      if (tables.length === 0) return null;
      const q = (name: string) => `"${name.replaceAll('"', '""')}"`;
      const ages = tables
        .map(
          ([schema, table]) =>
            `SELECT l.loaded_ms - epoch_ms(t.timestamp) AS age FROM ${q(schema)}.${q(table)} t JOIN loads l USING (batch_id)`,
        )
        .join(" UNION ALL ");
      const [row] = (
        await connection.runAndReadAll(
          `WITH loads(batch_id, loaded_ms) AS (VALUES ${loads.join(", ")}), ages AS (${ages})
           SELECT count(*)::DOUBLE, quantile_disc(age, 0.5), quantile_disc(age, 0.95), max(age) FROM ages`,
        )
      ).getRows() as [number, number | null, number | null, number | null][];
      if (row === undefined || row[0] === 0) return null;
      return { rows: row[0], p50Ms: Number(row[1]), p95Ms: Number(row[2]), maxMs: Number(row[3]) };
    } finally {
      connection.closeSync();
    }
  }

  async stop(): Promise<void> {
    for (const stop of this.#stops.reverse()) await stop();
    this.#stops.length = 0;
  }
}
