// The volume model behind `logarchive plan` and `logarchive cost`: how many objects the
// design writes, how big they are, and how many requests each one costs downstream. Pure:
// every input is an argument (design.ts derives the design from the shipper's and loader's
// own config modules), nothing is read or written.
//
// Workload. N nodes each write G raw bytes a day (the container log files' bytes) into A
// active namespaces. On a node the j-th busiest namespace gets a Zipf share j^-s of the
// node's bytes. Across the fleet, K namespaces have Zipf popularity over ranks, and a
// namespace's node count is N·min(1, c·p_i) with c chosen so that every node has A of
// them; rank 1 is on every node when the skew makes it so (kube-system is). A namespace
// takes any local rank with equal chance, so every namespace has the same object mix.
//
// Batching (shipper/sinks/s3/sink.ts). One open batch per (tier, namespace, UTC hour of the
// records); it opens at its first line and is cut batch_max_age later or when its gzip
// output reaches batch_max_bytes. Lines of a namespace on a node arrive as a Poisson process
// of rate λ; a batch lasts D = min(age, bytes/rate) and the next opens at the next line. The
// hour restarts the process, so the expected number of batches in an hour is
//   E[N] = Σ_{k ≥ 0, kD < H} P(Poisson(λ(H − kD)) ≥ k + 1)
// (batch k+1 opens before the hour ends when k+1 lines' gaps and k batch lengths fit in it).
// Every batch but the hour's last holds about 1 + λD lines; the last holds what is left.

import {
  ESTIMATED_BATCH_MS_PER_OBJECT,
  FLUSH_CONCURRENCY_SPEEDUP_EXPONENT,
  FLUSH_SPEED_MEASURED_AT_CONCURRENCY,
  flushConcurrencyFactor,
} from "../../functions/loader/flush.ts";
import { S3_MIN_BILLABLE_BYTES } from "../archive-lifecycle.ts";
import { pendingWindow } from "../compaction/pending.ts";
import { longLivedTiers } from "../keys/tiers.ts";
import { gammaP, logNormal, quantile, seededRandom, weightedQuantile, zipfWeights } from "./math.ts";

export const HOUR_SECONDS = 3600;
export const DAY_SECONDS = 86_400;
/** Objects below this are never moved by lifecycle rules by default, and IA/Glacier IR bill them as this. */
export const COLD_TIER_MIN_BYTES = S3_MIN_BILLABLE_BYTES;

export interface Workload {
  nodes: number;
  /** Container log bytes one node writes per day. */
  rawBytesPerNodeDay: number;
  /** Namespaces in the fleet. */
  namespaces: number;
  /** Namespaces with logs on one node. */
  activePerNode: number;
  /** Zipf exponent of namespace volume on a node and of namespace popularity across nodes. */
  zipfExponent: number;
  /** Share of each node's active namespaces the policy loads for analytics (0..1). */
  analyticsShare: number;
  /** gzip output bytes per raw log byte, past each object's first record (see gzipObjectOverheadBytes). */
  storedPerRaw: number;
  /** Mean raw bytes per log line (CRI prefix included). */
  rawLineBytes: number;
  /** NDJSON record bytes per raw byte, before gzip (the object's uncompressed size). */
  recordPerRaw: number;
}

export interface ShipperDesign {
  /** batch_max_age for analytics-tier namespaces, seconds. */
  analyticsBatchAgeSeconds: number;
  /** batch_max_age for archive-only namespaces, seconds (today the same setting as analytics). */
  archiveBatchAgeSeconds: number;
  /** batch_max_bytes: compressed size at which a batch is cut. */
  batchMaxBytes: number;
  /**
   * Hypothetical: one short-lived object per node and batch age carrying every analytics
   * namespace (one per destination table), feeding SQS → transfer → loader, next to
   * per-namespace archive objects of every namespace. False: today's design.
   */
  analyticsStream: boolean;
}

export interface LoaderDesign {
  /**
   * A table whose queue is smaller than one job is flushed at most once per window
   * (functions/loader/plan.ts); one that fills a whole job starts batches at once.
   */
  windowSeconds: number;
  flushIntervalSeconds: number;
  /** How long one flush run starts batches (flush_deadline); the batch in progress finishes. */
  flushDeadlineSeconds: number;
  /** URIs per load job (max_uris_per_job): a full batch. */
  maxUrisPerJob: number;
  tables: number;
  /** Marker writes in the landing bucket fire the finalize trigger when the state bucket is the landing bucket. */
  stateBucketIsLanding: boolean;
  /** The finalize handler reads each object (gunzip, SHA-256, schema) before queuing it. */
  validateObjects: boolean;
  /** Hypothetical: markers per shipper batch instead of claims/pending/done per object. */
  markers: "per-object" | "per-batch";
  /** GCS calls one batch makes at once (flush_concurrency). */
  flushConcurrency: number;
  /**
   * What flush.ts assumes a new batch takes per object at concurrency 16
   * (ESTIMATED_BATCH_MS_PER_OBJECT, scaled to the run's concurrency as estimatedBatchMsPerObject
   * does): a run starts a batch only if the time left covers this and the table's last batch in
   * the run.
   */
  batchEstimateSecondsPerObject: number;
  /** The sweeper (functions/loader/enqueue.ts sweepLanding): one run per interval, bounded (LOGARCHIVE_SWEEP_*). */
  sweepIntervalSeconds: number;
  sweepMaxObjectsPerRun: number;
  sweepMaxListsPerRun: number;
  /** BigQuery's limits and the loader's own guard, as configured. */
  tableJobsPerDay: number;
  projectJobsPerDay: number;
  tableJobGuard: number;
}

/** Delays and service behaviour the providers do not publish; each is an input, shown with its basis. */
export interface Assumptions {
  /** S3 → SQS event delivery: "typically seconds, sometimes a minute or longer" (S3 docs). */
  s3EventP50Seconds: number;
  s3EventP95Seconds: number;
  /** Event-driven Storage Transfer, SQS message → GCS object: documented only as near-real time. */
  transferP50Seconds: number;
  transferP95Seconds: number;
  /** Eventarc finalize delivery plus the finalize handler. */
  eventarcP50Seconds: number;
  eventarcP95Seconds: number;
  /** Load job run time (docs/loader.md: tens of seconds). */
  loadJobP50Seconds: number;
  loadJobP95Seconds: number;
  /** PutObject of one batch. */
  uploadSeconds: number;
  /** How long Storage Transfer holds a message in flight (received, not yet deleted). */
  transferInFlightSeconds: number;
  /** SQS requests per message: S3's send, the transfer's receive and delete. */
  sqsRequestsPerMessage: number;
  /** S3 requests Storage Transfer makes per object it copies (GET, plus a HEAD). */
  s3ReadsPerTransferredObject: number;
  /** Finalize handler run time for an object it checks: GCS round trips + gunzip/parse per raw byte. */
  finalizeBaseSeconds: number;
  finalizeSecondsPerRecordMiB: number;
  /** Finalize of a marker it ignores; Cloud Run bills at least 100 ms. */
  ignoredInvocationSeconds: number;
  /**
   * Flush work per object in a batch at flush_concurrency = flushSpeedAtConcurrency: 3 GCS calls
   * (1 write: done/; 2 reads: the done/ check and the live-generation check under the attempt's
   * lease) plus the pending/ marker's delete by generation, 4 round trips. Default:
   * functions/loader/flush.ts ESTIMATED_BATCH_MS_PER_OBJECT, 15 ms at concurrency 16, measured
   * with 50 ms held on every GCS request (docs/benchmarks.md#loader); GCS's own latency is not
   * published, so set both from a measurement on GCS when you have one. Other concurrencies
   * scale by flushConcurrencyExponent (flushSecondsPerObjectAt).
   */
  flushSecondsPerObject: number;
  /** The flush_concurrency flushSecondsPerObject was measured at. */
  flushSpeedAtConcurrency: number;
  /**
   * Time per object × (flushSpeedAtConcurrency / flush_concurrency)^this: 0.89, measured from 16
   * to 32 (1.85× faster); past 32 an extrapolation (flush.ts FLUSH_CONCURRENCY_SPEEDUP_EXPONENT).
   */
  flushConcurrencyExponent: number;
  /** Requests one function instance serves at once: gen2's default of 1, which infra keeps. */
  functionConcurrency: number;
  /** Bytes of one Cloud Storage event message through Pub/Sub (object resource JSON). */
  eventMessageBytes: number;
  /** Bytes of one loader marker (claims/, pending/, done/). */
  markerBytes: number;
  /**
   * gzip bytes every object costs besides storedPerRaw × its raw bytes: the header and trailer
   * (18 B) and the first record, whose field names deflate has not seen yet (gzip -6 of one
   * record ≈ 400 B against ~0.18 B per byte for the following ones).
   */
  gzipObjectOverheadBytes: number;
  /**
   * Archive compaction (--archive-compaction, docs/design/compaction.md): CPU-seconds one
   * `logarchive compact --pending` process spends per GB of originals it streams (GET each,
   * hash it, upload it into its part). It is CPU-bound on one core, so with its 1-CPU request
   * this is also a pod's seconds per GB. Measured 10.5-11.3 (docs/benchmarks.md "Compaction",
   * 2026-12-07, 300 realistic members against the local S3); 11 rounds the worse run up.
   */
  compactorCpuSecondsPerGB: number;
  /** Seconds per original a pod spends on request latency its concurrency does not hide (10 ms over 4 namespace-hours at once). */
  compactorSecondsPerMember: number;
  /**
   * Share of compacted namespace-hours that receive a batch after their compaction (a node that
   * was down or behind), each then written as one supplement part and manifest generation.
   */
  compactionSupplementShare: number;
  /**
   * Share of originals the compactor never names in a committed manifest (refused, a stuck hour,
   * a compactor down past its lookback) and keeps whole: each gets one PutObjectRetention
   * extending its lock to the bucket default, stays current and takes the tier rules
   * (transitions, expiry at the retention). An assumption, not measured: the supplement share.
   */
  compactionKeptWholeShare: number;
}

/**
 * Seconds of flush work per object at the loader's flush_concurrency: the measured speed scaled
 * by the measured speed-up with concurrency (calls wait on GCS latency). Past the measured
 * concurrencies an extrapolation: a function's CPU and the bucket's request rate (gcs_bucket_*
 * quotas) bound it somewhere, not modelled.
 */
export function flushSecondsPerObjectAt(as: Assumptions, flushConcurrency: number): number {
  return (
    as.flushSecondsPerObject *
    (as.flushSpeedAtConcurrency / Math.max(1, flushConcurrency)) ** as.flushConcurrencyExponent
  );
}

export const DEFAULT_ASSUMPTIONS: Assumptions = {
  s3EventP50Seconds: 1,
  s3EventP95Seconds: 60,
  transferP50Seconds: 30,
  transferP95Seconds: 120,
  eventarcP50Seconds: 1,
  eventarcP95Seconds: 10,
  loadJobP50Seconds: 20,
  loadJobP95Seconds: 60,
  uploadSeconds: 0.5,
  transferInFlightSeconds: 10,
  sqsRequestsPerMessage: 3,
  s3ReadsPerTransferredObject: 2,
  finalizeBaseSeconds: 0.2,
  finalizeSecondsPerRecordMiB: 0.2,
  ignoredInvocationSeconds: 0.1,
  flushSecondsPerObject: ESTIMATED_BATCH_MS_PER_OBJECT / 1000,
  flushSpeedAtConcurrency: FLUSH_SPEED_MEASURED_AT_CONCURRENCY,
  flushConcurrencyExponent: FLUSH_CONCURRENCY_SPEEDUP_EXPONENT,
  functionConcurrency: 1,
  eventMessageBytes: 1500,
  markerBytes: 350,
  gzipObjectOverheadBytes: 250,
  compactorCpuSecondsPerGB: 11,
  compactorSecondsPerMember: 0.0025,
  compactionSupplementShare: 0.01,
  compactionKeptWholeShare: 0.01,
};

/** Assumptions read only when archive compaction is modelled (formatPlan lists them only then). */
export const COMPACTION_ASSUMPTIONS: readonly (keyof Assumptions)[] = [
  "compactorCpuSecondsPerGB",
  "compactorSecondsPerMember",
  "compactionSupplementShare",
  "compactionKeptWholeShare",
];

/** One kind of object: a count per day across the fleet and one size. */
export interface ObjectClass {
  /** compacted: a part the hypothetical archive compactor writes (planModel's compaction.parts). */
  tier: "analytics" | "archive" | "stream" | "compacted";
  /** Loaded: notified to SQS, transferred and loaded. */
  loaded: boolean;
  /** Kept for the archive's retention (stream objects expire after a few days). */
  archived: boolean;
  perDay: number;
  /** Compressed bytes. */
  bytes: number;
  /** Raw log bytes per object. */
  rawBytes: number;
}

export interface BatchShape {
  objectsPerHour: number;
  fullPerHour: number;
  fullBytes: number;
  partialPerHour: number;
  partialBytes: number;
  /** How long a batch stays open, seconds. */
  durationSeconds: number;
  linesPerSecond: number;
}

/** Expected batches per hour and their sizes for one (node, namespace, tier) stream. */
export function batchShape(
  rawBytesPerSecond: number,
  rawLineBytes: number,
  storedPerRaw: number,
  ageSeconds: number,
  maxBytes: number,
): BatchShape {
  const lambda = rawBytesPerSecond / rawLineBytes;
  const storedPerSecond = rawBytesPerSecond * storedPerRaw;
  if (!(lambda > 0)) {
    return {
      objectsPerHour: 0,
      fullPerHour: 0,
      fullBytes: 0,
      partialPerHour: 0,
      partialBytes: 0,
      durationSeconds: ageSeconds,
      linesPerSecond: 0,
    };
  }
  const duration = Math.min(ageSeconds, maxBytes / storedPerSecond);
  const starts = Math.floor((HOUR_SECONDS - 1e-9) / duration);
  let expected: number;
  if (starts <= 2000) {
    expected = 0;
    for (let k = 0; k <= starts; k++) {
      const span = HOUR_SECONDS - k * duration;
      if (span <= 0) break;
      const p = gammaP(k + 1, lambda * span);
      expected += p;
      if (p < 1e-12) break;
    }
  } else {
    // Short batches (size-bound at high rates): the renewal approximation is exact enough.
    const mu = duration + 1 / lambda;
    const sigma2 = 1 / lambda ** 2;
    expected = 1 + (HOUR_SECONDS - 1 / lambda) / mu + (sigma2 - mu * mu) / (2 * mu * mu);
  }
  const linesPerHour = lambda * HOUR_SECONDS;
  expected = Math.min(Math.max(expected, -Math.expm1(-linesPerHour)), linesPerHour);
  const lineBytes = rawLineBytes * storedPerRaw;
  const bytesPerHour = storedPerSecond * HOUR_SECONDS;
  const partialPerHour = -Math.expm1(-linesPerHour);
  const fullPerHour = Math.max(0, expected - partialPerHour);
  let fullBytes = Math.min(lineBytes * (1 + lambda * duration), maxBytes + lineBytes);
  if (fullPerHour * fullBytes > bytesPerHour - partialPerHour * lineBytes && fullPerHour > 0) {
    fullBytes = (bytesPerHour - partialPerHour * lineBytes) / fullPerHour;
  }
  const partialBytes = partialPerHour > 0 ? (bytesPerHour - fullPerHour * fullBytes) / partialPerHour : 0;
  return {
    objectsPerHour: expected,
    fullPerHour,
    fullBytes,
    partialPerHour,
    partialBytes,
    durationSeconds: duration,
    linesPerSecond: lambda,
  };
}

/** Expected node count per namespace (fleet popularity rank order), each node holding `active` of them. */
export function namespaceNodeCounts(workload: Workload): number[] {
  const k = workload.namespaces;
  const active = Math.min(workload.activePerNode, k);
  const p = zipfWeights(k, workload.zipfExponent);
  let lo = 0;
  let hi = 1;
  const slots = (c: number) => p.reduce((a, pi) => a + Math.min(1, c * pi), 0);
  while (slots(hi) < active) hi *= 2;
  for (let i = 0; i < 100; i++) {
    const mid = (lo + hi) / 2;
    if (slots(mid) < active) lo = mid;
    else hi = mid;
  }
  return p.map((pi) => workload.nodes * Math.min(1, hi * pi));
}

export interface Stream {
  tier: ObjectClass["tier"];
  loaded: boolean;
  archived: boolean;
  /** Streams of this kind on one node (each an expected count: analytics share × ranks). */
  perNode: number;
  rawBytesPerSecond: number;
  ageSeconds: number;
}

/** The per-node streams the shipper batches, by design. */
export function nodeStreams(workload: Workload, shipper: ShipperDesign, loader: LoaderDesign): Stream[] {
  const active = Math.min(workload.activePerNode, workload.namespaces);
  const weights = zipfWeights(active, workload.zipfExponent);
  const nodeRate = workload.rawBytesPerNodeDay / DAY_SECONDS;
  const a = workload.analyticsShare;
  const streams: Stream[] = [];
  if (!shipper.analyticsStream) {
    for (const w of weights) {
      if (a > 0) {
        streams.push({
          tier: "analytics",
          loaded: true,
          archived: true,
          perNode: a,
          rawBytesPerSecond: nodeRate * w,
          ageSeconds: shipper.analyticsBatchAgeSeconds,
        });
      }
      if (a < 1) {
        streams.push({
          tier: "archive",
          loaded: false,
          archived: true,
          perNode: 1 - a,
          rawBytesPerSecond: nodeRate * w,
          ageSeconds: shipper.archiveBatchAgeSeconds,
        });
      }
    }
    return streams;
  }
  for (const w of weights) {
    streams.push({
      tier: "archive",
      loaded: false,
      archived: true,
      perNode: 1,
      rawBytesPerSecond: nodeRate * w,
      ageSeconds: shipper.archiveBatchAgeSeconds,
    });
  }
  const analyticsNamespaces = a * active;
  if (analyticsNamespaces > 0) {
    const perNode = Math.min(loader.tables, Math.max(1, analyticsNamespaces));
    streams.push({
      tier: "stream",
      loaded: true,
      archived: false,
      perNode,
      rawBytesPerSecond: (nodeRate * a) / perNode,
      ageSeconds: shipper.analyticsBatchAgeSeconds,
    });
  }
  return streams;
}

export interface SizeSummary {
  objectsPerDay: number;
  storedBytesPerDay: number;
  meanBytes: number;
  medianBytes: number;
  p90Bytes: number;
  shareUnder128KiB: number;
}

/**
 * Objects and bytes a day of the classes whose size is at least `minBytes` and, when `maxBytes`
 * is set, under it: the share under 128 KiB, or any lifecycle transition's size band.
 */
export function objectsInSizeRange(
  classes: readonly ObjectClass[],
  minBytes: number,
  maxBytes: number | null,
): { objectsPerDay: number; bytesPerDay: number } {
  const inRange = classes.filter((c) => c.bytes >= minBytes && (maxBytes === null || c.bytes < maxBytes));
  return {
    objectsPerDay: inRange.reduce((s, c) => s + c.perDay, 0),
    bytesPerDay: inRange.reduce((s, c) => s + c.perDay * c.bytes, 0),
  };
}

function summarize(classes: readonly ObjectClass[]): SizeSummary {
  const objectsPerDay = classes.reduce((s, c) => s + c.perDay, 0);
  const storedBytesPerDay = classes.reduce((s, c) => s + c.perDay * c.bytes, 0);
  const points = classes.map((c) => ({ value: c.bytes, weight: c.perDay }));
  const under = objectsInSizeRange(classes, 0, COLD_TIER_MIN_BYTES).objectsPerDay;
  return {
    objectsPerDay,
    storedBytesPerDay,
    meanBytes: objectsPerDay > 0 ? storedBytesPerDay / objectsPerDay : 0,
    medianBytes: objectsPerDay > 0 ? weightedQuantile(points, 0.5) : 0,
    p90Bytes: objectsPerDay > 0 ? weightedQuantile(points, 0.9) : 0,
    shareUnder128KiB: objectsPerDay > 0 ? under / objectsPerDay : 0,
  };
}

export interface GcsOps {
  classA: number;
  classB: number;
  /** 404 reads and failed preconditions: counted, not billed. */
  notBilled: number;
  deletes: number;
  /** Inserts into the landing bucket (each fires a finalize event). */
  landingInserts: number;
}

/**
 * The loader's functions as deployed (lib/gcp-deploy.ts: infra's functionMemory and
 * finalizeMaxInstances): what their compute is billed at and how many finalize instances may run.
 */
export interface FunctionsDesign {
  /** The stack's memory setting, `512Mi`; both functions get it. */
  memory: string;
  memoryGiB: number;
  /** The vCPU that memory tier comes with. */
  vcpu: number;
  finalizeMaxInstances: number;
}

export interface PlanInputs {
  workload: Workload;
  shipper: ShipperDesign;
  loader: LoaderDesign;
  functions: FunctionsDesign;
  assumptions: Assumptions;
  /** S3 notification configurations the policy needs (lib/policy notificationRules). */
  notificationRules: number;
  /** Hypothetical archive compaction (docs/design/compaction.md); absent or null: none. */
  compaction?: CompactionDesign | null;
}

/**
 * Archive compaction as built (docs/design/compaction.md, lib/compaction/): every
 * namespace-hour's archived objects from all nodes concatenated, byte for byte, into parts of at
 * most partMaxBytes under the compacted prefix by the hourly `logarchive compact --pending`
 * CronJob (infra/k8s/compactor-cronjob.ts); the originals kept landingDays.
 */
export interface CompactionDesign {
  /**
   * Days after its hour ends that an original's own Object Lock retention lasts (the shipper's
   * landing_days): a compacted original's version, deleted by the compactor, is removed by the
   * tier rules' NoncurrentVersionExpiration only after it.
   */
  landingDays: number;
  /**
   * Hours after its hour ends before the compactor sends a compacted original's DeleteObject
   * (`compact --delete-after`, default DEFAULT_ATHENA_CUTOFF_HOURS: Athena's cutoff view reads
   * the hour from parts by then).
   */
  deleteAfterHours: number;
  /** A namespace-hour is split into ceil(bytes / partMaxBytes) parts of equal size (whole members each). */
  partMaxBytes: number;
  /** Parts over this are uploaded in multipart chunks of this size (UploadPart), else with one PUT. */
  uploadPartBytes: number;
  /** Hours each run looks back for originals no manifest names (`compact --pending --lookback`). */
  lookbackHours: number;
  /** Minutes after an hour ends before it is compacted (archiveCompaction.settleMinutes). */
  settleMinutes: number;
  /** Index hours past a compacted hour its readiness reads (H-1 to H+this; lib/compaction/readiness.ts). */
  indexMarginHours: number;
  /**
   * Pods of each run (archiveCompaction.shards), each `compact --pending --shard i/shards`: the
   * namespaces split among them by a stable hash, so each pod streams 1/shards of the hour, and
   * each lists the namespaces and reads every hour index itself.
   */
  shards: number;
}

/** What the compactor writes and what it asks of S3, per day (24 hourly runs). */
export interface CompactionModel {
  design: CompactionDesign;
  /** The compacted parts as object classes (tier "compacted", archived): what the lifecycle moves. */
  parts: ObjectClass[];
  sizes: SizeSummary;
  /** Original archived objects compacted (members), and the namespace-hours they form. */
  membersPerDay: number;
  /**
   * Originals no committed manifest names, kept whole (compactionKeptWholeShare of each archived
   * class): current for the retention under the tier rules, each with one PutObjectRetention.
   */
  keptWhole: ObjectClass[];
  keptWholePerDay: number;
  /** DeleteObject requests (no version id: a delete marker each), one per compacted original. */
  deletesPerDay: number;
  namespaceHoursPerDay: number;
  /** Manifest generations: one per namespace-hour, and one per supplement (each also writes its plan, the same bytes). */
  manifestsPerDay: number;
  supplementsPerDay: number;
  /** Hours each run looks at (lib/compaction/pending.ts pendingWindow at the CronJob's minute). */
  windowHours: number;
  /** Finding pending hours (pending.ts): namespace and window LIST pages, manifests read. */
  enumeration: { listPagesPerDay: number; getsPerDay: number };
  /** Hour indexes, each read once a run: LIST pages and a GET per node and index hour. */
  indexes: { listPagesPerDay: number; getsPerDay: number };
  /**
   * Compacting each pending namespace-hour (compact.ts): LIST of its manifests and its originals
   * per tier; one GET per original (no HEAD: its version and size from the listing, its SHA-256
   * from the hour index, the rest of its metadata from the GET's headers), two HEADs per part (an
   * earlier run's copy, then the stored size), the GET for a stored plan, the previous manifest
   * of a supplement; PUT-class:
   * each part's create + UploadParts + complete, the plan and the manifest.
   */
  compacting: { listPagesPerDay: number; getsPerDay: number; putsPerDay: number };
  /** Totals of the three. */
  getsPerDay: number;
  listPagesPerDay: number;
  putsPerDay: number;
  /** Bytes the compactor streams a day (the members' bytes). */
  bytesPerDay: number;
  /** Pod-seconds a day: shards pods a run, each for the run's length (what the requests are reserved for). */
  podSecondsPerDay: number;
  /** One hourly run's mean length (each of its shards pods), against the CronJob's activeDeadlineSeconds. */
  runSecondsPerRun: number;
}

export interface PlanModel {
  inputs: PlanInputs;
  classes: ObjectClass[];
  sizes: { all: SizeSummary; byTier: Partial<Record<ObjectClass["tier"], SizeSummary>> };
  rawBytesPerDay: number;
  linesPerDay: number;
  s3: {
    putsPerSecond: number;
    hottestPrefix: { namespaceRank: number; nodes: number; putsPerSecond: number };
  };
  sqs: { messagesPerSecond: number; requestsPerSecond: number; inFlight: number };
  transfer: {
    objectsPerDay: number;
    bytesPerDay: number;
    s3ReadsPerDay: number;
    operationsInProgress: number;
  };
  gcs: {
    perDay: GcsOps;
    byPurpose: Record<string, GcsOps>;
    /** Requests per second on the busier bucket (landing or state; one bucket when they are the same). */
    writesPerSecond: number;
    readsPerSecond: number;
  };
  functions: {
    finalizeChecked: number;
    finalizeIgnored: number;
    flushRuns: number;
    vcpuSecondsPerDay: number;
    gibSecondsPerDay: number;
    /** Instances busy at once at the mean rate (concurrency as assumed). */
    concurrentInstances: number;
    /** Invocations per day by kind, summed. */
    invocationsPerDay: number;
  };
  loader: {
    tables: number;
    windowSeconds: number;
    loadedObjectsPerTablePerDay: number;
    objectsPerWindow: number;
    /** Load jobs a table may start a day: min(table_job_guard, BigQuery's per-table limit, its share of the project's). */
    allowedJobsPerTablePerDay: number;
    /** allowedJobsPerTablePerDay × max_uris_per_job. */
    jobCeilingObjectsPerTablePerDay: number;
    /** What a table's flush runs get through a day, one batch after another (flush_deadline, flush speed). */
    flushCeilingObjectsPerTablePerDay: number;
    /** One full batch: its objects' flush work and the load job. */
    fullBatchSeconds: number;
    /** The smaller of the two ceilings. */
    capacityObjectsPerTablePerDay: number;
    capacityBoundBy: "jobs" | "flush-deadline";
    jobsPerTablePerDay: number;
    jobsPerProjectPerDay: number;
    partitionModificationsPerTablePerDay: number;
    backlogGrowthPerDay: number;
    /** Objects the sweeper can look at per day (runs × max objects per run). */
    sweepCapacityPerDay: number;
    /** Share of the analytics objects the loader can load at all (1 unless over capacity). */
    loadedShare: number;
  };
  /** What the analytics namespaces send to BigQuery per day (loader.loadedShare of it loads today). */
  bigquery: {
    rowsPerDay: number;
    loadedBytesPerDay: number;
    logicalBytesPerDay: number;
    physicalBytesPerDay: number;
  };
  freshness: { p50Seconds: number; p95Seconds: number } | null;
  /** Hypothetical archive compaction, when PlanInputs.compaction asks for it. */
  compaction: CompactionModel | null;
}

// BigQuery's logical size of a row: 8 bytes per TIMESTAMP/INT64 (timestamp, timestamp_nanos,
// restart_count, seq) and 2 + UTF-8 bytes per STRING, with typical values: namespace 16,
// pod 40, pod_uid 36, container 16, node 30, stream 6, batch_id 51 (lib/record/schema.ts).
// The message is the raw line less kubelet's 40-byte `<RFC3339Nano> stdout F ` prefix.
const BQ_FIXED_BYTES = 4 * 8;
const BQ_STRING_FIELDS = 8;
const BQ_METADATA_VALUE_BYTES = 16 + 40 + 36 + 16 + 30 + 6 + 51;
const CRI_PREFIX_BYTES = 40;
export function bigqueryLogicalBytesPerRow(rawLineBytes: number): number {
  return (
    BQ_FIXED_BYTES +
    2 * BQ_STRING_FIELDS +
    BQ_METADATA_VALUE_BYTES +
    Math.max(0, rawLineBytes - CRI_PREFIX_BYTES)
  );
}
/**
 * Physical (compressed columnar) bytes per row: the message column compresses about as gzip
 * does; the metadata columns repeat within a partition and dictionary-encode to a few bytes.
 */
export function bigqueryPhysicalBytesPerRow(rawLineBytes: number, storedPerRaw: number): number {
  return rawLineBytes * storedPerRaw + 8;
}

function addOps(target: GcsOps, source: GcsOps, times: number): void {
  target.classA += source.classA * times;
  target.classB += source.classB * times;
  target.notBilled += source.notBilled * times;
  target.deletes += source.deletes * times;
  target.landingInserts += source.landingInserts * times;
}

const ops = (o: Partial<GcsOps>): GcsOps => ({
  classA: 0,
  classB: 0,
  notBilled: 0,
  deletes: 0,
  landingInserts: 0,
  ...o,
});

/**
 * GCS operations per loaded object and per load batch, counted from functions/loader/*.ts
 * (happy path, validate_objects on, metadata present):
 * - transfer: one insert (the copy); the sink check before it finds nothing (404).
 * - enqueue.ts: reads done/ and quarantined/ (404s), reads the object (inspectObject),
 *   creates claims/ and pending/, re-reads done/ (404).
 * - flush.ts per object: done/ exists (404), liveObjects getMetadata once (under the attempt's
 *   lease), done/ create, and the pending/ marker's delete by the generation its listing gave
 *   (free); the marker's fields come with the listing, in its metadata, so it is not read
 *   (commit b330787; a marker from an older loader is still read, not counted here).
 * - flush.ts per batch: manifest create, head re-read and put, manifest generation, attempt
 *   create, job counter readVersioned (2) + replace, <seq>.done create, and a page of
 *   pending/ listing per 1,000 queued objects past the first.
 * - every flush run: pending/ and batches/ prefix listings; per table paused/ (404), head,
 *   index list and pending list.
 * docs/benchmarks.md#loader measured the same per object (its proxy counts a 404 GET as class
 * B; GCS does not bill 4xx): finalize 2.00 A + 4.00 B (here 2 A, 1 B, 3 not billed), flush
 * 1.01 A + 2.00 B on 2026-12-07 after b330787 (here 1 A, 1 B, 1 not billed).
 */
export function loaderGcsOps(loader: LoaderDesign): {
  transferPerObject: GcsOps;
  finalizePerObject: GcsOps;
  flushPerObject: GcsOps;
  perBatch: GcsOps;
  perRun: GcsOps;
  perTablePerRun: GcsOps;
} {
  const markersInLanding = loader.stateBucketIsLanding ? 1 : 0;
  if (loader.markers === "per-batch") {
    // Hypothetical: the object is still checked once and its live generation once; one
    // marker per shipper batch manifest replaces claims/pending/done.
    return {
      transferPerObject: ops({ classA: 1, notBilled: 1, landingInserts: 1 }),
      finalizePerObject: ops({ classB: loader.validateObjects ? 1 : 0 }),
      flushPerObject: ops({ classB: 1 }),
      perBatch: ops({ classA: 7, classB: 4, landingInserts: 6 * markersInLanding }),
      perRun: ops({ classA: 2 }),
      perTablePerRun: ops({ classA: 2, classB: 1, notBilled: 1 }),
    };
  }
  return {
    transferPerObject: ops({ classA: 1, notBilled: 1, landingInserts: 1 }),
    finalizePerObject: ops({
      classA: 2,
      classB: loader.validateObjects ? 1 : 0,
      notBilled: 3,
      landingInserts: 2 * markersInLanding,
    }),
    flushPerObject: ops({ classA: 1, classB: 1, notBilled: 1, deletes: 1, landingInserts: markersInLanding }),
    perBatch: ops({ classA: 5, classB: 4, landingInserts: 5 * markersInLanding }),
    perRun: ops({ classA: 2 }),
    perTablePerRun: ops({ classA: 2, classB: 1, notBilled: 1 }),
  };
}

/**
 * Requests per second on the busier bucket. The landing bucket takes the copies (writes) and
 * the object reads: the sink check and the finalize's read per object, and the flush's
 * generation check per loaded object; the state bucket everything else.
 */
function bucketRates(
  perDay: GcsOps,
  objects: number,
  loadedObjects: number,
  sameBucket: boolean,
): { writesPerSecond: number; readsPerSecond: number } {
  const writes = perDay.classA + perDay.deletes;
  const reads = perDay.classB + perDay.notBilled;
  if (sameBucket) return { writesPerSecond: writes / DAY_SECONDS, readsPerSecond: reads / DAY_SECONDS };
  const landingWrites = objects;
  const landingReads = 2 * objects + loadedObjects;
  return {
    writesPerSecond: Math.max(landingWrites, writes - landingWrites) / DAY_SECONDS,
    readsPerSecond: Math.max(landingReads, reads - landingReads) / DAY_SECONDS,
  };
}

export function planModel(inputs: PlanInputs): PlanModel {
  const { workload, shipper, loader, assumptions: as } = inputs;
  const streams = nodeStreams(workload, shipper, loader);
  const classes: ObjectClass[] = [];
  // Per (stream kind): shape, for freshness and per-prefix rates.
  const shaped = streams.map((s) => ({
    stream: s,
    shape: batchShape(
      s.rawBytesPerSecond,
      workload.rawLineBytes,
      workload.storedPerRaw,
      s.ageSeconds,
      shipper.batchMaxBytes,
    ),
  }));
  for (const { stream, shape } of shaped) {
    const fleet = workload.nodes * stream.perNode * 24;
    const rawPerStored = 1 / workload.storedPerRaw;
    if (shape.fullPerHour > 0) {
      classes.push({
        tier: stream.tier,
        loaded: stream.loaded,
        archived: stream.archived,
        perDay: fleet * shape.fullPerHour,
        bytes: shape.fullBytes + as.gzipObjectOverheadBytes,
        rawBytes: shape.fullBytes * rawPerStored,
      });
    }
    if (shape.partialPerHour > 0) {
      classes.push({
        tier: stream.tier,
        loaded: stream.loaded,
        archived: stream.archived,
        perDay: fleet * shape.partialPerHour,
        bytes: shape.partialBytes + as.gzipObjectOverheadBytes,
        rawBytes: shape.partialBytes * rawPerStored,
      });
    }
  }
  const byTier: PlanModel["sizes"]["byTier"] = {};
  for (const tier of ["analytics", "archive", "stream"] as const) {
    const of = classes.filter((c) => c.tier === tier);
    if (of.length > 0) byTier[tier] = summarize(of);
  }
  const all = summarize(classes);
  const rawBytesPerDay = workload.nodes * workload.rawBytesPerNodeDay;
  const linesPerDay = rawBytesPerDay / workload.rawLineBytes;

  // S3 PUTs: every object once. The hottest prefix is the most widespread namespace's
  // (its objects from every node land in one namespace=…/dt=…/hour=… prefix); in the stream
  // design, the stream prefix takes every node's stream objects.
  const putsPerSecond = all.objectsPerDay / DAY_SECONDS;
  const nodeCounts = namespaceNodeCounts(workload);
  const active = Math.min(workload.activePerNode, workload.namespaces);
  const perNamespaceClasses = classes.filter((c) => c.tier !== "stream");
  const perNodeNamespacePuts =
    perNamespaceClasses.reduce((s, c) => s + c.perDay, 0) / DAY_SECONDS / workload.nodes / active;
  let hottest = {
    namespaceRank: 1,
    nodes: nodeCounts[0] ?? 0,
    putsPerSecond: (nodeCounts[0] ?? 0) * perNodeNamespacePuts,
  };
  const streamPuts = (byTier.stream?.objectsPerDay ?? 0) / DAY_SECONDS / Math.max(1, loader.tables);
  if (streamPuts > hottest.putsPerSecond) {
    hottest = { namespaceRank: 0, nodes: workload.nodes, putsPerSecond: streamPuts };
  }

  const loaded = classes.filter((c) => c.loaded);
  const loadedPerDay = loaded.reduce((s, c) => s + c.perDay, 0);
  const loadedBytesPerDay = loaded.reduce((s, c) => s + c.perDay * c.bytes, 0);
  const loadedRawPerDay = loaded.reduce((s, c) => s + c.perDay * c.rawBytes, 0);
  const messagesPerSecond = loadedPerDay / DAY_SECONDS;

  // Loader (functions/loader/flush.ts): a queue smaller than one job waits for the table's
  // window and goes as one batch; a queue that fills a whole job starts full batches at once,
  // one after another, until the run's flush_deadline or the daily job guard stops it.
  const windowsPerDay = DAY_SECONDS / loader.windowSeconds;
  const perTablePerDay = loadedPerDay / loader.tables;
  const objectsPerWindow = perTablePerDay / windowsPerDay;
  // Jobs: the loader's guard, never past BigQuery's per-table limit nor the table's share of the project's.
  const allowedJobsPerTable = Math.min(
    loader.tableJobGuard,
    loader.tableJobsPerDay,
    loader.projectJobsPerDay / loader.tables,
  );
  const jobCeiling = allowedJobsPerTable * loader.maxUrisPerJob;
  // The deadline (flush.ts flushTableOnce): a run starts a full batch only while the time left
  // before flush_deadline covers both the table's last batch in the run and the loader's
  // estimate for a new one (flush.ts estimatedBatchMsPerObject at its concurrency); the table's next run
  // starts at the first flush after this one ends.
  const flushSecondsPerObject = flushSecondsPerObjectAt(as, loader.flushConcurrency);
  const fullBatchSeconds = loader.maxUrisPerJob * flushSecondsPerObject + as.loadJobP50Seconds;
  const estimateSeconds =
    loader.maxUrisPerJob *
    loader.batchEstimateSecondsPerObject *
    flushConcurrencyFactor(loader.flushConcurrency);
  let batchesPerRun = 0;
  while (
    batchesPerRun < MAX_BATCHES_PER_RUN &&
    loader.flushDeadlineSeconds - batchesPerRun * fullBatchSeconds >=
      Math.max(batchesPerRun === 0 ? 0 : fullBatchSeconds, estimateSeconds)
  ) {
    batchesPerRun++;
  }
  const runSpanSeconds =
    Math.ceil(Math.max(1, batchesPerRun * fullBatchSeconds) / loader.flushIntervalSeconds) *
    loader.flushIntervalSeconds;
  const flushCeiling = (DAY_SECONDS / runSpanSeconds) * batchesPerRun * loader.maxUrisPerJob;
  const capacity = Math.min(jobCeiling, flushCeiling);
  const loadedPerTablePerDay = Math.min(perTablePerDay, capacity);
  // Jobs: one per window that has an object in it (Poisson arrivals), or, once a window brings
  // more than a job, the loaded objects in full jobs. The larger of the two is taken: an upper
  // bound for the job quotas that never falls as objects grow (over the flush's ceiling the
  // real flush runs fewer, full batches).
  const jobsPerTablePerDay =
    loadedPerDay === 0
      ? 0
      : Math.max(windowsPerDay * -Math.expm1(-objectsPerWindow), loadedPerTablePerDay / loader.maxUrisPerJob);
  const batchesPerDay = jobsPerTablePerDay * loader.tables;
  const objectsLoadedPerDay = loadedPerTablePerDay * loader.tables;
  const objectsPerBatch =
    batchesPerDay > 0 ? Math.min(loader.maxUrisPerJob, objectsLoadedPerDay / batchesPerDay) : 0;
  // A line's wait for its batch to start: the window, or the time a job's worth takes to arrive.
  const batchWaitSeconds =
    perTablePerDay > 0
      ? Math.min(loader.windowSeconds, (loader.maxUrisPerJob * DAY_SECONDS) / perTablePerDay)
      : loader.windowSeconds;

  // GCS operations.
  const per = loaderGcsOps(loader);
  const flushRuns = DAY_SECONDS / loader.flushIntervalSeconds;
  // The run's per-table listings read the first page of pending/; a bigger queue reads more.
  const extraListPagesPerBatch = Math.max(0, Math.ceil(objectsPerBatch / 1000) - 1);
  const byPurpose: Record<string, GcsOps> = {
    "transfer copy": ops({}),
    "finalize (check + claims/ + pending/)": ops({}),
    "flush per object (done/ + checks)": ops({}),
    "flush per batch (manifest, attempt, head, job guard)": ops({}),
    "flush runs (listings per table)": ops({}),
    "sweeper (listings, claim checks, watermark)": ops({}),
  };
  addOps(byPurpose["transfer copy"]!, per.transferPerObject, loadedPerDay);
  addOps(byPurpose["finalize (check + claims/ + pending/)"]!, per.finalizePerObject, loadedPerDay);
  addOps(byPurpose["flush per object (done/ + checks)"]!, per.flushPerObject, objectsLoadedPerDay);
  addOps(
    byPurpose["flush per batch (manifest, attempt, head, job guard)"]!,
    { ...per.perBatch, classA: per.perBatch.classA + extraListPagesPerBatch },
    batchesPerDay,
  );
  addOps(byPurpose["flush runs (listings per table)"]!, per.perRun, flushRuns);
  addOps(byPurpose["flush runs (listings per table)"]!, per.perTablePerRun, flushRuns * loader.tables);
  // The sweeper: every run reads its watermark (2 reads) and takes it (a write); a run with a
  // settled hour to walk (one an hour, more when an hour holds more than a run may examine)
  // lists the namespace directories, then each namespace's hour, a page per 1,000 objects,
  // swapping the watermark after each listing, and checks a claim per object (getMetadata).
  // Each run is bounded, so past runs × max objects a day it falls behind.
  const sweepRuns = DAY_SECONDS / Math.max(loader.sweepIntervalSeconds, loader.flushIntervalSeconds);
  const sweepCapacity = sweepRuns * loader.sweepMaxObjectsPerRun;
  const sweptPerDay = Math.min(loadedPerDay, sweepCapacity);
  const analyticsNamespaceHours =
    loadedPerDay > 0 ? Math.max(1, workload.namespaces * workload.analyticsShare) * 24 : 0;
  const sweepLists = Math.min(
    sweepRuns * loader.sweepMaxListsPerRun,
    sweptPerDay / 1000 + analyticsNamespaceHours + Math.max(24, sweptPerDay / loader.sweepMaxObjectsPerRun),
  );
  addOps(
    byPurpose["sweeper (listings, claim checks, watermark)"]!,
    ops({ classA: 2 * sweepLists + sweepRuns, classB: sweptPerDay + 2 * sweepRuns }),
    1,
  );
  const perDay = ops({});
  for (const o of Object.values(byPurpose)) addOps(perDay, o, 1);

  // Functions.
  const recordMiBPerObject =
    loadedPerDay > 0 ? (loadedRawPerDay * workload.recordPerRaw) / loadedPerDay / 2 ** 20 : 0;
  const finalizeSeconds = Math.max(
    0.1,
    as.finalizeBaseSeconds +
      (loader.validateObjects ? as.finalizeSecondsPerRecordMiB * recordMiBPerObject : 0),
  );
  // Every insert into the landing bucket fires a finalize; the transfer's copies are the objects.
  const finalizeIgnored = perDay.landingInserts - loadedPerDay;
  const flushSeconds = objectsLoadedPerDay * flushSecondsPerObject + batchesPerDay * as.loadJobP50Seconds;
  const billedSeconds =
    (loadedPerDay * Math.ceil(finalizeSeconds * 10)) / 10 +
    finalizeIgnored * Math.max(0.1, as.ignoredInvocationSeconds) +
    flushSeconds;
  const concurrentInstances =
    (loadedPerDay * finalizeSeconds + finalizeIgnored * as.ignoredInvocationSeconds) /
    DAY_SECONDS /
    as.functionConcurrency;

  // BigQuery.
  // What the analytics namespaces bring; when the loader cannot keep up (loader.loadedShare < 1)
  // only that share of it loads and the rest waits in pending/.
  const rowsPerDay = loadedRawPerDay / workload.rawLineBytes;

  return {
    inputs,
    classes,
    sizes: { all, byTier },
    rawBytesPerDay,
    linesPerDay,
    s3: { putsPerSecond, hottestPrefix: hottest },
    sqs: {
      messagesPerSecond,
      requestsPerSecond: messagesPerSecond * as.sqsRequestsPerMessage,
      inFlight: messagesPerSecond * as.transferInFlightSeconds,
    },
    transfer: {
      objectsPerDay: loadedPerDay,
      bytesPerDay: loadedBytesPerDay,
      s3ReadsPerDay: loadedPerDay * as.s3ReadsPerTransferredObject,
      operationsInProgress: loadedPerDay > 0 ? 1 : 0,
    },
    gcs: {
      perDay,
      byPurpose,
      ...bucketRates(perDay, loadedPerDay, objectsLoadedPerDay, loader.stateBucketIsLanding),
    },
    functions: {
      finalizeChecked: loadedPerDay,
      finalizeIgnored,
      flushRuns,
      vcpuSecondsPerDay: billedSeconds * inputs.functions.vcpu,
      gibSecondsPerDay: billedSeconds * inputs.functions.memoryGiB,
      concurrentInstances,
      invocationsPerDay: loadedPerDay + finalizeIgnored + flushRuns,
    },
    loader: {
      tables: loader.tables,
      windowSeconds: loader.windowSeconds,
      loadedObjectsPerTablePerDay: perTablePerDay,
      objectsPerWindow,
      allowedJobsPerTablePerDay: allowedJobsPerTable,
      jobCeilingObjectsPerTablePerDay: jobCeiling,
      flushCeilingObjectsPerTablePerDay: flushCeiling,
      fullBatchSeconds,
      capacityObjectsPerTablePerDay: capacity,
      capacityBoundBy: flushCeiling < jobCeiling ? "flush-deadline" : "jobs",
      jobsPerTablePerDay,
      jobsPerProjectPerDay: batchesPerDay,
      partitionModificationsPerTablePerDay: jobsPerTablePerDay * (1 + loader.windowSeconds / DAY_SECONDS),
      backlogGrowthPerDay: Math.max(0, loadedPerDay - capacity * loader.tables),
      sweepCapacityPerDay: sweepCapacity,
      loadedShare: loadedPerDay > 0 ? objectsLoadedPerDay / loadedPerDay : 1,
    },
    bigquery: {
      rowsPerDay,
      loadedBytesPerDay,
      logicalBytesPerDay: rowsPerDay * bigqueryLogicalBytesPerRow(workload.rawLineBytes),
      physicalBytesPerDay:
        rowsPerDay * bigqueryPhysicalBytesPerRow(workload.rawLineBytes, workload.storedPerRaw),
    },
    compaction:
      inputs.compaction === undefined || inputs.compaction === null
        ? null
        : compactionModel(workload, classes, inputs.compaction, as),
    freshness:
      loadedPerDay === 0 || loadedPerDay > capacity * loader.tables
        ? null
        : freshness(
            shaped.filter((s) => s.stream.loaded),
            batchWaitSeconds,
            objectsPerBatch * flushSecondsPerObject,
            as,
          ),
  };
}

/** ListObjectVersions returns at most 1,000 versions a page (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectVersions.html). */
const LIST_PAGE_KEYS = 1000;
/** Runs of the compactor CronJob a day (hourly; infra/k8s/compactor-cronjob.ts compactorSchedule). */
export const COMPACTOR_RUNS_PER_DAY = 24;
/**
 * The CronJob's activeDeadlineSeconds and its minute past the settle delay
 * (infra/k8s/compactor-cronjob.ts RUN_DEADLINE_SECONDS, SCHEDULE_SLACK_MINUTES; restated here so
 * `plan` does not load Pulumi, and compactor.test.ts checks they agree).
 */
export const COMPACTOR_RUN_DEADLINE_SECONDS = 55 * 60;
export const COMPACTOR_SCHEDULE_SLACK_MINUTES = 5;
/** ListObjectsV2 returns at most 1,000 keys or common prefixes a page. */

/**
 * PUT-class requests to store one part: every part is a multipart upload (lib/compaction/compact.ts,
 * so that none is visible before its plan is written): create + one UploadPart per chunk (at
 * least one) + complete.
 */
export function partUploadRequests(bytes: number, uploadPartBytes: number): number {
  return Math.max(1, Math.ceil(bytes / uploadPartBytes)) + 2;
}

/**
 * The compactor's work a day (docs/design/compaction.md, lib/compaction/pending.ts and
 * compact.ts). Each namespace is on n nodes (namespaceNodeCounts) and, since it takes any local
 * rank with equal chance, brings each of them the mean archived objects and bytes of a node's
 * namespace-hour. A namespace-hour with members is split into k = ceil(bytes / partMaxBytes)
 * parts of equal size. A share of namespace-hours gets one late member as a supplement part (its
 * bytes taken out of the main parts, so every archived byte is in exactly one part) and a second
 * manifest generation. Requests follow the code: each hourly run enumerates the lookback window
 * (pending.ts's header), reads the hour indexes its pending hour needs once, and compacts the
 * one newly settled hour of every namespace.
 */
export function compactionModel(
  workload: Workload,
  classes: readonly ObjectClass[],
  design: CompactionDesign,
  as: Assumptions,
): CompactionModel {
  // The originals kept whole are never compacted: every class keeps that share out of the parts.
  const compactedShare = 1 - as.compactionKeptWholeShare;
  const keptWhole = classes
    .filter((c) => c.archived && as.compactionKeptWholeShare > 0)
    .map((c) => ({ ...c, perDay: c.perDay * as.compactionKeptWholeShare }));
  const archived = classes
    .filter((c) => c.archived)
    .map((c) => ({ ...c, perDay: c.perDay * compactedShare }));
  // pending.ts and compact.ts list every long-lived tier, whichever the namespace uses.
  const tiers = longLivedTiers().length;
  const membersPerDay = archived.reduce((s, c) => s + c.perDay, 0);
  const bytesPerDay = archived.reduce((s, c) => s + c.perDay * c.bytes, 0);
  const rawPerDay = archived.reduce((s, c) => s + c.perDay * c.rawBytes, 0);
  const active = Math.min(workload.activePerNode, workload.namespaces);
  const namespaceNodeHours = workload.nodes * active * 24;
  const membersPerNamespaceNodeHour = membersPerDay / namespaceNodeHours;
  const bytesPerNamespaceNodeHour = bytesPerDay / namespaceNodeHours;
  const rawPerNamespaceNodeHour = rawPerDay / namespaceNodeHours;
  const settleMs = design.settleMinutes * 60_000;
  const runAt = new Date(
    Date.UTC(2026, 0, 1) + (design.settleMinutes + COMPACTOR_SCHEDULE_SLACK_MINUTES) * 60_000,
  );
  const windowHours = pendingWindow(runAt, settleMs, design.lookbackHours * 3_600_000).length;
  const runs = COMPACTOR_RUNS_PER_DAY;
  const supplementShare = as.compactionSupplementShare;
  const parts: ObjectClass[] = [];
  let namespaceHoursPerDay = 0;
  let namespacesWithMembers = 0;
  const enumeration = { listPagesPerDay: 0, getsPerDay: 0 };
  const compacting = { listPagesPerDay: 0, getsPerDay: 0, putsPerDay: 0 };
  for (const nodes of namespaceNodeCounts(workload)) {
    const members = nodes * membersPerNamespaceNodeHour;
    if (!(members > 0)) continue;
    // The hour is empty only when every node's is: a node-hour has an object with the chance
    // its mean count gives when under one (hourly batches), surely when over. A namespace on
    // under one node (an expected count) is on one with that chance.
    const perNode = Math.min(1, membersPerNamespaceNodeHour);
    const withMembers = nodes < 1 ? nodes * perNode : 1 - (1 - perNode) ** nodes;
    const hourBytes = (nodes * bytesPerNamespaceNodeHour) / withMembers;
    const k = Math.max(1, Math.ceil(hourBytes / design.partMaxBytes));
    const hours = 24 * withMembers;
    namespaceHoursPerDay += hours;
    // Present in a run's window with the chance some hour of it has members.
    const present = 1 - (1 - withMembers) ** windowHours;
    namespacesWithMembers += present;
    // A run: its originals in the window, one StartAfter listing of 1,000-key pages (at least
    // one); its compacted keys in the window, one page of W × (parts + manifests) keys; each
    // committed manifest of an hour with originals (every hour of the window but the pending one).
    const windowMembers = members * windowHours;
    const windowManifests = withMembers * Math.max(0, windowHours - 1) * (1 + supplementShare);
    enumeration.listPagesPerDay +=
      runs *
      (Math.max(present, Math.ceil(windowMembers / LIST_PAGE_KEYS)) +
        present *
          Math.max(1, Math.ceil((withMembers * windowHours * (k + 1 + supplementShare)) / LIST_PAGE_KEYS)));
    enumeration.getsPerDay += runs * windowManifests;
    // compactNamespaceHour: its manifests' prefix, then each tier's originals (1,000 a page).
    compacting.listPagesPerDay +=
      hours * (1 + tiers * Math.max(1, Math.ceil(members / withMembers / LIST_PAGE_KEYS)));
    parts.push({
      tier: "compacted",
      loaded: false,
      archived: true,
      perDay: hours * k,
      bytes: hourBytes / k,
      rawBytes: (nodes * rawPerNamespaceNodeHour) / withMembers / k,
    });
  }
  // Namespaces: one delimiter LIST a tier (1,000 common prefixes a page) a run, by every shard
  // (each lists them all and keeps its own); the per-namespace work above is split, not repeated.
  const shards = design.shards;
  enumeration.listPagesPerDay +=
    runs * shards * tiers * Math.max(1, Math.ceil(namespacesWithMembers / LIST_PAGE_KEYS));
  const supplementsPerDay = namespaceHoursPerDay * supplementShare;
  if (supplementsPerDay > 0 && membersPerDay > 0) {
    const member = { bytes: bytesPerDay / membersPerDay, raw: rawPerDay / membersPerDay };
    const keep = 1 - (supplementsPerDay * member.bytes) / bytesPerDay;
    for (const part of parts) {
      part.bytes *= keep;
      part.rawBytes *= keep;
    }
    parts.push({
      tier: "compacted",
      loaded: false,
      archived: true,
      perDay: supplementsPerDay,
      bytes: member.bytes,
      rawBytes: member.raw,
    });
    // A supplement's run lists its hour again and reads the generation it chains to.
    compacting.listPagesPerDay += supplementsPerDay * (1 + tiers);
    compacting.getsPerDay += supplementsPerDay;
  }
  const partsPerDay = parts.reduce((s, c) => s + c.perDay, 0);
  const manifestsPerDay = namespaceHoursPerDay + supplementsPerDay;
  // Each generation writes its plan (plan-<GGGG>.json, the manifest-to-be) before completing its
  // uploads, then its manifest; it first looks for a stored plan (a GET, usually a 404).
  compacting.putsPerDay =
    parts.reduce((s, c) => s + c.perDay * partUploadRequests(c.bytes, design.uploadPartBytes), 0) +
    2 * manifestsPerDay;
  // One GET per original on the scheduled path: its version and size come from the hour's
  // listing, its SHA-256 from the node's hour index (read by readiness anyway) and the rest of
  // its metadata from the GET's own x-amz-meta-* headers, so no HEAD precedes it (compact.ts; a
  // HEAD stays only without an index, in a dry run and for a kept part's members, none of which
  // the CronJob does in the steady state). Two HEADs per part (keepStoredPart's look for an
  // earlier run's copy, checkStoredSize after completing) and a stored plan's GET per generation.
  compacting.getsPerDay += membersPerDay + 2 * partsPerDay + manifestsPerDay;
  // Each run's every shard reads the index hours of its newly settled hour: H-1 to H+margin, each
  // one LIST per 1,000 nodes and a GET per node (a node writes one index an hour, naming every
  // namespace; a shard keeps only its own entries).
  const indexHoursPerRun = 2 + design.indexMarginHours;
  const indexes = {
    listPagesPerDay: runs * shards * indexHoursPerRun * Math.ceil(workload.nodes / LIST_PAGE_KEYS),
    getsPerDay: runs * shards * indexHoursPerRun * workload.nodes,
  };
  // A run's pods stream 1/shards of the hour each, on one core: CPU-seconds per GB × GB, plus the
  // latency per member their concurrency does not hide.
  const runSecondsPerRun =
    ((bytesPerDay / 1e9) * as.compactorCpuSecondsPerGB + membersPerDay * as.compactorSecondsPerMember) /
    runs /
    shards;
  return {
    design,
    parts,
    sizes: summarize(parts),
    membersPerDay,
    keptWhole,
    keptWholePerDay: keptWhole.reduce((sum, c) => sum + c.perDay, 0),
    // Every compacted original, once its hour ended deleteAfterHours ago (pending.ts).
    deletesPerDay: membersPerDay,
    namespaceHoursPerDay,
    manifestsPerDay,
    supplementsPerDay,
    windowHours,
    enumeration,
    indexes,
    compacting,
    getsPerDay: enumeration.getsPerDay + indexes.getsPerDay + compacting.getsPerDay,
    listPagesPerDay: enumeration.listPagesPerDay + indexes.listPagesPerDay + compacting.listPagesPerDay,
    putsPerDay: compacting.putsPerDay,
    bytesPerDay,
    podSecondsPerDay: runSecondsPerRun * shards * runs,
    runSecondsPerRun,
  };
}

/**
 * The archived objects kept for the retention, which the lifecycle moves: the compacted parts and
 * the originals kept whole when compaction is modelled (the compacted originals then live only
 * until their short retention ends), otherwise the shipper's archived objects.
 */
export function retainedArchiveClasses(model: PlanModel): ObjectClass[] {
  return model.compaction !== null
    ? [...model.compaction.parts, ...model.compaction.keptWhole]
    : model.classes.filter((c) => c.archived);
}

const FRESHNESS_SAMPLES = 20_000;
/** Bounds the run simulation when assumptions make a batch take no time. */
const MAX_BATCHES_PER_RUN = 100_000;

/**
 * Line → row delay: the line's wait in its batch (a line that opens a batch waits the whole
 * batch; later ones less), the upload, S3 → SQS, the transfer, Eventarc and finalize, the wait
 * for the table's next batch (its window, or a job's worth of arrivals), the batch's flush
 * work, and the load job. Monte Carlo with a fixed seed.
 */
function freshness(
  shaped: readonly { stream: Stream; shape: BatchShape }[],
  batchWaitSeconds: number,
  batchFlushSeconds: number,
  as: Assumptions,
): { p50Seconds: number; p95Seconds: number } {
  const random = seededRandom(0x10ad);
  const s3Event = logNormal(as.s3EventP50Seconds, as.s3EventP95Seconds, random);
  const transfer = logNormal(as.transferP50Seconds, as.transferP95Seconds, random);
  const eventarc = logNormal(as.eventarcP50Seconds, as.eventarcP95Seconds, random);
  const job = logNormal(as.loadJobP50Seconds, as.loadJobP95Seconds, random);
  const weights = shaped.map((s) => s.stream.perNode * s.shape.linesPerSecond);
  const total = weights.reduce((a, b) => a + b, 0);
  const samples: number[] = [];
  for (let i = 0; i < FRESHNESS_SAMPLES; i++) {
    let pick = random() * total;
    let j = 0;
    while (j < weights.length - 1 && pick > weights[j]!) pick -= weights[j++]!;
    const { shape } = shaped[j]!;
    const linesPerBatch = shape.linesPerSecond * shape.durationSeconds;
    const opensBatch = random() < 1 / (1 + linesPerBatch);
    const inBatch = opensBatch ? shape.durationSeconds : shape.durationSeconds * random();
    samples.push(
      inBatch +
        as.uploadSeconds +
        s3Event() +
        transfer() +
        eventarc() +
        batchWaitSeconds * random() +
        batchFlushSeconds +
        job(),
    );
  }
  samples.sort((a, b) => a - b);
  return { p50Seconds: quantile(samples, 0.5), p95Seconds: quantile(samples, 0.95) };
}
