// `logarchive local`: the whole pipeline on this machine, on embedded parts.

import { randomBytes } from "node:crypto";
import { join, resolve } from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import { DEFAULT_POLICY, loadPolicy } from "../../lib/policy/policy.ts";
import type { LocalCloudEndpoints } from "../../local/stack.ts";
import { parsePort, policyPathOrDefault } from "../options.ts";

interface LocalOptions {
  once?: boolean;
  logs?: string[];
  dataDir: string;
  policy?: string;
  host: string;
  s3Port: number;
  sqsPort: number;
  gcsPort: number;
  objectLock?: boolean;
  compaction?: boolean;
  sampleLines: number;
  linesPerSecond: number;
}

export function describeEndpoints(e: LocalCloudEndpoints): string {
  return [
    "logarchive local cloud is up:",
    `  S3        ${e.s3.endpoint}  bucket ${e.s3.bucket}  (path-style, key ${e.s3.accessKeyId}/${e.s3.secretAccessKey})`,
    ...(e.s3.defaultRetention
      ? [
          `            Object Lock: default retention ${e.s3.defaultRetention.mode} ${e.s3.defaultRetention.days} days, as deployed; the shipper sends ${e.s3.defaultRetention.mode} retentions`,
        ]
      : []),
    `  SQS       ${e.sqs.endpoint}  queue ${e.sqs.queueUrl}`,
    "            S3 object-created events for the loaded objects arrive here, in S3's message format",
    `  GCS       ${e.gcs.apiEndpoint}  bucket ${e.gcs.bucket}  (JSON API, project ${e.gcs.projectId})`,
    `  Warehouse ${e.warehouse.path}  tables ${e.warehouse.tables.join(", ")}  (DuckDB)`,
    `  Region    ${e.region}`,
  ].join("\n");
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("expected a whole number ≥ 1.");
  return n;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), ...value.split(",").filter((s) => s !== "")];
}

export function localCommand(version = "local"): Command {
  return new Command("local")
    .description(
      "Run the whole pipeline on this machine: sample logs (or --logs) → shipper → S3 → SQS → transfer → GCS → loader function → DuckDB. Runs until Ctrl-C, or with --once ships what is there, waits until it is loaded, prints a summary and exits.",
    )
    .option(
      "--once",
      "ship every log present, wait until each object is loaded or quarantined, print a summary, exit",
    )
    .option(
      "--logs <glob>",
      "container log files to ship (repeatable, or comma-separated); default: a generated sample workload",
      collect,
    )
    .addOption(
      new Option("--data-dir <dir>", "state of every local service and the warehouse; reused across runs")
        .env("LOGARCHIVE_DATA_DIR")
        .default(".logarchive/local"),
    )
    .addOption(
      new Option(
        "--policy <file>",
        "namespace policy YAML (default: ./namespaces.yaml if present, else archive all, load none)",
      ).env("LOGARCHIVE_POLICY"),
    )
    .addOption(
      new Option("--host <address>", "interface to listen on")
        .env("LOGARCHIVE_LOCAL_HOST")
        .default("127.0.0.1"),
    )
    .addOption(
      new Option("--s3-port <port>", "S3 port, 0 = free port")
        .env("LOGARCHIVE_S3_PORT")
        .argParser(parsePort)
        .default(0),
    )
    .addOption(
      new Option("--sqs-port <port>", "SQS port, 0 = free port")
        .env("LOGARCHIVE_SQS_PORT")
        .argParser(parsePort)
        .default(0),
    )
    .addOption(
      new Option("--gcs-port <port>", "GCS port, 0 = free port")
        .env("LOGARCHIVE_GCS_PORT")
        .argParser(parsePort)
        .default(0),
    )
    .option(
      "--object-lock",
      "create the archive bucket with S3 Object Lock (and so versioning) and the stack's default retention (objectLockMode, objectLockDays), as `pulumi up` does, and run the shipper with the matching object_lock_mode, so stream objects get their short retention and `logarchive hold` and retrieve's lock states can be rehearsed; use a fresh --data-dir (objects an earlier run wrote without it have no versions; locked objects stay locked)",
    )
    .option(
      "--compaction",
      "archive compaction as a stack with archiveCompaction.enabled runs it: the shipper keeps archive originals only the landing days, and `compact --pending` compacts every closed hour once settled (at the end of --once; every 5 minutes while live); needs --object-lock",
    )
    .addOption(
      new Option("--sample-lines <n>", "lines of the generated sample backlog (with --once)")
        .argParser(positiveInt)
        .default(20_000),
    )
    .addOption(
      new Option("--lines-per-second <n>", "rate of the generated live sample workload (without --once)")
        .argParser(positiveInt)
        .default(200),
    )
    .action(async (opts: LocalOptions) => {
      if (opts.compaction && !opts.objectLock) {
        throw new InvalidArgumentError(
          "--compaction needs --object-lock (compacted originals are kept by their Object Lock retention).",
        );
      }
      const policyPath = await policyPathOrDefault(opts.policy);
      const policy = policyPath === undefined ? DEFAULT_POLICY : await loadPolicy(policyPath);
      // Loaded here so `--help` and other commands don't pay for DuckDB and the servers.
      const { runLocal } = await import("../../local/run.ts");
      const { openLocalLog } = await import("../../local/log.ts");
      const dataDir = resolve(opts.dataDir);
      // The terminal is for the run's human lines; every component's JSON log goes to a file.
      const log = openLocalLog(join(dataDir, "logarchive.log"), process.env.LOGARCHIVE_LOG_LEVEL ?? "info");
      try {
        process.exitCode = await runLocal({
          dataDir,
          policy,
          policyLabel: policyPath ?? "(built-in default: archive all, load none)",
          once: opts.once === true,
          ...(opts.logs ? { logs: opts.logs } : {}),
          host: opts.host,
          s3Port: opts.s3Port,
          sqsPort: opts.sqsPort,
          gcsPort: opts.gcsPort,
          ...(opts.objectLock ? { objectLock: true } : {}),
          ...(opts.compaction ? { compaction: true } : {}),
          sampleLines: opts.sampleLines,
          linesPerSecond: opts.linesPerSecond,
          seed: randomBytes(4).readUInt32BE(0),
          logger: log.logger,
          logFile: log,
          version,
          out: (text) => process.stdout.write(text),
        });
      } finally {
        log.flush();
      }
    });
}
