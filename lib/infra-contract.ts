// What the cloud resources need to know about the key layout and the namespace policy,
// derived from lib/keys/layout.ts and lib/policy/policy.ts so infra/ restates nothing.
// When the layout changes (a new tier, a new prefix), the lifecycle scopes, the shipper's
// write grant and the transfer's read grant follow from here, with no edit in infra/.

import {
  compactedPrefix,
  INDEX_SEGMENT,
  indexPrefix,
  LOSS_SEGMENT,
  lossPrefix,
  streamPrefix,
  TIERS,
  type Tier,
  tierPrefix,
} from "./keys/layout.ts";
import {
  classifyNamespace,
  type Destination,
  type NamespacePolicy,
  notificationRules,
  streamDelivery,
} from "./policy/policy.ts";

export interface LifecycleScope {
  /**
   * tier: a tier's objects, which move to colder classes as they age. evidence: the shipper's
   * loss records and hour indexes (docs/retrieval.md#hour-indexes), small JSON objects that
   * every retrieval reads with a plain GET, so they stay in the class they were written in
   * (no restore before a retrieval can start) and only expire, at the archive's retention.
   */
  kind: "tier" | "evidence";
  /** The segment of the key layout this scope covers: a tier, `losses` or `index`. */
  segment: Tier | typeof LOSS_SEGMENT | typeof INDEX_SEGMENT;
  /** Key prefix (decoded, as S3 lifecycle filters take it) of every object of the segment. */
  prefix: string;
  /**
   * Whether the bucket notification selects objects here, so Storage Transfer copies them and
   * they must stay in a storage class it can read until the transfer has had its chance.
   */
  feedsTransfer: boolean;
}

/** Decoded key prefixes the bucket notification selects: the objects Storage Transfer copies. */
export function transferredPrefixes(policy: NamespacePolicy): string[] {
  return [...new Set(notificationRules(policy).map((r) => decodeURIComponent(r.prefix)))];
}

/**
 * One lifecycle scope per long-lived tier of the key layout (where the archive's storage-class
 * transitions apply), then one per kind of evidence the shipper writes beside the tiers (loss
 * records, hour indexes), which expire with the archive but never go cold. Scopes never
 * overlap: tiers and evidence are sibling directories, and the stream prefix (short-lived
 * copies, expired by lifecycleExpirationRules(policy)) is none of them.
 */
export function lifecycleScopes(policy: NamespacePolicy): LifecycleScope[] {
  const transferred = transferredPrefixes(policy);
  const feeds = (prefix: string) => transferred.some((t) => t.startsWith(prefix) || prefix.startsWith(t));
  const tiers = TIERS.map((tier): LifecycleScope => {
    const prefix = tierPrefix(policy.archive.prefix, tier);
    return { kind: "tier", segment: tier, prefix, feedsTransfer: feeds(prefix) };
  });
  return [...tiers, ...evidenceScopes(policy).map((e) => ({ ...e, feedsTransfer: feeds(e.prefix) }))];
}

function evidenceScopes(policy: NamespacePolicy): Omit<LifecycleScope, "feedsTransfer">[] {
  return [
    { kind: "evidence", segment: LOSS_SEGMENT, prefix: lossPrefix(policy.archive.prefix) },
    { kind: "evidence", segment: INDEX_SEGMENT, prefix: indexPrefix(policy.archive.prefix) },
  ];
}

/**
 * Key prefixes the shipper writes: every tier under the archive prefix, its loss records
 * (docs/shipper.md#loss-records) and hour indexes (docs/retrieval.md#hour-indexes), plus the
 * stream prefix when the policy delivers analytics by stream; nothing else in the bucket.
 */
export function shipperWritePrefixes(policy: NamespacePolicy): string[] {
  const archive = [
    ...TIERS.map((tier) => tierPrefix(policy.archive.prefix, tier)),
    ...evidenceScopes(policy).map((e) => e.prefix),
  ];
  return streamDelivery(policy) === null ? archive : [...archive, streamPrefix(policy.archive.prefix)];
}

/**
 * Key prefixes the compliance commands read and hold (`retrieve`, `hold`, `reconcile`; the
 * retrieval role): every tier, the loss records and hour indexes that prove a range complete,
 * and the compacted parts and manifests (compactedPrefix), which hold an hour's lines once its
 * originals have expired (docs/retrieval.md#compacted-hours). The compacted prefix is there
 * whether or not compaction is on now: parts written while it was on keep the retention. Not the
 * stream prefix: its short-lived copies are no part of the archive.
 */
export function retrievalPrefixes(policy: NamespacePolicy): string[] {
  return [
    ...TIERS.map((tier) => tierPrefix(policy.archive.prefix, tier)),
    ...evidenceScopes(policy).map((e) => e.prefix),
    compactedPrefix(policy.archive.prefix),
  ];
}

/**
 * The destination tables known before any log arrives: the policy's fixed tables, plus the
 * table of each listed namespace that a `{namespace}` route sends to its own table. The loader
 * never creates tables (its load jobs use CREATE_NEVER), so such tables must be listed to exist.
 */
export function knownDestinations(
  policy: NamespacePolicy,
  fixed: readonly Destination[],
  namespaces: readonly string[],
): Destination[] {
  const all = [...fixed];
  for (const ns of namespaces) {
    const c = classifyNamespace(policy, ns);
    if (c.archived && c.destination !== null) all.push(c.destination);
  }
  const seen = new Set<string>();
  return all.filter((d) => {
    const id = `${d.dataset}.${d.table}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/** Whether two S3 notification rules could both match one key for one event (S3 rejects that). */
export function rulesOverlap(
  a: { prefix: string; suffix: string; events: readonly string[] },
  b: { prefix: string; suffix: string; events: readonly string[] },
): boolean {
  const eventsMeet = a.events.some((x) => b.events.some((y) => eventsIntersect(x, y)));
  if (!eventsMeet) return false;
  const pa = decodeURIComponent(a.prefix);
  const pb = decodeURIComponent(b.prefix);
  const sa = decodeURIComponent(a.suffix);
  const sb = decodeURIComponent(b.suffix);
  // A key can carry both prefixes only if one extends the other, and likewise for suffixes.
  return (pa.startsWith(pb) || pb.startsWith(pa)) && (sa.endsWith(sb) || sb.endsWith(sa));
}

function eventsIntersect(x: string, y: string): boolean {
  const base = (e: string) => (e.endsWith(":*") ? e.slice(0, -1) : null);
  const bx = base(x);
  const by = base(y);
  if (bx !== null && by !== null) return bx.startsWith(by) || by.startsWith(bx);
  if (bx !== null) return y.startsWith(bx);
  if (by !== null) return x.startsWith(by);
  return x === y;
}

/** Every dataset the policy can route to, `{namespace}` routes included: the datasets to create. */
export function policyDatasets(policy: NamespacePolicy): string[] {
  const datasets = [policy.warehouse.dataset, ...policy.warehouse.routes.map((r) => r.dataset)];
  return [...new Set(datasets.filter((d): d is string => d !== undefined))];
}
