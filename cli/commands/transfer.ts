// `logarchive transfer`: the local stand-in for Storage Transfer Service's event-driven job,
// copying the S3 objects the queue announces into the GCS landing bucket until SIGTERM.

import { Command, InvalidArgumentError, Option } from "commander";
import { parseSize } from "../../lib/config/units.ts";
import { createLogger, type StageLog } from "../../lib/log.ts";
import { EXIT, parseEndpointUrl } from "../options.ts";

interface TransferOptions {
  sqsEndpoint?: string;
  queueUrl: string;
  s3Endpoint?: string;
  region: string;
  gcsEndpoint?: string;
  gcsBucket: string;
  gcsProject?: string;
  visibilityTimeout: number;
  waitSeconds: number;
  maxBytesPerSecond?: number;
  stopGraceSeconds: number;
  once: boolean;
}

function integerIn(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a whole number of seconds, ${min}-${max}.`);
    }
    return n;
  };
}

function positiveSize(value: string): number {
  const n = parseSize(value);
  if (n === null || n < 1) throw new InvalidArgumentError("expected a positive size, e.g. 262144 or 256KiB.");
  return n;
}

export function transferCommand(): Command {
  return new Command("transfer")
    .description(
      "Copy the S3 objects announced on the SQS queue into the GCS landing bucket, as Storage " +
        "Transfer Service's event-driven job does, until SIGTERM.",
    )
    .addOption(
      new Option("--sqs-endpoint <url>", "SQS endpoint (default: AWS's regional endpoint)")
        .env("LOGARCHIVE_SQS_ENDPOINT")
        .argParser(parseEndpointUrl),
    )
    .addOption(
      new Option("--queue-url <url>", "URL of the queue the bucket notification sends to")
        .env("LOGARCHIVE_QUEUE_URL")
        .makeOptionMandatory(),
    )
    .addOption(
      new Option("--s3-endpoint <url>", "S3 endpoint, addressed path-style (default: AWS's)")
        .env("LOGARCHIVE_S3_ENDPOINT")
        .argParser(parseEndpointUrl),
    )
    .addOption(new Option("--region <region>", "AWS region").env("AWS_REGION").default("us-east-1"))
    .addOption(
      new Option("--gcs-endpoint <url>", "GCS JSON API endpoint (default: Google's)")
        .env("LOGARCHIVE_GCS_ENDPOINT")
        .argParser(parseEndpointUrl),
    )
    .addOption(
      new Option("--gcs-bucket <name>", "GCS landing bucket")
        .env("LOGARCHIVE_GCS_BUCKET")
        .makeOptionMandatory(),
    )
    .addOption(new Option("--gcs-project <id>", "GCP project").env("LOGARCHIVE_GCS_PROJECT"))
    .addOption(
      new Option(
        "--visibility-timeout <seconds>",
        "how long a received message stays hidden; renewed while its copy runs",
      )
        .env("LOGARCHIVE_VISIBILITY_TIMEOUT")
        .argParser(integerIn(1, 43_200))
        .default(60),
    )
    .addOption(
      new Option("--wait-seconds <seconds>", "long-poll wait of each receive")
        .env("LOGARCHIVE_WAIT_SECONDS")
        .argParser(integerIn(0, 20))
        .default(20),
    )
    .addOption(
      new Option("--max-bytes-per-second <size>", "cap on each copy's rate, to emulate a slow link")
        .env("LOGARCHIVE_MAX_BYTES_PER_SECOND")
        .argParser(positiveSize),
    )
    .addOption(
      new Option(
        "--stop-grace-seconds <seconds>",
        "on SIGTERM, how long running copies may finish before they are abandoned (a second signal abandons at once)",
      )
        .env("LOGARCHIVE_STOP_GRACE_SECONDS")
        .argParser(integerIn(0, 3600))
        .default(30),
    )
    .option("--once", "exit once the queue is drained", false)
    .addHelpText(
      "after",
      [
        "",
        "Credentials come from the AWS SDK's standard chain (AWS_ACCESS_KEY_ID, profiles, roles) and",
        "Google's application default credentials; a custom --gcs-endpoint is used without credentials.",
        "A message is deleted only once every object it names is in GCS; objects already there with",
        "the same content (logarchive-sha256 metadata, else size and MD5) are not copied again.",
      ].join("\n"),
    )
    .action(async (opts: TransferOptions) => {
      const logger = createLogger("transfer");
      const log: StageLog = (level, event, fields) => logger[level]({ event, ...fields }, event);
      // Loaded here so `--help` and other commands don't pay for the cloud SDKs.
      const [{ S3Client }, { SQSClient }, { Storage }, { TransferWorker }] = await Promise.all([
        import("@aws-sdk/client-s3"),
        import("@aws-sdk/client-sqs"),
        import("@google-cloud/storage"),
        import("../../local/transfer.ts"),
      ]);
      const s3 = new S3Client({
        region: opts.region,
        ...(opts.s3Endpoint ? { endpoint: opts.s3Endpoint, forcePathStyle: true } : {}),
      });
      const sqs = new SQSClient({
        region: opts.region,
        ...(opts.sqsEndpoint ? { endpoint: opts.sqsEndpoint } : {}),
      });
      const storage = new Storage({
        ...(opts.gcsEndpoint ? { apiEndpoint: opts.gcsEndpoint } : {}),
        ...(opts.gcsProject ? { projectId: opts.gcsProject } : {}),
      });
      const worker = new TransferWorker({
        sqs,
        queueUrl: opts.queueUrl,
        s3,
        storage,
        gcsBucket: opts.gcsBucket,
        visibilityTimeoutSeconds: opts.visibilityTimeout,
        waitTimeSeconds: opts.waitSeconds,
        ...(opts.maxBytesPerSecond ? { maxBytesPerSecond: opts.maxBytesPerSecond } : {}),
        log,
      });
      worker.start();
      let stopping: Promise<void> | undefined;
      let stopRequested!: () => void;
      const signalled = new Promise<void>((resolve) => {
        stopRequested = resolve;
      });
      const onSignal = (signal: string) => {
        if (stopping === undefined) {
          logger.info({ event: "shutdown_requested", signal }, "shutdown_requested");
          stopping = worker.stop({ graceMs: opts.stopGraceSeconds * 1000 });
          stopRequested();
        } else {
          logger.warn({ event: "shutdown_forced", signal }, "shutdown_forced");
          void worker.stop({ graceMs: 0 });
        }
      };
      process.on("SIGTERM", () => onSignal("SIGTERM"));
      process.on("SIGINT", () => onSignal("SIGINT"));
      // drained() rejects only when a signal stopped the worker first.
      await (opts.once ? Promise.race([worker.drained().catch(() => {}), signalled]) : signalled);
      stopping ??= worker.stop({ graceMs: opts.stopGraceSeconds * 1000 });
      await stopping;
      s3.destroy();
      sqs.destroy();
      const stats = worker.stats();
      process.stdout.write(`${JSON.stringify(stats)}\n`);
      // Copies that failed are a verdict on this run, not a usage mistake.
      if (opts.once && stats.errors > 0) process.exitCode = EXIT.verdict;
    });
}
