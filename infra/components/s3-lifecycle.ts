// The archive bucket's lifecycle rules, as a pure function of the layout's scopes (tiers, and
// the shipper's evidence: loss records and hour indexes; lib/infra-contract.ts), the stack's
// tier settings and, with archive compaction, the landing days and the compacted prefix, so
// tests check them without Pulumi.

import { type TransitionSizes, transitionSizeBands } from "../../lib/archive-lifecycle.ts";
import { DEFAULT_PRICES, type PriceTable } from "../../lib/economics/prices.ts";
import type { LifecycleScope } from "../../lib/infra-contract.ts";
import { COMPACTED_SEGMENT } from "../../lib/keys/layout.ts";
import { longLivedTiers } from "../../lib/keys/tiers.ts";
import type { LifecycleExpirationRule } from "../../lib/policy/policy.ts";

export interface ArchiveTierSettings {
  /** Days after creation; null skips the class. */
  standardIa: number | null;
  glacierIr: number | null;
  deepArchive: number | null;
  retentionDays: number;
  noncurrentVersionDays: number;
  abortIncompleteUploadDays: number;
  /** Objects Storage Transfer copies stay out of Deep Archive at least this long. */
  transferWindowDays: number;
  /** break-even: each transition only for the object sizes it pays for itself at; off: by age alone. */
  transitionSizes: TransitionSizes;
}

export interface S3Transition {
  days: number;
  storageClass: "STANDARD_IA" | "GLACIER_IR" | "DEEP_ARCHIVE";
}

/** A prefix and an object size range: objects larger than objectSizeGreaterThan and smaller than objectSizeLessThan. */
export interface S3SizeFilter {
  and: { prefix: string; objectSizeGreaterThan: number; objectSizeLessThan?: number };
}

export interface S3LifecycleRule {
  id: string;
  status: "Enabled";
  filter: { prefix: string } | S3SizeFilter;
  transitions?: S3Transition[];
  expiration?: { days: number };
  noncurrentVersionExpiration?: { noncurrentDays: number };
  abortIncompleteMultipartUpload?: { daysAfterInitiation: number };
}

/** Rules one bucket lifecycle configuration may hold (https://docs.aws.amazon.com/AmazonS3/latest/userguide/intro-lifecycle-rules.html). */
export const S3_MAX_LIFECYCLE_RULES = 1000;

/**
 * Storage classes Storage Transfer does not copy from: by default it transfers Standard and the
 * non-archival classes including Glacier Instant Retrieval, transfers DEEP_ARCHIVE objects only
 * once restored, and skips GLACIER (Flexible Retrieval) whatever their restore status
 * (https://cloud.google.com/storage-transfer/docs/filtering-by-storage-class). The tiers never
 * use GLACIER; DEEP_ARCHIVE waits for the transfer window on objects the transfer copies.
 */
const NOT_READ_BY_TRANSFER = new Set<S3Transition["storageClass"]>(["DEEP_ARCHIVE"]);

/**
 * With archive compaction on (logarchive:archiveCompaction): the tiers' new objects are
 * originals PUT with a retention of `landingDays` after their hour; the compactor copies them
 * into parts under `compactedPrefix` (which take the tiers' transitions and retention), then puts
 * a delete marker on each original it compacted, and extends the retention of any original it
 * could not compact to the bucket default (docs/deploy.md#archive-compaction). Nothing expires
 * an original by age before the retention.
 */
export interface CompactionLifecycle {
  landingDays: number;
  /** compactedPrefix(policy.archive.prefix) from lib/keys/layout.ts. */
  compactedPrefix: string;
}

/**
 * Days a tier prefix's noncurrent version is kept with compaction on: the compactor's delete
 * marker makes a compacted original noncurrent hours after its hour, and its version should go as
 * soon as its Object Lock retention (landingDays) allows. Lifecycle never deletes a version still
 * under retention ("protected object versions remain safe from being deleted or overwritten by a
 * lifecycle configuration", object-lock-managing.html#object-lock-managing-lifecycle); once the
 * retention has passed "the object version can be overwritten or deleted" (object-lock.html,
 * retention periods), so S3 removes it then.
 */
export const COMPACTED_ORIGINAL_NONCURRENT_DAYS = 1;

/**
 * The earliest day any tier rule moves an object to a colder class (null: none does). With
 * compaction, the originals the compactor reads (within landingDays of their hour, which bounds
 * its lookback) must still be in Standard: a Deep Archive original cannot be read without a
 * restore, and a compacted one moved to Standard-IA or Glacier IR would be billed their minimum
 * storage duration for the few days its noncurrent version is kept.
 */
export function firstTransitionDay(s: Pick<ArchiveTierSettings, "standardIa" | "glacierIr" | "deepArchive">) {
  const days = [s.standardIa, s.glacierIr, s.deepArchive].filter((d): d is number => d !== null);
  return days.length === 0 ? null : Math.min(...days);
}

export function archiveLifecycleRules(
  scopes: readonly LifecycleScope[],
  s: ArchiveTierSettings,
  prices: PriceTable = DEFAULT_PRICES,
  compaction?: CompactionLifecycle,
): S3LifecycleRule[] {
  const first = firstTransitionDay(s);
  if (compaction !== undefined && first !== null && compaction.landingDays >= first) {
    throw new Error(
      `archive lifecycle: landingDays (${compaction.landingDays}) must be less than the first transition (day ${first}), or originals would move to a colder class before the compactor has read them`,
    );
  }
  const rules = scopes.flatMap((scope): S3LifecycleRule[] => {
    const id = `logarchive-${scope.segment}`;
    // Loss records and hour indexes: read by every retrieval with a plain GET, so never moved
    // to a class that needs a restore; they expire with the archive they describe.
    if (scope.kind === "evidence") return [retainedRule(id, scope.prefix, s)];
    const tiered = tieredRules(id, scope.prefix, scope.feedsTransfer, s, prices);
    if (compaction === undefined || !(longLivedTiers() as readonly string[]).includes(scope.segment))
      return tiered;
    // Compaction on: the prefix's rules stay as they are for every original that stays current
    // (written before compaction, or kept whole by the compactor with its retention extended to
    // the bucket default): transitions and expiry at the retention. A compacted original gets
    // the compactor's delete marker and becomes noncurrent; its version goes once its short
    // retention allows (COMPACTED_ORIGINAL_NONCURRENT_DAYS), not noncurrentVersionDays later.
    const [own, ...bands] = tiered;
    return [
      {
        ...own!,
        noncurrentVersionExpiration: { noncurrentDays: COMPACTED_ORIGINAL_NONCURRENT_DAYS },
      },
      ...bands,
    ];
  });
  // Compacted parts and manifests are what the archive keeps; nothing announces them to the
  // transfer (it copied the originals), so Deep Archive is not held back for it.
  if (compaction !== undefined)
    rules.push(
      ...tieredRules(`logarchive-${COMPACTED_SEGMENT}`, compaction.compactedPrefix, false, s, prices),
    );
  if (rules.length > S3_MAX_LIFECYCLE_RULES) {
    throw new Error(
      `archive lifecycle: ${rules.length} rules, over S3's ${S3_MAX_LIFECYCLE_RULES} per bucket; set archiveTransitionSizes to off`,
    );
  }
  return rules;
}

/** Expiration at the retention, noncurrent and multipart cleanup: what every kept object gets. */
function retainedRule(id: string, prefix: string, s: ArchiveTierSettings): S3LifecycleRule {
  return {
    id,
    status: "Enabled",
    filter: { prefix },
    expiration: { days: s.retentionDays },
    noncurrentVersionExpiration: { noncurrentDays: s.noncurrentVersionDays },
    abortIncompleteMultipartUpload: { daysAfterInitiation: s.abortIncompleteUploadDays },
  };
}

/** The archive's rules for one prefix: kept for the retention, moved to colder classes as it ages. */
function tieredRules(
  id: string,
  prefix: string,
  feedsTransfer: boolean,
  s: ArchiveTierSettings,
  prices: PriceTable,
): S3LifecycleRule[] {
  const common = retainedRule(id, prefix, s);
  const planned: S3Transition[] = [];
  if (s.standardIa !== null) planned.push({ days: s.standardIa, storageClass: "STANDARD_IA" });
  if (s.glacierIr !== null) planned.push({ days: s.glacierIr, storageClass: "GLACIER_IR" });
  if (s.deepArchive !== null) planned.push({ days: s.deepArchive, storageClass: "DEEP_ARCHIVE" });
  const held = planned.map((t) =>
    feedsTransfer && NOT_READ_BY_TRANSFER.has(t.storageClass)
      ? { ...t, days: Math.max(t.days, s.transferWindowDays) }
      : t,
  );
  // Holding a class back can land two transitions on one day; S3 refuses that, so the colder one wins.
  const transitions = held.filter((t, i) => !held.slice(i + 1).some((later) => later.days <= t.days));
  if (s.transitionSizes === "off") return [{ ...common, transitions }];
  // break-even: the prefix's rule keeps its expirations; one rule per size band carries the
  // transitions that pay for themselves there (the bands do not overlap, so an object gets
  // its transitions from one rule). Objects below every band stay where they are. A rule's
  // size filter takes precedence over S3's default 128 KB minimum, so bands under 128 KB apply.
  const bands = transitionSizeBands(
    transitions.map((t) => ({ storageClass: t.storageClass, afterDays: t.days })),
    s.retentionDays,
    prices,
  ).filter((b) => b.transitions.length > 0);
  return [
    common,
    ...bands.map(
      (band): S3LifecycleRule => ({
        id: `${id}-${band.minBytes}-${band.maxBytes ?? "up"}`,
        status: "Enabled",
        filter: {
          and: {
            prefix,
            // S3's bounds are exclusive; the band's lower bound is inclusive.
            objectSizeGreaterThan: Math.max(0, band.minBytes - 1),
            ...(band.maxBytes === null ? {} : { objectSizeLessThan: band.maxBytes }),
          },
        },
        transitions: band.transitions.map((t) => ({
          days: t.afterDays,
          storageClass: t.storageClass as S3Transition["storageClass"],
        })),
      }),
    ),
  ];
}

/**
 * The expirations the policy itself asks for (lifecycleExpirationRules(policy): the stream
 * copies of stream delivery), as bucket rules next to the tier rules. Their prefixes are not in
 * any tier scope, so no object gets two rules.
 */
export function policyExpirationRules(
  rules: readonly LifecycleExpirationRule[],
  s: ArchiveTierSettings,
): S3LifecycleRule[] {
  return rules.map((r) => ({
    id: r.id,
    status: "Enabled",
    filter: { prefix: r.prefix },
    expiration: { days: r.expirationDays },
    // The expired copy becomes noncurrent; remove it as soon as its Object Lock retention allows.
    noncurrentVersionExpiration: { noncurrentDays: 1 },
    abortIncompleteMultipartUpload: { daysAfterInitiation: s.abortIncompleteUploadDays },
  }));
}
