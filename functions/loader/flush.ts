// The flush: turns each table's queued objects into at most one load job per window.
// It runs from a schedule (Cloud Scheduler → the HTTP function), may run concurrently
// with itself, and may die at any point; docs/loader.md#failure-analysis walks through
// each crash point. The invariants:
//   - a table has at most one open batch; a manifest is created with ifGenerationMatch=0,
//     so two flushers racing for the next sequence number end up on the same batch;
//   - a job ID is derived from (install, table, batch, the manifest's GCS generation,
//     attempt), so a retried flush finds its own job (409 → jobs.get) instead of starting
//     another, and a batch number reused after state loss can never meet an old job;
//   - done/ markers are written before pending/ markers are removed, and only the pending
//     markers of objects the job loaded are removed.

import { createHash, randomBytes } from "node:crypto";
import type { Bucket } from "@google-cloud/storage";
import type { StageLog } from "../../lib/log.ts";
import { userMetadataValue } from "../../lib/object/metadata.ts";
import { classifyNamespace, type NamespacePolicy, streamNamespaceProblem } from "../../lib/policy/policy.ts";
import {
  type LoadJobStatus,
  type TableRef,
  type WarehousePort,
  WarehouseQuotaError,
} from "../warehouse/port.ts";
import { quarantineObject, removePendingIf } from "./enqueue.ts";
import { sha256Of } from "./inspect.ts";
import {
  type AttemptFile,
  type BatchManifest,
  type BatchOutcome,
  type DoneMarker,
  formatSeq,
  type ManifestEntry,
  markerPaths,
  type PausedMarker,
  type PendingMarker,
  parseBatchFile,
  parseTableKey,
  pendingMarkerFromMetadata,
  type TableHead,
  type TableJobCount,
  tableKey,
} from "./markers.ts";
import {
  forEachLimited,
  isNotFound,
  isPreconditionFailed,
  type ListedMarker,
  type StateStore,
} from "./state.ts";

export interface FlushContext {
  landing: Bucket;
  state: StateStore;
  warehouse: WarehousePort;
  policy: NamespacePolicy;
  quarantinePrefix: string;
  installId: string;
  /** The flush window for a table count (more tables, longer windows; see plan.ts). */
  windowMsFor: (tables: number) => number;
  /** Creates a destination table if missing; called before a table's first batch. */
  ensureTable: (table: TableRef) => Promise<void>;
  maxUrisPerJob: number;
  /** GCS calls one batch makes at once (flush_concurrency). */
  concurrency: number;
  /** Failed jobs a batch may use before its table is paused (quota failures do not count). */
  maxAttempts: number;
  /** Load jobs one table may start per UTC day, retries included; past it the table waits for the next day. */
  maxJobsPerTablePerDay: number;
  /** How long one flush run may take, all tables together. */
  deadlineMs: number;
  /**
   * When this run must stop starting work (epoch ms): the Loader sets it when the run begins, so
   * the sweep before the flush counts against the same flush_deadline. Default: now + deadlineMs.
   */
  runDeadline?: number;
  pollIntervalMs: number;
  /** Tables the policy routes to; tables with queued objects or open batches are added. */
  tables: readonly TableRef[];
  log: StageLog;
  now?: () => number;
  /** Test seams: points where a test parks one flush run while another runs. */
  hooks?: FlushHooks;
}

export interface FlushHooks {
  /** Before this run takes the lease of an attempt whose job has not started (and checks its objects). */
  beforeInsert?: (at: { table: string; batch: number; attempt: number }) => Promise<void>;
  /** After this run took the attempt's lease, before it checks the attempt's objects and inserts the job. */
  afterLease?: (at: { table: string; batch: number; attempt: number }) => Promise<void>;
}

export type TableFlushStatus = "idle" | "waiting" | "loaded" | "running" | "deferred" | "failed" | "paused";

export interface TableFlushResult {
  table: string;
  status: TableFlushStatus;
  batch?: number;
  jobId?: string;
  rows?: number;
  objects?: number;
  quarantined?: number;
  pending?: number;
  /** Batches loaded for the table in this run, when more than a window's one were. */
  batches?: number;
  detail?: string;
}

export interface FlushOptions {
  /** Flush queued objects now, ignoring the window (`--once` runs, backfills). */
  force?: boolean;
}

// Job failures where the same sources can load under a new job ID. Quota failures are
// separate: they wait longer and do not count toward max_attempts.
const TRANSIENT_REASONS = new Set([
  "backendError",
  "internalError",
  "jobBackendError",
  "jobInternalError",
  "timeout",
]);
const QUOTA_REASONS = new Set(["quotaExceeded", "rateLimitExceeded", "jobRateLimitExceeded"]);
/** A daily quota does not come back in minutes. */
const QUOTA_BACKOFF_MS = 30 * 60_000;

/**
 * What a new batch takes per object at flush_concurrency 16 (FLUSH_SPEED_MEASURED_AT_CONCURRENCY):
 * 15 ms (67 objects/s), measured with 50 ms held on every GCS request (benchmarks/loader.bench.ts
 * --latency-ms 50, docs/benchmarks.md#loader, 2026-12-07: 15.1 ms over 2,000 objects). A run starts
 * a new batch only if the time left before its deadline covers the table's last batch in the run
 * and this estimate at the run's concurrency (estimatedBatchMsPerObject), so a run does not begin
 * a full batch it cannot finish before the function's timeout. lib/economics prices the flush
 * with the same figures.
 */
export const ESTIMATED_BATCH_MS_PER_OBJECT = 15;
export const FLUSH_SPEED_MEASURED_AT_CONCURRENCY = 16;
/**
 * How the flush's time per object falls with flush_concurrency: × (16 / c)^0.89. Measured from
 * 16 to 32 with 50 ms a request: 1.85× faster (log2 1.85 = 0.89), in the same runs as above.
 * Past 32 it is an extrapolation: the function's CPU and the bucket's request rate stop it
 * somewhere.
 */
export const FLUSH_CONCURRENCY_SPEEDUP_EXPONENT = 0.89;

/** How much less time per object the flush takes at `concurrency` than at 16 (measured, above). */
export function flushConcurrencyFactor(concurrency: number): number {
  return (
    (FLUSH_SPEED_MEASURED_AT_CONCURRENCY / Math.max(1, concurrency)) ** FLUSH_CONCURRENCY_SPEEDUP_EXPONENT
  );
}

/** Estimated flush work per object, in ms, at a flush_concurrency. */
export function estimatedBatchMsPerObject(concurrency: number): number {
  return ESTIMATED_BATCH_MS_PER_OBJECT * flushConcurrencyFactor(concurrency);
}

interface RunContext extends FlushContext {
  /** End of this flush run, shared by every table. */
  deadline: number;
  /** Names this run in the attempt leases it takes. */
  runId: string;
}

export async function flushAll(ctx: FlushContext, options: FlushOptions = {}): Promise<TableFlushResult[]> {
  const now = ctx.now ?? Date.now;
  const run: RunContext = {
    ...ctx,
    deadline: ctx.runDeadline ?? now() + ctx.deadlineMs,
    runId: randomBytes(8).toString("hex"),
  };
  const keys = new Set(ctx.tables.map(tableKey));
  for (const k of await ctx.state.listPrefixes("pending/")) keys.add(k);
  for (const k of await ctx.state.listPrefixes("batches/")) keys.add(k);
  const tables = [...keys].map(parseTableKey).filter((t): t is TableRef => t !== null);
  // Tables named by the policy plus those seen in the state (a {namespace} route adds tables
  // as namespaces appear): the window is planned for all of them.
  const windowMs = ctx.windowMsFor(tables.length);
  // Start each run at another table, so that when a run ends at its deadline the same
  // tables are not always the ones left waiting.
  const shift = tables.length === 0 ? 0 : Math.floor(now() / 60_000) % tables.length;
  const ordered = [...tables.slice(shift), ...tables.slice(0, shift)];
  const results: TableFlushResult[] = [];
  // Tables are independent: one failing table must not hold the others back.
  await forEachLimited(ordered, 4, async (table) => {
    try {
      results.push(await flushTable(run, table, windowMs, options));
    } catch (error) {
      ctx.log("error", "flush_table_error", { table: tableKey(table), error: (error as Error).message });
      results.push({ table: tableKey(table), status: "deferred", detail: (error as Error).message });
    }
  });
  return results.sort((a, b) => a.table.localeCompare(b.table));
}

interface BatchIndex {
  manifests: Map<number, number>;
  attempts: Map<number, number[]>;
  finished: Set<number>;
}

async function indexBatches(ctx: FlushContext, table: TableRef, fromSeq: number): Promise<BatchIndex> {
  const dir = markerPaths.batchesDir(table);
  const index: BatchIndex = { manifests: new Map(), attempts: new Map(), finished: new Set() };
  // Batches before the head are finished (a batch is only made once the one before it is):
  // list from the head, so a table's history never has to be listed again.
  const from = fromSeq > 0 ? `${dir}${formatSeq(fromSeq)}` : undefined;
  for (const entry of await ctx.state.list(dir, from)) {
    const file = parseBatchFile(entry.path.slice(dir.length));
    if (file === null) continue;
    if (file.kind === "manifest") index.manifests.set(file.seq, entry.created);
    else if (file.kind === "attempt") {
      const list = index.attempts.get(file.seq) ?? [];
      list.push(file.attempt);
      index.attempts.set(file.seq, list);
    } else index.finished.add(file.seq);
  }
  return index;
}

/**
 * Flushes one table: finishes its open batch, then makes new batches while the backlog fills
 * whole jobs (one full job is all a longer wait could give, so it never waits for the
 * window), within the run's deadline and the table's daily job guard. A batch that would not
 * be full waits for the table's window.
 */
export async function flushTable(
  ctx: RunContext,
  table: TableRef,
  windowMs: number,
  options: FlushOptions = {},
): Promise<TableFlushResult> {
  const now = ctx.now ?? Date.now;
  let loaded: TableFlushResult | null = null;
  let batches = 0;
  /** How long the table's last batch in this run took, start to finish. */
  let lastBatchMs: number | undefined;
  for (;;) {
    const started = now();
    const { result, more } = await flushTableOnce(ctx, table, windowMs, options, lastBatchMs);
    if (result.status === "loaded") {
      lastBatchMs = now() - started;
      batches++;
      loaded =
        loaded === null
          ? result
          : {
              ...result,
              rows: (loaded.rows ?? 0) + (result.rows ?? 0),
              objects: (loaded.objects ?? 0) + (result.objects ?? 0),
              quarantined: (loaded.quarantined ?? 0) + (result.quarantined ?? 0),
            };
      if (more && now() < ctx.deadline) continue;
      return { ...loaded, batches };
    }
    if (loaded === null) return result;
    // Batches were loaded before this one waited or stopped: report what loaded, and why it stopped.
    if (result.status === "idle" || result.status === "waiting")
      return {
        ...loaded,
        batches,
        ...(result.pending === undefined ? {} : { pending: result.pending }),
        ...(result.detail === undefined ? {} : { detail: result.detail }),
      };
    if (result.status === "deferred" || result.status === "running")
      return { ...loaded, batches, detail: `then batch ${result.batch}: ${result.detail ?? result.status}` };
    return {
      ...result,
      batches,
      detail: `${batches} batch(es) loaded first; then: ${result.detail ?? result.status}`,
    };
  }
}

/**
 * The pending markers of the table's next batch: at most `limit`, from after the cursor the
 * last batch left (wrapping to the start), so one run never lists all of pending/ and a
 * backlog larger than a job is taken round-robin instead of by name.
 */
async function pendingPage(
  ctx: FlushContext,
  table: TableRef,
  cursor: string | undefined,
  limit: number,
): Promise<ListedMarker[]> {
  const dir = markerPaths.pendingDir(table);
  if (cursor === undefined) return ctx.state.list(dir, undefined, { limit });
  // From the cursor on (inclusive: its own marker is still queued only if it did not load),
  // then from the start up to it.
  const tail = await ctx.state.list(dir, cursor, { limit });
  if (tail.length >= limit) return tail;
  const head = await ctx.state.list(dir, undefined, { limit: limit - tail.length, endBefore: cursor });
  return [...tail, ...head];
}

async function flushTableOnce(
  ctx: RunContext,
  table: TableRef,
  windowMs: number,
  options: FlushOptions,
  lastBatchMs: number | undefined,
): Promise<{ result: TableFlushResult; more: boolean }> {
  const name = tableKey(table);
  const now = ctx.now ?? Date.now;
  const done = (result: TableFlushResult, more = false) => ({ result, more });
  // Past the deadline (the sweep, or other tables, used the run): start nothing, the next run goes on.
  if (now() >= ctx.deadline)
    return done({
      table: name,
      status: "waiting",
      detail: "flush run deadline reached; the next run goes on",
    });
  const paused = await ctx.state.read<PausedMarker>(markerPaths.paused(table));
  if (paused !== null) {
    // A count for the log, bounded: a paused table's queue can be large.
    const pending = (
      await ctx.state.list(markerPaths.pendingDir(table), undefined, { limit: ctx.maxUrisPerJob })
    ).length;
    ctx.log("error", "table_paused", { table: name, reason: paused.reason, pending });
    return done({ table: name, status: "paused", detail: paused.reason, pending });
  }
  const head = await ctx.state.read<TableHead>(markerPaths.tableHead(table));
  const index = await indexBatches(ctx, table, head?.seq ?? 0);
  const open = [...index.manifests.keys()].filter((s) => !index.finished.has(s)).sort((a, b) => a - b);
  if (open.length > 0) {
    const seq = open[0] as number;
    const manifest = await ctx.state.read<BatchManifest>(markerPaths.manifest(table, seq));
    if (manifest === null) throw new Error(`batch manifest ${markerPaths.manifest(table, seq)} vanished`);
    return done(await runBatch(ctx, manifest, index.attempts.get(seq) ?? []), true);
  }

  const pendingList = await pendingPage(ctx, table, head?.pendingCursor, ctx.maxUrisPerJob);
  if (pendingList.length === 0) return done({ table: name, status: "idle" });
  const full = pendingList.length >= ctx.maxUrisPerJob;
  const lastSeq = Math.max(head?.seq ?? 0, 0, ...index.manifests.keys());
  const lastCreated = Math.max(
    index.manifests.get(lastSeq) ?? 0,
    head?.seq === lastSeq ? Date.parse(head.createdAt) : 0,
  );
  // One batch per window while the queue is smaller than a job; a full job starts at once,
  // as many as the backlog fills (the daily job guard bounds them).
  const nextAt = lastCreated + windowMs;
  if (!options.force && !full && now() < nextAt) {
    return done({
      table: name,
      status: "waiting",
      pending: pendingList.length,
      detail: `next batch at ${new Date(nextAt).toISOString()}`,
    });
  }

  // A new batch's object work (done/ checks, live checks, the job, done/ and pending/) must fit
  // in what is left of the run, or the run would overrun the function's timeout.
  const neededMs = Math.max(
    lastBatchMs ?? 0,
    pendingList.length * estimatedBatchMsPerObject(ctx.concurrency),
  );
  const leftMs = ctx.deadline - now();
  if (leftMs < neededMs) {
    return done({
      table: name,
      status: "waiting",
      pending: pendingList.length,
      detail: `flush run deadline: a batch of ${pendingList.length} needs about ${Math.ceil(neededMs / 1000)}s, ${Math.max(0, Math.floor(leftMs / 1000))}s left; the next run takes it`,
    });
  }

  const candidates: ManifestEntry[] = [];
  await forEachLimited(pendingList, ctx.concurrency, async (entry) => {
    const id = entry.path.slice(markerPaths.pendingDir(table).length).replace(/\.json$/, "");
    // The listing carries the marker in its metadata (the generation it listed, so the two agree);
    // only a marker written without it (by an older loader, or too large) is read.
    const marker =
      pendingMarkerFromMetadata(entry.metadata) ?? (await ctx.state.read<PendingMarker>(entry.path));
    if (marker === null) return;
    if (await ctx.state.exists(markerPaths.done(id))) {
      await ctx.state.remove(entry.path);
      return;
    }
    // The policy may have changed since the object was queued: check it again (a stream
    // object: each of its records' namespaces against its table).
    const problem =
      marker.namespaces === undefined
        ? excludedNamespace(ctx.policy, marker.namespace)
        : marker.namespaces
            .map((ns) => {
              const why = streamNamespaceProblem(ctx.policy, ns, table);
              return why === null ? null : `namespace ${ns} ${why}`;
            })
            .find((why) => why !== null);
    if (problem !== null && problem !== undefined) {
      ctx.log("info", "object_excluded", {
        object: marker.name,
        namespace: marker.namespaces?.join(",") ?? marker.namespace,
        reason: `policy changed after it was queued: ${problem}`,
      });
      await ctx.state.remove(entry.path);
      return;
    }
    candidates.push({
      id,
      name: marker.name,
      uri: marker.uri,
      generation: marker.generation,
      sha256: marker.sha256,
      records: marker.records,
      batchId: marker.batchId,
      ...(entry.generation === "" ? {} : { pendingGeneration: entry.generation }),
    });
  });
  // No live-generation check here: runBatch checks every object under the attempt's lease, the
  // only check a job's sources depend on (docs/loader.md#one-generation-check).
  const objects = candidates;
  const cursor = pendingList.at(-1)?.path;
  if (objects.length === 0) {
    // Nothing in this page can load; move the cursor past it so the next page is another.
    if (cursor !== undefined && head !== null)
      await ctx.state.put(markerPaths.tableHead(table), { ...head, pendingCursor: cursor });
    return done({ table: name, status: "idle", pending: pendingList.length }, full);
  }
  await ctx.ensureTable(table);
  objects.sort((a, b) => a.name.localeCompare(b.name));
  const manifest: BatchManifest = {
    table,
    seq: lastSeq + 1,
    createdAt: new Date(now()).toISOString(),
    objects,
  };
  const created = await ctx.state.createIfAbsent(markerPaths.manifest(table, manifest.seq), manifest);
  if (!created) {
    // Another flusher made this batch first; theirs is what counts. It may even be finished.
    if (
      (await ctx.state.exists(markerPaths.batchDone(table, manifest.seq))) ||
      (await ctx.state.exists(markerPaths.batchFailed(table, manifest.seq)))
    ) {
      return done({
        table: name,
        status: "idle",
        batch: manifest.seq,
        detail: "another flush finished this batch",
      });
    }
    const theirs = await ctx.state.read<BatchManifest>(markerPaths.manifest(table, manifest.seq));
    if (theirs === null) throw new Error(`batch ${manifest.seq} of ${name} vanished after a 412`);
    return done(await runBatch(ctx, theirs, []), true);
  }
  const current = await ctx.state.read<TableHead>(markerPaths.tableHead(table));
  if ((current?.seq ?? 0) < manifest.seq) {
    await ctx.state.put(markerPaths.tableHead(table), {
      seq: manifest.seq,
      createdAt: manifest.createdAt,
      ...(cursor === undefined ? {} : { pendingCursor: cursor }),
    } satisfies TableHead);
  }
  ctx.log("info", "batch_created", { table: name, batch: manifest.seq, objects: objects.length });
  return done(await runBatch(ctx, manifest, []), full);
}

/**
 * The entries whose object is still the generation that was queued. BigQuery loads
 * whatever generation is live and cannot pin one, so an object overwritten since it was queued
 * must not be in a job: with the same body (a re-transfer) it waits for its new event to
 * update its marker (counted in `requeued`); with another body, or deleted, it is quarantined,
 * and a new body's event reports the conflict.
 */
async function liveObjects(
  ctx: FlushContext,
  table: TableRef,
  entries: readonly ManifestEntry[],
): Promise<{ live: ManifestEntry[]; requeued: number }> {
  const live: ManifestEntry[] = [];
  let requeued = 0;
  await forEachLimited(entries, ctx.concurrency, async (entry) => {
    let generation: string | undefined;
    let sha256: string | undefined;
    try {
      const [meta] = await ctx.landing.file(entry.name).getMetadata();
      generation = String(meta.generation);
      sha256 = userMetadataValue(meta.metadata as Record<string, string> | undefined, "sha256");
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    if (generation === entry.generation) {
      live.push(entry);
      return;
    }
    if (generation !== undefined && sha256 === entry.sha256) {
      requeued++;
      ctx.log("info", "object_regenerated", {
        object: entry.name,
        generation: entry.generation,
        live: generation,
      });
      return;
    }
    await quarantineObject(
      ctx,
      { name: entry.name, generation: entry.generation, sha256: entry.sha256 },
      generation === undefined
        ? "object deleted from the landing bucket before it was loaded"
        : `object overwritten with another body (generation ${entry.generation} → ${generation}) before it was loaded`,
      table,
    );
  });
  return { live, requeued };
}

/**
 * Job IDs: letters, digits, `_` and `-`, unique per install, table, batch and attempt. The
 * manifest's GCS generation makes a batch number reused after its files expired a new ID.
 */
export function loadJobId(
  installId: string,
  table: TableRef,
  seq: number,
  manifestGeneration: string,
  attempt: number,
): string {
  const key = tableKey(table);
  const hash = createHash("sha256").update(key).digest("hex").slice(0, 8);
  const slug = key.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 800);
  return `logarchive_${installId}_${slug}_${hash}_${formatSeq(seq)}_${manifestGeneration}_a${attempt}`;
}

function labelValue(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, "_")
    .slice(0, 63);
}

function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/**
 * Counts a job against the table's daily guard before it is inserted; false when the table
 * has used its day (BigQuery counts failed jobs too, so the guard counts every insert).
 */
async function takeJobSlot(ctx: FlushContext, table: TableRef): Promise<boolean> {
  const path = markerPaths.tableJobs(table, utcDay((ctx.now ?? Date.now)()));
  for (let tries = 0; tries < 10; tries++) {
    const current = await ctx.state.readVersioned<TableJobCount>(path);
    const jobs = current?.value.jobs ?? 0;
    if (jobs >= ctx.maxJobsPerTablePerDay) return false;
    const written =
      current === null
        ? await ctx.state.createIfAbsent(path, { jobs: 1 })
        : await ctx.state.replaceIfGeneration(path, { jobs: jobs + 1 }, current.generation);
    if (written) return true;
  }
  throw new Error(`could not update ${path}: too many concurrent flushes`);
}

function sameUris(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const sorted = [...b].sort();
  return [...a].sort().every((u, i) => u === sorted[i]);
}

async function manifestGeneration(ctx: FlushContext, manifest: BatchManifest): Promise<string> {
  const [meta] = await ctx.state.file(markerPaths.manifest(manifest.table, manifest.seq)).getMetadata();
  return String(meta.generation);
}

async function runBatch(
  ctx: RunContext,
  manifest: BatchManifest,
  attempts: number[],
): Promise<TableFlushResult> {
  const { table, seq } = manifest;
  const name = tableKey(table);
  const now = ctx.now ?? Date.now;
  let attemptNo = attempts.length === 0 ? 0 : Math.max(...attempts);
  let attempt: AttemptFile | null =
    attemptNo === 0 ? null : await ctx.state.read<AttemptFile>(markerPaths.attempt(table, seq, attemptNo));
  let quarantined = 0;
  if (attempt === null) {
    attemptNo = 1;
    attempt = await createAttempt(
      ctx,
      manifest,
      1,
      manifest.objects.map((o) => o.uri),
      0,
    );
  }

  for (;;) {
    if (attempt.uris.length === 0) {
      return finishBatch(ctx, manifest, attempt, {
        state: "DONE",
        jobId: attempt.jobId,
        errors: [],
        sourceUris: [],
        outputRows: 0,
      });
    }
    if (attempt.notBefore !== undefined && Date.parse(attempt.notBefore) > now()) {
      return {
        table: name,
        status: "deferred",
        batch: seq,
        jobId: attempt.jobId,
        detail: `retry after ${attempt.notBefore}`,
      };
    }
    let status = await ctx.warehouse.getLoadJob(attempt.jobId);
    if (status === null) {
      // Not started yet: the objects may have changed since the batch was made (quota
      // waits can last hours). Start a job only over objects that are still what was checked,
      // checked while this run holds the attempt's lease: an overwrite that lands before the
      // lease is taken is seen here, and no other run can insert this attempt's job meanwhile.
      // (A check before the lease would not do: an overwrite between it and the lease would be
      // loaded under the old claim.)
      const uris = new Set(attempt.uris);
      const entries = manifest.objects.filter((o) => uris.has(o.uri));
      await ctx.hooks?.beforeInsert?.({ table: name, batch: seq, attempt: attemptNo });
      const lease = await leaseAttempt(ctx, table, seq, attemptNo);
      if (lease === "abandoned") {
        // Another run found an object changed and moved on to n+1: so do we, with a fresh check.
        const fresh = await liveObjects(ctx, table, entries);
        attemptNo++;
        attempt = await createAttempt(
          ctx,
          manifest,
          attemptNo,
          fresh.live.map((o) => o.uri),
          attempt.failures ?? 0,
          undefined,
          (attempt.requeued ?? 0) + fresh.requeued,
        );
        continue;
      }
      if (lease !== "leased") return leaseHeld(name, seq, attempt.jobId, lease);
      await ctx.hooks?.afterLease?.({ table: name, batch: seq, attempt: attemptNo });
      const { live, requeued } = await liveObjects(ctx, table, entries);
      if (live.length !== entries.length) {
        // Attempt n+1 exists only once n is marked abandoned, which no run can lease after;
        // this run holds n's lease, so it can abandon n.
        const abandoned = await abandonAttempt(ctx, table, seq, attemptNo);
        if (abandoned !== true) return leaseHeld(name, seq, attempt.jobId, abandoned);
        attemptNo++;
        attempt = await createAttempt(
          ctx,
          manifest,
          attemptNo,
          live.map((o) => o.uri),
          attempt.failures ?? 0,
          undefined,
          (attempt.requeued ?? 0) + requeued,
        );
        continue;
      }
      if (!(await takeJobSlot(ctx, table))) {
        await releaseLease(ctx, table, seq, attemptNo);
        const tomorrow = `${utcDay(now() + 86_400_000)}T00:00:00Z`;
        ctx.log("error", "table_job_guard", {
          table: name,
          batch: seq,
          limit: ctx.maxJobsPerTablePerDay,
          until: tomorrow,
        });
        return {
          table: name,
          status: "deferred",
          batch: seq,
          jobId: attempt.jobId,
          detail: `daily load-job guard (${ctx.maxJobsPerTablePerDay}) reached; waits for ${tomorrow}`,
        };
      }
      try {
        ({ status } = await ctx.warehouse.insertLoadJob({
          jobId: attempt.jobId,
          destination: table,
          sourceUris: attempt.uris,
          labels: {
            logarchive_table: labelValue(name),
            logarchive_batch: String(seq),
            logarchive_attempt: String(attemptNo),
            logarchive_install: labelValue(ctx.installId),
          },
        }));
      } catch (error) {
        if (error instanceof WarehouseQuotaError) {
          // Nothing ran, so the same job ID is still free: the next flush inserts it again.
          await releaseLease(ctx, table, seq, attemptNo);
          ctx.log("warn", "load_job_deferred", {
            table: name,
            batch: seq,
            job_id: attempt.jobId,
            reason: error.reason,
          });
          return { table: name, status: "deferred", batch: seq, jobId: attempt.jobId, detail: error.message };
        }
        const code = (error as { code?: unknown }).code;
        if (
          typeof code === "number" &&
          code >= 400 &&
          code < 500 &&
          code !== 408 &&
          code !== 409 &&
          code !== 429
        ) {
          // Refused for good (access denied, dataset gone, invalid request): retrying every
          // minute would not help; pause the table until someone fixes it.
          return failBatch(
            ctx,
            manifest,
            attempt.jobId,
            `jobs.insert refused (${code}): ${(error as Error).message}`,
            quarantined,
          );
        }
        throw error;
      }
      ctx.log("info", "load_job_inserted", {
        table: name,
        batch: seq,
        job_id: attempt.jobId,
        uris: attempt.uris.length,
      });
    }
    if (!sameUris(status.sourceUris, attempt.uris) && status.sourceUris.length > 0) {
      // Never take another job's outcome for this batch's: that would mark unloaded objects done.
      return failBatch(
        ctx,
        manifest,
        attempt.jobId,
        `job ${attempt.jobId} exists with other source URIs; refusing to reuse it`,
        quarantined,
      );
    }
    while (status.state !== "DONE") {
      if (now() >= ctx.deadline) return { table: name, status: "running", batch: seq, jobId: attempt.jobId };
      await new Promise((r) => setTimeout(r, ctx.pollIntervalMs));
      status = (await ctx.warehouse.getLoadJob(attempt.jobId)) ?? status;
    }
    if (status.errorResult === undefined) return finishBatch(ctx, manifest, attempt, status);

    // The job failed and loaded nothing. Quarantine the sources it names, then retry the
    // rest under the next attempt's job ID (a failed job's ID cannot be reused).
    const uris = new Set(attempt.uris);
    const bad = new Map<string, string>();
    for (const e of [status.errorResult, ...status.errors]) {
      if (e.location !== undefined && uris.has(e.location) && !bad.has(e.location))
        bad.set(e.location, `${e.reason}: ${e.message}`);
    }
    const reason = status.errorResult.reason;
    ctx.log("warn", "load_job_failed", {
      table: name,
      batch: seq,
      job_id: attempt.jobId,
      reason,
      message: status.errorResult.message,
      bad_sources: [...bad.keys()],
    });
    for (const [uri, why] of bad) {
      const entry = manifest.objects.find((o) => o.uri === uri);
      if (entry === undefined) continue;
      // Identify it by the bytes the job read, not by its metadata's claim: a fixed copy
      // whose metadata is the same must not look like this one.
      const actual = await sha256Of(ctx.landing.file(entry.name, { generation: entry.generation }));
      await quarantineObject(
        ctx,
        {
          name: entry.name,
          generation: entry.generation,
          sha256: actual ?? entry.sha256,
          queuedSha256: entry.sha256,
        },
        `load job ${attempt.jobId} failed on it: ${why}`,
        table,
      );
      quarantined++;
    }
    const quota = bad.size === 0 && QUOTA_REASONS.has(reason);
    const failures = (attempt.failures ?? 0) + (quota ? 0 : 1);
    const retryable = bad.size > 0 || quota || TRANSIENT_REASONS.has(reason);
    if (!retryable || failures >= ctx.maxAttempts) {
      const why = !retryable
        ? `load job ${attempt.jobId} failed and named no bad source: ${reason}: ${status.errorResult.message}`
        : `${failures} load jobs of this batch failed (max_attempts); last: ${reason}: ${status.errorResult.message}`;
      return failBatch(ctx, manifest, attempt.jobId, why, quarantined);
    }
    const remaining = attempt.uris.filter((u) => !bad.has(u));
    const backoffMs =
      bad.size > 0
        ? 0
        : reason === "quotaExceeded"
          ? QUOTA_BACKOFF_MS
          : Math.min(600_000, 15_000 * 2 ** Math.max(0, attemptNo - 1));
    attemptNo++;
    attempt = await createAttempt(
      ctx,
      manifest,
      attemptNo,
      remaining,
      failures,
      backoffMs > 0 ? new Date(now() + backoffMs).toISOString() : undefined,
      attempt.requeued ?? 0,
    );
  }
}

/**
 * How long a run's lease on an attempt lasts: the time between taking it and jobs.insert
 * reaching BigQuery. Longer than a function invocation may run (540 s), so a run that took
 * the lease and stalled can no longer insert once another run may abandon the attempt.
 */
export const ATTEMPT_LEASE_MS = 10 * 60_000;

type LeaseOutcome = "leased" | "abandoned" | { heldUntil: string };

/**
 * Compare-and-swap on the attempt file: a run may insert attempt n's job only while it holds
 * n's lease, and no run may lease an abandoned attempt. Runs racing for one lease both get
 * it only when both write the same job ID (a renewal after the lease expired), and BigQuery
 * answers the second insert with 409.
 */
async function leaseAttempt(ctx: RunContext, table: TableRef, seq: number, n: number): Promise<LeaseOutcome> {
  const path = markerPaths.attempt(table, seq, n);
  const now = ctx.now ?? Date.now;
  for (let tries = 0; tries < 10; tries++) {
    const current = await ctx.state.readVersioned<AttemptFile>(path);
    if (current === null) throw new Error(`attempt file ${path} vanished`);
    const file = current.value;
    if (file.abandonedAt !== undefined) return "abandoned";
    if (file.lease !== undefined && file.lease.holder !== ctx.runId && Date.parse(file.lease.until) > now())
      return { heldUntil: file.lease.until };
    const leased: AttemptFile = {
      ...file,
      lease: { holder: ctx.runId, until: new Date(now() + ATTEMPT_LEASE_MS).toISOString() },
    };
    if (await ctx.state.replaceIfGeneration(path, leased, current.generation)) return "leased";
  }
  throw new Error(`could not lease ${path}: too many concurrent flushes`);
}

/** Marks attempt n abandoned unless another run holds its lease; true once it is abandoned. */
async function abandonAttempt(
  ctx: RunContext,
  table: TableRef,
  seq: number,
  n: number,
): Promise<true | { heldUntil: string }> {
  const path = markerPaths.attempt(table, seq, n);
  const now = ctx.now ?? Date.now;
  for (let tries = 0; tries < 10; tries++) {
    const current = await ctx.state.readVersioned<AttemptFile>(path);
    if (current === null) throw new Error(`attempt file ${path} vanished`);
    const file = current.value;
    if (file.abandonedAt !== undefined) return true;
    if (file.lease !== undefined && file.lease.holder !== ctx.runId && Date.parse(file.lease.until) > now())
      return { heldUntil: file.lease.until };
    const { lease: _, ...rest } = file;
    const abandoned: AttemptFile = { ...rest, abandonedAt: new Date(now()).toISOString() };
    if (await ctx.state.replaceIfGeneration(path, abandoned, current.generation)) return true;
  }
  throw new Error(`could not abandon ${path}: too many concurrent flushes`);
}

/** Gives back this run's lease when it inserted nothing (a refused insert, the daily guard). */
async function releaseLease(ctx: RunContext, table: TableRef, seq: number, n: number): Promise<void> {
  const path = markerPaths.attempt(table, seq, n);
  const current = await ctx.state.readVersioned<AttemptFile>(path);
  if (current === null || current.value.lease?.holder !== ctx.runId) return;
  const { lease: _, ...rest } = current.value;
  // Lost to another run's write: that run decides now; an unreleased lease just expires.
  await ctx.state.replaceIfGeneration(path, rest, current.generation);
}

function leaseHeld(table: string, seq: number, jobId: string, held: { heldUntil: string }): TableFlushResult {
  return {
    table,
    status: "deferred",
    batch: seq,
    jobId,
    detail: `another flush run is starting this attempt's job (lease until ${held.heldUntil})`,
  };
}

async function createAttempt(
  ctx: FlushContext,
  manifest: BatchManifest,
  n: number,
  uris: string[],
  failures: number,
  notBefore?: string,
  requeued = 0,
): Promise<AttemptFile> {
  const path = markerPaths.attempt(manifest.table, manifest.seq, n);
  const attempt: AttemptFile = {
    jobId: loadJobId(ctx.installId, manifest.table, manifest.seq, await manifestGeneration(ctx, manifest), n),
    attempt: n,
    uris,
    failures,
    createdAt: new Date((ctx.now ?? Date.now)()).toISOString(),
    ...(notBefore === undefined ? {} : { notBefore }),
    ...(requeued === 0 ? {} : { requeued }),
  };
  if (await ctx.state.createIfAbsent(path, attempt)) return attempt;
  // A concurrent flusher wrote this attempt first; its URIs are the ones its job loads.
  const theirs = await ctx.state.read<AttemptFile>(path);
  if (theirs === null) throw new Error(`attempt file ${path} vanished after a 412`);
  return theirs;
}

async function finishBatch(
  ctx: FlushContext,
  manifest: BatchManifest,
  attempt: AttemptFile,
  status: LoadJobStatus,
): Promise<TableFlushResult> {
  const { table, seq } = manifest;
  const loaded = new Set(attempt.uris);
  const loadedAt = new Date((ctx.now ?? Date.now)()).toISOString();
  const loadedObjects = manifest.objects.filter((o) => loaded.has(o.uri));
  // done/ first: an enqueue racing with us either sees its pending marker still here (and
  // stops) or sees done/ (and takes its own marker back).
  await forEachLimited(loadedObjects, ctx.concurrency, async (o) => {
    const marker: DoneMarker = {
      name: o.name,
      sha256: o.sha256,
      table,
      jobId: status.jobId,
      records: o.records,
      batchId: o.batchId,
      loadedAt,
    };
    await ctx.state.createIfAbsent(markerPaths.done(o.id), marker);
  });
  // Only the loaded objects leave the queue. A quarantined object left it when it was set
  // aside, and a fixed copy uploaded since under the same name must stay queued. The marker
  // the batch listed is deleted by its generation (ifGenerationMatch: GCS answers 412 when the
  // live marker is another generation, https://cloud.google.com/storage/docs/request-preconditions),
  // so no read-back is needed: a marker rewritten since (a re-transfer's new generation, or a
  // fixed copy queued again) is not this one and stays; if it names a loaded object, the next
  // flush's done/ check clears it.
  await forEachLimited(loadedObjects, ctx.concurrency, async (o) => {
    if (o.pendingGeneration === undefined) {
      await removePendingIf(ctx.state, table, o.id, o.sha256);
      return;
    }
    try {
      await ctx.state
        .file(markerPaths.pending(table, o.id))
        .delete({ ifGenerationMatch: o.pendingGeneration });
    } catch (error) {
      if (!isNotFound(error) && !isPreconditionFailed(error)) throw error;
    }
  });
  const outcome: BatchOutcome = {
    jobId: attempt.uris.length === 0 ? null : status.jobId,
    rows: status.outputRows ?? 0,
    objects: attempt.uris.length,
    // Left out of the job: quarantined, except those waiting for their newer generation.
    quarantined: manifest.objects.length - attempt.uris.length - (attempt.requeued ?? 0),
    finishedAt: loadedAt,
  };
  await ctx.state.createIfAbsent(markerPaths.batchDone(table, seq), outcome);
  ctx.log("info", "batch_loaded", {
    table: tableKey(table),
    batch: seq,
    job_id: outcome.jobId,
    rows: outcome.rows,
    objects: outcome.objects,
    not_loaded: manifest.objects.length - attempt.uris.length,
    quarantined: outcome.quarantined,
    oldest_object_age_ms: Date.now() - Date.parse(manifest.createdAt),
  });
  return {
    table: tableKey(table),
    status: "loaded",
    batch: seq,
    ...(outcome.jobId === null ? {} : { jobId: outcome.jobId }),
    rows: outcome.rows,
    objects: outcome.objects,
    quarantined: outcome.quarantined,
  };
}

async function failBatch(
  ctx: FlushContext,
  manifest: BatchManifest,
  jobId: string,
  reason: string,
  quarantined: number,
): Promise<TableFlushResult> {
  const { table, seq } = manifest;
  const at = new Date((ctx.now ?? Date.now)()).toISOString();
  // The batch's objects stay queued (pending/ is untouched): nothing is lost, and they load
  // in the next batch once someone fixes the cause and resumes the table.
  const outcome: BatchOutcome = { jobId, rows: 0, objects: 0, quarantined, finishedAt: at, reason };
  await ctx.state.createIfAbsent(markerPaths.batchFailed(table, seq), outcome);
  const paused: PausedMarker = { reason, batch: seq, pausedAt: at };
  await ctx.state.createIfAbsent(markerPaths.paused(table), paused);
  ctx.log("error", "table_paused", { table: tableKey(table), batch: seq, job_id: jobId, reason });
  return { table: tableKey(table), status: "failed", batch: seq, jobId, detail: reason, quarantined };
}

/** Resumes a paused table: its queued objects go into the next batch. */
export async function resumeTable(state: StateStore, table: TableRef): Promise<boolean> {
  const paused = await state.exists(markerPaths.paused(table));
  if (paused) await state.remove(markerPaths.paused(table));
  return paused;
}

/** Why a per-namespace object's namespace is no longer loaded, or null. */
function excludedNamespace(policy: NamespacePolicy, namespace: string): string | null {
  const classification = classifyNamespace(policy, namespace);
  if (!classification.archived) return classification.reason;
  return classification.destination === null ? "not an analytics namespace" : null;
}
