// The loader's options. Cloud Functions configure through environment variables, so every
// option is an env var here, with a default, a unit and one line of docs; docs/loader.md's
// table is generated from this list (a test checks they agree). Bad values stop the
// function at cold start with a message that names the variable.

import { ConfigError } from "../../lib/config/errors.ts";
import { parseDuration } from "../../lib/config/units.ts";

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
    description:
      "GCS bucket for the loader's markers and batch manifests (default: the landing bucket). A separate bucket keeps marker writes from firing the finalize trigger.",
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
    description: "How often the scheduler calls the flush function; windows are whole multiples of it.",
  },
  {
    key: "min_window",
    kind: "duration",
    default: "0s",
    description: "A floor on each table's flush window, for fewer, larger load jobs.",
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
    key: "allow_forced_flush",
    kind: "boolean",
    default: "false",
    description:
      "Whether `?force=true` on the flush function may skip the window. Off in the cloud, where each forced flush costs a load job; on for local runs and backfills.",
  },
  {
    key: "flush_deadline",
    kind: "duration",
    default: "300s",
    min: 1000,
    description:
      "How long one flush run may take, all tables together; a job still running then is followed by the next run. Keep it well under the function timeout (540 s).",
  },
  {
    key: "job_poll_interval",
    kind: "duration",
    default: "2s",
    min: 10,
    description: "Pause between jobs.get calls while a load job runs.",
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
  allowForcedFlush: boolean;
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
      const ms = parseDuration(raw);
      return ms === null ? { problem: "expected a duration such as 500ms, 60s or 5m" } : range(ms);
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
  out.stateBucket ??= out.landingBucket;
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
