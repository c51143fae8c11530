// `logarchive loader`: the loader's operator commands. The loader itself runs as Cloud
// Functions (functions/index.ts) or inside `logarchive local`.

import { Command, InvalidArgumentError, Option } from "commander";
import { checkDuration } from "../../lib/config/units.ts";
import { DEFAULT_POLICY, destinations, hasTablePerNamespace, loadPolicy } from "../../lib/policy/policy.ts";
import { parseEndpointUrl, policyPathOrDefault } from "../options.ts";

// The loader's modules are imported when a subcommand runs, so the shipper's image, which
// carries cli/ but not functions/, still loads this file.
const BIGQUERY_DEFAULTS = { projectJobsPerDay: 100_000, tableJobsPerDay: 1_500 } as const;

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("expected a whole number ≥ 1.");
  return n;
}

function fraction(value: string): number {
  const n = Number(value);
  if (!(n > 0 && n <= 1)) throw new InvalidArgumentError("expected a number in (0, 1], such as 0.5.");
  return n;
}

/**
 * The loader's bounds for flush_interval (functions/loader/config.ts; not imported, see
 * above), so the plan refuses what the loader would; loader.test.ts checks they agree.
 */
export const FLUSH_INTERVAL_BOUNDS = { min: 1000, max: 86_400_000 } as const;

/** The loader's min_window default and maximum (functions/loader/config.ts; loader.test.ts checks). */
export const MIN_WINDOW_DEFAULT = "3m";
export const MIN_WINDOW_BOUNDS = { max: 86_400_000 } as const;

function minWindowSeconds(value: string): number {
  const checked = checkDuration(value, MIN_WINDOW_BOUNDS);
  if ("problem" in checked) throw new InvalidArgumentError(`${checked.problem}, such as 3m or 0s.`);
  return checked.ms / 1000;
}

function flushIntervalSeconds(value: string): number {
  const checked = checkDuration(value, FLUSH_INTERVAL_BOUNDS);
  if ("problem" in checked) throw new InvalidArgumentError(`${checked.problem}, such as 60s.`);
  return checked.ms / 1000;
}

export function loaderCommand(): Command {
  const loader = new Command("loader").description("Operate the GCS → BigQuery loader (see docs/loader.md).");

  loader
    .command("plan")
    .description("Print the load windows and job counts the loader derives from the quota budget.")
    .option(
      "--policy <file>",
      "namespace policy YAML; its routes set the number of destination tables (default: ./namespaces.yaml if present)",
    )
    .option("--tables <n>", "number of destination tables (overrides the policy)", positiveInt)
    .option("--budget-fraction <f>", "share of the load-job quotas planned for first attempts", fraction, 0.5)
    .option(
      "--flush-interval <duration>",
      "how often the scheduler calls the flush, such as 60s or 2m (default: 60s, at most 24h)",
      flushIntervalSeconds,
    )
    .option(
      "--min-window <duration>",
      `the loader's min_window, a floor on every table's window (default: ${MIN_WINDOW_DEFAULT}, the loader's; 0s for none)`,
      minWindowSeconds,
    )
    .option(
      "--project-jobs <n>",
      "load jobs per project per day",
      positiveInt,
      BIGQUERY_DEFAULTS.projectJobsPerDay,
    )
    .option("--table-jobs <n>", "load jobs per table per day", positiveInt, BIGQUERY_DEFAULTS.tableJobsPerDay)
    .action(
      async (o: {
        policy?: string;
        tables?: number;
        budgetFraction: number;
        flushInterval?: number;
        minWindow?: number;
        projectJobs: number;
        tableJobs: number;
      }) => {
        const { BIGQUERY_QUOTAS, describePlan, planLoadWindows } = await import(
          "../../functions/loader/plan.ts"
        );
        const policyPath = await policyPathOrDefault(o.policy);
        const policy = policyPath === undefined ? DEFAULT_POLICY : await loadPolicy(policyPath);
        process.stdout.write(
          `policy: ${policyPath ?? "(built-in default)"}${o.tables === undefined ? "" : `; --tables ${o.tables} overrides its table count`}\n`,
        );
        if (o.tables === undefined && hasTablePerNamespace(policy)) {
          process.stdout.write(
            "note: a {namespace} route adds a table per namespace as namespaces appear; give --tables with the count you expect\n",
          );
        }
        const tables = o.tables ?? destinations(policy).length;
        const plan = planLoadWindows({
          quotas: { ...BIGQUERY_QUOTAS, projectJobsPerDay: o.projectJobs, tableJobsPerDay: o.tableJobs },
          tables,
          budgetFraction: o.budgetFraction,
          flushIntervalSeconds: o.flushInterval ?? 60,
          minWindowSeconds: o.minWindow ?? minWindowSeconds(MIN_WINDOW_DEFAULT),
        });
        process.stdout.write(`${describePlan(plan, tables)}\n`);
      },
    );

  loader
    .command("resume")
    .description("Resume a table the loader paused after repeated failures; its queued objects load next.")
    .requiredOption("--table <dataset.table>", "the paused table")
    .addOption(
      new Option("--state-bucket <name>", "the loader's state bucket")
        .env("LOGARCHIVE_STATE_BUCKET")
        .makeOptionMandatory(),
    )
    .addOption(
      new Option("--state-prefix <prefix>", "the loader's state prefix")
        .env("LOGARCHIVE_STATE_PREFIX")
        .default("_logarchive/loader/"),
    )
    .addOption(
      new Option("--gcs-endpoint <url>", "GCS JSON API endpoint (local GCS)")
        .env("LOGARCHIVE_GCS_ENDPOINT")
        .argParser(parseEndpointUrl),
    )
    .action(async (o: { table: string; stateBucket: string; statePrefix: string; gcsEndpoint?: string }) => {
      const { parseTableKey } = await import("../../functions/loader/markers.ts");
      const { resumeTable } = await import("../../functions/loader/flush.ts");
      const { StateStore } = await import("../../functions/loader/state.ts");
      const { Storage } = await import("@google-cloud/storage");
      const table = parseTableKey(o.table);
      if (table === null) throw new InvalidArgumentError(`--table: expected dataset.table, got ${o.table}`);
      const storage = o.gcsEndpoint
        ? new Storage({ apiEndpoint: o.gcsEndpoint, projectId: "logarchive-local" })
        : new Storage();
      const state = new StateStore({ bucket: storage.bucket(o.stateBucket), prefix: o.statePrefix });
      const resumed = await resumeTable(state, table);
      process.stdout.write(resumed ? `resumed ${o.table}\n` : `${o.table} was not paused\n`);
    });

  return loader;
}
