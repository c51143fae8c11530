// `logarchive reconcile`: is every archived analytics object in the warehouse exactly once,
// does every archive-only object match its metadata, and did every batch arrive?

import { resolve } from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
// Types only: the command loads the loader code when it runs, not when the CLI starts.
import type { ReconcileInput, WarehouseScan } from "../../functions/loader/reconcile.ts";
import { UserError } from "../../lib/config/errors.ts";
import { checkDuration } from "../../lib/config/units.ts";
import { DEFAULT_POLICY, loadPolicy, type NamespacePolicy } from "../../lib/policy/policy.ts";
import {
  checkCalendarDate,
  EXIT,
  parseEndpointUrl,
  parseNamespaceArg,
  policyPathOrDefault,
} from "../options.ts";

const TIME_ARG = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2})(?::(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2}))?)?$/i;
/**
 * `2026-11-21`, `2026-11-21T10`, or a full RFC 3339 time; hour partitions start at it.
 * Date.parse rolls an impossible date over (2026-02-30 is March 2), so each part is checked.
 */
export function parseTimeArg(value: string): Date {
  const m = TIME_ARG.exec(value);
  if (m === null) {
    throw new InvalidArgumentError(
      "expected a UTC date or hour such as 2026-11-21 or 2026-11-21T10, or an RFC 3339 time.",
    );
  }
  const [, year, month, day, hour = "00", minute = "00", second = "00", fraction = "", zone = "Z"] = m;
  checkCalendarDate(value, Number(year), Number(month), Number(day));
  if (Number(hour) > 23 || Number(minute) > 59 || Number(second) > 59) {
    throw new InvalidArgumentError(`${value} is not a time of day (hours 00-23, minutes and seconds 00-59).`);
  }
  return new Date(
    Date.parse(`${year}-${month}-${day}T${hour}:${minute}:${second}${fraction}${zone.toUpperCase()}`),
  );
}

/** --timestamp-skew: a duration, 0 or more; at most a day, past which the skew is not a skew. */
function parseSkewArg(value: string): number {
  const checked = checkDuration(value, { max: 24 * 3_600_000 });
  if ("problem" in checked) throw new InvalidArgumentError(`${checked.problem}.`);
  return checked.ms;
}

/** --gap-margin: whole hours, since the listing works in hour partitions. */
function parseGapMarginArg(value: string): number {
  const checked = checkDuration(value);
  if ("problem" in checked) throw new InvalidArgumentError(`${checked.problem}.`);
  if (checked.ms % 3_600_000 !== 0) {
    throw new InvalidArgumentError("expected whole hours such as 24h: the archive is partitioned by hour.");
  }
  return checked.ms / 3_600_000;
}

/** The planned warehouse queries, said before they run: the bytes a BigQuery dry run will bill. */
function sayWarehouseScans(scans: readonly WarehouseScan[]): void {
  for (const scan of scans) {
    process.stderr.write(
      scan.estimatedBytes === null
        ? `reconcile: counting rows of ${scan.batches} batch(es) in ${scan.table}\n`
        : `reconcile: counting rows of ${scan.batches} batch(es) in ${scan.table} will scan ${scan.estimatedBytes} bytes (dry run)\n`,
    );
  }
}

interface ReconcileOptions {
  from: Date;
  to: Date;
  namespace?: string;
  timestampSkew?: number;
  gapMargin?: number;
  policy?: string;
  dataDir?: string;
  s3Bucket?: string;
  s3Endpoint?: string;
  region?: string;
  landingBucket?: string;
  stateBucket?: string;
  statePrefix: string;
  gcsEndpoint?: string;
  bigqueryProject?: string;
  bigqueryLocation: string;
  json?: boolean;
}

export function reconcileCommand(): Command {
  return new Command("reconcile")
    .description(
      "Compare, per analytics object, the S3 archive's record counts, the GCS copy, the loader's markers and the warehouse's rows; check each archive-only object's body against its metadata, and each shipper's batch numbers for gaps. Exit 1 if anything is missing, duplicated, quarantined, corrupt or in conflict, or if the selection holds no object.",
    )
    .requiredOption("--from <time>", "first hour partition, UTC (2026-11-21 or 2026-11-21T10)", parseTimeArg)
    .requiredOption("--to <time>", "end of the range, exclusive, UTC", parseTimeArg)
    .option("--namespace <ns>", "only this namespace (either tier)", parseNamespaceArg)
    .addOption(
      new Option(
        "--timestamp-skew <duration>",
        "count a batch's warehouse rows whose timestamp lies this far outside the range too; the query reads the range's partitions widened by it (default 0s: the shipper files each record under its own hour)",
      ).argParser(parseSkewArg),
    )
    .addOption(
      new Option(
        "--gap-margin <duration>",
        "hours listed each side of the range to look for a shipper's batch numbers (whole hours; default 24h)",
      ).argParser(parseGapMarginArg),
    )
    .addOption(
      new Option("--policy <file>", "namespace policy YAML (default: ./namespaces.yaml if present)").env(
        "LOGARCHIVE_POLICY",
      ),
    )
    .addOption(
      new Option(
        "--data-dir <dir>",
        "check the local pipeline's data directory (logarchive local) instead of the cloud",
      ).env("LOGARCHIVE_DATA_DIR"),
    )
    .addOption(new Option("--s3-bucket <name>", "archive bucket").env("LOGARCHIVE_BUCKET"))
    .addOption(
      new Option("--s3-endpoint <url>", "S3 endpoint (path-style)")
        .env("LOGARCHIVE_S3_ENDPOINT")
        .argParser(parseEndpointUrl),
    )
    .addOption(new Option("--region <region>", "AWS region").env("AWS_REGION"))
    .addOption(new Option("--landing-bucket <name>", "GCS landing bucket").env("LOGARCHIVE_LANDING_BUCKET"))
    .addOption(
      new Option("--state-bucket <name>", "loader state bucket (default: the landing bucket)").env(
        "LOGARCHIVE_STATE_BUCKET",
      ),
    )
    .addOption(
      new Option("--state-prefix <prefix>", "loader state prefix")
        .env("LOGARCHIVE_STATE_PREFIX")
        .default("_logarchive/loader/"),
    )
    .addOption(
      new Option("--gcs-endpoint <url>", "GCS JSON API endpoint")
        .env("LOGARCHIVE_GCS_ENDPOINT")
        .argParser(parseEndpointUrl),
    )
    .addOption(new Option("--bigquery-project <id>", "BigQuery project").env("GOOGLE_CLOUD_PROJECT"))
    .addOption(
      new Option("--bigquery-location <loc>", "BigQuery location")
        .env("LOGARCHIVE_BIGQUERY_LOCATION")
        .default("US"),
    )
    .option("--json", "print the full report as JSON")
    .action(async (o: ReconcileOptions) => {
      if (o.to.getTime() <= o.from.getTime()) throw new InvalidArgumentError("--to must be after --from.");
      if (o.from.getUTCMinutes() !== 0 || o.from.getUTCSeconds() !== 0 || o.from.getUTCMilliseconds() !== 0) {
        throw new InvalidArgumentError(
          "--from: partitions are whole hours; give a date or an hour such as 2026-11-21T10.",
        );
      }
      const policy = await resolvePolicy(o.policy);
      const { describeReconcile } = await import("../../functions/loader/reconcile.ts");
      const report =
        o.dataDir !== undefined ? await reconcileLocal(o, policy) : await reconcileCloud(o, policy);
      process.stdout.write(
        o.json ? `${JSON.stringify(report, null, 2)}\n` : `${describeReconcile(report)}\n`,
      );
      process.exitCode = report.ok ? EXIT.ok : EXIT.verdict;
    });
}

/** What both modes pass to reconcile from the flags. */
function boundsOf(
  o: ReconcileOptions,
): Pick<
  ReconcileInput,
  "from" | "to" | "namespace" | "timestampSkewMs" | "gapMarginHours" | "onWarehouseScan"
> {
  return {
    from: o.from,
    to: o.to,
    ...(o.namespace ? { namespace: o.namespace } : {}),
    ...(o.timestampSkew === undefined ? {} : { timestampSkewMs: o.timestampSkew }),
    ...(o.gapMargin === undefined ? {} : { gapMarginHours: o.gapMargin }),
    onWarehouseScan: sayWarehouseScans,
  };
}

async function resolvePolicy(given: string | undefined): Promise<NamespacePolicy> {
  const path = await policyPathOrDefault(given);
  return path === undefined ? DEFAULT_POLICY : loadPolicy(path);
}

async function reconcileLocal(o: ReconcileOptions, policy: NamespacePolicy) {
  const { access } = await import("node:fs/promises");
  const { join } = await import("node:path");
  const dataDir = resolve(o.dataDir as string);
  const warehousePath = join(dataDir, "warehouse.duckdb");
  try {
    await access(warehousePath);
  } catch {
    throw new UserError(
      `${dataDir} holds no local pipeline (no warehouse.duckdb): run \`logarchive local\` with this --data-dir first`,
    );
  }
  // DuckDB allows one writer: find out now, before starting anything, if `logarchive local` holds it.
  const { DuckDBInstance } = await import("@duckdb/node-api");
  try {
    (await DuckDBInstance.create(warehousePath)).closeSync();
  } catch (error) {
    if (/lock/i.test((error as Error).message)) {
      throw new UserError(
        `${warehousePath} is in use (by a running \`logarchive local\`?): stop it first, then reconcile`,
      );
    }
    throw error;
  }
  // The local services keep their state in the data directory; start them on it (DuckDB
  // allows one writer, so stop `logarchive local` first).
  const { LocalPipeline } = await import("../../local/pipeline.ts");
  const { createLogger } = await import("../../lib/log.ts");
  const pipeline = await LocalPipeline.start({
    dataDir,
    policy,
    logs: [],
    once: true,
    externalTransfer: true,
    logger: createLogger("reconcile", process.env.LOGARCHIVE_LOG_LEVEL ?? "warn"),
    version: "reconcile",
  });
  // The pipeline's own reconcile() takes no bounds, so its parts are reconciled here.
  const { Storage } = await import("@google-cloud/storage");
  const { localS3Client } = await import("../../local/s3.ts");
  const { reconcile } = await import("../../functions/loader/reconcile.ts");
  try {
    const e = pipeline.parts.cloud.endpoints;
    const s3 = localS3Client(e.s3.endpoint, e.region);
    try {
      const storage = new Storage({ apiEndpoint: e.gcs.apiEndpoint, projectId: e.gcs.projectId });
      return await reconcile({
        s3,
        s3Bucket: e.s3.bucket,
        landing: storage.bucket(e.gcs.bucket),
        state: pipeline.parts.loader.state,
        warehouse: pipeline.parts.loader.warehouse,
        policy,
        ...boundsOf(o),
      });
    } finally {
      s3.destroy();
    }
  } finally {
    await pipeline.stop();
  }
}

async function reconcileCloud(o: ReconcileOptions, policy: NamespacePolicy) {
  const missing = (["s3Bucket", "landingBucket", "bigqueryProject"] as const).filter(
    (k) => o[k] === undefined,
  );
  if (missing.length > 0) {
    const flag = (k: string) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
    throw new InvalidArgumentError(
      `${missing.map(flag).join(", ")} required (or --data-dir for the local pipeline).`,
    );
  }
  const { S3Client } = await import("@aws-sdk/client-s3");
  const { Storage } = await import("@google-cloud/storage");
  const { BigQueryWarehouse } = await import("../../functions/warehouse/bigquery.ts");
  const { StateStore } = await import("../../functions/loader/state.ts");
  const { reconcile } = await import("../../functions/loader/reconcile.ts");
  const s3 = new S3Client({
    ...(o.region ? { region: o.region } : {}),
    ...(o.s3Endpoint ? { endpoint: o.s3Endpoint, forcePathStyle: true } : {}),
  });
  const storage = o.gcsEndpoint ? new Storage({ apiEndpoint: o.gcsEndpoint }) : new Storage();
  const warehouse = new BigQueryWarehouse({
    projectId: o.bigqueryProject as string,
    location: o.bigqueryLocation,
  });
  try {
    return await reconcile({
      s3,
      s3Bucket: o.s3Bucket as string,
      landing: storage.bucket(o.landingBucket as string),
      state: new StateStore({
        bucket: storage.bucket(o.stateBucket ?? (o.landingBucket as string)),
        prefix: o.statePrefix,
      }),
      warehouse,
      policy,
      ...boundsOf(o),
    });
  } finally {
    s3.destroy();
    await warehouse.close();
  }
}
