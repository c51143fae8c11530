// The archive bucket's default lifecycle: when objects move to colder S3 classes and when they
// expire. One source for both what `pulumi up` deploys (infra/config.ts's defaults) and what
// `logarchive cost` prices when told nothing else (lib/economics), so the bill the model prints
// is the bill of the bucket infra creates.

import type { PriceId, PriceTable } from "./economics/prices.ts";

/** Days after creation at which the archive's objects expire (the end of retention). */
export const DEFAULT_ARCHIVE_RETENTION_DAYS = 730;

/** The colder classes the archive's lifecycle moves objects into, in the order they are reached. */
export const ARCHIVE_TIER_CLASSES = {
  standardIa: "STANDARD_IA",
  glacierIr: "GLACIER_IR",
  deepArchive: "DEEP_ARCHIVE",
} as const;

export type ArchiveTier = keyof typeof ARCHIVE_TIER_CLASSES;

/** Age in days at which each class is reached; null skips the class. */
export type ArchiveTierDays = Record<ArchiveTier, number | null>;

/**
 * Standard-IA at 30 days (S3's earliest transition into it), Glacier Instant Retrieval at 90
 * (after Standard-IA's 30-day minimum, still millisecond reads for a quarter's investigations),
 * Deep Archive at 180; the retention leaves Deep Archive's 180-day minimum storage duration met.
 */
export const DEFAULT_ARCHIVE_TIER_DAYS: Readonly<Record<ArchiveTier, number>> = {
  standardIa: 30,
  glacierIr: 90,
  deepArchive: 180,
};

export interface ArchiveTransition extends LifecycleStep {
  storageClass: (typeof ARCHIVE_TIER_CLASSES)[ArchiveTier];
}

/** The transitions the tiers make, in order, the skipped (null) ones left out. */
export function archiveTransitions(tiers: ArchiveTierDays): ArchiveTransition[] {
  return (Object.keys(ARCHIVE_TIER_CLASSES) as ArchiveTier[]).flatMap((tier) => {
    const day = tiers[tier];
    return day === null ? [] : [{ storageClass: ARCHIVE_TIER_CLASSES[tier], afterDays: day }];
  });
}

/** The default transitions as `logarchive cost --lifecycle` writes them: `STANDARD_IA:30,…`. */
export function lifecycleFlagValue(transitions: readonly LifecycleStep[]): string {
  return transitions.length === 0
    ? "none"
    : transitions.map((t) => `${t.storageClass}:${t.afterDays}`).join(",");
}

// ---------------------------------------------------------------- size-aware transitions
//
// A transition is a request priced per object, whatever the object's size; what it saves is
// storage, which is priced per byte. Below some size a transition costs more than it can ever
// save, and the object is better left in the class it is in. S3 lifecycle rules filter on
// object size (ObjectSizeGreaterThan / ObjectSizeLessThan,
// https://docs.aws.amazon.com/AmazonS3/latest/userguide/intro-lifecycle-filters.html), and a
// rule's own size filter takes precedence over the bucket's transition_default_minimum_object_size
// (by default since September 2024, no transition under 128 KB;
// https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketLifecycleConfiguration.html).
// So infra gives each size band exactly the transitions that pay for themselves in it, and
// `logarchive cost` prices the same bands (lib/economics/cost.ts).

/**
 * break-even: each transition applies only to the object sizes where it pays for itself
 * (transitionSizeBands); off: plain age-only transitions, every object S3's default minimum
 * lets through. infra's archiveTransitionSizes and `logarchive cost --transition-sizes`.
 */
export const TRANSITION_SIZES = ["break-even", "off"] as const;
export type TransitionSizes = (typeof TRANSITION_SIZES)[number];
export const DEFAULT_TRANSITION_SIZES: TransitionSizes = "break-even";

/** Every class a lifecycle can move an object into (GLACIER only through `logarchive cost --lifecycle`). */
export type TransitionClass = "STANDARD_IA" | "GLACIER_IR" | "GLACIER" | "DEEP_ARCHIVE";
export type S3StorageClass = "STANDARD" | TransitionClass;

export interface LifecycleStep {
  storageClass: TransitionClass;
  /** Object age in days at which the rule moves it. */
  afterDays: number;
}

/** A month as S3 bills storage: GB-months over 365/12 days. */
export const MONTH_DAYS = 365 / 12;
/** S3's "GB" in its storage prices is 2^30 bytes. */
const GIB = 2 ** 30;

/** Standard-IA and Glacier IR bill every object as at least 128 KB (https://aws.amazon.com/s3/pricing/). */
export const S3_MIN_BILLABLE_BYTES = 128 * 1024;
/** Glacier Flexible Retrieval and Deep Archive keep 40 KB per object: 8 KB at Standard's rate, 32 KB at theirs. */
export const GLACIER_OVERHEAD_STANDARD_BYTES = 8 * 1024;
export const GLACIER_OVERHEAD_CLASS_BYTES = 32 * 1024;

/** Minimum storage days per class: leaving earlier bills the rest at once (https://aws.amazon.com/s3/pricing/). */
export const S3_MIN_STORAGE_DAYS: Readonly<Record<S3StorageClass, number>> = {
  STANDARD: 0,
  STANDARD_IA: 30,
  GLACIER_IR: 90,
  GLACIER: 90,
  DEEP_ARCHIVE: 180,
};

/**
 * The price a class's storage is priced at. Standard is tiered by the bucket's size, which infra
 * cannot know; the break-even uses its first tier (the dearest, so thresholds err towards moving).
 */
export const S3_STORAGE_PRICE: Readonly<Record<S3StorageClass, PriceId>> = {
  STANDARD: "s3_standard_gb_month_first_50tb",
  STANDARD_IA: "s3_standard_ia_gb_month",
  GLACIER_IR: "s3_glacier_ir_gb_month",
  GLACIER: "s3_glacier_fr_gb_month",
  DEEP_ARCHIVE: "s3_deep_archive_gb_month",
};
export const S3_TRANSITION_PRICE: Readonly<Record<TransitionClass, PriceId>> = {
  STANDARD_IA: "s3_transition_standard_ia_per_1k",
  GLACIER_IR: "s3_transition_glacier_ir_per_1k",
  GLACIER: "s3_transition_glacier_fr_per_1k",
  DEEP_ARCHIVE: "s3_transition_deep_archive_per_1k",
};

/** Bytes an object of `bytes` is billed for in a class, at the class's rate. */
export function billedBytes(storageClass: S3StorageClass, bytes: number): number {
  if (storageClass === "STANDARD_IA" || storageClass === "GLACIER_IR")
    return Math.max(bytes, S3_MIN_BILLABLE_BYTES);
  if (storageClass === "GLACIER" || storageClass === "DEEP_ARCHIVE")
    return bytes + GLACIER_OVERHEAD_CLASS_BYTES;
  return bytes;
}

export interface Stint {
  storageClass: S3StorageClass;
  from: number;
  to: number;
}

/** The classes an object passes through when it takes `taken` (in any order) and lives `lifeDays`. */
export function stintsOf(taken: readonly LifecycleStep[], lifeDays: number): Stint[] {
  const stints: Stint[] = [{ storageClass: "STANDARD", from: 0, to: lifeDays }];
  for (const step of [...taken].sort((a, b) => a.afterDays - b.afterDays)) {
    if (step.afterDays >= lifeDays) break;
    stints.at(-1)!.to = step.afterDays;
    stints.push({ storageClass: step.storageClass, from: step.afterDays, to: lifeDays });
  }
  return stints;
}

/**
 * What one object of `bytes` costs over its life (storage, minimum durations, overheads and the
 * transition requests; the PUT and the expiration are the same whatever it takes), in dollars.
 */
export function objectLifeCost(
  bytes: number,
  taken: readonly LifecycleStep[],
  lifeDays: number,
  prices: PriceTable,
): number {
  const price = (id: PriceId) => prices[id].value;
  let cost = 0;
  for (const s of stintsOf(taken, lifeDays)) {
    const billedDays = Math.max(s.to - s.from, S3_MIN_STORAGE_DAYS[s.storageClass]);
    cost +=
      (billedBytes(s.storageClass, bytes) * billedDays * price(S3_STORAGE_PRICE[s.storageClass])) /
      MONTH_DAYS /
      GIB;
    if (s.storageClass === "GLACIER" || s.storageClass === "DEEP_ARCHIVE") {
      cost +=
        (GLACIER_OVERHEAD_STANDARD_BYTES * (s.to - s.from) * price(S3_STORAGE_PRICE.STANDARD)) /
        MONTH_DAYS /
        GIB;
    }
    if (s.storageClass !== "STANDARD") cost += price(S3_TRANSITION_PRICE[s.storageClass]) / 1000;
  }
  return cost;
}

/** Objects of at least `minBytes` and, when `maxBytes` is set, under it, take `transitions`. */
export interface TransitionSizeBand {
  minBytes: number;
  maxBytes: number | null;
  transitions: LifecycleStep[];
}

function subsets<T>(items: readonly T[]): T[][] {
  const all: T[][] = [[]];
  for (const item of items) {
    for (const s of all.slice()) all.push([...s, item]);
  }
  return all;
}

/**
 * The size bands in which each combination of the lifecycle's transitions is the cheapest, from
 * 0 bytes up. Every combination's life cost is linear in the size on either side of the 128 KB
 * billing minimum, so the cheapest one can change only where two of those lines cross or at
 * 128 KB; between those points one combination wins throughout. A transition is thus taken
 * exactly where its request price is at most the storage it saves over the time the object
 * then spends in its class and the ones after it; below that an object stays in the class it is
 * in (a later, colder transition may still pay for itself: then it skips this one). Ties go to
 * fewer transitions. Band bounds are whole bytes.
 */
export function transitionSizeBands(
  lifecycle: readonly LifecycleStep[],
  lifeDays: number,
  prices: PriceTable,
): TransitionSizeBand[] {
  const steps = [...lifecycle]
    .filter((s) => s.afterDays < lifeDays)
    .sort((a, b) => a.afterDays - b.afterDays);
  const choices = subsets(steps).sort((a, b) => a.length - b.length);
  const cost = (taken: LifecycleStep[], bytes: number) => objectLifeCost(bytes, taken, lifeDays, prices);
  // Candidate change points: the 128 KB kink, and every crossing of two choices' lines on each side of it.
  const points = new Set<number>([0, S3_MIN_BILLABLE_BYTES]);
  for (const [lo, hi] of [
    [0, S3_MIN_BILLABLE_BYTES],
    [S3_MIN_BILLABLE_BYTES, 2 * S3_MIN_BILLABLE_BYTES],
  ] as const) {
    const lines = choices.map((c) => {
      const slope = (cost(c, hi) - cost(c, lo)) / (hi - lo);
      return { slope, at0: cost(c, lo) - slope * lo };
    });
    for (let i = 0; i < lines.length; i++) {
      for (let j = i + 1; j < lines.length; j++) {
        const [a, b] = [lines[i]!, lines[j]!];
        if (a.slope === b.slope) continue;
        const x = Math.ceil((b.at0 - a.at0) / (a.slope - b.slope));
        if (x > lo && (lo === 0 ? x < hi : true)) points.add(x);
      }
    }
  }
  const sorted = [...points].sort((a, b) => a - b);
  const bands: TransitionSizeBand[] = [];
  for (const [i, start] of sorted.entries()) {
    const end = sorted[i + 1];
    // Evaluate inside the interval: lines do not cross there, so its middle speaks for all of it.
    const probe = end === undefined ? start + GIB : (start + end) / 2;
    let best = choices[0]!;
    for (const c of choices) if (cost(c, probe) < cost(best, probe) - 1e-15) best = c;
    const last = bands.at(-1);
    if (last !== undefined && sameSteps(last.transitions, best)) {
      last.maxBytes = end ?? null;
    } else {
      if (last !== undefined) last.maxBytes = start;
      bands.push({ minBytes: start, maxBytes: end ?? null, transitions: best });
    }
  }
  return bands;
}

function sameSteps(a: readonly LifecycleStep[], b: readonly LifecycleStep[]): boolean {
  return (
    a.length === b.length &&
    a.every((s, i) => s.storageClass === b[i]!.storageClass && s.afterDays === b[i]!.afterDays)
  );
}

/** The transitions an object of `bytes` takes under the bands. */
export function transitionsForSize(bands: readonly TransitionSizeBand[], bytes: number): LifecycleStep[] {
  const band = bands.find((b) => bytes >= b.minBytes && (b.maxBytes === null || bytes < b.maxBytes));
  return band?.transitions ?? [];
}

/** Per transition, the smallest object that takes it (null: none does), in lifecycle order. */
export function transitionMinimumSizes(
  lifecycle: readonly LifecycleStep[],
  bands: readonly TransitionSizeBand[],
): { step: LifecycleStep; minBytes: number | null }[] {
  return [...lifecycle]
    .sort((a, b) => a.afterDays - b.afterDays)
    .map((step) => {
      const first = bands.find((b) => b.transitions.some((t) => sameSteps([t], [step])));
      return { step, minBytes: first?.minBytes ?? null };
    });
}
