// The archive bucket's default lifecycle: when objects move to colder S3 classes and when they
// expire. One source for both what `pulumi up` deploys (infra/config.ts's defaults) and what
// `logarchive cost` prices when told nothing else (lib/economics), so the bill the model prints
// is the bill of the bucket infra creates.

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

export interface ArchiveTransition {
  storageClass: (typeof ARCHIVE_TIER_CLASSES)[ArchiveTier];
  afterDays: number;
}

/** The transitions the tiers make, in order, the skipped (null) ones left out. */
export function archiveTransitions(tiers: ArchiveTierDays): ArchiveTransition[] {
  return (Object.keys(ARCHIVE_TIER_CLASSES) as ArchiveTier[]).flatMap((tier) => {
    const day = tiers[tier];
    return day === null ? [] : [{ storageClass: ARCHIVE_TIER_CLASSES[tier], afterDays: day }];
  });
}

/** The default transitions as `logarchive cost --lifecycle` writes them: `STANDARD_IA:30,…`. */
export function lifecycleFlagValue(transitions: readonly ArchiveTransition[]): string {
  return transitions.length === 0
    ? "none"
    : transitions.map((t) => `${t.storageClass}:${t.afterDays}`).join(",");
}
