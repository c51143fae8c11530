// The loader: the finalize handler (enqueue) and the scheduled flush, over one GCS state
// store and one warehouse adapter. functions/index.ts wires it to the functions-framework
// from the environment; `logarchive local` wires it to the local cloud.

import { randomBytes } from "node:crypto";
import type { Storage } from "@google-cloud/storage";
import { streamPrefix, tierPrefix } from "../../lib/keys/layout.ts";
import type { StageLog } from "../../lib/log.ts";
import { destinations, type NamespacePolicy } from "../../lib/policy/policy.ts";
import type { TableRef, WarehousePort } from "../warehouse/port.ts";
import type { LoaderConfig } from "./config.ts";
import {
  DEFAULT_SWEEP_SETTINGS,
  type EnqueueOutcome,
  type EnqueueResult,
  enqueueObject,
  type FinalizedObject,
  type SweepResult,
  type SweepSettings,
  sweepLanding,
} from "./enqueue.ts";
import { type FlushHooks, type FlushOptions, flushAll, type TableFlushResult } from "./flush.ts";
import { markerPaths } from "./markers.ts";
import { BIGQUERY_QUOTAS, type LoadPlan, NO_QUOTAS, type PlanInput, planLoadWindows } from "./plan.ts";
import { StateStore } from "./state.ts";

export interface LoaderParts {
  config: LoaderConfig;
  policy: NamespacePolicy;
  storage: Storage;
  warehouse: WarehousePort;
  log: StageLog;
  now?: () => number;
  /** Test seams inside the flush (see FlushHooks). */
  flushHooks?: FlushHooks;
  /** Test seams: the sweeper's bounds, over the configured ones (LOGARCHIVE_SWEEP_*) and DEFAULT_SWEEP_SETTINGS. */
  sweep?: Partial<SweepSettings>;
}

export interface LoaderStats {
  events: Record<EnqueueOutcome, number>;
  batchesLoaded: number;
  rowsLoaded: number;
  objectsLoaded: number;
  batchesFailed: number;
  /** Objects quarantined by a flush: a load job named them as its failing source. */
  quarantinedAtLoad: number;
  /** Objects the sweeper queued because their finalize event never came. */
  swept: number;
}

export class Loader {
  readonly config: LoaderConfig;
  readonly policy: NamespacePolicy;
  readonly plan: LoadPlan;
  readonly warehouse: WarehousePort;
  readonly state: StateStore;
  readonly #parts: LoaderParts;
  readonly #planInput: PlanInput;
  readonly #stats: LoaderStats = {
    events: { queued: 0, duplicate: 0, excluded: 0, ignored: 0, quarantined: 0, conflict: 0, superseded: 0 },
    batchesLoaded: 0,
    rowsLoaded: 0,
    objectsLoaded: 0,
    batchesFailed: 0,
    quarantinedAtLoad: 0,
    swept: 0,
  };
  #installId: Promise<string> | null = null;
  readonly #tablesReady = new Map<string, Promise<void>>();

  constructor(parts: LoaderParts) {
    this.#parts = parts;
    this.config = parts.config;
    this.policy = parts.policy;
    this.warehouse = parts.warehouse;
    this.state = new StateStore({
      bucket: parts.storage.bucket(parts.config.stateBucket),
      prefix: parts.config.statePrefix,
    });
    this.#planInput = {
      quotas:
        parts.warehouse.kind === "bigquery"
          ? {
              projectJobsPerDay: parts.config.projectLoadJobsPerDay,
              tableJobsPerDay: parts.config.tableLoadJobsPerDay,
              maxUrisPerJob: BIGQUERY_QUOTAS.maxUrisPerJob,
            }
          : NO_QUOTAS,
      tables: destinations(parts.policy).length,
      budgetFraction: parts.config.budgetFraction,
      flushIntervalSeconds: parts.config.flushIntervalMs / 1000,
      minWindowSeconds: parts.config.minWindowMs / 1000,
    };
    this.plan = planLoadWindows(this.#planInput);
  }

  /** A random id made once per state bucket and prefix, so a fresh install never meets an old job ID. */
  installId(): Promise<string> {
    this.#installId ??= (async () => {
      const path = markerPaths.install();
      await this.state.createIfAbsent(path, {
        id: randomBytes(5).toString("hex"),
        createdAt: new Date().toISOString(),
      });
      const marker = await this.state.read<{ id: string }>(path);
      if (marker === null || !/^[0-9a-f]{6,32}$/.test(marker.id)) {
        throw new Error(
          `loader install marker ${this.config.statePrefix}${path} is unreadable; delete it to start over`,
        );
      }
      return marker.id;
    })();
    this.#installId.catch(() => {
      this.#installId = null;
    });
    return this.#installId;
  }

  async handleFinalize(object: FinalizedObject): Promise<EnqueueResult> {
    const result = await enqueueObject(
      {
        landing: this.#parts.storage.bucket(object.bucket),
        state: this.state,
        policy: this.policy,
        statePrefix: this.config.statePrefix,
        quarantinePrefix: this.config.quarantinePrefix,
        validateObjects: this.config.validateObjects,
        log: this.#parts.log,
        ...(this.#parts.now ? { now: this.#parts.now } : {}),
      },
      object,
    );
    this.#stats.events[result.outcome]++;
    return result;
  }

  /** The plan for `tables` destination tables (at least the policy's own). */
  planFor(tables: number): LoadPlan {
    return planLoadWindows({ ...this.#planInput, tables: Math.max(tables, this.#planInput.tables) });
  }

  #ensureTable(table: TableRef): Promise<void> {
    const key = `${table.dataset}.${table.table}`;
    let ready = this.#tablesReady.get(key);
    if (ready === undefined) {
      ready = this.warehouse.ensureTable(table);
      this.#tablesReady.set(key, ready);
      ready.catch(() => this.#tablesReady.delete(key));
    }
    return ready;
  }

  #windowMsFor(tables: number): number {
    try {
      return this.planFor(tables).windowSeconds * 1000;
    } catch (error) {
      // More tables than the budget allows one job a day each: load each once a day and say so.
      this.#parts.log("error", "load_budget_exceeded", { tables, error: (error as Error).message });
      return 86_400_000;
    }
  }

  /**
   * Queues the landing objects whose finalize event never came (bounded per run; see
   * sweepLanding). The flush runs it first, so what it finds joins this run's batches; it starts
   * no listing after `deadline` (epoch ms), the run's.
   */
  async sweep(deadline?: number): Promise<SweepResult> {
    const result = await sweepLanding({
      landing: this.#parts.storage.bucket(this.config.landingBucket),
      state: this.state,
      tierPrefixes: [
        tierPrefix(this.policy.archive.prefix, "analytics"),
        streamPrefix(this.policy.archive.prefix),
      ],
      settings: {
        ...DEFAULT_SWEEP_SETTINGS,
        maxObjectsPerRun: this.config.sweepMaxObjects,
        intervalMs: this.config.sweepIntervalMs,
        ...this.#parts.sweep,
      },
      enqueue: (object) => this.handleFinalize(object),
      log: this.#parts.log,
      ...(this.#parts.now ? { now: this.#parts.now } : {}),
      ...(deadline === undefined ? {} : { deadline }),
    });
    this.#stats.swept += result.enqueued;
    return result;
  }

  async flush(options: FlushOptions = {}): Promise<TableFlushResult[]> {
    // One deadline for the whole run, set before the sweep: the sweep and the batches share
    // flush_deadline, which the function's timeout was checked against.
    const runDeadline = (this.#parts.now ?? Date.now)() + this.config.flushDeadlineMs;
    try {
      await this.sweep(runDeadline);
    } catch (error) {
      // The queue still loads; the sweep resumes from its watermark on the next run.
      this.#parts.log("error", "sweep_failed", { error: (error as Error).message });
    }
    const results = await flushAll(
      {
        landing: this.#parts.storage.bucket(this.config.landingBucket),
        state: this.state,
        warehouse: this.warehouse,
        quarantinePrefix: this.config.quarantinePrefix,
        policy: this.policy,
        installId: await this.installId(),
        maxJobsPerTablePerDay:
          this.warehouse.kind === "bigquery" ? this.config.tableJobGuard : Number.POSITIVE_INFINITY,
        windowMsFor: (tables) => this.#windowMsFor(tables),
        ensureTable: (table) => this.#ensureTable(table),
        maxUrisPerJob: this.config.maxUrisPerJob,
        concurrency: this.config.flushConcurrency,
        maxAttempts: this.config.maxAttempts,
        deadlineMs: this.config.flushDeadlineMs,
        runDeadline,
        pollIntervalMs: this.config.jobPollIntervalMs,
        tables: destinations(this.policy),
        log: this.#parts.log,
        ...(this.#parts.now ? { now: this.#parts.now } : {}),
        ...(this.#parts.flushHooks ? { hooks: this.#parts.flushHooks } : {}),
      },
      options,
    );
    for (const r of results) {
      this.#stats.quarantinedAtLoad += r.quarantined ?? 0;
      if (r.status === "loaded") {
        this.#stats.batchesLoaded++;
        this.#stats.rowsLoaded += r.rows ?? 0;
        this.#stats.objectsLoaded += r.objects ?? 0;
      } else if (r.status === "failed") this.#stats.batchesFailed++;
    }
    return results;
  }

  stats(): LoaderStats {
    return structuredClone(this.#stats);
  }

  async close(): Promise<void> {
    await this.warehouse.close();
  }
}
