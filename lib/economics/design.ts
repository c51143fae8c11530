// The design as configured: the shipper's and loader's own option modules resolve the values
// (their defaults included), and the loader's window comes from its planner, so the model
// never restates a number the code owns. Pure: config values come in as parsed maps.

import { LOADER_OPTIONS, loaderEnvOf, resolveLoaderConfig } from "../../functions/loader/config.ts";
import { DEFAULT_SWEEP_SETTINGS } from "../../functions/loader/enqueue.ts";
import { ESTIMATED_BATCH_MS_PER_OBJECT } from "../../functions/loader/flush.ts";
import { BIGQUERY_QUOTAS, planLoadWindows } from "../../functions/loader/plan.ts";
import { resolveShipperConfig } from "../../shipper/config.ts";
import { shipperManifests } from "../../shipper/deploy/daemonset.ts";
import {
  DEFAULT_ATHENA_CUTOFF_HOURS,
  DEFAULT_LANDING_DAYS,
  DEFAULT_PART_MAX_BYTES,
  DEFAULT_SETTLE_MS,
  DEFAULT_UPLOAD_CHUNK_BYTES,
} from "../compaction/defaults.ts";
import { DEFAULT_INDEX_MARGIN_HOURS } from "../compaction/readiness.ts";
import {
  DEFAULT_FINALIZE_MAX_INSTANCES,
  DEFAULT_FUNCTION_MEMORY,
  FUNCTION_MEMORY_CHOICES,
  functionSize,
} from "../gcp-deploy.ts";
import {
  classifyNamespace,
  destinations,
  type NamespacePolicy,
  notificationRules,
  streamDelivery,
} from "../policy/policy.ts";
import { COMPACTOR_REQUESTS, compactorLookbackHours, DEFAULT_COMPACTOR_SHARDS } from "./compactor.ts";
import type { CompactionDesign, FunctionsDesign, LoaderDesign, ShipperDesign } from "./model.ts";

export interface DesignSources {
  /** The shipper's YAML config, parsed (keys as in docs/shipper.md), and its path. */
  shipperConfig?: { path: string; values: Record<string, unknown> };
  /** Loader options by key (`flush_interval`) or variable (`LOGARCHIVE_FLUSH_INTERVAL`). */
  loaderConfig?: Record<string, unknown>;
  policy: NamespacePolicy;
  /** Destination tables; default: the policy's. */
  tables?: number;
  /** The stack's functionMemory and finalizeMaxInstances; default: infra's (lib/gcp-deploy.ts). */
  deploy?: { functionMemory?: string; finalizeMaxInstances?: number };
  /** Hypothetical switches for evaluating alternatives (docs/scale.md). */
  hypothetical?: {
    archiveBatchAgeSeconds?: number;
    analyticsBatchAgeSeconds?: number;
    analyticsStream?: boolean;
    markers?: "per-object" | "per-batch";
    separateStateBucket?: boolean;
    /** Load jobs over a batch prefix or wildcard: BigQuery's 10M files per job instead of 10,000 URIs. */
    wildcardLoads?: boolean;
    /** Archive compaction (docs/design/compaction.md); unset fields take DEFAULT_COMPACTION's. */
    compaction?: Partial<CompactionDesign>;
  };
}

/**
 * The compactor's defaults as built and deployed (docs/design/compaction.md): landing days,
 * largest part and settle delay from lib/compaction/defaults.ts (infra's archiveCompaction takes
 * the same), the lookback the CronJob passes for those landing days and its shards
 * (lib/economics/compactor.ts, infra's too), the upload chunk, the index
 * margin from readiness.ts.
 */
export const DEFAULT_COMPACTION: CompactionDesign = {
  landingDays: DEFAULT_LANDING_DAYS,
  deleteAfterHours: DEFAULT_ATHENA_CUTOFF_HOURS,
  partMaxBytes: DEFAULT_PART_MAX_BYTES,
  uploadPartBytes: DEFAULT_UPLOAD_CHUNK_BYTES,
  lookbackHours: compactorLookbackHours(DEFAULT_LANDING_DAYS),
  settleMinutes: DEFAULT_SETTLE_MS / 60_000,
  indexMarginHours: DEFAULT_INDEX_MARGIN_HOURS,
  shards: DEFAULT_COMPACTOR_SHARDS,
};

export interface Design {
  shipper: ShipperDesign;
  loader: LoaderDesign;
  functions: FunctionsDesign;
  notificationRules: number;
  /** Hypothetical archive compaction; null: none (today's design). */
  compaction: CompactionDesign | null;
  /** Where each value came from, for the report. */
  notes: string[];
}

const PLACEHOLDER = "logarchive-plan";
/** Files one load job may read through wildcards (https://cloud.google.com/bigquery/quotas#load_jobs). */
const WILDCARD_FILES_PER_JOB = 10_000_000;

function loaderEnv(values: Record<string, unknown> | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(values ?? {})) {
    const name = key.startsWith("LOGARCHIVE_") ? key : `LOGARCHIVE_${key.toUpperCase()}`;
    env[name] = String(value);
  }
  return env;
}

/**
 * The functions as the stack deploys them: its memory tier with the vCPU that tier comes with, and
 * the finalize function's max instances. A memory that is not a tier is a RangeError (the CLI checks
 * its flag first).
 */
export function functionsDesign(deploy: DesignSources["deploy"] = {}): FunctionsDesign {
  const memory = deploy.functionMemory ?? DEFAULT_FUNCTION_MEMORY;
  const size = functionSize(memory);
  if (size === null) {
    throw new RangeError(
      `functionMemory: ${JSON.stringify(memory)} is not a Cloud Run functions memory tier (${FUNCTION_MEMORY_CHOICES})`,
    );
  }
  return { ...size, finalizeMaxInstances: deploy.finalizeMaxInstances ?? DEFAULT_FINALIZE_MAX_INSTANCES };
}

export function designFromConfig(sources: DesignSources): Design {
  const functions = functionsDesign(sources.deploy);
  const shipper = resolveShipperConfig({
    ...(sources.shipperConfig ? { file: sources.shipperConfig } : {}),
    // The bucket and node do not change the model; the environment is not read.
    flags: { bucket: PLACEHOLDER, node: PLACEHOLDER },
    env: {},
  });
  const env = loaderEnv(sources.loaderConfig);
  // Names the model does not need: a placeholder for each required one not given (distinct
  // per option, so buckets that must differ do).
  const placeholders: Record<string, string> = { LOGARCHIVE_BIGQUERY_PROJECT: PLACEHOLDER };
  for (const spec of LOADER_OPTIONS as readonly { key: string; required?: boolean }[]) {
    if (spec.required)
      placeholders[loaderEnvOf(spec.key)] = `${PLACEHOLDER}-${spec.key.replaceAll("_", "-")}`;
  }
  const loader = resolveLoaderConfig({ ...placeholders, ...env }, {});
  const tables = sources.tables ?? destinations(sources.policy).length;
  const plan = planLoadWindows({
    quotas: {
      ...BIGQUERY_QUOTAS,
      projectJobsPerDay: loader.projectLoadJobsPerDay,
      tableJobsPerDay: loader.tableLoadJobsPerDay,
      maxUrisPerJob: loader.maxUrisPerJob,
    },
    tables,
    budgetFraction: loader.budgetFraction,
    flushIntervalSeconds: loader.flushIntervalMs / 1000,
    minWindowSeconds: loader.minWindowMs / 1000,
  });
  const h = sources.hypothetical ?? {};
  const age = shipper.batchMaxAgeMs / 1000;
  // The policy's analytics.delivery decides the shape; in stream delivery its own ages
  // replace batch_max_age (shipper/sinks/s3/sink.ts). The hypothetical switches override.
  const stream = streamDelivery(sources.policy);
  const analyticsStream = h.analyticsStream ?? stream !== null;
  const configuredAnalyticsAge = stream === null ? age : stream.streamBatchMaxAgeMs / 1000;
  const configuredArchiveAge = stream === null ? age : stream.archiveBatchMaxAgeMs / 1000;
  // The CronJob's lookback follows the landing days (infra passes compactorLookbackHours).
  const compaction =
    h.compaction === undefined
      ? null
      : {
          ...DEFAULT_COMPACTION,
          lookbackHours: compactorLookbackHours(h.compaction.landingDays ?? DEFAULT_COMPACTION.landingDays),
          ...h.compaction,
        };
  const stateBucketIsLanding =
    h.separateStateBucket === undefined
      ? loader.stateBucket === loader.landingBucket
      : !h.separateStateBucket;
  return {
    shipper: {
      analyticsBatchAgeSeconds: h.analyticsBatchAgeSeconds ?? configuredAnalyticsAge,
      archiveBatchAgeSeconds: h.archiveBatchAgeSeconds ?? configuredArchiveAge,
      batchMaxBytes: shipper.batchMaxBytes,
      analyticsStream,
    },
    loader: {
      windowSeconds: plan.windowSeconds,
      flushIntervalSeconds: loader.flushIntervalMs / 1000,
      flushDeadlineSeconds: loader.flushDeadlineMs / 1000,
      maxUrisPerJob: h.wildcardLoads ? WILDCARD_FILES_PER_JOB : loader.maxUrisPerJob,
      tables,
      stateBucketIsLanding,
      validateObjects: loader.validateObjects,
      markers: h.markers ?? "per-object",
      flushConcurrency: loader.flushConcurrency,
      batchEstimateSecondsPerObject: ESTIMATED_BATCH_MS_PER_OBJECT / 1000,
      sweepIntervalSeconds: loader.sweepIntervalMs / 1000,
      sweepMaxObjectsPerRun: loader.sweepMaxObjects,
      sweepMaxListsPerRun: DEFAULT_SWEEP_SETTINGS.maxListsPerRun,
      tableJobsPerDay: loader.tableLoadJobsPerDay,
      projectJobsPerDay: loader.projectLoadJobsPerDay,
      tableJobGuard: loader.tableJobGuard,
    },
    functions,
    notificationRules: notificationRules(sources.policy).length,
    compaction,
    notes: [
      `shipper: batch_max_age ${age} s, batch_max_bytes ${shipper.batchMaxBytes} B (${sources.shipperConfig ? sources.shipperConfig.path : "shipper/config.ts defaults"})`,
      stream === null
        ? "policy: analytics.delivery per-namespace (analytics namespaces' own objects are loaded; batch_max_age for every batch)"
        : `policy: analytics.delivery stream (per-table stream batches of ${configuredAnalyticsAge} s, per-namespace archive batches of ${configuredArchiveAge} s; batch_max_age unused)`,
      `loader: ${tables} table(s), window ${plan.windowSeconds} s (bound by ${plan.boundBy}), flush every ${loader.flushIntervalMs / 1000} s, deadline ${loader.flushDeadlineMs / 1000} s, ${loader.maxUrisPerJob} URIs per job, job guard ${loader.tableJobGuard}/table/day, flush_concurrency ${loader.flushConcurrency}, sweep ${loader.sweepMaxObjects} objects every ${loader.sweepIntervalMs / 1000} s (functions/loader/plan.ts, config.ts)`,
      `functions: ${functions.memory} each (${functions.vcpu} vCPU, the tier's), finalize max instances ${functions.finalizeMaxInstances} (${functions.memory === DEFAULT_FUNCTION_MEMORY && functions.finalizeMaxInstances === DEFAULT_FINALIZE_MAX_INSTANCES ? "infra's defaults, lib/gcp-deploy.ts" : "--function-memory, --finalize-max-instances"})`,
      `loader state bucket ${stateBucketIsLanding ? "is the landing bucket (the default): marker writes fire the finalize trigger" : "is separate from the landing bucket"}`,
      ...(compaction === null
        ? []
        : [
            `archive compaction (docs/design/compaction.md; the hourly compact --pending CronJob): each compacted original deleted ${compaction.deleteAfterHours} h after its hour (its version kept to its ${compaction.landingDays}-day retention), the rest kept whole, parts of at most ${compaction.partMaxBytes} B uploaded in ${compaction.uploadPartBytes} B chunks, lookback ${compaction.lookbackHours} h, settle ${compaction.settleMinutes} min, ${compaction.shards} pod(s) a run`,
          ]),
    ],
  };
}

/**
 * The share of a node's active namespaces the policy loads: kube-system (on every node) and a
 * typical application namespace are classified; the other active namespaces are taken to be
 * like the application one.
 */
export function analyticsShareFromPolicy(policy: NamespacePolicy, activePerNode: number): number {
  const loaded = (ns: string) => {
    const c = classifyNamespace(policy, ns);
    return c.archived && c.destination !== null;
  };
  const system = loaded("kube-system") ? 1 : 0;
  const app = loaded("app-0002") ? 1 : 0;
  if (activePerNode <= 1) return system;
  return (system + app * (activePerNode - 1)) / activePerNode;
}

function parseCpu(text: string): number {
  return text.endsWith("m") ? Number(text.slice(0, -1)) / 1000 : Number(text);
}

function parseMemoryGiB(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi)?$/.exec(text);
  if (m === null) return Number.NaN;
  const factor = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30 }[m[2] as "Ki" | "Mi" | "Gi"] ?? 1;
  return (Number(m[1]) * factor) / 2 ** 30;
}

/** The shipper container's requests in the DaemonSet as generated (shipper/deploy/daemonset.ts). */
export function shipperReservation(): { cpu: number; memoryGiB: number } {
  const objects = shipperManifests({
    image: PLACEHOLDER,
    bucket: PLACEHOLDER,
    region: "us-east-1",
    policyYaml: "{}\n",
  });
  const ds = objects.find((o) => o.kind === "DaemonSet") as unknown as {
    spec: {
      template: { spec: { containers: { resources?: { requests?: { cpu?: string; memory?: string } } }[] } };
    };
  };
  let cpu = 0;
  let memoryGiB = 0;
  for (const c of ds.spec.template.spec.containers) {
    cpu += parseCpu(c.resources?.requests?.cpu ?? "0");
    memoryGiB += parseMemoryGiB(c.resources?.requests?.memory ?? "0");
  }
  return { cpu, memoryGiB };
}

/** Each compactor pod's requests: lib/economics/compactor.ts, which infra deploys (compactor.test.ts checks the CronJob). */
export { COMPACTOR_REQUESTS };

/** Each compactor pod's requested vCPU and GiB while its run lasts (shards pods a run). */
export function compactorReservation(): { cpu: number; memoryGiB: number } {
  return { cpu: parseCpu(COMPACTOR_REQUESTS.cpu), memoryGiB: parseMemoryGiB(COMPACTOR_REQUESTS.memory) };
}
