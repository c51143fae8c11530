// `logarchive local`: the whole pipeline on this machine, on embedded parts.

import { resolve } from "node:path";
import { Command, Option } from "commander";
import { createLogger, eventLog } from "../../lib/log.ts";
import { DEFAULT_POLICY, loadPolicy } from "../../lib/policy/policy.ts";
import type { LocalCloudEndpoints } from "../../local/stack.ts";
import { parsePort } from "../options.ts";

interface LocalOptions {
  dataDir: string;
  policy?: string;
  host: string;
  s3Port: number;
  sqsPort: number;
  gcsPort: number;
}

export function describeEndpoints(e: LocalCloudEndpoints): string {
  return [
    "logarchive local cloud is up:",
    `  S3        ${e.s3.endpoint}  bucket ${e.s3.bucket}  (path-style, key ${e.s3.accessKeyId}/${e.s3.secretAccessKey})`,
    `  SQS       ${e.sqs.endpoint}  queue ${e.sqs.queueUrl}`,
    "            S3 object-created events for the analytics tier arrive here, in S3's message format",
    `  GCS       ${e.gcs.apiEndpoint}  bucket ${e.gcs.bucket}  (JSON API, project ${e.gcs.projectId})`,
    `  Warehouse ${e.warehouse.path}  tables ${e.warehouse.tables.join(", ")}  (DuckDB)`,
    `  Region    ${e.region}`,
  ].join("\n");
}

export function localCommand(): Command {
  return new Command("local")
    .description(
      "Run the pipeline's local cloud (S3, SQS, GCS, DuckDB warehouse) on this machine until Ctrl-C.",
    )
    .addOption(
      new Option("--data-dir <dir>", "state of every local service; reused across runs")
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
    .action(async (opts: LocalOptions) => {
      const logger = createLogger("local");
      const policyPath = opts.policy ?? (await defaultPolicyPath());
      const policy = policyPath === undefined ? DEFAULT_POLICY : await loadPolicy(policyPath);
      // Loaded here so `--help` and other commands don't pay for DuckDB and the servers.
      const { startLocalCloud } = await import("../../local/stack.ts");
      const cloud = await startLocalCloud({
        dataDir: resolve(opts.dataDir),
        host: opts.host,
        s3Port: opts.s3Port,
        sqsPort: opts.sqsPort,
        gcsPort: opts.gcsPort,
        policy,
        log: eventLog(logger),
      });
      process.stdout.write(`${describeEndpoints(cloud.endpoints)}\n`);
      process.stdout.write(`  Policy    ${policyPath ?? "(built-in default: archive all, load none)"}\n`);
      process.stdout.write("Press Ctrl-C to stop.\n");
      await new Promise<void>((done) => {
        const shutdown = (signal: string) => {
          process.stdout.write(`\n${signal}: stopping the local cloud…\n`);
          cloud.stop().then(done, (error) => {
            logger.error({ err: error }, "stop failed");
            done();
          });
        };
        process.once("SIGINT", () => shutdown("SIGINT"));
        process.once("SIGTERM", () => shutdown("SIGTERM"));
      });
      process.stdout.write("Stopped.\n");
    });
}

async function defaultPolicyPath(): Promise<string | undefined> {
  const { access } = await import("node:fs/promises");
  try {
    await access("namespaces.yaml");
    return "namespaces.yaml";
  } catch {
    return undefined;
  }
}
