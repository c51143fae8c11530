// `logarchive plan`: the quota and volume model of the design as configured (docs/scale.md).
// The model (lib/economics/) and the loader's planner are imported when the command runs,
// so the shipper's image, which carries cli/ but not functions/, still loads this file.

import { readFile } from "node:fs/promises";
import { Command, InvalidArgumentError, Option } from "commander";
import {
  COMPACTION_ENABLED_BY_DEFAULT,
  DEFAULT_LANDING_DAYS,
  DEFAULT_UPLOAD_CHUNK_BYTES,
} from "../../lib/compaction/defaults.ts";
import { MAX_SHARD_COUNT } from "../../lib/compaction/shard.ts";
import { UserError } from "../../lib/config/errors.ts";
import { parseDuration, parseSize } from "../../lib/config/units.ts";
import { DEFAULT_COMPACTOR_SHARDS } from "../../lib/economics/compactor.ts";
import type { PlanModel } from "../../lib/economics/model.ts";
import {
  DEFAULT_FINALIZE_MAX_INSTANCES,
  DEFAULT_FUNCTION_MEMORY,
  FUNCTION_MEMORY_CHOICES,
  functionSize,
} from "../../lib/gcp-deploy.ts";
import { policyPathOrDefault } from "../options.ts";

export interface CommandIo {
  write(text: string): void;
  setExitCode(code: number): void;
}

const PROCESS_IO: CommandIo = {
  write: (text) => process.stdout.write(text),
  setExitCode: (code) => {
    process.exitCode = code;
  },
};

/** The measurement (issue 9 §4): stored/raw of the shipper on realistic node logs. */
export const DEFAULT_STORED_PER_RAW = 0.224;
/** The record costs about 2.1× the raw bytes before gzip (issue 9 §3). */
export const DEFAULT_RECORD_PER_RAW = 2.1;
export const DEFAULT_RAW_LINE_BYTES = 250;

function positiveInt(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1)
      throw new InvalidArgumentError(`${flag}: expected a whole number ≥ 1.`);
    return n;
  };
}

function positiveNumber(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError(`${flag}: expected a number > 0.`);
    return n;
  };
}

function share(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!(n >= 0 && n <= 1))
      throw new InvalidArgumentError(`${flag}: expected a share in [0, 1], such as 0.97.`);
    return n;
  };
}

function zipf(value: string): number {
  const m = /^zipf:(\d+(?:\.\d+)?)$/.exec(value);
  if (m === null)
    throw new InvalidArgumentError("--skew: expected zipf:S, such as zipf:1.1 (zipf:0 is uniform).");
  return Number(m[1]);
}

function functionMemory(value: string): string {
  if (functionSize(value) === null)
    throw new InvalidArgumentError(
      `--function-memory: expected a Cloud Run functions memory tier (${FUNCTION_MEMORY_CHOICES}).`,
    );
  return value;
}

function durationSeconds(flag: string) {
  return (value: string): number => {
    const ms = parseDuration(value);
    if (ms === null || ms < 1000 || ms > 3_600_000) {
      throw new InvalidArgumentError(`${flag}: expected a duration from 1s to 1h, such as 60s or 1h.`);
    }
    return ms / 1000;
  };
}

function landingDays(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 365)
    throw new InvalidArgumentError("--landing-days: expected a whole number of days from 1 to 365.");
  return n;
}

function compactionShards(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_SHARD_COUNT)
    throw new InvalidArgumentError(
      `--compaction-shards: expected a whole number of pods from 1 to ${MAX_SHARD_COUNT}.`,
    );
  return n;
}

/** S3's multipart limits bound a part: 5 MiB to 5 GiB a chunk, 10,000 chunks (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html). */
function sizeBetween(flag: string, min: number, max: number, example: string) {
  return (value: string): number => {
    const n = parseSize(value);
    if (n === null || n < min || n > max)
      throw new InvalidArgumentError(
        `${flag}: expected a size from ${min} B to ${max} B, such as ${example}.`,
      );
    return n;
  };
}

export interface WorkloadOptions {
  nodes: number;
  gbPerNodeDay: number;
  namespaces: number;
  activePerNode: number;
  skew: number;
  analyticsShare?: number;
  compression?: number;
  measured?: string;
  lineBytes?: number;
  recordRatio?: number;
  policy?: string;
  shipperConfig?: string;
  loaderConfig?: string;
  tables?: number;
  assumptions?: string;
  functionMemory: string;
  finalizeMaxInstances: number;
  format: "table" | "json";
  archiveBatchAge?: number;
  analyticsBatchAge?: number;
  analyticsStream?: boolean;
  markers?: "per-object" | "per-batch";
  separateStateBucket?: boolean;
  wildcardLoads?: boolean;
  archiveCompaction?: boolean;
  landingDays?: number;
  compactionPartMax?: number;
  compactionUploadPart?: number;
  compactionShards?: number;
}

/** The options `plan` and `cost` share: the workload, the configuration, hypothetical switches. */
export function addWorkloadOptions(command: Command): Command {
  return command
    .requiredOption("--nodes <n>", "nodes in the fleet", positiveInt("--nodes"))
    .requiredOption(
      "--gb-per-node-day <g>",
      "raw container log GB (10^9 bytes) per node per day",
      positiveNumber("--gb-per-node-day"),
    )
    .requiredOption("--namespaces <k>", "namespaces in the fleet", positiveInt("--namespaces"))
    .option("--active-per-node <a>", "namespaces with logs on one node", positiveInt("--active-per-node"), 30)
    .option("--skew <zipf:S>", "Zipf skew of namespace volume and popularity", zipf, 1.1)
    .option(
      "--analytics-share <s>",
      "share of each node's namespaces loaded for analytics (default: from the policy: every namespace it loads)",
      share("--analytics-share"),
    )
    .addOption(
      new Option(
        "--compression <r>",
        `gzip bytes per raw byte (default ${DEFAULT_STORED_PER_RAW}, issue 9's measurement)`,
      )
        .argParser(positiveNumber("--compression"))
        .conflicts("measured"),
    )
    .option(
      "--measured <file>",
      "the shipper's /metrics text (or JSON with compression, recordPerRaw, rawLineBytes) from a real run",
    )
    .option(
      "--line-bytes <b>",
      `mean raw bytes per log line (default ${DEFAULT_RAW_LINE_BYTES})`,
      positiveNumber("--line-bytes"),
    )
    .option(
      "--record-ratio <x>",
      `NDJSON record bytes per raw byte (default ${DEFAULT_RECORD_PER_RAW})`,
      positiveNumber("--record-ratio"),
    )
    .option("--policy <file>", "namespace policy YAML (default: ./namespaces.yaml if present)")
    .option("--shipper-config <file>", "the shipper's YAML config (default: shipper/config.ts defaults)")
    .option(
      "--loader-config <file>",
      "the loader's options as YAML/JSON, by key or LOGARCHIVE_* variable (default: functions/loader/config.ts defaults)",
    )
    .option("--tables <n>", "destination tables (default: the policy's)", positiveInt("--tables"))
    .option("--assumptions <file>", "YAML/JSON overriding the model's assumptions (printed with the plan)")
    .option(
      "--function-memory <size>",
      "the loader functions' memory, as the stack's functionMemory (its vCPU comes with the tier)",
      functionMemory,
      DEFAULT_FUNCTION_MEMORY,
    )
    .option(
      "--finalize-max-instances <n>",
      "the finalize function's max instances, as the stack's finalizeMaxInstances",
      positiveInt("--finalize-max-instances"),
      DEFAULT_FINALIZE_MAX_INSTANCES,
    )
    .addOption(new Option("--format <format>", "output format").choices(["table", "json"]).default("table"))
    .option(
      "--archive-batch-age <duration>",
      "override: the archive batches' age (default: batch_max_age, or archive.batch_max_age in stream delivery)",
      durationSeconds("--archive-batch-age"),
    )
    .option(
      "--analytics-batch-age <duration>",
      "override: the loaded batches' age (default: batch_max_age, or analytics.stream_batch_max_age in stream delivery)",
      durationSeconds("--analytics-batch-age"),
    )
    .option(
      "--analytics-stream",
      "override: model stream delivery whatever the policy's analytics.delivery says",
    )
    .addOption(
      new Option("--markers <kind>", "hypothetical: loader markers").choices(["per-object", "per-batch"]),
    )
    .option("--separate-state-bucket", "the loader's state in its own bucket (LOGARCHIVE_STATE_BUCKET)")
    .option("--wildcard-loads", "hypothetical: load jobs over a batch prefix or wildcard (10M files per job)")
    .option(
      "--archive-compaction",
      `archive compaction as infra deploys it with archiveCompaction.enabled: the hourly compact --pending CronJob puts each namespace-hour's archive objects from every node into parts; the originals live --landing-days (docs/design/compaction.md; default: ${COMPACTION_ENABLED_BY_DEFAULT ? "on" : "off"}, as infra's)`,
    )
    .option("--no-archive-compaction", "model the archive without compaction")
    .option(
      "--landing-days <d>",
      `with --archive-compaction: days the originals are kept, in Standard (default ${DEFAULT_LANDING_DAYS})`,
      landingDays,
    )
    .option(
      "--compaction-part-max <size>",
      "with --archive-compaction: the largest compacted part (default 1GiB, the compactor's)",
      sizeBetween("--compaction-part-max", 2 ** 20, 5 * 2 ** 40, "1GiB"),
    )
    .option(
      "--compaction-upload-part <size>",
      `with --archive-compaction: multipart chunk of a part's upload (default ${DEFAULT_UPLOAD_CHUNK_BYTES / 2 ** 20}MiB, the compactor's)`,
      sizeBetween("--compaction-upload-part", 5 * 2 ** 20, 5 * 2 ** 30, "32MiB"),
    )
    .option(
      "--compaction-shards <n>",
      `with --archive-compaction: pods of each compactor run, each --shard i/n (default ${DEFAULT_COMPACTOR_SHARDS}, infra's archiveCompaction.shards)`,
      compactionShards,
    );
}

async function readText(path: string, flag: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    throw new UserError(
      `${flag} ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
}

async function readMap(path: string, flag: string): Promise<Record<string, unknown>> {
  const { parse } = await import("yaml");
  const text = await readText(path, flag);
  let value: unknown;
  try {
    value = parse(text);
  } catch (error) {
    throw new UserError(`${flag} ${path}: not YAML or JSON: ${(error as Error).message.split("\n")[0]}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new UserError(`${flag} ${path}: expected a map of keys to values`);
  }
  return value as Record<string, unknown>;
}

/**
 * gzip bytes per raw byte past each object's fixed cost: the metrics' uploaded bytes less
 * the per-object overhead of the batches they count, over the bytes read.
 */
/**
 * gzip bytes per raw byte at the margin, from a run's metrics: what it uploaded less gzip's
 * fixed cost per object, over what it read times the copies it uploads of each byte (2 for the
 * analytics lines in stream delivery: an archive object and a stream object).
 */
function marginalStoredPerRaw(
  m: { storedPerRaw?: number; readBytes?: number; uploadedBytes?: number; objects?: number },
  overheadBytes: number,
  copiesPerReadByte: number,
): number {
  if (m.readBytes && m.uploadedBytes && m.objects) {
    return Math.max(0.001, (m.uploadedBytes - m.objects * overheadBytes) / (m.readBytes * copiesPerReadByte));
  }
  return m.storedPerRaw ?? DEFAULT_STORED_PER_RAW;
}

/** Former assumptions that are now read from the deploy's settings, and the flag that models them. */
const MOVED_TO_DEPLOY_SETTINGS: Record<string, string> = {
  compactorMemoryGb:
    "the compactor CronJob's memory request (lib/economics/compactor.ts); its speed is compactorCpuSecondsPerGB",
  compactorMBPerSecondPerGb:
    "the compactor runs as a CronJob, not Lambda; set compactorCpuSecondsPerGB (measured CPU-seconds per GB of one pod)",
  compactorMBPerSecond:
    "a run's speed is now compactorCpuSecondsPerGB (measured, docs/benchmarks.md#compaction) over archiveCompaction.shards pods; --compaction-shards",
  functionVcpu: "the stack's functionMemory tier; --function-memory",
  functionMemoryGiB: "the stack's functionMemory; --function-memory",
  functionMaxInstances: "the stack's finalizeMaxInstances; --finalize-max-instances",
};

/** Resolves the options into the model's inputs and runs the volume model. */
export async function runPlanModel(o: WorkloadOptions) {
  const { planModel, DEFAULT_ASSUMPTIONS } = await import("../../lib/economics/model.ts");
  const { analyticsShareFromPolicy, designFromConfig } = await import("../../lib/economics/design.ts");
  const { parseMeasured, MeasuredError } = await import("../../lib/economics/measured.ts");
  const { DEFAULT_POLICY, loadPolicy } = await import("../../lib/policy/policy.ts");
  const { ConfigError } = await import("../../lib/config/errors.ts");

  const compactionFlags = [
    ["--landing-days", o.landingDays],
    ["--compaction-part-max", o.compactionPartMax],
    ["--compaction-upload-part", o.compactionUploadPart],
    ["--compaction-shards", o.compactionShards],
  ] as const;
  const stray = compactionFlags.find(([, value]) => value !== undefined);
  const archiveCompaction = o.archiveCompaction ?? COMPACTION_ENABLED_BY_DEFAULT;
  if (!archiveCompaction && stray !== undefined)
    throw new UserError(`${stray[0]}: only with --archive-compaction`);

  const policyPath = await policyPathOrDefault(o.policy);
  // A missing or bad policy is a ConfigError naming the file (exit 2), as in every command.
  const policy = policyPath === undefined ? DEFAULT_POLICY : await loadPolicy(policyPath);
  let measured: Awaited<ReturnType<typeof parseMeasured>> = {};
  if (o.measured !== undefined) {
    const text = await readText(o.measured, "--measured");
    let parsed: unknown = null;
    if (!text.includes("logarchive_shipper_read_bytes_total"))
      parsed = await readMap(o.measured, "--measured");
    try {
      measured = parseMeasured(text, parsed);
    } catch (error) {
      if (error instanceof MeasuredError) throw new UserError(`--measured ${o.measured}: ${error.message}`);
      throw error;
    }
  }
  let shipperConfig: { path: string; values: Record<string, unknown> } | undefined;
  if (o.shipperConfig !== undefined) {
    shipperConfig = { path: o.shipperConfig, values: await readMap(o.shipperConfig, "--shipper-config") };
  }
  const loaderConfig =
    o.loaderConfig === undefined ? undefined : await readMap(o.loaderConfig, "--loader-config");
  const assumptions = { ...DEFAULT_ASSUMPTIONS };
  if (o.assumptions !== undefined) {
    const given = await readMap(o.assumptions, "--assumptions");
    for (const [key, value] of Object.entries(given)) {
      const deploySetting = MOVED_TO_DEPLOY_SETTINGS[key];
      if (deploySetting !== undefined)
        throw new UserError(
          `--assumptions ${o.assumptions}: ${key}: no longer an assumption: the deploy sets it (${deploySetting})`,
        );
      if (!(key in assumptions))
        throw new UserError(`--assumptions ${o.assumptions}: ${key}: unknown assumption`);
      if (typeof value !== "number" || !(value >= 0)) {
        throw new UserError(`--assumptions ${o.assumptions}: ${key}: expected a number ≥ 0`);
      }
      (assumptions as Record<string, number>)[key] = value;
    }
  }
  let design: ReturnType<typeof designFromConfig>;
  try {
    design = designFromConfig({
      ...(shipperConfig ? { shipperConfig } : {}),
      ...(loaderConfig ? { loaderConfig } : {}),
      policy,
      ...(o.tables === undefined ? {} : { tables: o.tables }),
      deploy: { functionMemory: o.functionMemory, finalizeMaxInstances: o.finalizeMaxInstances },
      hypothetical: {
        ...(o.archiveBatchAge === undefined ? {} : { archiveBatchAgeSeconds: o.archiveBatchAge }),
        ...(o.analyticsBatchAge === undefined ? {} : { analyticsBatchAgeSeconds: o.analyticsBatchAge }),
        ...(o.analyticsStream ? { analyticsStream: true } : {}),
        ...(o.markers === undefined ? {} : { markers: o.markers }),
        ...(o.separateStateBucket ? { separateStateBucket: true } : {}),
        ...(o.wildcardLoads ? { wildcardLoads: true } : {}),
        ...(archiveCompaction
          ? {
              compaction: {
                ...(o.landingDays === undefined ? {} : { landingDays: o.landingDays }),
                ...(o.compactionPartMax === undefined ? {} : { partMaxBytes: o.compactionPartMax }),
                ...(o.compactionUploadPart === undefined ? {} : { uploadPartBytes: o.compactionUploadPart }),
                ...(o.compactionShards === undefined ? {} : { shards: o.compactionShards }),
              },
            }
          : {}),
      },
    });
  } catch (error) {
    if (error instanceof ConfigError) throw new UserError(error.message.replaceAll("\n", " "));
    if ((error as Error).name === "PlanError")
      throw new UserError(`loader plan: ${(error as Error).message}`);
    throw error;
  }
  const active = Math.min(o.activePerNode, o.namespaces);
  const analyticsShare = o.analyticsShare ?? analyticsShareFromPolicy(policy, active);
  // The shipper's counters add up every object it uploads: in stream delivery an analytics
  // line is in an archive object and in a stream object, so a node's metrics count those
  // bytes twice against one read (shipper/metrics.ts has no per-tier split).
  const copiesPerReadByte =
    design.shipper.analyticsStream && measured.readBytes !== undefined ? 1 + analyticsShare : 1;
  const model = planModel({
    workload: {
      nodes: o.nodes,
      rawBytesPerNodeDay: o.gbPerNodeDay * 1e9,
      namespaces: o.namespaces,
      activePerNode: active,
      zipfExponent: o.skew,
      analyticsShare,
      storedPerRaw:
        o.compression ??
        marginalStoredPerRaw(measured, assumptions.gzipObjectOverheadBytes, copiesPerReadByte),
      rawLineBytes: o.lineBytes ?? measured.rawLineBytes ?? DEFAULT_RAW_LINE_BYTES,
      recordPerRaw:
        o.recordRatio ??
        (measured.recordPerRaw === undefined
          ? DEFAULT_RECORD_PER_RAW
          : measured.recordPerRaw / copiesPerReadByte),
    },
    shipper: design.shipper,
    loader: design.loader,
    functions: design.functions,
    assumptions,
    notificationRules: design.notificationRules,
    compaction: design.compaction,
  });
  const notes = [`policy: ${policyPath ?? "(built-in default)"}`, ...design.notes];
  if (o.measured !== undefined) notes.push(`measured inputs from ${o.measured}: ${JSON.stringify(measured)}`);
  return { model, notes, policyPath, policy };
}

export function planCommand(io: CommandIo = PROCESS_IO): Command {
  return addWorkloadOptions(
    new Command("plan").description(
      "Model the design as configured: objects per day and their sizes, requests per service, load jobs, freshness, and every quota's headroom; exits 1 when a quota has under 2× headroom (docs/scale.md).",
    ),
  ).action(async (o: WorkloadOptions) => {
    const { model, notes } = await runPlanModel(o);
    const { failingQuotas, quotaChecks } = await import("../../lib/economics/quotas.ts");
    const { formatPlan } = await import("../../lib/economics/format.ts");
    const quotas = quotaChecks(model);
    const failing = failingQuotas(quotas);
    const lifecycle = await deployedLifecycleReach(model);
    if (o.format === "json") {
      io.write(`${JSON.stringify({ notes, ...model, quotas, lifecycle }, jsonNumbers, 2)}\n`);
    } else {
      io.write(formatPlan(model, quotas, notes));
      const { transitionReachTable } = await import("../../lib/economics/format.ts");
      io.write(
        `\n## Archive lifecycle as infra deploys it (${lifecycle.retentionDays}-day retention, break-even sizes at list prices; \`logarchive cost\` prices it)\n${transitionReachTable(lifecycle.transitions)}\n`,
      );
      io.write(
        failing.length === 0
          ? "\nverdict: every quota has at least 2× headroom\n"
          : `\nverdict: ${failing.length} quota(s) under 2× headroom: ${failing.map((q) => q.id).join(", ")}\n`,
      );
    }
    io.setExitCode(failing.length === 0 ? 0 : 1);
  });
}

/**
 * Which archived objects each transition of infra's default lifecycle moves (lib/archive-lifecycle.ts:
 * the tiers, the retention and the break-even sizes at the list prices infra computes them from).
 */
async function deployedLifecycleReach(model: PlanModel) {
  const lib = await import("../../lib/archive-lifecycle.ts");
  const { transitionReach } = await import("../../lib/economics/cost.ts");
  const { DEFAULT_PRICES } = await import("../../lib/economics/prices.ts");
  const inputs = {
    lifecycle: lib.archiveTransitions(lib.DEFAULT_ARCHIVE_TIER_DAYS),
    retentionDays: lib.DEFAULT_ARCHIVE_RETENTION_DAYS,
    transitionSizes: lib.DEFAULT_TRANSITION_SIZES,
    smallObjects: "all_storage_classes_128K" as const,
  };
  const bands =
    inputs.transitionSizes === "off"
      ? []
      : lib.transitionSizeBands(inputs.lifecycle, inputs.retentionDays, DEFAULT_PRICES);
  const { retainedArchiveClasses } = await import("../../lib/economics/model.ts");
  return {
    retentionDays: inputs.retentionDays,
    transitions: transitionReach(retainedArchiveClasses(model), inputs, bands),
  };
}

/** JSON has no Infinity: unused quotas' headroom prints as null. */
export function jsonNumbers(_key: string, value: unknown): unknown {
  return typeof value === "number" && !Number.isFinite(value) ? null : value;
}
