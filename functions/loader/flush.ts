// The flush: turns each table's queued objects into at most one load job per window.
// It runs from a schedule (Cloud Scheduler → the HTTP function), may run concurrently
// with itself, and may die at any point; docs/loader.md#failure-analysis walks through
// each crash point. The invariants:
//   - a table has at most one open batch; a manifest is created with ifGenerationMatch=0,
//     so two flushers racing for the next sequence number end up on the same batch;
//   - a job ID is derived from (install, table, batch, attempt), so a retried flush
//     finds its own job (409 → jobs.get) instead of starting another;
//   - done/ markers are written before pending/ markers are removed.

import type { Bucket } from "@google-cloud/storage";
import type { StageLog } from "../../lib/log.ts";
import {
  type LoadJobStatus,
  type TableRef,
  type WarehousePort,
  WarehouseQuotaError,
} from "../warehouse/port.ts";
import { quarantineObject } from "./enqueue.ts";
import {
  type AttemptFile,
  type BatchManifest,
  type BatchOutcome,
  type DoneMarker,
  type ManifestEntry,
  markerPaths,
  type PausedMarker,
  type PendingMarker,
  parseBatchFile,
  parseTableKey,
  tableKey,
} from "./markers.ts";
import { forEachLimited, isNotFound, type StateStore } from "./state.ts";

export interface FlushContext {
  landing: Bucket;
  state: StateStore;
  warehouse: WarehousePort;
  quarantinePrefix: string;
  installId: string;
  /** The flush window for a table count (more tables, longer windows; see plan.ts). */
  windowMsFor: (tables: number) => number;
  /** Creates a destination table if missing; called before a table's first batch. */
  ensureTable: (table: TableRef) => Promise<void>;
  maxUrisPerJob: number;
  maxAttempts: number;
  deadlineMs: number;
  pollIntervalMs: number;
  /** Tables the policy routes to; tables with queued objects or open batches are added. */
  tables: readonly TableRef[];
  log: StageLog;
  now?: () => number;
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
  detail?: string;
}

export interface FlushOptions {
  /** Flush queued objects now, ignoring the window (`--once` runs, backfills). */
  force?: boolean;
}

// Errors where retrying the same sources under a new job ID can succeed.
const RETRYABLE_REASONS = new Set([
  "quotaExceeded",
  "rateLimitExceeded",
  "backendError",
  "internalError",
  "jobRateLimitExceeded",
  "jobBackendError",
  "jobInternalError",
  "timeout",
]);

const URI_CONCURRENCY = 16;

export async function flushAll(ctx: FlushContext, options: FlushOptions = {}): Promise<TableFlushResult[]> {
  const keys = new Set(ctx.tables.map(tableKey));
  for (const k of await ctx.state.listPrefixes("pending/")) keys.add(k);
  for (const k of await ctx.state.listPrefixes("batches/")) keys.add(k);
  const tables = [...keys].map(parseTableKey).filter((t): t is TableRef => t !== null);
  // Tables named by the policy plus those seen in the state (a {namespace} route adds tables
  // as namespaces appear): the window is planned for all of them.
  const windowMs = ctx.windowMsFor(tables.length);
  const results: TableFlushResult[] = [];
  // Tables are independent: one failing table must not hold the others back.
  await forEachLimited(tables, 4, async (table) => {
    try {
      results.push(await flushTable(ctx, table, windowMs, options));
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

async function indexBatches(ctx: FlushContext, table: TableRef): Promise<BatchIndex> {
  const dir = markerPaths.batchesDir(table);
  const index: BatchIndex = { manifests: new Map(), attempts: new Map(), finished: new Set() };
  for (const entry of await ctx.state.list(dir)) {
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

export async function flushTable(
  ctx: FlushContext,
  table: TableRef,
  windowMs: number,
  options: FlushOptions = {},
): Promise<TableFlushResult> {
  const name = tableKey(table);
  const now = ctx.now ?? Date.now;
  const paused = await ctx.state.read<PausedMarker>(markerPaths.paused(table));
  if (paused !== null) {
    const pending = (await ctx.state.list(markerPaths.pendingDir(table))).length;
    ctx.log("error", "table_paused", { table: name, reason: paused.reason, pending });
    return { table: name, status: "paused", detail: paused.reason, pending };
  }
  const index = await indexBatches(ctx, table);
  const open = [...index.manifests.keys()].filter((s) => !index.finished.has(s)).sort((a, b) => a - b);
  if (open.length > 0) {
    const seq = open[0] as number;
    const manifest = await ctx.state.read<BatchManifest>(markerPaths.manifest(table, seq));
    if (manifest === null) throw new Error(`batch manifest ${markerPaths.manifest(table, seq)} vanished`);
    return runBatch(ctx, manifest, index.attempts.get(seq) ?? []);
  }

  const pendingList = await ctx.state.list(markerPaths.pendingDir(table));
  if (pendingList.length === 0) return { table: name, status: "idle" };
  const lastSeq = Math.max(0, ...index.manifests.keys());
  const lastCreated = index.manifests.get(lastSeq) ?? 0;
  const nextAt = lastCreated + windowMs;
  if (!options.force && now() < nextAt && pendingList.length < ctx.maxUrisPerJob) {
    return {
      table: name,
      status: "waiting",
      pending: pendingList.length,
      detail: `next batch at ${new Date(nextAt).toISOString()}`,
    };
  }

  pendingList.sort((a, b) => a.created - b.created || a.path.localeCompare(b.path));
  const objects: ManifestEntry[] = [];
  await forEachLimited(pendingList.slice(0, ctx.maxUrisPerJob), URI_CONCURRENCY, async (entry) => {
    const id = entry.path.slice(markerPaths.pendingDir(table).length).replace(/\.json$/, "");
    const marker = await ctx.state.read<PendingMarker>(entry.path);
    if (marker === null) return;
    if (await ctx.state.exists(markerPaths.done(id))) {
      await ctx.state.remove(entry.path);
      return;
    }
    // BigQuery loads whatever generation is live, and cannot pin one: skip an object
    // overwritten since it was checked, so unchecked bytes never load.
    let live: string | undefined;
    try {
      const [meta] = await ctx.landing.file(marker.name).getMetadata();
      live = String(meta.generation);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    if (live !== marker.generation) {
      await quarantineObject(
        ctx,
        { name: marker.name, generation: marker.generation, sha256: marker.sha256 },
        live === undefined
          ? "object deleted from the landing bucket before it was loaded"
          : `object overwritten (generation ${marker.generation} → ${live}) before it was loaded`,
        table,
      );
      return;
    }
    objects.push({
      id,
      name: marker.name,
      uri: marker.uri,
      generation: marker.generation,
      sha256: marker.sha256,
      records: marker.records,
      batchId: marker.batchId,
    });
  });
  if (objects.length === 0) return { table: name, status: "idle" };
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
    // Another flusher made this batch first; finish theirs, whose contents are what counts.
    const theirs = await ctx.state.read<BatchManifest>(markerPaths.manifest(table, manifest.seq));
    if (theirs === null) throw new Error(`batch ${manifest.seq} of ${name} vanished after a 412`);
    return runBatch(ctx, theirs, []);
  }
  ctx.log("info", "batch_created", { table: name, batch: manifest.seq, objects: objects.length });
  return runBatch(ctx, manifest, []);
}

/** Job IDs: letters, digits, `_` and `-`; unique per install, table, batch and attempt. */
export function loadJobId(installId: string, table: TableRef, seq: number, attempt: number): string {
  const slug = `${table.dataset}_${table.table}`.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 900);
  return `logarchive_${installId}_${slug}_${String(seq).padStart(12, "0")}_a${attempt}`;
}

function labelValue(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, "_")
    .slice(0, 63);
}

async function runBatch(
  ctx: FlushContext,
  manifest: BatchManifest,
  attempts: number[],
): Promise<TableFlushResult> {
  const { table, seq } = manifest;
  const name = tableKey(table);
  const now = ctx.now ?? Date.now;
  const deadline = now() + ctx.deadlineMs;
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
        if (!(error instanceof WarehouseQuotaError)) throw error;
        // Nothing ran, so the same job ID is still free: the next flush inserts it again.
        ctx.log("warn", "load_job_deferred", {
          table: name,
          batch: seq,
          job_id: attempt.jobId,
          reason: error.reason,
        });
        return { table: name, status: "deferred", batch: seq, jobId: attempt.jobId, detail: error.message };
      }
      ctx.log("info", "load_job_inserted", {
        table: name,
        batch: seq,
        job_id: attempt.jobId,
        uris: attempt.uris.length,
      });
    }
    while (status.state !== "DONE") {
      if (now() >= deadline) {
        return { table: name, status: "running", batch: seq, jobId: attempt.jobId };
      }
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
    ctx.log("warn", "load_job_failed", {
      table: name,
      batch: seq,
      job_id: attempt.jobId,
      reason: status.errorResult.reason,
      message: status.errorResult.message,
      bad_sources: [...bad.keys()],
    });
    for (const [uri, reason] of bad) {
      const entry = manifest.objects.find((o) => o.uri === uri);
      if (entry === undefined) continue;
      await quarantineObject(
        ctx,
        { name: entry.name, generation: entry.generation, sha256: entry.sha256 },
        `load job ${attempt.jobId} failed on it: ${reason}`,
        table,
      );
      quarantined++;
    }
    const retryable = bad.size > 0 || RETRYABLE_REASONS.has(status.errorResult.reason);
    if (!retryable || attemptNo >= ctx.maxAttempts) {
      const reason = !retryable
        ? `load job ${attempt.jobId} failed and named no bad source: ${status.errorResult.reason}: ${status.errorResult.message}`
        : `${attemptNo} load jobs failed (max_attempts); last: ${status.errorResult.reason}: ${status.errorResult.message}`;
      return failBatch(ctx, manifest, attempt.jobId, reason, quarantined);
    }
    const remaining = attempt.uris.filter((u) => !bad.has(u));
    const backoffMs = bad.size > 0 ? 0 : Math.min(600_000, 15_000 * 2 ** (attemptNo - 1));
    attemptNo++;
    attempt = await createAttempt(
      ctx,
      manifest,
      attemptNo,
      remaining,
      backoffMs > 0 ? new Date(now() + backoffMs).toISOString() : undefined,
    );
  }
}

async function createAttempt(
  ctx: FlushContext,
  manifest: BatchManifest,
  n: number,
  uris: string[],
  notBefore?: string,
): Promise<AttemptFile> {
  const path = markerPaths.attempt(manifest.table, manifest.seq, n);
  const attempt: AttemptFile = {
    jobId: loadJobId(ctx.installId, manifest.table, manifest.seq, n),
    attempt: n,
    uris,
    createdAt: new Date((ctx.now ?? Date.now)()).toISOString(),
    ...(notBefore === undefined ? {} : { notBefore }),
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
  // done/ first: an enqueue racing with us either sees its pending marker still here (and
  // stops) or sees done/ (and takes its own marker back).
  await forEachLimited(manifest.objects, URI_CONCURRENCY, async (o) => {
    if (!loaded.has(o.uri)) return;
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
  await forEachLimited(manifest.objects, URI_CONCURRENCY, async (o) => {
    await ctx.state.remove(markerPaths.pending(table, o.id));
  });
  const outcome: BatchOutcome = {
    jobId: attempt.uris.length === 0 ? null : status.jobId,
    rows: status.outputRows ?? 0,
    objects: attempt.uris.length,
    quarantined: manifest.objects.length - attempt.uris.length,
    finishedAt: loadedAt,
  };
  await ctx.state.createIfAbsent(markerPaths.batchDone(table, seq), outcome);
  ctx.log("info", "batch_loaded", {
    table: tableKey(table),
    batch: seq,
    job_id: outcome.jobId,
    rows: outcome.rows,
    objects: outcome.objects,
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
