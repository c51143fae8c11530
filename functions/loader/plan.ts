// The load-job budget, as a pure function. BigQuery counts every load job, failed ones
// too: 1,500 per table per day (a fixed limit; column-partitioned tables get 30,000
// partition modifications instead) and 100,000 per project per day. One job per object
// would exhaust a table at about one object a minute, so the loader flushes each table at
// most once per window, with up to 10,000 URIs per job, and derives the window from the
// budget here. docs/loader.md#quota has the arithmetic.

export interface LoadQuotas {
  /** Load jobs a project may run per day (BigQuery: 100,000, failures included). */
  projectJobsPerDay: number;
  /** Load jobs one table may take per day (BigQuery: 1,500, failures included). */
  tableJobsPerDay: number;
  /** Source URIs one load job may name (BigQuery: 10,000). */
  maxUrisPerJob: number;
}

export const BIGQUERY_QUOTAS: LoadQuotas = {
  projectJobsPerDay: 100_000,
  tableJobsPerDay: 1_500,
  maxUrisPerJob: 10_000,
};

/** DuckDB has no quotas; the same rules run with a window set only by the flush interval. */
export const NO_QUOTAS: LoadQuotas = {
  projectJobsPerDay: Number.POSITIVE_INFINITY,
  tableJobsPerDay: Number.POSITIVE_INFINITY,
  maxUrisPerJob: 10_000,
};

export interface PlanInput {
  quotas: LoadQuotas;
  /** Destination tables the policy routes to. */
  tables: number;
  /**
   * Share of the quotas planned for first attempts, 0 < fraction ≤ 1. The rest is kept for
   * retries (quarantine reloads, quota back-off) and for other loads in the project.
   */
  budgetFraction: number;
  /** How often the flush runs (Cloud Scheduler: at best every 60 s), in seconds. */
  flushIntervalSeconds: number;
  /** A floor on the window, in seconds; 0 for none. */
  minWindowSeconds?: number;
}

export interface LoadPlan {
  /** Each table is flushed at most once per window. */
  windowSeconds: number;
  /** First-attempt jobs one table can take per day at that window. */
  jobsPerTablePerDay: number;
  /** First-attempt jobs the project can take per day at that window, all tables together. */
  jobsPerProjectPerDay: number;
  /** Jobs per day left for retries: per table and per project. */
  retryReservePerTable: number;
  retryReservePerProject: number;
  /** Worst-case delay a loader adds between an object's arrival and its rows: window + one flush interval. */
  worstFreshnessSeconds: number;
  /** Which limit set the window: the per-table limit, the project limit, or the flush interval. */
  boundBy: "table" | "project" | "flush-interval" | "min-window";
}

const DAY_SECONDS = 86_400;

export class PlanError extends Error {}

export function planLoadWindows(input: PlanInput): LoadPlan {
  const { quotas, tables, budgetFraction, flushIntervalSeconds } = input;
  if (!Number.isInteger(tables) || tables < 1) throw new PlanError(`tables: expected ≥ 1, got ${tables}`);
  if (!(budgetFraction > 0 && budgetFraction <= 1)) {
    throw new PlanError(`budget fraction: expected 0 < f ≤ 1, got ${budgetFraction}`);
  }
  if (!(flushIntervalSeconds > 0)) {
    throw new PlanError(`flush interval: expected > 0 s, got ${flushIntervalSeconds}`);
  }
  const perTable = Math.floor(quotas.tableJobsPerDay * budgetFraction);
  const perTableFromProject = Math.floor((quotas.projectJobsPerDay * budgetFraction) / tables);
  if (perTable < 1 || perTableFromProject < 1) {
    throw new PlanError(
      `the budget allows less than one load job per table per day (${tables} tables): merge tables in the policy's warehouse.routes or raise the budget fraction`,
    );
  }
  const allowed = Math.min(perTable, perTableFromProject);
  // Windows are whole multiples of the flush interval: a flush can only happen when one runs.
  const fromBudget = Number.isFinite(allowed) ? DAY_SECONDS / allowed : 0;
  const floor = Math.max(fromBudget, input.minWindowSeconds ?? 0, flushIntervalSeconds);
  const windowSeconds = Math.ceil(floor / flushIntervalSeconds) * flushIntervalSeconds;
  const jobsPerTablePerDay = Math.ceil(DAY_SECONDS / windowSeconds);
  const minWindow = input.minWindowSeconds ?? 0;
  const boundBy =
    minWindow > fromBudget && minWindow > flushIntervalSeconds
      ? "min-window"
      : fromBudget < flushIntervalSeconds
        ? "flush-interval"
        : perTable <= perTableFromProject
          ? "table"
          : "project";
  return {
    windowSeconds,
    jobsPerTablePerDay,
    jobsPerProjectPerDay: jobsPerTablePerDay * tables,
    retryReservePerTable: quotas.tableJobsPerDay - jobsPerTablePerDay,
    retryReservePerProject: quotas.projectJobsPerDay - jobsPerTablePerDay * tables,
    worstFreshnessSeconds: windowSeconds + flushIntervalSeconds,
    boundBy,
  };
}

/**
 * Load jobs one window needs for a table receiving `objectsPerDay`: one, unless more
 * objects arrive in a window than one job may name.
 */
export function jobsPerWindow(plan: LoadPlan, quotas: LoadQuotas, objectsPerDay: number): number {
  const objectsPerWindow = Math.ceil((objectsPerDay * plan.windowSeconds) / DAY_SECONDS);
  return Math.max(1, Math.ceil(objectsPerWindow / quotas.maxUrisPerJob));
}

export function describePlan(plan: LoadPlan, tables: number): string {
  const minutes = (s: number) => (s >= 120 ? `${(s / 60).toFixed(1)} min` : `${s} s`);
  return [
    `${tables} destination table(s): each flushed at most every ${minutes(plan.windowSeconds)} (bound by ${plan.boundBy})`,
    `first-attempt load jobs: ${plan.jobsPerTablePerDay}/table/day, ${plan.jobsPerProjectPerDay}/project/day`,
    `kept for retries: ${Number.isFinite(plan.retryReservePerTable) ? plan.retryReservePerTable : "unlimited"}/table/day, ${Number.isFinite(plan.retryReservePerProject) ? plan.retryReservePerProject : "unlimited"}/project/day`,
    `loader freshness: rows queryable at most ${minutes(plan.worstFreshnessSeconds)} after the object lands, plus the load job's own run time`,
  ].join("\n");
}
