// Step 3 of a retrieval: what must be restored from the archive classes before it can be read,
// with which retrieval tier, how long that takes and what it costs.
//
// Times are the S3 user guide's "typically within" figures, and the plan uses their upper end:
// https://docs.aws.amazon.com/AmazonS3/latest/userguide/restoring-objects-retrieval-options.html
// (Expedited 1-5 min, Standard 3-5 h, Bulk 5-12 h from Glacier Flexible Retrieval; Standard
// within 12 h and Bulk within 48 h from Deep Archive, which has no Expedited tier).
// Prices come from lib/economics/prices.ts, a $/GB and a $/1,000 requests line per class and tier.

import type { PriceId, PriceTable } from "../economics/prices.ts";
import type { InspectedVersion } from "./find.ts";
import type { Restorable } from "./restore.ts";

export const RESTORE_TIERS = ["Standard", "Bulk", "Expedited"] as const;
export type RestoreTier = (typeof RESTORE_TIERS)[number];

interface ClassTier {
  /** The guide's range, in words. */
  typical: string;
  /** Upper end, hours: what the plan promises, and how long the local archive front takes. */
  hours: number;
  /** Retrieval $/GB and $/1,000 requests in prices.ts. */
  prices: { perGb: PriceId; per1k: PriceId };
}

/** Every (archive class, tier) S3 offers: its time and its prices. The one table of restore times. */
const RESTORE_OPTIONS: Record<string, Partial<Record<RestoreTier, ClassTier>>> = {
  GLACIER: {
    Expedited: {
      typical: "1-5 minutes",
      hours: 5 / 60,
      prices: {
        perGb: "s3_restore_glacier_fr_expedited_gb",
        per1k: "s3_restore_glacier_fr_expedited_per_1k",
      },
    },
    Standard: {
      typical: "3-5 hours",
      hours: 5,
      prices: { perGb: "s3_restore_glacier_fr_standard_gb", per1k: "s3_restore_glacier_fr_standard_per_1k" },
    },
    Bulk: {
      typical: "5-12 hours",
      hours: 12,
      prices: { perGb: "s3_restore_glacier_fr_bulk_gb", per1k: "s3_restore_glacier_fr_bulk_per_1k" },
    },
  },
  DEEP_ARCHIVE: {
    Standard: {
      typical: "within 12 hours",
      hours: 12,
      prices: {
        perGb: "s3_restore_deep_archive_standard_gb",
        per1k: "s3_restore_deep_archive_standard_per_1k",
      },
    },
    Bulk: {
      typical: "within 48 hours",
      hours: 48,
      prices: { perGb: "s3_restore_deep_archive_bulk_gb", per1k: "s3_restore_deep_archive_bulk_per_1k" },
    },
  },
};

/**
 * Hours a restore of `storageClass` at `tier` takes at most (the guide's upper end); undefined
 * when S3 offers no such restore (a class that is not archived, Expedited on Deep Archive).
 * The local archive front (local/s3-archive/state.ts) finishes its jobs on the same figures.
 */
export function restoreHours(storageClass: string, tier: RestoreTier): number | undefined {
  return RESTORE_OPTIONS[storageClass]?.[tier]?.hours;
}

/** Why a tier cannot restore a class (Expedited on Deep Archive), or undefined when it can. */
export function tierProblem(storageClass: string, tier: RestoreTier): string | undefined {
  const options = RESTORE_OPTIONS[storageClass];
  if (options === undefined || options[tier] !== undefined) return undefined;
  return `${tier} retrieval is not available for ${storageClass} (S3 offers ${Object.keys(options).join(" and ")})`;
}

export interface PlannedObject {
  key: string;
  versionId: string;
  storageClass: string;
  size: number;
  /** What happens to it: nothing (online or restored), wait for a running job, or a new restore. */
  action: "read" | "wait" | "restore";
  restoreState: InspectedVersion["restore"]["state"];
}

export interface ClassPlan {
  storageClass: string;
  objects: number;
  bytes: number;
  toRestore: number;
  bytesToRestore: number;
  inProgress: number;
  /** The tier's time for this class, when anything of it is restored or being restored. */
  typicalTime: string | null;
  estimatedHours: number | null;
  /** Retrieval cost of the new restores, USD; null for a class the restore table does not know. */
  costUsd: number | null;
  costNote: string | null;
}

export interface RestorePlan {
  tier: RestoreTier;
  days: number;
  objects: PlannedObject[];
  byClass: ClassPlan[];
  /** Hours until every object can be read: the slowest class's upper end; 0 when none waits. */
  estimatedHours: number;
  /** Sum over classes; null when a class with new restores is unpriced. */
  costUsd: number | null;
  /** Restoring keeps a copy in S3 Standard for `days` as well as the archived object; billed as Standard storage. */
  notes: string[];
}

const GB = 1024 ** 3;

export class RestorePlanError extends Error {
  override name = "RestorePlanError";
}

export function planRestores(
  versions: readonly Restorable[],
  tier: RestoreTier,
  days: number,
  prices: PriceTable,
): RestorePlan {
  const refused = [...new Set(versions.map((v) => tierProblem(v.storageClass, tier)).filter((p) => p))];
  if (refused.length > 0) {
    throw new RestorePlanError(
      `--restore-tier: ${refused.join("; ")}; choose standard or bulk for these objects`,
    );
  }
  const objects: PlannedObject[] = versions.map((v) => ({
    key: v.key,
    versionId: v.versionId,
    storageClass: v.storageClass,
    size: v.size,
    action: v.restore.state === "archived" ? "restore" : v.restore.state === "in-progress" ? "wait" : "read",
    restoreState: v.restore.state,
  }));
  const classes = new Map<string, ClassPlan>();
  for (const o of objects) {
    const c = classes.get(o.storageClass) ?? {
      storageClass: o.storageClass,
      objects: 0,
      bytes: 0,
      toRestore: 0,
      bytesToRestore: 0,
      inProgress: 0,
      typicalTime: null,
      estimatedHours: null,
      costUsd: 0,
      costNote: null,
    };
    classes.set(o.storageClass, c);
    c.objects++;
    c.bytes += o.size;
    if (o.action === "restore") {
      c.toRestore++;
      c.bytesToRestore += o.size;
    }
    if (o.action === "wait") c.inProgress++;
  }
  let costUsd: number | null = 0;
  let estimatedHours = 0;
  for (const c of classes.values()) {
    const option = RESTORE_OPTIONS[c.storageClass]?.[tier];
    if (c.toRestore + c.inProgress > 0 && option !== undefined) {
      c.typicalTime = option.typical;
      c.estimatedHours = option.hours;
      estimatedHours = Math.max(estimatedHours, option.hours);
    }
    if (c.toRestore === 0) continue;
    if (option === undefined) {
      // Only GLACIER and DEEP_ARCHIVE objects are restored, and both are in the table; a class
      // S3 adds later would show here unpriced rather than guessed.
      c.costUsd = null;
      c.costNote = `no ${tier} retrieval price for ${c.storageClass} in lib/retrieval/plan.ts; see https://aws.amazon.com/s3/pricing/`;
      costUsd = null;
      continue;
    }
    const perGb = prices[option.prices.perGb];
    const per1k = prices[option.prices.per1k];
    c.costUsd = (c.bytesToRestore / GB) * perGb.value + (c.toRestore / 1000) * per1k.value;
    c.costNote = `${perGb.value} ${perGb.unit} + ${per1k.value} ${per1k.unit} (${perGb.source})`;
    if (costUsd !== null) costUsd += c.costUsd;
  }
  const notes: string[] = [];
  if (objects.some((o) => o.action === "restore")) {
    notes.push(
      `a restored copy stays readable for ${days} day(s) (--restore-days), billed as S3 Standard storage on top of the archived object`,
    );
  }
  return {
    tier,
    days,
    objects,
    byClass: [...classes.values()].sort((a, b) => a.storageClass.localeCompare(b.storageClass)),
    estimatedHours,
    costUsd,
    notes,
  };
}

/** The plan for a person: one line per class, then the totals. */
export function describePlan(plan: RestorePlan): string {
  const lines = [`restore plan (${plan.tier} tier, restored copies kept ${plan.days} day(s)):`];
  for (const c of plan.byClass) {
    const parts = [`  ${c.storageClass.padEnd(13)} ${c.objects} object(s), ${c.bytes} bytes`];
    if (c.toRestore > 0) parts.push(`${c.toRestore} to restore (${c.bytesToRestore} bytes)`);
    if (c.inProgress > 0) parts.push(`${c.inProgress} restore(s) already running`);
    if (c.typicalTime !== null) parts.push(`ready ${c.typicalTime}`);
    if (c.toRestore > 0)
      parts.push(c.costUsd === null ? "cost: not priced" : `cost $${c.costUsd.toFixed(4)}`);
    lines.push(parts.join(", "));
  }
  lines.push(
    `  total: ${plan.objects.filter((o) => o.action === "restore").length} restore(s) to start, ready in at most ${plan.estimatedHours} h, cost ${plan.costUsd === null ? "not fully priced (see plan JSON)" : `$${plan.costUsd.toFixed(4)}`}`,
  );
  for (const note of plan.notes) lines.push(`  note: ${note}`);
  return lines.join("\n");
}
