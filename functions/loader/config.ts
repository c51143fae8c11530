// The loader's options. Cloud Functions configure through environment variables, so every
// option is an env var here, with a default, a unit and one line of docs; docs/loader.md's
// table is generated from this list (a test checks they agree). Bad values stop the
// function at cold start with a message that names the variable.

import { ConfigError } from "../../lib/config/errors.ts";
import { checkDuration, formatDuration } from "../../lib/config/units.ts";

// ---------------------------------------------------------------- limits of the platform the loader runs on

/**
 * Cloud Run functions (gen2) timeouts: at most 60 min for HTTP functions (the flush), 9 min for
 * event-driven ones (the finalize). https://cloud.google.com/functions/docs/configuring/timeout
 */
export const GEN2_HTTP_FUNCTION_MAX_TIMEOUT_MS = 3_600_000;
export const GEN2_EVENT_FUNCTION_MAX_TIMEOUT_MS = 540_000;

/**
 * Cloud Scheduler's attempt deadline for HTTP targets: 3 min unless set, and within [15 s, 30 min]. A run
 * still going at the deadline is cancelled and recorded as DEADLINE_EXCEEDED.
 * https://cloud.google.com/scheduler/docs/reference/rest/v1/projects.locations.jobs (Job.attemptDeadline)
 */
export const SCHEDULER_HTTP_ATTEMPT_DEADLINE = {
  minMs: 15_000,
  maxMs: 1_800_000,
  defaultMs: 180_000,
} as const;

/**
 * What a flush run may take past flush_deadline: the deadline is checked between steps, so the step in
 * progress (a jobs.get, a batch's markers) finishes and the run still answers before the function's
 * timeout and the Scheduler's attempt deadline.
 */
export const FLUSH_DEADLINE_MARGIN_MS = 60_000;

/**
 * The sweeper's bounds per flush run (functions/loader/enqueue.ts sweepLanding), as settings: the
 * defaults, and the maxima that keep a sweep a small share of a flush run. At GCS speeds a sweep
 * checks a few hundred objects a second (one done/ read each, 16 at once), so 50,000 objects is
 * at most a few minutes, and no listing starts after the run's deadline anyway. A sweep interval
 * over an hour would let lost events wait hours longer than the hour-by-hour walk needs.
 */
export const SWEEP_DEFAULTS = { maxObjectsPerRun: 10_000, intervalMs: 60_000 } as const;
export const SWEEP_MAXIMA = { maxObjectsPerRun: 50_000, intervalMs: 3_600_000 } as const;

type Kind = "string" | "integer" | "number" | "duration" | "boolean" | "enum";

interface LoaderOptionSpec {
  key: string;
  kind: Kind;
  default?: string;
  values?: readonly string[];
  required?: boolean;
  min?: number;
  max?: number;
  description: string;
}

export const LOADER_OPTIONS = [
  {
    key: "landing_bucket",
    kind: "string",
    required: true,
    description: "GCS bucket the transfer copies analytics objects into; the finalize trigger's bucket.",
  },
  {
    key: "state_bucket",
    kind: "string",
    required: true,
    description:
      "GCS bucket for the loader's markers and batch manifests; must not be the landing bucket. GCS triggers cannot filter by object name, so markers in the landing bucket would each invoke the finalize function.",
  },
  {
    key: "state_prefix",
    kind: "string",
    default: "_logarchive/loader/",
    description: "Prefix of the markers in the state bucket. Objects under it are never loaded.",
  },
  {
    key: "quarantine_prefix",
    kind: "string",
    default: "_logarchive/quarantine/",
    description:
      "Prefix in the landing bucket where bad objects are copied, with the reason in their metadata.",
  },
  {
    key: "policy_file",
    kind: "string",
    default: "namespaces.yaml",
    description:
      "The namespace policy (the same file `pulumi up` and the shipper read); ignored when LOGARCHIVE_POLICY_YAML is set.",
  },
  {
    key: "policy_yaml",
    kind: "string",
    description: "The namespace policy inline, as YAML; infra/ sets this so the function needs no file.",
  },
  {
    key: "warehouse",
    kind: "enum",
    values: ["bigquery", "duckdb"],
    default: "bigquery",
    description: "Warehouse adapter: BigQuery in the cloud, DuckDB for local runs.",
  },
  {
    key: "bigquery_project",
    kind: "string",
    description: "Project of the BigQuery datasets and load jobs (default: GOOGLE_CLOUD_PROJECT).",
  },
  {
    key: "bigquery_location",
    kind: "string",
    default: "US",
    description: "Location of the datasets; load jobs run there.",
  },
  {
    key: "duckdb_path",
    kind: "string",
    default: ".logarchive/local/warehouse.duckdb",
    description: "DuckDB file of the local warehouse (warehouse=duckdb).",
  },
  {
    key: "gcs_endpoint",
    kind: "string",
    description: "GCS JSON API endpoint, for the local GCS; unset in the cloud.",
  },
  {
    key: "project_load_jobs_per_day",
    kind: "integer",
    default: "100000",
    min: 1,
    description: "BigQuery's per-project load-job quota (jobs/day, failures included).",
  },
  {
    key: "table_load_jobs_per_day",
    kind: "integer",
    default: "1500",
    min: 1,
    description:
      "BigQuery's per-table load-job limit (jobs/day, failures included). Partitioned tables allow 30,000 partition modifications; 1,500 stays safe either way.",
  },
  {
    key: "budget_fraction",
    kind: "number",
    default: "0.5",
    min: 0.01,
    max: 1,
    description:
      "Share of both quotas planned for first attempts; the rest is kept for retries and other loads in the project.",
  },
  {
    key: "flush_interval",
    kind: "duration",
    default: "60s",
    min: 1000,
    max: 86_400_000,
    description:
      "How often the scheduler calls the flush function (at most 24h); windows are whole multiples of it. Cloud Scheduler needs whole minutes that divide an hour, or whole hours that divide a day.",
  },
  {
    key: "min_window",
    kind: "duration",
    default: "3m",
    max: 86_400_000,
    description: "A floor on each table's flush window, for fewer, larger load jobs (at most 24h).",
  },
  {
    key: "max_uris_per_job",
    kind: "integer",
    default: "10000",
    min: 1,
    max: 10000,
    description: "Source objects per load job (BigQuery allows 10,000).",
  },
  {
    key: "max_attempts",
    kind: "integer",
    default: "5",
    min: 1,
    max: 20,
    description:
      "Failed load jobs one batch may have before its table is paused; quota failures do not count (they wait 30 min and retry).",
  },
  {
    key: "table_job_guard",
    kind: "integer",
    default: "1200",
    min: 1,
    description:
      "Load jobs the loader starts for one table per UTC day, retries included; past it the table waits for the next day. Keeps a margin under BigQuery's 1,500 (BigQuery only).",
  },
  {
    key: "flush_concurrency",
    kind: "integer",
    default: "32",
    min: 1,
    max: 256,
    description:
      "GCS calls one flush batch makes at once (its done/ checks, its objects' live-generation checks, writing done/ and clearing pending/); a table's throughput grows with it. Up to 4 tables flush at once. A new bucket takes about 1,000 writes and 5,000 reads a second before GCS scales it up (cloud.google.com/storage/docs/request-rate).",
  },
  {
    key: "sweep_max_objects",
    kind: "integer",
    default: String(SWEEP_DEFAULTS.maxObjectsPerRun),
    min: 1,
    max: SWEEP_MAXIMA.maxObjectsPerRun,
    description:
      "Landing objects one sweep looks at, at most (one metadata read each); a backlog takes several runs. At most 50,000, so a sweep stays a small share of the flush run.",
  },
  {
    key: "sweep_interval",
    kind: "duration",
    default: formatDuration(SWEEP_DEFAULTS.intervalMs),
    max: SWEEP_MAXIMA.intervalMs,
    description:
      "Flush runs closer together than this skip the sweep for lost finalize events (0s: every run sweeps; at most 1h).",
  },
  {
    key: "allow_forced_flush",
    kind: "boolean",
    default: "false",
    description:
      "Whether `?force=true` on the flush function may skip the window. Off in the cloud, where each forced flush costs a load job; on for local runs and backfills.",
  },
  {
    key: "flush_function_timeout",
    kind: "duration",
    default: "540s",
    min: 1000,
    max: GEN2_HTTP_FUNCTION_MAX_TIMEOUT_MS,
    description:
      "The flush function's timeout as deployed (gen2 HTTP functions allow up to 60 min); set it from the same value. It bounds flush_deadline and sets the Scheduler's attempt deadline.",
  },
  {
    key: "flush_deadline",
    kind: "duration",
    default: "300s",
    min: 1000,
    // The absolute bound; flushDeadlineProblem holds it to the configured function timeout.
    max: SCHEDULER_HTTP_ATTEMPT_DEADLINE.maxMs - FLUSH_DEADLINE_MARGIN_MS,
    description:
      "How long one flush run may take, the sweep and all tables together; a job still running then is followed by the next run, and a batch that would not finish in the time left waits for it. At most the flush function's timeout (and the Scheduler's 30 min) minus 1 min.",
  },
  {
    key: "job_poll_interval",
    kind: "duration",
    default: "2s",
    min: 10,
    max: 60_000,
    description: "Pause between jobs.get calls while a load job runs (at most 60s).",
  },
  {
    key: "validate_objects",
    kind: "boolean",
    default: "true",
    description:
      "Read each object when it is queued: gunzip it, check its SHA-256 and every line against the schema, and quarantine it if bad, so one bad file never costs a batch a failed job.",
  },
] as const satisfies readonly LoaderOptionSpec[];

export interface LoaderConfig {
  landingBucket: string;
  stateBucket: string;
  statePrefix: string;
  quarantinePrefix: string;
  policyFile: string;
  policyYaml?: string;
  warehouse: "bigquery" | "duckdb";
  bigqueryProject?: string;
  bigqueryLocation: string;
  duckdbPath: string;
  gcsEndpoint?: string;
  projectLoadJobsPerDay: number;
  tableLoadJobsPerDay: number;
  budgetFraction: number;
  flushIntervalMs: number;
  minWindowMs: number;
  maxUrisPerJob: number;
  maxAttempts: number;
  tableJobGuard: number;
  flushConcurrency: number;
  sweepMaxObjects: number;
  sweepIntervalMs: number;
  allowForcedFlush: boolean;
  flushFunctionTimeoutMs: number;
  flushDeadlineMs: number;
  jobPollIntervalMs: number;
  validateObjects: boolean;
}

export function loaderEnvOf(key: string): string {
  return `LOGARCHIVE_${key.toUpperCase()}`;
}

function fieldName(spec: LoaderOptionSpec): string {
  const base = spec.key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
  return spec.kind === "duration" ? `${base}Ms` : base;
}

function convert(spec: LoaderOptionSpec, raw: string): { value: unknown } | { problem: string } {
  const range = (n: number) => {
    if (spec.min !== undefined && n < spec.min) return { problem: `must be at least ${spec.min}` };
    if (spec.max !== undefined && n > spec.max) return { problem: `must be at most ${spec.max}` };
    return { value: n };
  };
  switch (spec.kind) {
    case "string":
      return { value: raw };
    case "enum":
      return spec.values?.includes(raw)
        ? { value: raw }
        : { problem: `expected one of ${spec.values?.join(", ")}` };
    case "integer":
      return /^\d+$/.test(raw) ? range(Number(raw)) : { problem: "expected a whole number" };
    case "number":
      return /^\d+(\.\d+)?$/.test(raw) ? range(Number(raw)) : { problem: "expected a number" };
    case "duration": {
      const checked = checkDuration(raw, {
        ...(spec.min === undefined ? {} : { min: spec.min }),
        ...(spec.max === undefined ? {} : { max: spec.max }),
      });
      return "ms" in checked ? { value: checked.ms } : checked;
    }
    case "boolean":
      if (raw === "true" || raw === "1") return { value: true };
      if (raw === "false" || raw === "0") return { value: false };
      return { problem: "expected true or false" };
  }
}

/** Reads every option from the environment (`overrides` win), reporting all problems at once. */
export function resolveLoaderConfig(
  env: NodeJS.ProcessEnv = process.env,
  overrides: Partial<Record<(typeof LOADER_OPTIONS)[number]["key"], string>> = {},
): LoaderConfig {
  const problems: string[] = [];
  const out: Record<string, unknown> = {};
  for (const spec of LOADER_OPTIONS as readonly LoaderOptionSpec[]) {
    const name = loaderEnvOf(spec.key);
    const given = (overrides as Record<string, string | undefined>)[spec.key] ?? env[name];
    const raw = given === undefined || given === "" ? spec.default : given;
    if (raw === undefined) {
      if (spec.required) problems.push(`${name}: required; ${spec.description}`);
      continue;
    }
    const converted = convert(spec, raw);
    if ("problem" in converted) problems.push(`${name}: ${converted.problem} (got ${JSON.stringify(raw)})`);
    else out[fieldName(spec)] = converted.value;
  }
  if (out.stateBucket !== undefined && out.stateBucket === out.landingBucket) {
    problems.push(
      `${loaderEnvOf("state_bucket")}: must not be the landing bucket (${loaderEnvOf("landing_bucket")}=${JSON.stringify(out.landingBucket)}): ` +
        "GCS triggers cannot filter by object name, so every marker write would invoke the finalize function; create a separate bucket for the loader's state",
    );
  }
  const deadlineProblem = flushDeadlineProblem(out.flushDeadlineMs, out.flushFunctionTimeoutMs);
  if (deadlineProblem !== undefined) problems.push(deadlineProblem);
  out.bigqueryProject ??= env.GOOGLE_CLOUD_PROJECT || env.GCLOUD_PROJECT || undefined;
  if (out.warehouse === "bigquery" && out.bigqueryProject === undefined) {
    problems.push(
      `${loaderEnvOf("bigquery_project")}: required with warehouse=bigquery when GOOGLE_CLOUD_PROJECT is unset`,
    );
  }
  for (const key of ["state_prefix", "quarantine_prefix"] as const) {
    const v = out[fieldName({ key, kind: "string", description: "" })] as string | undefined;
    if (v !== undefined && !v.endsWith("/"))
      problems.push(`${loaderEnvOf(key)}: must end with "/" (got "${v}")`);
  }
  if (problems.length > 0) throw new ConfigError("loader configuration", problems);
  if (out.bigqueryProject === undefined) delete out.bigqueryProject;
  return out as unknown as LoaderConfig;
}

/**
 * Why flush_deadline is too long for the function timeout (and the Scheduler), or undefined. The run must
 * answer before the function is cut off (504, the response lost) and before the Scheduler gives up on it.
 */
function flushDeadlineProblem(deadlineMs: unknown, timeoutMs: unknown): string | undefined {
  if (typeof deadlineMs !== "number" || typeof timeoutMs !== "number") return undefined;
  const bySchedule = timeoutMs > SCHEDULER_HTTP_ATTEMPT_DEADLINE.maxMs;
  const ceiling = Math.min(timeoutMs, SCHEDULER_HTTP_ATTEMPT_DEADLINE.maxMs);
  const max = ceiling - FLUSH_DEADLINE_MARGIN_MS;
  if (deadlineMs <= max) return undefined;
  const name = loaderEnvOf("flush_deadline");
  const margin = formatDuration(FLUSH_DEADLINE_MARGIN_MS);
  const because = bySchedule
    ? `Cloud Scheduler waits at most ${formatDuration(ceiling)} for an HTTP target, minus ${margin} for the run to finish its step and answer`
    : `${loaderEnvOf("flush_function_timeout")} ${formatDuration(timeoutMs)} minus ${margin} for the run to finish its step and answer`;
  const fix = bySchedule
    ? `lower ${name}`
    : `lower ${name}, or raise the flush function's timeout (HTTP functions allow up to ${formatDuration(GEN2_HTTP_FUNCTION_MAX_TIMEOUT_MS)}) and ${loaderEnvOf("flush_function_timeout")} with it`;
  return `${name}: must be at most ${formatDuration(max)} (${because}); ${fix} (got "${formatDuration(deadlineMs)}")`;
}

export interface FlushSchedulerSettings {
  /** Cron schedule, in timeZone. */
  schedule: string;
  timeZone: "Etc/UTC";
  httpMethod: "POST";
  /** Job.attemptDeadline in the REST API's form, e.g. "540s". */
  attemptDeadline: string;
  attemptDeadlineSeconds: number;
  /** The next scheduled run is the retry: Scheduler retries would only add overlapping runs. */
  retryCount: 0;
}

/**
 * The Cloud Scheduler job that calls the flush function, for infra. The attempt deadline is the
 * function's timeout (capped at the Scheduler's 30 min), so the Scheduler never cancels a run the
 * function still lets finish; resolveLoaderConfig has checked that it leaves room for flush_deadline.
 */
export function flushSchedulerSettings(
  config: Pick<LoaderConfig, "flushIntervalMs" | "flushDeadlineMs" | "flushFunctionTimeoutMs">,
): FlushSchedulerSettings {
  const problem = flushDeadlineProblem(config.flushDeadlineMs, config.flushFunctionTimeoutMs);
  if (problem !== undefined) throw new Error(problem);
  const deadlineMs = Math.min(config.flushFunctionTimeoutMs, SCHEDULER_HTTP_ATTEMPT_DEADLINE.maxMs);
  const seconds = Math.ceil(deadlineMs / 1000);
  return {
    schedule: cronEvery(config.flushIntervalMs),
    timeZone: "Etc/UTC",
    httpMethod: "POST",
    attemptDeadline: `${seconds}s`,
    attemptDeadlineSeconds: seconds,
    retryCount: 0,
  };
}

/** A cron schedule that fires every `ms`; Cloud Scheduler's finest unit is one minute. */
function cronEvery(ms: number): string {
  const minutes = ms / 60_000;
  if (Number.isInteger(minutes) && minutes >= 1 && 60 % minutes === 0)
    return minutes === 1 ? "* * * * *" : minutes === 60 ? "0 * * * *" : `*/${minutes} * * * *`;
  const hours = ms / 3_600_000;
  if (Number.isInteger(hours) && hours >= 1 && 24 % hours === 0)
    return hours === 24 ? "0 0 * * *" : `0 */${hours} * * *`;
  throw new Error(
    `${loaderEnvOf("flush_interval")}: Cloud Scheduler cannot run every ${formatDuration(ms)}; use whole minutes that divide an hour (1m, 2m, 5m…) or whole hours that divide a day (got "${formatDuration(ms)}")`,
  );
}

/** The options as a Markdown table for docs/loader.md. */
export function loaderOptionsMarkdownTable(): string {
  const rows = (LOADER_OPTIONS as readonly LoaderOptionSpec[]).map((spec) => {
    const def = spec.required ? "required" : spec.default === undefined ? "unset" : `\`${spec.default}\``;
    const unit =
      spec.kind === "duration"
        ? "duration"
        : spec.kind === "enum"
          ? (spec.values ?? []).join(" \\| ")
          : spec.kind;
    return `| \`${loaderEnvOf(spec.key)}\` | ${def} | ${unit} | ${spec.description} |`;
  });
  return ["| Variable | Default | Unit | Description |", "|---|---|---|---|", ...rows].join("\n");
}
