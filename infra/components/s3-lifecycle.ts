// The archive bucket's lifecycle rules, as a pure function of the layout's scopes (tiers, and
// the shipper's evidence: loss records and hour indexes; lib/infra-contract.ts) and the stack's
// tier settings, so tests check them without Pulumi.

import type { LifecycleScope } from "../../lib/infra-contract.ts";
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
}

export interface S3Transition {
  days: number;
  storageClass: "STANDARD_IA" | "GLACIER_IR" | "DEEP_ARCHIVE";
}

export interface S3LifecycleRule {
  id: string;
  status: "Enabled";
  filter: { prefix: string };
  transitions?: S3Transition[];
  expiration: { days: number };
  noncurrentVersionExpiration: { noncurrentDays: number };
  abortIncompleteMultipartUpload: { daysAfterInitiation: number };
}

/**
 * Storage classes Storage Transfer does not copy from: by default it transfers Standard and the
 * non-archival classes including Glacier Instant Retrieval, transfers DEEP_ARCHIVE objects only
 * once restored, and skips GLACIER (Flexible Retrieval) whatever their restore status
 * (https://cloud.google.com/storage-transfer/docs/filtering-by-storage-class). The tiers never
 * use GLACIER; DEEP_ARCHIVE waits for the transfer window on objects the transfer copies.
 */
const NOT_READ_BY_TRANSFER = new Set<S3Transition["storageClass"]>(["DEEP_ARCHIVE"]);

export function archiveLifecycleRules(
  scopes: readonly LifecycleScope[],
  s: ArchiveTierSettings,
): S3LifecycleRule[] {
  return scopes.map((scope) => {
    const common = {
      id: `logarchive-${scope.segment}`,
      status: "Enabled" as const,
      filter: { prefix: scope.prefix },
      expiration: { days: s.retentionDays },
      noncurrentVersionExpiration: { noncurrentDays: s.noncurrentVersionDays },
      abortIncompleteMultipartUpload: { daysAfterInitiation: s.abortIncompleteUploadDays },
    };
    // Loss records and hour indexes: read by every retrieval with a plain GET, so never moved
    // to a class that needs a restore; they expire with the archive they describe.
    if (scope.kind === "evidence") return common;
    const planned: S3Transition[] = [];
    if (s.standardIa !== null) planned.push({ days: s.standardIa, storageClass: "STANDARD_IA" });
    if (s.glacierIr !== null) planned.push({ days: s.glacierIr, storageClass: "GLACIER_IR" });
    if (s.deepArchive !== null) planned.push({ days: s.deepArchive, storageClass: "DEEP_ARCHIVE" });
    const held = planned.map((t) =>
      scope.feedsTransfer && NOT_READ_BY_TRANSFER.has(t.storageClass)
        ? { ...t, days: Math.max(t.days, s.transferWindowDays) }
        : t,
    );
    // Holding a class back can land two transitions on one day; S3 refuses that, so the colder one wins.
    const transitions = held.filter((t, i) => !held.slice(i + 1).some((later) => later.days <= t.days));
    return { ...common, transitions };
  });
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
