// The monthly bill from the volume model: storage by class over the retention (minimum
// durations, 128 KB minimums, Glacier's per-object overhead), GCS staging and markers,
// BigQuery storage under both billing models, every request charge, egress, and the
// shipper fleet's reserved CPU and memory. A steady-state month (the archive full to its
// retention) and the first month (it starts empty). List prices, no free tiers.

import {
  billedBytes,
  GLACIER_OVERHEAD_STANDARD_BYTES,
  type LifecycleStep,
  S3_MIN_STORAGE_DAYS as MIN_DAYS,
  MONTH_DAYS,
  S3_STORAGE_PRICE,
  type Stint,
  stintsOf,
  S3_TRANSITION_PRICE as TRANSITION_PRICE,
  type TransitionSizeBand,
  type TransitionSizes,
  transitionSizeBands,
  transitionsForSize,
} from "../archive-lifecycle.ts";
import { formatCompactedPartKey, formatObjectKey } from "../keys/layout.ts";
import { encodeHourIndex, HOUR_INDEX_FORMAT, HOUR_INDEX_VERSION } from "../object/hour-index.ts";
import {
  COLD_TIER_MIN_BYTES,
  COMPACTOR_RUN_DEADLINE_SECONDS,
  type CompactionModel,
  DAY_SECONDS,
  type ObjectClass,
  objectsInSizeRange,
  type PlanModel,
  retainedArchiveClasses,
} from "./model.ts";
import type { PriceId, PriceTable } from "./prices.ts";

export { MONTH_DAYS };

const GIB = 2 ** 30;
const TIB = 2 ** 40;

export const STORAGE_CLASSES = ["STANDARD", "STANDARD_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"] as const;
export type StorageClass = (typeof STORAGE_CLASSES)[number];
export type { LifecycleStep };

export interface CostInputs {
  /**
   * Days until the archive's lifecycle rule expires an object. `logarchive cost` defaults it and
   * `lifecycle` to what infra/ deploys (lib/archive-lifecycle.ts).
   */
  retentionDays: number;
  /** Transitions after STANDARD, in order. */
  lifecycle: LifecycleStep[];
  /**
   * break-even (what infra deploys by default, its archiveTransitionSizes): each transition
   * applies only to the size bands where it pays for itself (transitionSizeBands in
   * lib/archive-lifecycle.ts, from these prices and the retention); the rules' own size
   * filters take precedence over S3's default minimum. off: age-only transitions, subject to
   * `smallObjects`.
   */
  transitionSizes: TransitionSizes;
  /**
   * S3's transition_default_minimum_object_size, for age-only transitions: by default
   * (all_storage_classes_128K) objects under 128 KB never transition; varies_by_storage_class
   * lets them into the Glacier classes that do not bill a 128 KB minimum.
   */
  smallObjects: "all_storage_classes_128K" | "varies_by_storage_class";
  /** Hypothetical analytics-stream objects expire after this many days. */
  streamRetentionDays: number;
  /** Days the landing bucket keeps the transfer's copies (a lifecycle rule you add; none exists today). */
  gcsStagingDays: number;
  /** Days claims/ and done/ markers are kept (docs/loader.md: as long as S3 may re-send an object). */
  markerRetentionDays: number;
  /** BigQuery partition expiration, days. */
  bigqueryDays: number;
  /** Which BigQuery storage billing model counts in the total; both are shown. */
  bigqueryBilling: "logical" | "physical";
  /** Athena TB scanned per month, for a stated query volume. */
  athenaTbPerMonth: number;
  /** GB restored from the archive per month (compliance retrieval), bulk tier. */
  restoreGbPerMonth: number;
  /** The shipper DaemonSet's requests per node. */
  shipperCpu: number;
  shipperMemoryGiB: number;
  /** The compactor CronJob pod's requests, reserved while a run lasts (with compaction). */
  compactorCpu: number;
  compactorMemoryGiB: number;
}

export type CostGroup = "storage" | "requests" | "egress" | "fleet";

export interface CostLine {
  group: CostGroup;
  item: string;
  /** Steady-state month quantity and unit, as billed. */
  quantity: number;
  unit: string;
  steady: number;
  first: number;
  prices: PriceId[];
  note?: string;
  /** False for the BigQuery billing model not chosen: shown for comparison, not added up. */
  inTotal: boolean;
}

export interface CostReport {
  lines: CostLine[];
  totals: {
    steady: Record<CostGroup | "total", number>;
    first: Record<CostGroup | "total", number>;
  };
  /**
   * Request charges / (total − egress), steady state. The compactor's compute is in the requests
   * group, as issue 9 counts function compute (conservative).
   */
  requestShare: number;
  /** The same with the compactor's compute counted beside the shipper fleet instead (equal without compaction). */
  requestShareCompactorAsFleet: number;
  /**
   * How many archived objects a day never leave STANDARD (under every transition's size band):
   * with compaction, of the compacted parts.
   */
  archivedObjectsStayingStandard: number;
  /**
   * Per transition of the lifecycle (within the retention): the smallest archived object that
   * takes it (break-even) or may (age-only: S3's default minimum), and the archived objects and
   * bytes a day that take it and that reach its age but stay in the class they are in.
   */
  transitionsBySize: TransitionBySize[];
  /** The size bands of the archive's lifecycle (break-even); empty when transitions are age-only. */
  transitionBands: TransitionSizeBand[];
  /** Of the objects kept for the retention: the compacted parts when compaction is modelled. */
  medianArchivedObjectBytes: number;
  prices: PriceTable;
}

export interface TransitionBySize {
  storageClass: Exclude<StorageClass, "STANDARD">;
  afterDays: number;
  /** Smallest object that takes it; null: none does. */
  minBytes: number | null;
  /** The size ranges [minBytes, maxBytes) that take it (maxBytes null: no upper bound). */
  ranges: { minBytes: number; maxBytes: number | null }[];
  movingObjectsPerDay: number;
  movingBytesPerDay: number;
  stayingObjectsPerDay: number;
  stayingBytesPerDay: number;
}

/** Age-only transitions: which ones S3's default minimum object size lets an object of `bytes` take. */
function ageOnlyTransitions(
  bytes: number,
  inputs: Pick<CostInputs, "lifecycle" | "smallObjects">,
): LifecycleStep[] {
  return inputs.lifecycle.filter((step) => {
    const glacier = step.storageClass === "GLACIER" || step.storageClass === "DEEP_ARCHIVE";
    return bytes >= COLD_TIER_MIN_BYTES || (inputs.smallObjects === "varies_by_storage_class" && glacier);
  });
}

/**
 * The transitions objects living `lifeDays` take, by size: the break-even bands for that life
 * (computed once per life), or age-only with S3's default minimum.
 */
export function transitionsTaken(
  inputs: CostInputs,
  prices: PriceTable,
): (bytes: number, lifeDays: number) => LifecycleStep[] {
  const bands = new Map<number, TransitionSizeBand[]>();
  return (bytes, lifeDays) => {
    if (inputs.transitionSizes === "off") return ageOnlyTransitions(bytes, inputs);
    let forLife = bands.get(lifeDays);
    if (forLife === undefined) {
      forLife = transitionSizeBands(inputs.lifecycle, lifeDays, prices);
      bands.set(lifeDays, forLife);
    }
    return transitionsForSize(forLife, bytes);
  };
}

/** The storage classes an object of `bytes` passes through over its life. */
export function objectTimeline(
  bytes: number,
  inputs: CostInputs,
  lifeDays: number,
  prices: PriceTable,
): Stint[] {
  return stintsOf(transitionsTaken(inputs, prices)(bytes, lifeDays), lifeDays);
}

/** Object-days per daily cohort spent in [from, to) during one month: steady state or the archive's first. */
function residentDays(from: number, to: number, first: boolean): number {
  if (!first) return to - from;
  const m = MONTH_DAYS;
  if (from >= m) return 0;
  return ((Math.min(to, m) - from) ** 2 / 2 + Math.max(0, m - to) * (to - from)) / m;
}

/** Cohorts whose age passes `day` during the month. */
function cohortsPassing(day: number, first: boolean): number {
  return first ? Math.max(0, MONTH_DAYS - day) : MONTH_DAYS;
}

function tiered(quantity: number, tiers: readonly [number, number][]): number {
  let left = quantity;
  let cost = 0;
  for (const [size, price] of tiers) {
    const take = Math.min(left, size);
    cost += take * price;
    left -= take;
    if (left <= 0) break;
  }
  return cost;
}

/**
 * Bytes of one node's hour index listing `entries` batches (docs/retrieval.md#hour-indexes),
 * measured by encoding indexes of one and two entries with the shipper's own encoder and a
 * typical key (an EKS node name, a 14-character namespace), so the figure follows the format.
 */
export function hourIndexBytes(entries: number): number {
  const node = "ip-10-0-1-5.ec2.internal";
  const epoch = "9f2c1a7b";
  const encoded = (n: number) =>
    encodeHourIndex({
      format: HOUR_INDEX_FORMAT,
      version: HOUR_INDEX_VERSION,
      node,
      epoch,
      hour: "2026-11-21T09:00:00Z",
      first: 1000,
      last: 1000 + n - 1,
      previous: { hour: "2026-11-21T08:00:00Z", last: 999 },
      batches: Array.from({ length: n }, (_, i) => ({
        seq: 1000 + i,
        kind: "batch" as const,
        key: formatObjectKey({
          prefix: "logs",
          tier: "archive",
          namespace: "payments-api-1",
          dt: "2026-11-21",
          hour: "09",
          node,
          epoch,
          seq: 1000 + i,
        }),
        namespace: "payments-api-1",
        tier: "archive" as const,
        sha256: "0".repeat(64),
        bytes: 682_000,
        records: 2_800,
        firstTimestamp: "2026-11-21T09:00:00.123456789Z",
        lastTimestamp: "2026-11-21T09:59:59.987654321Z",
      })),
    }).length;
  const one = encoded(1);
  return one + Math.max(0, entries - 1) * (encoded(2) - one);
}

/**
 * Bytes of one compaction manifest (docs/design/compaction.md) naming `members` originals in
 * `parts` parts: one line of JSON with, per member, its key, version id, tier, node, epoch,
 * sequence number, part, offset, length, SHA-256, record count and first and last record times,
 * and per part its key, bytes, SHA-256, members and records. Measured by encoding manifests of one
 * and two members and parts with typical values (the keys from lib/keys/layout.ts), so the figure
 * follows the key layout; the field list is the design's (lib/object/compaction-manifest.ts
 * holds the encoder once the compactor is built).
 */
export function compactionManifestBytes(members: number, parts: number): number {
  const node = "ip-10-0-1-5.ec2.internal";
  const at = { prefix: "logs", namespace: "payments-api-1", dt: "2026-11-21", hour: "09" };
  const encoded = (m: number, k: number) =>
    JSON.stringify({
      format: "logarchive-compaction-manifest",
      version: 1,
      namespace: at.namespace,
      hour: "2026-11-21T09:00:00Z",
      generation: 0,
      previous: null,
      parts: Array.from({ length: k }, (_, part) => ({
        part,
        key: formatCompactedPartKey({ ...at, generation: 0, part, plan: "0123456789abcdef" }),
        bytes: 1_073_741_824,
        sha256: "0".repeat(64),
        members: 10_000,
        records: 28_000_000,
      })),
      members: Array.from({ length: m }, (_, i) => ({
        key: formatObjectKey({ ...at, tier: "archive", node, epoch: "9f2c1a7b", seq: 1000 + i }),
        versionId: "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrH",
        tier: "archive",
        node,
        epoch: "9f2c1a7b",
        seq: 1000 + i,
        part: 0,
        offset: 1_073_000_000,
        length: 682_000,
        sha256: "0".repeat(64),
        records: 2_800,
        firstTimestamp: "2026-11-21T09:00:00.123456789Z",
        lastTimestamp: "2026-11-21T09:59:59.987654321Z",
      })),
      totals: { parts: k, members: m, bytes: 1_073_741_824, records: 28_000_000 },
    }).length + 1;
  const base = encoded(1, 1);
  return (
    base + Math.max(0, members - 1) * (encoded(2, 1) - base) + Math.max(0, parts - 1) * (encoded(1, 2) - base)
  );
}

export function costModel(model: PlanModel, inputs: CostInputs, prices: PriceTable): CostReport {
  const p = (id: PriceId) => prices[id].value;
  const lines: CostLine[] = [];
  const add = (line: Omit<CostLine, "first" | "inTotal"> & { first?: number; inTotal?: boolean }) =>
    lines.push({ ...line, first: line.first ?? line.steady, inTotal: line.inTotal ?? true });

  // --- S3 storage by class over the retention.
  const gibMonth = { steady: {} as Record<StorageClass, number>, first: {} as Record<StorageClass, number> };
  const transitions = {
    steady: {} as Record<StorageClass, number>,
    first: {} as Record<StorageClass, number>,
  };
  for (const c of STORAGE_CLASSES) {
    gibMonth.steady[c] = gibMonth.first[c] = 0;
    transitions.steady[c] = transitions.first[c] = 0;
  }
  let stayingStandard = 0;
  const taken = transitionsTaken(inputs, prices);
  const compaction = model.compaction;
  // What each class of object lives and passes through. With compaction (docs/design/compaction.md)
  // a compacted original stays in Standard (no transition before the first at day 30): current
  // until the compactor's DeleteObject (its hour, delete-after, up to one hourly run), then as a
  // noncurrent version until its own retention ends (landing days after its hour) and the tier
  // rules' NoncurrentVersionExpiration of a day passes. The originals kept whole take the
  // retention and the lifecycle, like the compacted parts.
  const originalLife = compaction === null ? 0 : compactedOriginalDaysStored(compaction.design, inputs);
  const lives: { c: ObjectClass; stints: Stint[] }[] = model.classes.map((c) => {
    if (c.archived && compaction !== null) {
      const compacted = { ...c, perDay: c.perDay * (1 - model.inputs.assumptions.compactionKeptWholeShare) };
      return { c: compacted, stints: [{ storageClass: "STANDARD", from: 0, to: originalLife }] };
    }
    const life = c.archived ? inputs.retentionDays : inputs.streamRetentionDays;
    return { c, stints: stintsOf(taken(c.bytes, life), life) };
  });
  for (const c of [...(compaction?.parts ?? []), ...(compaction?.keptWhole ?? [])]) {
    lives.push({ c, stints: stintsOf(taken(c.bytes, inputs.retentionDays), inputs.retentionDays) });
  }
  const retained = retainedArchiveClasses(model);
  const retainedPerDay = retained.reduce((sum, c) => sum + c.perDay, 0);
  const archivedPerDay = model.classes.filter((c) => c.archived).reduce((sum, c) => sum + c.perDay, 0);
  for (const { c, stints } of lives) {
    if (
      c.archived &&
      (compaction === null || stints.at(-1)?.to === inputs.retentionDays) &&
      stints.length === 1
    )
      stayingStandard += c.perDay;
    for (const s of stints) {
      const billed = billedBytes(s.storageClass, c.bytes);
      const length = s.to - s.from;
      const early = Math.max(0, MIN_DAYS[s.storageClass] - length);
      for (const first of [false, true]) {
        const key = first ? "first" : "steady";
        // An object leaving a class before its minimum is billed the rest at once.
        const earlyDays = early > 0 ? (early * cohortsPassing(s.to, first)) / MONTH_DAYS : 0;
        const days = residentDays(s.from, s.to, first) + earlyDays;
        gibMonth[key][s.storageClass] += (c.perDay * billed * days) / GIB;
        if (s.storageClass === "GLACIER" || s.storageClass === "DEEP_ARCHIVE") {
          gibMonth[key].STANDARD +=
            (c.perDay * GLACIER_OVERHEAD_STANDARD_BYTES * residentDays(s.from, s.to, first)) / GIB;
        }
        if (s.from > 0) transitions[key][s.storageClass] += c.perDay * cohortsPassing(s.from, first);
      }
    }
  }
  // Hour indexes: one per node and hour, listing the node's archived batches of the hour; they
  // stay in Standard and expire at the retention (lib/infra-contract.ts, evidence scopes).
  const indexesPerDay = model.inputs.workload.nodes * 24;
  const indexBytes = hourIndexBytes(archivedPerDay / Math.max(1, indexesPerDay));
  for (const first of [false, true]) {
    gibMonth[first ? "first" : "steady"].STANDARD +=
      (indexesPerDay * indexBytes * residentDays(0, inputs.retentionDays, first)) / GIB;
  }
  // Compaction manifests: one per namespace-hour and supplement, read by every reader with a
  // plain GET, so kept in Standard for the retention like the hour indexes; and each one's plan
  // (plan-<GGGG>.json, the same bytes), kept beside it under compacted/.
  const manifestBytesPerDay =
    compaction === null || compaction.manifestsPerDay === 0
      ? 0
      : 2 *
        compaction.manifestsPerDay *
        compactionManifestBytes(
          compaction.membersPerDay / compaction.manifestsPerDay,
          (compaction.sizes.objectsPerDay - compaction.supplementsPerDay) /
            Math.max(1, compaction.namespaceHoursPerDay),
        );
  for (const first of [false, true]) {
    gibMonth[first ? "first" : "steady"].STANDARD +=
      (manifestBytesPerDay * residentDays(0, inputs.retentionDays, first)) / GIB;
  }
  // Delete markers: the compactor's DeleteObject leaves one per compacted original, billed in
  // Standard at its key name's size (https://docs.aws.amazon.com/AmazonS3/latest/userguide/DeleteMarker.html);
  // once its version is gone it is an expired object delete marker, which the tier rule's
  // Expiration Days removes when it is as old as the retention (ManagingDelMarkers.html).
  const deleteMarkerBytes = compaction === null ? 0 : deleteMarkerKeyBytes();
  for (const first of [false, true]) {
    if (compaction === null) break;
    gibMonth[first ? "first" : "steady"].STANDARD +=
      (compaction.deletesPerDay * deleteMarkerBytes * residentDays(0, inputs.retentionDays, first)) / GIB;
  }
  const standardTiers = (gib: number) =>
    tiered(gib, [
      [50 * 1024, p("s3_standard_gb_month_first_50tb")],
      [450 * 1024, p("s3_standard_gb_month_next_450tb")],
      [Number.POSITIVE_INFINITY, p("s3_standard_gb_month_over_500tb")],
    ]);
  add({
    group: "storage",
    item:
      compaction === null
        ? "S3 Standard (incl. 8 KB per Glacier object, and hour indexes)"
        : `S3 Standard (incl. 8 KB per Glacier object, hour indexes, compaction manifests, delete markers, and each compacted original's ${originalLife.toFixed(2)} days: deleted ${compaction.design.deleteAfterHours} h after its hour, its version kept to its ${compaction.design.landingDays}-day retention + ${COMPACTED_ORIGINAL_NONCURRENT_DAYS} noncurrent)`,
    quantity: gibMonth.steady.STANDARD,
    unit: "GB-month",
    steady: standardTiers(gibMonth.steady.STANDARD),
    first: standardTiers(gibMonth.first.STANDARD),
    prices: [
      "s3_standard_gb_month_first_50tb",
      "s3_standard_gb_month_next_450tb",
      "s3_standard_gb_month_over_500tb",
    ],
    note: `${((stayingStandard / Math.max(1, retainedPerDay)) * 100).toFixed(1)}% of ${compaction === null ? "archived objects" : "compacted parts and kept-whole originals"} stay in Standard for the whole retention (${inputs.transitionSizes === "off" ? "under 128 KB" : "below every transition's break-even size"})`,
  });
  for (const cls of ["STANDARD_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"] as const) {
    const inLifecycle = inputs.lifecycle.some((s) => s.storageClass === cls);
    if (!inLifecycle) continue;
    add({
      group: "storage",
      item: `S3 ${cls} (billed sizes: ${cls === "STANDARD_IA" || cls === "GLACIER_IR" ? "128 KB minimum" : "+32 KB per object"}, ${MIN_DAYS[cls]}-day minimum)`,
      quantity: gibMonth.steady[cls],
      unit: "GB-month",
      steady: gibMonth.steady[cls] * p(S3_STORAGE_PRICE[cls]),
      first: gibMonth.first[cls] * p(S3_STORAGE_PRICE[cls]),
      prices: [S3_STORAGE_PRICE[cls]],
    });
  }

  // --- GCS staging and the loader's markers.
  const loadedPerDay = model.transfer.objectsPerDay;
  const a = model.inputs.assumptions;
  const stagingGib = (first: boolean) =>
    (model.transfer.bytesPerDay * residentDays(0, inputs.gcsStagingDays, first)) / GIB;
  add({
    group: "storage",
    item: `GCS landing copies (kept ${inputs.gcsStagingDays} days)`,
    quantity: stagingGib(false),
    unit: "GB-month",
    steady: stagingGib(false) * p("gcs_standard_gb_month"),
    first: stagingGib(true) * p("gcs_standard_gb_month"),
    prices: ["gcs_standard_gb_month"],
  });
  // claims/ and done/ per object for the marker retention; batch manifests and attempts (the
  // objects' names again) for 7 days.
  const markerGib = (first: boolean) =>
    (loadedPerDay *
      (2 * a.markerBytes * residentDays(0, inputs.markerRetentionDays, first) +
        2 * a.markerBytes * residentDays(0, 7, first))) /
    GIB;
  add({
    group: "storage",
    item: `GCS loader markers (claims/ + done/ kept ${inputs.markerRetentionDays} days)`,
    quantity: markerGib(false),
    unit: "GB-month",
    steady: markerGib(false) * p("gcs_standard_gb_month"),
    first: markerGib(true) * p("gcs_standard_gb_month"),
    prices: ["gcs_standard_gb_month"],
  });

  // --- BigQuery storage: partitions expire after bigqueryDays; long-term after 90 days unmodified.
  const bq = model.bigquery;
  const activeDays = Math.min(inputs.bigqueryDays, 90);
  const longDays = Math.max(0, inputs.bigqueryDays - 90);
  const timeTravelDays = 14; // 7 days of time travel + 7 of fail-safe after a partition expires
  const bqLines: {
    model: "logical" | "physical";
    item: string;
    gib: (first: boolean) => number;
    price: PriceId;
  }[] = [
    {
      model: "logical",
      item: "BigQuery active logical",
      gib: (f) => (bq.logicalBytesPerDay * residentDays(0, activeDays, f)) / GIB,
      price: "bq_logical_active_gib_month",
    },
    {
      model: "logical",
      item: "BigQuery long-term logical",
      gib: (f) => (bq.logicalBytesPerDay * residentDays(90, 90 + longDays, f)) / GIB,
      price: "bq_logical_long_term_gib_month",
    },
    {
      model: "physical",
      item: "BigQuery active physical (+14 days time travel and fail-safe)",
      gib: (f) =>
        (bq.physicalBytesPerDay *
          (residentDays(0, activeDays, f) +
            residentDays(inputs.bigqueryDays, inputs.bigqueryDays + timeTravelDays, f))) /
        GIB,
      price: "bq_physical_active_gib_month",
    },
    {
      model: "physical",
      item: "BigQuery long-term physical",
      gib: (f) => (bq.physicalBytesPerDay * residentDays(90, 90 + longDays, f)) / GIB,
      price: "bq_physical_long_term_gib_month",
    },
  ];
  for (const l of bqLines) {
    const steady = l.gib(false) * p(l.price);
    const chosen = l.model === inputs.bigqueryBilling;
    add({
      inTotal: chosen,
      group: "storage",
      item: `${l.item} (${inputs.bigqueryDays}-day partitions)`,
      quantity: l.gib(false),
      unit: "GiB-month",
      steady,
      first: l.gib(true) * p(l.price),
      prices: [l.price],
      ...(!chosen
        ? { note: `not in the total: ${inputs.bigqueryBilling} billing chosen (--bigquery-billing)` }
        : model.loader.loadedShare < 1 && steady > 0
          ? {
              note: `all analytics rows; as configured the loader loads ${(model.loader.loadedShare * 100).toFixed(1)}% of them`,
            }
          : {}),
    });
  }

  // --- Which archived objects each transition moves, and which stay in the class they are in.
  const bands =
    inputs.transitionSizes === "off"
      ? []
      : transitionSizeBands(inputs.lifecycle, inputs.retentionDays, prices);
  const transitionsBySize = transitionReach(retained, inputs, bands);

  // --- Requests.
  const objectsPerMonth = model.sizes.all.objectsPerDay * MONTH_DAYS;
  add({
    group: "requests",
    item: "S3 PUT (one per object)",
    quantity: objectsPerMonth,
    unit: "requests",
    steady: (objectsPerMonth / 1000) * p("s3_put_per_1k"),
    prices: ["s3_put_per_1k"],
  });
  const indexPutsPerMonth = indexesPerDay * MONTH_DAYS;
  add({
    group: "requests",
    item: "S3 PUT of hour indexes (one per node and hour)",
    quantity: indexPutsPerMonth,
    unit: "requests",
    steady: (indexPutsPerMonth / 1000) * p("s3_put_per_1k"),
    prices: ["s3_put_per_1k"],
    note: `${(indexBytes / 1024).toFixed(1)} KiB each, kept in Standard for the retention`,
  });
  for (const cls of ["STANDARD_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"] as const) {
    if (transitions.steady[cls] === 0 && !inputs.lifecycle.some((s) => s.storageClass === cls)) continue;
    add({
      group: "requests",
      item: `S3 lifecycle transitions into ${cls}`,
      quantity: transitions.steady[cls],
      unit: "requests",
      steady: (transitions.steady[cls] / 1000) * p(TRANSITION_PRICE[cls]),
      first: (transitions.first[cls] / 1000) * p(TRANSITION_PRICE[cls]),
      prices: [TRANSITION_PRICE[cls]],
      note: transitionNote(
        transitionsBySize.find((t) => t.storageClass === cls),
        inputs.transitionSizes,
        compaction === null ? "archived objects" : "compacted parts and kept-whole originals",
      ),
    });
  }
  let compactorCompute = 0;
  if (compaction !== null) {
    const { compacting, enumeration, indexes } = compaction;
    const get = (perDay: number) => ((perDay * MONTH_DAYS) / 1000) * p("s3_get_per_1k");
    const put = (perDay: number) => ((perDay * MONTH_DAYS) / 1000) * p("s3_put_per_1k");
    add({
      group: "requests",
      item: "S3 GET/HEAD by the compactor: each original's GET (no HEAD), two HEADs a part, a stored plan's GET a generation, a supplement's previous manifest",
      quantity: compacting.getsPerDay * MONTH_DAYS,
      unit: "requests",
      steady: get(compacting.getsPerDay),
      prices: ["s3_get_per_1k"],
    });
    add({
      group: "requests",
      item: `S3 GET by the compactor's enumeration: committed manifests in each run's ${compaction.windowHours}-hour window`,
      quantity: enumeration.getsPerDay * MONTH_DAYS,
      unit: "requests",
      steady: get(enumeration.getsPerDay),
      prices: ["s3_get_per_1k"],
    });
    add({
      group: "requests",
      item: `S3 GET by the compactor: hour indexes (every node's, ${2 + compaction.design.indexMarginHours} index hours a run, by each of ${compaction.design.shards} pod(s))`,
      quantity: indexes.getsPerDay * MONTH_DAYS,
      unit: "requests",
      steady: get(indexes.getsPerDay),
      prices: ["s3_get_per_1k"],
    });
    add({
      group: "requests",
      item: "S3 LIST by the compactor (namespaces, the window's originals and compacted keys, each pending hour's, hour indexes)",
      quantity: compaction.listPagesPerDay * MONTH_DAYS,
      unit: "requests",
      steady: put(compaction.listPagesPerDay),
      prices: ["s3_put_per_1k"],
      note: `enumeration ${whole(enumeration.listPagesPerDay * MONTH_DAYS)}, pending hours ${whole(compacting.listPagesPerDay * MONTH_DAYS)}, indexes ${whole(indexes.listPagesPerDay * MONTH_DAYS)}`,
    });
    add({
      group: "requests",
      item: `S3 PUT by the compactor (parts as multipart uploads in ${compaction.design.uploadPartBytes / 2 ** 20} MiB chunks, plans, manifests)`,
      quantity: compacting.putsPerDay * MONTH_DAYS,
      unit: "requests",
      steady: put(compacting.putsPerDay),
      prices: ["s3_put_per_1k"],
      note: `${whole(compaction.sizes.objectsPerDay)} parts, ${whole(compaction.manifestsPerDay)} plans and ${whole(compaction.manifestsPerDay)} manifests a day`,
    });
    add({
      group: "requests",
      item: `S3 DELETE by the compactor (one DeleteObject per compacted original, ${compaction.design.deleteAfterHours} h after its hour: a delete marker)`,
      quantity: compaction.deletesPerDay * MONTH_DAYS,
      unit: "requests",
      steady: ((compaction.deletesPerDay * MONTH_DAYS) / 1000) * p("s3_delete_per_1k"),
      prices: ["s3_delete_per_1k"],
    });
    add({
      group: "requests",
      item: `S3 PutObjectRetention by the compactor (originals kept whole, ${(model.inputs.assumptions.compactionKeptWholeShare * 100).toFixed(1)}%, extended to the bucket's lock)`,
      quantity: compaction.keptWholePerDay * MONTH_DAYS,
      unit: "requests",
      steady: put(compaction.keptWholePerDay),
      prices: ["s3_put_per_1k"],
    });
    const podHours = (compaction.podSecondsPerDay * MONTH_DAYS) / 3600;
    compactorCompute =
      podHours *
      (inputs.compactorCpu * p("fargate_vcpu_hour") +
        inputs.compactorMemoryGiB * (GIB / 1e9) * p("fargate_gb_hour"));
    add({
      group: "requests",
      item: `Compactor CronJob pod requests (${compaction.design.shards} pod(s) a run, each ${inputs.compactorCpu} vCPU, ${inputs.compactorMemoryGiB} GiB while its run lasts; ${model.inputs.assumptions.compactorCpuSecondsPerGB} CPU-s per GB, measured)`,
      quantity: podHours,
      unit: "pod-hours",
      steady: compactorCompute,
      prices: ["fargate_vcpu_hour", "fargate_gb_hour"],
      note: `${whole(compaction.runSecondsPerRun)} s a run of each pod (deadline ${whole(COMPACTOR_RUN_DEADLINE_SECONDS)} s); streams ${(compaction.bytesPerDay / 1e12).toFixed(2)} TB a day in-region (no transfer charge); counted as requests, like function compute`,
    });
  }
  const transferReads = model.transfer.s3ReadsPerDay * MONTH_DAYS;
  add({
    group: "requests",
    item: "S3 GET/HEAD by Storage Transfer",
    quantity: transferReads,
    unit: "requests",
    steady: (transferReads / 1000) * p("s3_get_per_1k"),
    prices: ["s3_get_per_1k"],
  });
  const sqsRequests = model.sqs.requestsPerSecond * DAY_SECONDS * MONTH_DAYS;
  add({
    group: "requests",
    item: `SQS (${a.sqsRequestsPerMessage} requests per message: send, receive, delete)`,
    quantity: sqsRequests,
    unit: "requests",
    steady: (sqsRequests / 1e6) * p("sqs_per_million"),
    prices: ["sqs_per_million"],
  });
  const transferGib = (model.transfer.bytesPerDay * MONTH_DAYS) / GIB;
  add({
    group: "requests",
    item: "Storage Transfer Service (agentless)",
    quantity: transferGib,
    unit: "GB",
    steady: transferGib * p("sts_agentless_gb"),
    prices: ["sts_agentless_gb"],
  });
  const gcsA = model.gcs.perDay.classA * MONTH_DAYS;
  const gcsB = model.gcs.perDay.classB * MONTH_DAYS;
  add({
    group: "requests",
    item: "GCS Class A (copies, claims/, pending/, done/, manifests, listings)",
    quantity: gcsA,
    unit: "operations",
    steady: (gcsA / 1000) * p("gcs_class_a_per_1k"),
    prices: ["gcs_class_a_per_1k"],
  });
  add({
    group: "requests",
    item: "GCS Class B (object checks, marker reads)",
    quantity: gcsB,
    unit: "operations",
    steady: (gcsB / 1000) * p("gcs_class_b_per_1k"),
    prices: ["gcs_class_b_per_1k"],
  });
  const events = model.gcs.perDay.landingInserts * MONTH_DAYS;
  const pubsubTib = (events * 2 * Math.max(1000, a.eventMessageBytes)) / TIB;
  add({
    group: "requests",
    item: "Pub/Sub under Eventarc (each finalize event published and delivered)",
    quantity: pubsubTib,
    unit: "TiB",
    steady: pubsubTib * p("pubsub_tib") + (events / 1e6) * p("eventarc_google_source_per_million"),
    prices: ["pubsub_tib", "eventarc_google_source_per_million"],
  });
  const invocations = model.functions.invocationsPerDay * MONTH_DAYS;
  add({
    group: "requests",
    item: `Function invocations (${model.functions.finalizeIgnored > 0 ? "incl. finalize of marker writes, " : ""}flush every ${model.inputs.loader.flushIntervalSeconds} s)`,
    quantity: invocations,
    unit: "invocations",
    steady: (invocations / 1e6) * p("run_requests_per_million"),
    prices: ["run_requests_per_million"],
  });
  const vcpu = model.functions.vcpuSecondsPerDay * MONTH_DAYS;
  const gibs = model.functions.gibSecondsPerDay * MONTH_DAYS;
  add({
    group: "requests",
    item: `Function compute (${model.inputs.functions.memory}: ${model.inputs.functions.vcpu} vCPU, ${model.inputs.functions.memoryGiB} GiB, billed per 100 ms)`,
    quantity: vcpu,
    unit: "vCPU-seconds",
    steady: vcpu * p("run_vcpu_second") + gibs * p("run_gib_second"),
    prices: ["run_vcpu_second", "run_gib_second"],
  });
  add({
    group: "requests",
    item: "Cloud Scheduler (the flush trigger)",
    quantity: 1,
    unit: "jobs",
    steady: p("scheduler_job_month"),
    prices: ["scheduler_job_month"],
  });
  const archived = retained;
  const archivedObjects = archived.reduce((s, c) => s + c.perDay, 0);
  const archivedBytes = archived.reduce((s, c) => s + c.perDay * c.bytes, 0);
  const meanArchived = archivedObjects > 0 ? archivedBytes / archivedObjects : 1;
  const athenaGets = (inputs.athenaTbPerMonth * 1e12) / meanArchived;
  add({
    group: "requests",
    item: `Athena (${inputs.athenaTbPerMonth} TB scanned/month, plus a GET per object read)`,
    quantity: inputs.athenaTbPerMonth,
    unit: "TB",
    steady: inputs.athenaTbPerMonth * p("athena_per_tb") + (athenaGets / 1000) * p("s3_get_per_1k"),
    prices: ["athena_per_tb", "s3_get_per_1k"],
    note: `${Math.round(athenaGets).toLocaleString("en-US")} GETs at the mean archived object size`,
  });
  add({
    group: "requests",
    item: `Archive restore (${inputs.restoreGbPerMonth} GB/month, bulk, from the class it sits in)`,
    quantity: inputs.restoreGbPerMonth,
    unit: "GB",
    steady: restoreCost(model, inputs, prices),
    prices: [
      "s3_restore_deep_archive_bulk_gb",
      "s3_restore_deep_archive_bulk_per_1k",
      "s3_restore_glacier_fr_bulk_gb",
      "s3_retrieval_glacier_ir_gb",
      "s3_retrieval_standard_ia_gb",
      "s3_get_per_1k",
    ],
  });

  // --- Egress: every transferred byte leaves AWS.
  add({
    group: "egress",
    item: "AWS data transfer out, S3 → GCS",
    quantity: transferGib,
    unit: "GB",
    steady: tiered(transferGib, [
      [10 * 1024, p("aws_egress_gb_first_10tb")],
      [40 * 1024, p("aws_egress_gb_next_40tb")],
      [100 * 1024, p("aws_egress_gb_next_100tb")],
      [Number.POSITIVE_INFINITY, p("aws_egress_gb_over_150tb")],
    ]),
    prices: [
      "aws_egress_gb_first_10tb",
      "aws_egress_gb_next_40tb",
      "aws_egress_gb_next_100tb",
      "aws_egress_gb_over_150tb",
    ],
  });

  // --- The shipper fleet's reservation.
  const hours = MONTH_DAYS * 24;
  const nodes = model.inputs.workload.nodes;
  add({
    group: "fleet",
    item: `Shipper DaemonSet requests (${inputs.shipperCpu} vCPU, ${inputs.shipperMemoryGiB} GiB per node)`,
    quantity: nodes * inputs.shipperCpu * hours,
    unit: "vCPU-hours",
    steady:
      nodes *
      hours *
      (inputs.shipperCpu * p("fargate_vcpu_hour") +
        inputs.shipperMemoryGiB * (GIB / 1e9) * p("fargate_gb_hour")),
    prices: ["fargate_vcpu_hour", "fargate_gb_hour"],
  });

  const totals = {
    steady: { storage: 0, requests: 0, egress: 0, fleet: 0, total: 0 },
    first: { storage: 0, requests: 0, egress: 0, fleet: 0, total: 0 },
  };
  for (const l of lines) {
    if (!l.inTotal) continue;
    totals.steady[l.group] += l.steady;
    totals.first[l.group] += l.first;
    totals.steady.total += l.steady;
    totals.first.total += l.first;
  }
  const points = archived.map((c) => ({ value: c.bytes, weight: c.perDay }));
  points.sort((x, y) => x.value - y.value);
  let acc = 0;
  let median = 0;
  for (const pt of points) {
    acc += pt.weight;
    if (acc >= archivedObjects / 2) {
      median = pt.value;
      break;
    }
  }
  return {
    lines,
    totals,
    requestShare: totals.steady.requests / Math.max(1e-9, totals.steady.total - totals.steady.egress),
    requestShareCompactorAsFleet:
      (totals.steady.requests - compactorCompute) /
      Math.max(1e-9, totals.steady.total - totals.steady.egress),
    archivedObjectsStayingStandard: stayingStandard,
    transitionsBySize,
    transitionBands: bands,
    medianArchivedObjectBytes: median,
    prices,
  };
}

/**
 * Per transition of the lifecycle within the retention: the archived objects and bytes a day
 * that take it and those that reach its age but stay where they are (break-even `bands`, or
 * age-only with S3's default minimum when transitionSizes is off).
 */
export function transitionReach(
  classes: readonly ObjectClass[],
  inputs: Pick<CostInputs, "lifecycle" | "retentionDays" | "transitionSizes" | "smallObjects">,
  bands: readonly TransitionSizeBand[],
): TransitionBySize[] {
  const archivedClasses = classes.filter((c) => c.archived);
  return [...inputs.lifecycle]
    .filter((step) => step.afterDays < inputs.retentionDays)
    .sort((x, y) => x.afterDays - y.afterDays)
    .map((step) => {
      const takes = (t: LifecycleStep) =>
        t.storageClass === step.storageClass && t.afterDays === step.afterDays;
      const ranges =
        inputs.transitionSizes === "off"
          ? ageOnlyTransitions(0, inputs).some(takes)
            ? [{ minBytes: 0, maxBytes: null }]
            : [{ minBytes: COLD_TIER_MIN_BYTES, maxBytes: null }]
          : bands.filter((b) => b.transitions.some(takes));
      const moves = (bytes: number) =>
        ranges.some((r) => bytes >= r.minBytes && (r.maxBytes === null || bytes < r.maxBytes));
      const moving = objectsInSizeRange(
        archivedClasses.filter((c) => moves(c.bytes)),
        0,
        null,
      );
      const staying = objectsInSizeRange(
        archivedClasses.filter((c) => !moves(c.bytes)),
        0,
        null,
      );
      return {
        storageClass: step.storageClass,
        afterDays: step.afterDays,
        minBytes: ranges[0]?.minBytes ?? null,
        ranges: mergeRanges(ranges),
        movingObjectsPerDay: moving.objectsPerDay,
        movingBytesPerDay: moving.bytesPerDay,
        stayingObjectsPerDay: staying.objectsPerDay,
        stayingBytesPerDay: staying.bytesPerDay,
      };
    });
}

/** Adjacent ranges as one: bands next to each other that both take a transition. */
function mergeRanges(
  ranges: readonly { minBytes: number; maxBytes: number | null }[],
): { minBytes: number; maxBytes: number | null }[] {
  const merged: { minBytes: number; maxBytes: number | null }[] = [];
  for (const r of ranges) {
    const last = merged.at(-1);
    if (last !== undefined && last.maxBytes === r.minBytes) last.maxBytes = r.maxBytes;
    else merged.push({ minBytes: r.minBytes, maxBytes: r.maxBytes });
  }
  return merged;
}

function transitionNote(t: TransitionBySize | undefined, mode: TransitionSizes, objects: string): string {
  if (t === undefined) return "";
  const share = t.movingObjectsPerDay / Math.max(1e-9, t.movingObjectsPerDay + t.stayingObjectsPerDay);
  const from =
    t.ranges.length === 0
      ? `no ${objects.replace(/s$/, "")}`
      : `${objects} ${t.ranges.map((r) => (r.maxBytes === null ? `≥ ${kib(r.minBytes)}` : `${kib(r.minBytes)}–${kib(r.maxBytes)}`)).join(", ")}`;
  return mode === "off"
    ? `age-only: ${from} (S3's default minimum), ${(share * 100).toFixed(1)}% of them`
    : `${from} (break-even), ${(share * 100).toFixed(1)}% of them; the rest stay where they are`;
}

/** Days a compacted original's version stays noncurrent once deletable (the tier rules' NoncurrentVersionExpiration, infra/components/s3-lifecycle.ts). */
export const COMPACTED_ORIGINAL_NONCURRENT_DAYS = 1;
/** An hourly run may start up to an hour after an original becomes deletable. */
const COMPACTOR_RUN_HOURS = 1;

/**
 * Days a compacted original is stored, from its hour's start: current for its hour, the
 * delete-after and up to one run; then noncurrent until its retention (landing days after its
 * hour) has passed and the noncurrent day with it; never past the retention.
 */
export function compactedOriginalDaysStored(
  design: Pick<CompactionModel["design"], "landingDays" | "deleteAfterHours">,
  inputs: Pick<CostInputs, "retentionDays">,
): number {
  const hour = 1 / 24;
  const current = hour + (design.deleteAfterHours + COMPACTOR_RUN_HOURS) / 24;
  const locked = hour + design.landingDays;
  return Math.min(Math.max(current, locked) + COMPACTED_ORIGINAL_NONCURRENT_DAYS, inputs.retentionDays);
}

/** Bytes of one delete marker: its key name, a typical archive original's (lib/keys/layout.ts). */
function deleteMarkerKeyBytes(): number {
  const key = formatObjectKey({
    prefix: "logs",
    namespace: "payments-api-1",
    dt: "2026-11-21",
    hour: "09",
    tier: "archive",
    node: "ip-10-0-1-5.ec2.internal",
    epoch: "9f2c1a7b",
    seq: 1000,
  });
  return Buffer.byteLength(key, "utf8");
}

function whole(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

function kib(bytes: number): string {
  return bytes >= 2 ** 20 ? `${(bytes / 2 ** 20).toFixed(2)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;
}

/** Restoring GB spread evenly over the archive's ages, priced by the class each object is in at that age. */
function restoreCost(model: PlanModel, inputs: CostInputs, prices: PriceTable): number {
  if (inputs.restoreGbPerMonth <= 0) return 0;
  const p = (id: PriceId) => prices[id].value;
  const archived: ObjectClass[] = retainedArchiveClasses(model);
  const totalBytes = archived.reduce((s, c) => s + c.perDay * c.bytes, 0);
  if (totalBytes === 0) return 0;
  let cost = 0;
  for (const c of archived) {
    const gib = (inputs.restoreGbPerMonth * (c.perDay * c.bytes)) / totalBytes;
    const objects = (gib * GIB) / c.bytes;
    for (const s of objectTimeline(c.bytes, inputs, inputs.retentionDays, prices)) {
      const share = (s.to - s.from) / inputs.retentionDays;
      const perGb =
        s.storageClass === "DEEP_ARCHIVE"
          ? p("s3_restore_deep_archive_bulk_gb")
          : s.storageClass === "GLACIER"
            ? p("s3_restore_glacier_fr_bulk_gb")
            : s.storageClass === "GLACIER_IR"
              ? p("s3_retrieval_glacier_ir_gb")
              : s.storageClass === "STANDARD_IA"
                ? p("s3_retrieval_standard_ia_gb")
                : 0;
      const perRequest =
        s.storageClass === "DEEP_ARCHIVE"
          ? p("s3_restore_deep_archive_bulk_per_1k")
          : s.storageClass === "GLACIER"
            ? p("s3_restore_glacier_fr_bulk_per_1k")
            : 0;
      // Every restored object is then read with a GET.
      cost += share * (gib * perGb + (objects / 1000) * (perRequest + p("s3_get_per_1k")));
    }
  }
  return cost;
}
