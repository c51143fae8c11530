// Every quota the design meets, with its limit, the source of that limit, the modelled use,
// the headroom (limit / use) and the setting to change when the headroom is under 2×.
// `hard` limits fail the plan; guidelines (limits that scale by themselves, given time) are
// shown but do not.

import {
  CLOUD_RUN_EXAMPLE_REGIONAL_QUOTA,
  CLOUD_RUN_FUNCTIONS_DEFAULT_MAX_INSTANCES,
} from "../gcp-deploy.ts";
import {
  COMPACTOR_RUN_DEADLINE_SECONDS,
  type FunctionsDesign,
  flushSecondsPerObjectAt,
  type PlanModel,
} from "./model.ts";

export const REQUIRED_HEADROOM = 2;

export interface QuotaCheck {
  id: string;
  name: string;
  limit: number;
  use: number;
  unit: string;
  /** limit / use; Infinity when unused. */
  headroom: number;
  hard: boolean;
  source: string;
  /** What to change when the headroom is short. */
  setting: string;
  ok: boolean;
}

function check(q: Omit<QuotaCheck, "headroom" | "ok" | "hard"> & { hard?: boolean }): QuotaCheck {
  const headroom = q.use > 0 ? q.limit / q.use : Number.POSITIVE_INFINITY;
  const hard = q.hard ?? true;
  return { ...q, hard, headroom, ok: headroom >= REQUIRED_HEADROOM };
}

export function quotaChecks(model: PlanModel): QuotaCheck[] {
  const { loader, inputs } = model;
  const a = inputs.assumptions;
  return [
    check({
      id: "s3_put_per_prefix",
      name: "S3 PUT per second per partitioned prefix (hottest namespace prefix)",
      limit: 3500,
      use: model.s3.hottestPrefix.putsPerSecond,
      unit: "PUT/s",
      source: "https://docs.aws.amazon.com/AmazonS3/latest/userguide/optimizing-performance.html",
      setting: "batch_max_age (longer batches), or fewer objects per node (an analytics stream)",
    }),
    check({
      id: "s3_notification_configurations",
      name: "S3 notification configurations per bucket",
      limit: 100,
      use: inputs.notificationRules,
      unit: "configurations",
      source:
        "S3 console help text, as recorded in the project's research notes (not checked against an AWS page)",
      setting: "analytics.include in the policy (one rule covers the analytics tier)",
    }),
    check({
      id: "sqs_in_flight",
      name: "SQS standard queue messages in flight",
      limit: 120_000,
      use: model.sqs.inFlight,
      unit: "messages",
      source: "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-queues.html",
      setting: `fewer analytics objects (batch_max_age, an analytics stream); in flight = messages/s × ${a.transferInFlightSeconds} s assumed hold`,
    }),
    check({
      id: "sts_operations_in_progress",
      name: "Storage Transfer operations in progress per project",
      limit: 200,
      use: model.transfer.operationsInProgress,
      unit: "operations",
      source: "https://cloud.google.com/storage-transfer/quotas",
      setting: "one event-driven transfer job per landing bucket",
    }),
    check({
      id: "function_instances",
      name: "Cloud Run functions instances busy at once (finalize) vs. its max instances as deployed",
      limit: inputs.functions.finalizeMaxInstances,
      use: model.functions.concurrentInstances,
      unit: "instances",
      source: `the stack's finalizeMaxInstances (infra/config.ts; default lib/gcp-deploy.ts), deployed as maxInstanceCount · ${regionalQuotaNote(inputs.functions)} (https://cloud.google.com/run/docs/configuring/max-instances-limits)`,
      setting:
        "finalizeMaxInstances in the stack (model it with --finalize-max-instances; above the region's Cloud Run CPU/memory quota, request an increase), or concurrency (needs ≥ 1 vCPU); fewer objects",
    }),
    check({
      id: "loader_objects_per_table_day",
      name: `Objects per table per day vs. the load jobs a table may start (${loader.allowedJobsPerTablePerDay.toLocaleString("en-US")}: table_job_guard, within BigQuery's per-table and per-project jobs) × max_uris_per_job`,
      limit: loader.jobCeilingObjectsPerTablePerDay,
      use: loader.loadedObjectsPerTablePerDay,
      unit: "objects/day",
      source:
        "https://cloud.google.com/bigquery/quotas#load_jobs (jobs per table and project per day, 10,000 URIs per job) · functions/loader/config.ts table_job_guard · functions/loader/flush.ts",
      setting:
        "fewer, larger analytics objects (batch_max_age, an analytics stream), or more tables in warehouse.routes; LOGARCHIVE_TABLE_JOB_GUARD only up to the per-table limit",
    }),
    check({
      id: "loader_flush_throughput",
      name: `Objects per table per day vs. what its flush runs get through, one full batch after another (${Math.round(loader.fullBatchSeconds)} s a batch at the assumed flush speed, new batches until flush_deadline)`,
      limit: loader.flushCeilingObjectsPerTablePerDay,
      use: loader.loadedObjectsPerTablePerDay,
      unit: "objects/day",
      source: `functions/loader/flush.ts · flush_deadline, flush_interval, flush_concurrency ${inputs.loader.flushConcurrency} (functions/loader/config.ts) · flush speed ${round(flushSecondsPerObjectAt(a, inputs.loader.flushConcurrency))} s/object (${a.flushSecondsPerObject} s at concurrency ${a.flushSpeedAtConcurrency} × (${a.flushSpeedAtConcurrency}/${inputs.loader.flushConcurrency})^${a.flushConcurrencyExponent}, flush.ts, measured with 50 ms per GCS request, not on GCS itself: docs/benchmarks.md#loader)`,
      setting:
        "LOGARCHIVE_FLUSH_CONCURRENCY (measured 1.85× faster from 16 to 32; beyond, an extrapolation); LOGARCHIVE_FLUSH_DEADLINE (and the function timeout); more tables in warehouse.routes (up to 4 flush in parallel); fewer objects",
    }),
    check({
      id: "bq_load_jobs_per_table",
      name: "BigQuery load jobs per table per day",
      limit: inputs.loader.tableJobsPerDay,
      use: loader.jobsPerTablePerDay,
      unit: "jobs/day",
      source: "https://cloud.google.com/bigquery/quotas#load_jobs",
      setting: "LOGARCHIVE_BUDGET_FRACTION / LOGARCHIVE_MIN_WINDOW (longer windows)",
    }),
    check({
      id: "bq_load_jobs_per_project",
      name: "BigQuery load jobs per project per day",
      limit: inputs.loader.projectJobsPerDay,
      use: loader.jobsPerProjectPerDay,
      unit: "jobs/day",
      source: "https://cloud.google.com/bigquery/quotas#load_jobs",
      setting: "fewer tables in warehouse.routes, or LOGARCHIVE_BUDGET_FRACTION",
    }),
    check({
      id: "bq_partition_modifications",
      name: "BigQuery partition modifications per column-partitioned table per day",
      limit: 30_000,
      use: loader.partitionModificationsPerTablePerDay,
      unit: "modifications/day",
      source: "https://cloud.google.com/bigquery/quotas#partitioned_tables",
      setting: "LOGARCHIVE_MIN_WINDOW",
    }),
    check({
      id: "loader_table_job_guard",
      name: "Loader's own daily job guard per table (LOGARCHIVE_TABLE_JOB_GUARD)",
      limit: inputs.loader.tableJobGuard,
      use: loader.jobsPerTablePerDay,
      unit: "jobs/day",
      source: "functions/loader/config.ts",
      setting: "LOGARCHIVE_TABLE_JOB_GUARD (a margin under BigQuery's limit, not a cloud quota)",
      hard: false,
    }),
    check({
      id: "loader_sweep_coverage",
      name: "Loader sweeper: objects it can examine per day (finds objects whose finalize event was lost)",
      limit: loader.sweepCapacityPerDay,
      use: model.transfer.objectsPerDay,
      unit: "objects/day",
      source: `functions/loader/config.ts sweep_max_objects ${inputs.loader.sweepMaxObjectsPerRun}, sweep_interval ${inputs.loader.sweepIntervalSeconds} s (runs no closer than flush_interval)`,
      setting: "LOGARCHIVE_SWEEP_MAX_OBJECTS (at most 50,000) / LOGARCHIVE_SWEEP_INTERVAL; fewer objects",
      hard: false,
    }),
    check({
      id: "gcs_bucket_writes",
      name: "GCS writes per second on the busier bucket before auto-scaling (guideline: ramps by doubling every 20 min)",
      limit: 1000,
      use: model.gcs.writesPerSecond,
      unit: "writes/s",
      source: "https://cloud.google.com/storage/docs/request-rate",
      setting: "fewer objects; or ramp traffic up over hours so the bucket scales (request-rate guidelines)",
      hard: false,
    }),
    check({
      id: "gcs_bucket_reads",
      name: "GCS reads per second on the busier bucket before auto-scaling (guideline)",
      limit: 5000,
      use: model.gcs.readsPerSecond,
      unit: "reads/s",
      source: "https://cloud.google.com/storage/docs/request-rate",
      setting: "fewer objects; or ramp traffic up over hours",
      hard: false,
    }),
    ...(model.compaction === null
      ? []
      : [
          check({
            id: "compactor_run_seconds",
            name: "One hourly compactor run against the CronJob's activeDeadlineSeconds (a run past it is ended; Forbid skips the next while one runs)",
            limit: COMPACTOR_RUN_DEADLINE_SECONDS,
            use: model.compaction.runSecondsPerRun,
            unit: "s",
            source: `infra/k8s/compactor-cronjob.ts RUN_DEADLINE_SECONDS; run time of each of ${model.compaction.design.shards} pod(s) at compactorCpuSecondsPerGB ${a.compactorCpuSecondsPerGB} (docs/benchmarks.md#compaction) and compactorSecondsPerMember ${a.compactorSecondsPerMember}`,
            setting: "more pods a run: archiveCompaction.shards (--compaction-shards)",
          }),
        ]),
  ];
}

/** Seconds with at most 4 significant digits, for the source text. */
function round(seconds: number): number {
  return Number(seconds.toPrecision(4));
}

export function failingQuotas(checks: readonly QuotaCheck[]): QuotaCheck[] {
  return checks.filter((c) => c.hard && !c.ok);
}

/**
 * What the finalize's max instances take of the region's Cloud Run CPU and memory quota, which
 * bounds a service's max instances past Cloud Run functions' default; whether the documented
 * example baseline covers it, or a quota increase is needed.
 */
function regionalQuotaNote(f: FunctionsDesign): string {
  const vcpu = f.finalizeMaxInstances * f.vcpu;
  const gib = f.finalizeMaxInstances * f.memoryGiB;
  const base = CLOUD_RUN_EXAMPLE_REGIONAL_QUOTA;
  const at = `${f.finalizeMaxInstances} × ${f.memory} take ${round(vcpu)} vCPU and ${round(gib)} GiB of the region's Cloud Run quota`;
  if (f.finalizeMaxInstances <= CLOUD_RUN_FUNCTIONS_DEFAULT_MAX_INSTANCES)
    return `${at} (at most the default max instances)`;
  return vcpu <= base.vcpu && gib <= base.memoryGiB
    ? `${at}, under the documented example baseline (${base.vcpu} vCPU, ${base.memoryGiB} GiB): check the project's; a lower one needs a quota increase`
    : `${at}, over the documented example baseline (${base.vcpu} vCPU, ${base.memoryGiB} GiB): needs a quota increase`;
}
