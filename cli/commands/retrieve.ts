// `logarchive retrieve`: every line of a namespace in a time range, restored where archived,
// verified against the shipper's checksums, filtered, in time order, with a manifest
// (docs/retrieval.md). The work is in lib/retrieval/; this file reads the flags, shows
// progress and sets the exit code: 0 complete, 1 incomplete or a verification failure,
// 2 a usage mistake.

import { readFile, writeFile } from "node:fs/promises";
import { Command, InvalidArgumentError, Option } from "commander";
import { ConfigError, UserError } from "../../lib/config/errors.ts";
import { checkDuration } from "../../lib/config/units.ts";
import { prefixProblem } from "../../lib/keys/layout.ts";
import { type Instant, instantFromMs, parseRfc3339 } from "../../lib/record/timestamp.ts";
import type { RestoreTier } from "../../lib/retrieval/plan.ts";
import type { RetrieveEvent } from "../../lib/retrieval/retrieve.ts";
import {
  EXIT,
  parseEndpointUrl,
  parseNamespaceArg,
  policyPathOrDefault,
  type S3Target,
  s3SetupError,
} from "../options.ts";
import { parseTimeArg } from "./reconcile.ts";

/** `2026-03-03`, `2026-03-03T10`, or an RFC 3339 time to the nanosecond; the range is [--from, --to). */
export function parseInstantArg(value: string): Instant {
  if (/^\d{4}-\d{2}-\d{2}(?:[T ]\d{2})?$/i.test(value)) return instantFromMs(parseTimeArg(value).getTime());
  const instant = parseRfc3339(value);
  if (instant === null) {
    throw new InvalidArgumentError(
      "expected a UTC date or hour such as 2026-03-03 or 2026-03-03T10, or an RFC 3339 time such as 2026-03-03T10:00:00.000000001Z.",
    );
  }
  return instant;
}

const TIER_NAMES: Record<string, RestoreTier> = {
  standard: "Standard",
  bulk: "Bulk",
  expedited: "Expedited",
};

function parseRestoreDays(value: string): number {
  const n = Number(value);
  // RestoreRequest Days: a positive whole number of days.
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError("expected a whole number of days, 1 or more.");
  }
  return n;
}

function parsePollInterval(value: string): number {
  const checked = checkDuration(value, { max: 24 * 3_600_000 });
  if ("problem" in checked) throw new InvalidArgumentError(`${checked.problem}.`);
  if (checked.ms < 1) throw new InvalidArgumentError("expected a duration above 0, such as 15m.");
  return checked.ms;
}

function parseGrep(value: string): string {
  try {
    new RegExp(value, "u");
  } catch (error) {
    throw new InvalidArgumentError(`not a regular expression: ${(error as Error).message}.`);
  }
  return value;
}

export function parsePrefix(value: string): string {
  const problem = prefixProblem(value);
  if (problem !== undefined) throw new InvalidArgumentError(`the key prefix ${problem}.`);
  return value;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

interface RetrieveOptions {
  namespace: string;
  from: Instant;
  to: Instant;
  pod?: string[];
  container?: string[];
  grep?: string;
  out: string;
  restoreTier: string;
  restoreDays: number;
  plan?: boolean;
  wait: boolean;
  pollInterval: number;
  config?: string;
  bucket?: string;
  prefix?: string;
  s3Endpoint?: string;
  region?: string;
  policy?: string;
}

/** Restore progress on stderr: one line rewritten in place on a terminal, a line per change elsewhere. */
function progressReporter(): (event: RetrieveEvent) => void {
  const tty = process.stderr.isTTY === true;
  let last = "";
  return (event) => {
    let line: string | undefined;
    if (event.kind === "listed")
      line = `retrieve: ${event.versions} object version(s) under ${event.prefixes} hour prefix(es)${event.compactedHours > 0 ? `; ${event.compactedHours} hour(s) with committed compaction manifests (their named batches read from parts)` : ""}`;
    else if (event.kind === "restores-requested") {
      const started = event.outcomes.filter((o) => o.result === "started").length;
      line = `retrieve: ${started} restore(s) started, ${event.outcomes.length - started} found already running or done`;
    } else if (event.kind === "restore-progress") {
      const width = 30;
      const filled = event.total === 0 ? width : Math.round((event.ready / event.total) * width);
      line = `retrieve: waiting for restores [${"#".repeat(filled)}${".".repeat(width - filled)}] ${event.ready}/${event.total} readable`;
    } else if (event.kind === "downloaded") {
      line = `retrieve: downloaded and verified ${event.done}/${event.total}`;
    }
    if (line === undefined || line === last) return;
    const inPlace = tty && (event.kind === "restore-progress" || event.kind === "downloaded");
    const continuing = tty && last !== "" && /waiting for restores|downloaded and verified/.test(last);
    process.stderr.write(`${continuing ? "\r\x1b[2K" : ""}${line}${inPlace ? "" : "\n"}`);
    if (inPlace && event.kind === "downloaded" && event.done === event.total) process.stderr.write("\n");
    last = line;
  };
}

/** The flags that say where the archive is; `hold` takes the same ones. */
export type ArchiveLocationOptions = Pick<
  RetrieveOptions,
  "config" | "bucket" | "prefix" | "s3Endpoint" | "region" | "policy"
>;

/** Bucket, prefix, endpoint and region: flags and environment first, then the shipper's config file. */
export async function archiveLocation(o: ArchiveLocationOptions): Promise<{
  bucket: string;
  prefix: string;
  s3Endpoint?: string;
  region?: string;
  /** The policy file: --policy, the shipper's, else ./namespaces.yaml if present; undefined is the built-in default. */
  policyPath?: string;
  /** The shipper's batch_max_age and upload_timeout: its --config's, else its defaults. */
  shipper: { batchMaxAgeMs: number; uploadTimeoutMs: number };
}> {
  let file: Record<string, unknown> = {};
  if (o.config !== undefined) {
    const { parseShipperConfigFile } = await import("../../shipper/config.ts");
    let text: string;
    try {
      text = await readFile(o.config, "utf8");
    } catch (error) {
      throw new ConfigError(o.config, [`cannot read it: ${(error as Error).message}`]);
    }
    file = parseShipperConfigFile(text, o.config);
  }
  const fromFile = (key: string): string | undefined => {
    const value = file[key];
    return typeof value === "string" && value !== "" ? value : undefined;
  };
  const bucket = o.bucket ?? fromFile("bucket");
  if (bucket === undefined) {
    throw new InvalidArgumentError(
      "--bucket is required (or LOGARCHIVE_BUCKET, or bucket in the shipper's --config).",
    );
  }
  const policyPath = o.policy ?? fromFile("policy") ?? (await policyPathOrDefault(undefined));
  let prefix = o.prefix ?? fromFile("prefix");
  if (prefix === undefined) {
    const { DEFAULT_POLICY, loadPolicy } = await import("../../lib/policy/policy.ts");
    prefix = (policyPath === undefined ? DEFAULT_POLICY : await loadPolicy(policyPath)).archive.prefix;
  } else if (o.prefix === undefined) {
    const problem = prefixProblem(prefix);
    if (problem !== undefined)
      throw new ConfigError(o.config as string, [`prefix: the key prefix ${problem}`]);
  }
  const s3Endpoint = o.s3Endpoint ?? fromFile("s3_endpoint");
  if (o.s3Endpoint === undefined && s3Endpoint !== undefined) {
    try {
      parseEndpointUrl(s3Endpoint);
    } catch (error) {
      throw new ConfigError(o.config as string, [`s3_endpoint: ${(error as Error).message}`]);
    }
  }
  const region = o.region ?? fromFile("region");
  const { SHIPPER_OPTIONS } = await import("../../shipper/config.ts");
  const shipperDuration = (key: "batch_max_age" | "upload_timeout"): number => {
    const given = file[key];
    const option = SHIPPER_OPTIONS.find((option) => option.key === key) as { default?: unknown } | undefined;
    const checked = checkDuration(given ?? option?.default);
    if ("problem" in checked) throw new ConfigError(o.config as string, [`${key}: ${checked.problem}`]);
    return checked.ms;
  };
  return {
    bucket,
    prefix,
    ...(s3Endpoint ? { s3Endpoint } : {}),
    ...(region ? { region } : {}),
    ...(policyPath === undefined ? {} : { policyPath }),
    shipper: {
      batchMaxAgeMs: shipperDuration("batch_max_age"),
      uploadTimeoutMs: shipperDuration("upload_timeout"),
    },
  };
}

/** The bucket, endpoint and region as the user set them, for one-line S3 setup errors (s3SetupError). */
export function archiveS3Target(
  o: ArchiveLocationOptions,
  location: { bucket: string; s3Endpoint?: string },
): S3Target {
  const inConfig = (key: string, value: string) => `${key} ${value} in ${o.config}`;
  const endpoint =
    location.s3Endpoint === undefined
      ? undefined
      : o.s3Endpoint !== undefined
        ? `--s3-endpoint ${location.s3Endpoint}`
        : inConfig("s3_endpoint", location.s3Endpoint);
  return {
    bucket: o.bucket !== undefined ? `--bucket ${location.bucket}` : inConfig("bucket", location.bucket),
    ...(endpoint === undefined ? {} : { endpoint }),
    region:
      o.region !== undefined ? "--region (or AWS_REGION)" : "--region, AWS_REGION or region in --config",
  };
}

/** --config, --bucket, --prefix, --s3-endpoint, --region and --policy, as archiveLocation reads them. */
export function withArchiveLocationOptions(command: Command): Command {
  return command
    .addOption(
      new Option("--config <file>", "the shipper's YAML config: bucket, prefix, s3_endpoint, region").env(
        "LOGARCHIVE_CONFIG",
      ),
    )
    .addOption(new Option("--bucket <name>", "archive bucket").env("LOGARCHIVE_BUCKET"))
    .addOption(
      new Option("--prefix <prefix>", "archive key prefix (default: the policy's archive.prefix)")
        .env("LOGARCHIVE_PREFIX")
        .argParser(parsePrefix),
    )
    .addOption(
      new Option("--s3-endpoint <url>", "S3 endpoint (path-style)")
        .env("LOGARCHIVE_S3_ENDPOINT")
        .argParser(parseEndpointUrl),
    )
    .addOption(new Option("--region <region>", "AWS region").env("AWS_REGION"))
    .addOption(
      new Option("--policy <file>", "namespace policy YAML, for the default prefix").env("LOGARCHIVE_POLICY"),
    );
}

export function retrieveCommand(version: string): Command {
  const command = new Command("retrieve")
    .description(
      "Retrieve every archived line of a namespace in [--from, --to): list every object version, restore archived ones, verify each body's SHA-256, keep the lines in range that pass the filters, and write them as gzip NDJSON in time order with a manifest. Exit 0 when complete, 1 when incomplete or a check failed, 2 on a usage mistake.",
    )
    .requiredOption("--namespace <ns>", "the namespace", parseNamespaceArg)
    .requiredOption(
      "--from <time>",
      "start, inclusive, UTC (2026-03-03, 2026-03-03T10 or RFC 3339)",
      parseInstantArg,
    )
    .requiredOption("--to <time>", "end, exclusive, UTC", parseInstantArg)
    .option("--pod <glob>", "keep lines of pods matching the glob (repeatable)", collect)
    .option("--container <glob>", "keep lines of containers matching the glob (repeatable)", collect)
    .option("--grep <regex>", "keep lines whose message matches (JavaScript regular expression)", parseGrep)
    .requiredOption("--out <dir|file.tar.gz>", "where the bundle goes: a directory, or a .tar.gz file")
    .addOption(
      new Option("--restore-tier <tier>", "S3 retrieval tier for archived objects")
        .choices(["standard", "bulk", "expedited"])
        .default("standard"),
    )
    .addOption(
      new Option("--restore-days <n>", "days a restored copy stays readable")
        .argParser(parseRestoreDays)
        .default(7),
    )
    .option(
      "--plan",
      "print and write (plan.json) what would be restored, the time and the cost; restore nothing",
    )
    .option("--no-wait", "start the restores and exit 1 without waiting; run again later to resume")
    .addOption(
      new Option("--poll-interval <duration>", "how often to check running restores")
        .argParser(parsePollInterval)
        .default(15 * 60_000, "15m"),
    );
  return withArchiveLocationOptions(command).action(async (o: RetrieveOptions) => {
    if (
      o.to.epochSeconds < o.from.epochSeconds ||
      (o.to.epochSeconds === o.from.epochSeconds && o.to.nanos <= o.from.nanos)
    ) {
      throw new InvalidArgumentError("--to must be after --from.");
    }
    const location = await archiveLocation(o);
    // Read before any restore starts: a bad policy file is a usage error, not a failure at the end.
    const { DEFAULT_POLICY, loadPolicy } = await import("../../lib/policy/policy.ts");
    const policy = location.policyPath === undefined ? DEFAULT_POLICY : await loadPolicy(location.policyPath);
    const { archiveArrivalDelay, recentTailWarning } = await import("../../lib/retrieval/arrival.ts");
    const { S3Client } = await import("@aws-sdk/client-s3");
    const { DEFAULT_PRICES } = await import("../../lib/economics/prices.ts");
    const { retrieve } = await import("../../lib/retrieval/retrieve.ts");
    const { RestorePlanError, describePlan } = await import("../../lib/retrieval/plan.ts");
    const { buildBundle, planPath, writeBundle } = await import("../../lib/retrieval/bundle.ts");
    const { longLivedTiers } = await import("../../lib/keys/tiers.ts");
    const s3 = new S3Client({
      region: location.region ?? "us-east-1",
      ...(location.s3Endpoint ? { endpoint: location.s3Endpoint, forcePathStyle: true } : {}),
    });
    const query = {
      namespace: o.namespace,
      from: o.from,
      to: o.to,
      pods: o.pod ?? [],
      containers: o.container ?? [],
      ...(o.grep === undefined ? {} : { grep: o.grep }),
    };
    try {
      let outcome: Awaited<ReturnType<typeof retrieve>>;
      try {
        outcome = await retrieve({
          s3,
          bucket: location.bucket,
          prefix: location.prefix,
          query,
          restoreTier: TIER_NAMES[o.restoreTier] as RestoreTier,
          restoreDays: o.restoreDays,
          prices: DEFAULT_PRICES,
          planOnly: o.plan === true,
          wait: o.wait,
          pollIntervalMs: o.pollInterval,
          onEvent: progressReporter(),
        });
      } catch (error) {
        if (error instanceof RestorePlanError) throw new UserError(error.message);
        throw s3SetupError(error, archiveS3Target(o, location)) ?? error;
      }
      if (outcome.status === "planned") {
        const path = planPath(o.out);
        const { mkdir } = await import("node:fs/promises");
        const { dirname } = await import("node:path");
        await mkdir(dirname(path), { recursive: true });
        const { describeQuery } = await import("../../lib/retrieval/query.ts");
        const planJson = {
          tool: { name: "logarchive", version },
          query: { ...describeQuery(query), bucket: location.bucket, prefix: location.prefix },
          ...outcome.plan,
        };
        await writeFile(path, `${JSON.stringify(planJson, null, 2)}\n`);
        process.stdout.write(`${describePlan(outcome.plan)}\nplan written to ${path}\n`);
        process.exitCode = EXIT.ok;
        return;
      }
      if (outcome.status === "waiting") {
        process.stdout.write(`${describePlan(outcome.plan)}\n`);
        process.stderr.write(`retrieve: ${outcome.problems.at(-1)}\n`);
        process.exitCode = EXIT.verdict;
        return;
      }
      const now = new Date();
      // A range ending within the archive's arrival delay: objects of its tail may still be
      // open batches on the nodes, which no listing can see.
      const tailWarning = recentTailWarning(
        o.to,
        now,
        archiveArrivalDelay(policy, o.namespace, location.shipper),
      );
      if (tailWarning !== undefined) outcome.warnings.push(tailWarning);
      const { manifest, files } = buildBundle(outcome, {
        toolVersion: version,
        bucket: location.bucket,
        prefix: location.prefix,
        tiers: longLivedTiers(),
        query,
        now,
      });
      const written = await writeBundle(o.out, files, now);
      const sha = files.at(-1)?.data.toString("utf8").split(" ")[0];
      const verdict = manifest.verdict;
      const lines = [
        `retrieve: ${manifest.totals.recordsKept} line(s) kept of ${manifest.totals.recordsTotal} in ${manifest.totals.objectsRead} object(s); written to ${written.join(", ")}`,
        `retrieve: manifest sha256 ${sha}`,
        ...verdict.warnings.map((w) => `WARNING ${w}`),
        ...verdict.problems.map((p) => `PROBLEM ${p}`),
        verdict.complete
          ? `retrieve: COMPLETE, within what the manifest's verdict.proves lists${tailWarning === undefined ? "" : ", for what has arrived: the tail of the range may still be arriving (see the WARNING)"}`
          : `retrieve: INCOMPLETE: ${verdict.problems.length} problem(s); see the manifest's verdict and objects`,
      ];
      process.stdout.write(`${lines.join("\n")}\n`);
      process.exitCode = verdict.complete ? EXIT.ok : EXIT.verdict;
    } finally {
      s3.destroy();
    }
  });
}
