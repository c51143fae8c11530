// `logarchive hold`: set or clear S3 Object Lock legal hold on every object version of a
// namespace's hours, and say what changed
// (docs/compliance.md#retention-object-lock-and-legal-hold).
//
// A legal hold protects one object version from deletion and overwrite until it is removed,
// with no date, independently of any retention period; it needs a bucket with Object Lock
// enabled, and s3:PutObjectLegalHold (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock.html,
// https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObjectLegalHold.html). The versions are
// found exactly as `retrieve` finds them (find.ts: every version under the namespace's hour
// prefixes in every long-lived tier), so what `hold` protects is what `retrieve` reads. An
// object holds one UTC hour of lines, so the hold covers whole hours: the hours of [from, to).
// A compacted hour's parts and manifests (every version under its compacted prefix,
// docs/design/compaction.md) are held too, beside its originals while they are still there
// (the landing days): after the originals expire, the parts and manifests are the hour's
// records, and the hour indexes held as evidence still prove them.
//
// Idempotent: each version's hold is read first (GetObjectLegalHold) and only a version not
// already in the asked state is changed, so a re-run after a failure finishes the job and
// reports the rest as unchanged. The first read also tells a bucket without Object Lock
// (S3 answers 400 InvalidRequest "Bucket is missing Object Lock Configuration") before
// anything is changed.

import {
  GetObjectLegalHoldCommand,
  PutObjectLegalHoldCommand,
  type S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { DEFAULT_GAP_MARGIN_HOURS } from "../../functions/loader/reconcile.ts";
import { forEachLimited } from "../../functions/loader/state.ts";
import {
  compactedHourPrefix,
  indexHourPrefix,
  lossPartitionPrefix,
  parseCompactedKey,
} from "../keys/layout.ts";
import type { Instant } from "../record/timestamp.ts";
import {
  type ListedPrefix,
  listPrefixVersions,
  listVersions,
  type PrefixVersion,
  versionParam,
} from "./find.ts";
import { hourPartitions } from "./query.ts";

export type HoldStatus = "ON" | "OFF";

export interface HoldInput {
  s3: S3Client;
  bucket: string;
  prefix: string;
  namespace: string;
  from: Instant;
  to: Instant;
  status: HoldStatus;
}

export interface HoldEntry {
  /**
   * `records`: an object of the namespace's lines. `loss` and `index`: the evidence a later
   * retrieval reads to prove the range complete (loss records, hour indexes), held with them.
   */
  kind: EvidenceKind | CompactedKind | "records";
  key: string;
  versionId: string;
  isLatest: boolean;
  /** The legal hold before this run; null when none was ever set on the version. */
  before: HoldStatus | null;
  after: HoldStatus | null;
  result: "changed" | "unchanged" | "failed";
  /** S3's error code and message when the version could not be read or changed. */
  error?: string;
}

export type EvidenceKind = "loss" | "index";

/** A compacted hour's part (its records) and manifest (what commits and describes it). */
export type CompactedKind = "compacted-part" | "compacted-manifest";

/** One namespace-hour's compacted prefix, as listed for the hold. */
export interface CompactedPrefix {
  prefix: string;
  hourStart: number;
  versions: number;
}

/** A key prefix of evidence listed for the hold, and how many versions it had. */
export interface EvidencePrefix {
  kind: EvidenceKind;
  prefix: string;
  versions: number;
}

export interface HoldOutcome {
  prefixes: ListedPrefix[];
  evidencePrefixes: EvidencePrefix[];
  /** The range's compacted hour prefixes that hold anything. */
  compactedPrefixes: CompactedPrefix[];
  unparsableKeys: string[];
  versions: HoldEntry[];
  /** Delete markers have no legal hold; listed so the manifest accounts for every version. */
  deleteMarkers: { key: string; versionId: string }[];
  totals: { versions: number; changed: number; unchanged: number; failed: number };
}

/** The bucket has no Object Lock configuration: no legal hold can be set; nothing was changed. */
export class NoObjectLockError extends Error {
  override name = "NoObjectLockError";
}

function describe(error: unknown): string {
  return error instanceof S3ServiceException ? `${error.name}: ${error.message}` : String(error);
}

function isMissingLockConfiguration(error: unknown): boolean {
  // S3: 400 InvalidRequest "Bucket is missing Object Lock Configuration".
  return (
    error instanceof S3ServiceException &&
    error.name === "InvalidRequest" &&
    /object ?lock ?configuration/i.test(error.message)
  );
}

async function currentHold(
  s3: S3Client,
  bucket: string,
  key: string,
  versionId: string,
): Promise<HoldStatus | null> {
  try {
    const answer = await s3.send(
      new GetObjectLegalHoldCommand({ Bucket: bucket, Key: key, ...versionParam(versionId) }),
    );
    const status = answer.LegalHold?.Status;
    return status === "ON" || status === "OFF" ? status : null;
  } catch (error) {
    // A version on which no legal hold was ever set.
    if (error instanceof S3ServiceException && error.name === "NoSuchObjectLockConfiguration") return null;
    throw error;
  }
}

/** A version of an evidence object, as listed. */
type EvidenceVersion = PrefixVersion & { kind: EvidenceKind };

/**
 * The evidence retrieval reads for the range with its default margin (retrieve.ts,
 * continuity.ts): the namespace's loss records filed from `margin` hours before the range to its
 * end, and every node's hour indexes from the range's start to `margin` hours past its end (an
 * index is filed under the hour its batches were numbered in, which can come after their lines'
 * hour). Every version, as for the records.
 */
async function listEvidence(
  s3: S3Client,
  bucket: string,
  keyPrefix: string,
  namespace: string,
  from: Instant,
  to: Instant,
): Promise<{ versions: EvidenceVersion[]; prefixes: EvidencePrefix[] }> {
  const margin = DEFAULT_GAP_MARGIN_HOURS * 3600;
  const shift = (t: Instant, seconds: number): Instant => ({
    epochSeconds: t.epochSeconds + seconds,
    nanos: t.nanos,
  });
  const wanted: { kind: EvidenceKind; prefix: string }[] = [
    ...hourPartitions(shift(from, -margin), to).map(({ dt, hour }) => ({
      kind: "loss" as const,
      prefix: lossPartitionPrefix(keyPrefix, namespace, dt, hour),
    })),
    ...hourPartitions(from, shift(to, margin)).map(({ dt, hour }) => ({
      kind: "index" as const,
      prefix: indexHourPrefix(keyPrefix, dt, hour),
    })),
  ];
  const versions: EvidenceVersion[] = [];
  const prefixes: EvidencePrefix[] = [];
  for (const { kind, prefix } of wanted) {
    let count = 0;
    for await (const v of listPrefixVersions(s3, bucket, prefix)) {
      count++;
      versions.push({ ...v, kind });
    }
    if (count > 0) prefixes.push({ kind, prefix, versions: count });
  }
  return { versions, prefixes };
}

/** Every version under the range's compacted hour prefixes: parts and manifests. */
async function listCompacted(
  s3: S3Client,
  bucket: string,
  keyPrefix: string,
  namespace: string,
  from: Instant,
  to: Instant,
): Promise<{
  versions: (PrefixVersion & { kind: CompactedKind })[];
  prefixes: CompactedPrefix[];
  unparsable: string[];
}> {
  const versions: (PrefixVersion & { kind: CompactedKind })[] = [];
  const prefixes: CompactedPrefix[] = [];
  const unparsable: string[] = [];
  for (const { dt, hour, start } of hourPartitions(from, to)) {
    const prefix = compactedHourPrefix(keyPrefix, namespace, dt, hour);
    let count = 0;
    for await (const v of listPrefixVersions(s3, bucket, prefix)) {
      let kind: CompactedKind;
      try {
        const parsed = parseCompactedKey(v.key);
        // A plan is its manifest-to-be, byte for byte (lib/compaction/compact.ts): the manifest is what is held.
        if (parsed.kind === "plan") continue;
        kind = parsed.kind === "part" ? "compacted-part" : "compacted-manifest";
      } catch {
        unparsable.push(v.key);
        continue;
      }
      count++;
      versions.push({ ...v, kind });
    }
    if (count > 0) prefixes.push({ prefix, hourStart: start, versions: count });
  }
  return { versions, prefixes, unparsable };
}

export async function applyLegalHold(input: HoldInput): Promise<HoldOutcome> {
  const { s3, bucket, status } = input;
  const listing = await listVersions(s3, bucket, input.prefix, {
    namespace: input.namespace,
    from: input.from,
    to: input.to,
    pods: [],
    containers: [],
  });
  const compacted = await listCompacted(s3, bucket, input.prefix, input.namespace, input.from, input.to);
  const evidence = await listEvidence(s3, bucket, input.prefix, input.namespace, input.from, input.to);
  const records = [
    ...listing.versions.map((v) => ({ ...v, kind: "records" as const })),
    ...compacted.versions,
  ];
  const all = [
    ...records,
    // Evidence only alongside records (originals or compacted parts): with nothing of the
    // namespace in the range there is nothing to hold, and the run says so.
    ...(records.some((v) => !v.isDeleteMarker) ? evidence.versions : []),
  ];
  const bodies = all.filter((v) => !v.isDeleteMarker);
  const entries = new Map<string, HoldEntry>();
  const handle = async (v: (typeof bodies)[number], first: boolean) => {
    const entry: HoldEntry = {
      kind: v.kind,
      key: v.key,
      versionId: v.versionId,
      isLatest: v.isLatest,
      before: null,
      after: null,
      result: "failed",
    };
    entries.set(`${v.key}\u0000${v.versionId}`, entry);
    try {
      entry.before = await currentHold(s3, bucket, v.key, v.versionId);
    } catch (error) {
      if (isMissingLockConfiguration(error)) {
        if (first) {
          throw new NoObjectLockError(
            `bucket ${bucket} has no Object Lock configuration, so no legal hold can be set (S3: ${(error as Error).message}); Object Lock must be enabled on the bucket first; nothing was changed`,
          );
        }
      }
      entry.error = `reading the legal hold: ${describe(error)}`;
      return;
    }
    entry.after = entry.before;
    // "OFF" asked of a version that never had a hold: already not held, nothing to write.
    if (entry.before === status || (status === "OFF" && entry.before === null)) {
      entry.result = "unchanged";
      return;
    }
    try {
      await s3.send(
        new PutObjectLegalHoldCommand({
          Bucket: bucket,
          Key: v.key,
          ...versionParam(v.versionId),
          LegalHold: { Status: status },
        }),
      );
      entry.after = status;
      entry.result = "changed";
    } catch (error) {
      entry.error = `setting the legal hold: ${describe(error)}`;
    }
  };
  // The first version alone, so a bucket without Object Lock is refused before any change.
  if (bodies[0] !== undefined) await handle(bodies[0], true);
  await forEachLimited(bodies.slice(1), 8, (v) => handle(v, false));
  const versions = bodies.map((v) => entries.get(`${v.key}\u0000${v.versionId}`) as HoldEntry);
  return {
    prefixes: listing.prefixes,
    evidencePrefixes: evidence.prefixes,
    compactedPrefixes: compacted.prefixes,
    unparsableKeys: [...listing.unparsable, ...compacted.unparsable],
    versions,
    deleteMarkers: all.filter((v) => v.isDeleteMarker).map((v) => ({ key: v.key, versionId: v.versionId })),
    totals: {
      versions: versions.length,
      changed: versions.filter((e) => e.result === "changed").length,
      unchanged: versions.filter((e) => e.result === "unchanged").length,
      failed: versions.filter((e) => e.result === "failed").length,
    },
  };
}

export const HOLD_MANIFEST_FORMAT = "logarchive-hold-manifest/1";

export interface HoldManifest {
  format: string;
  tool: { name: "logarchive"; version: string };
  createdAt: string;
  request: {
    legalHold: HoldStatus;
    namespace: string;
    from: string;
    to: string;
    /** The hours whose objects were held: an object holds one whole UTC hour. */
    hours: { first: string | null; last: string | null };
    bucket: string;
    prefix: string;
    tiers: readonly string[];
  };
  listed: {
    prefixes: ListedPrefix[];
    evidencePrefixes: EvidencePrefix[];
    compactedPrefixes: CompactedPrefix[];
    unparsableKeys: string[];
  };
  versions: HoldEntry[];
  deleteMarkers: HoldOutcome["deleteMarkers"];
  totals: HoldOutcome["totals"];
  /** Every version listed is now in the asked state, and there was at least one. */
  complete: boolean;
}

export function holdManifest(
  outcome: HoldOutcome,
  context: {
    toolVersion: string;
    status: HoldStatus;
    namespace: string;
    from: string;
    to: string;
    bucket: string;
    prefix: string;
    tiers: readonly string[];
    now: Date;
  },
): { manifest: HoldManifest; data: Buffer } {
  const hour = (p: ListedPrefix | undefined) =>
    p === undefined ? null : new Date(p.hourStart).toISOString().slice(0, 13);
  const byHour = [...outcome.prefixes].sort((a, b) => a.hourStart - b.hourStart);
  const manifest: HoldManifest = {
    format: HOLD_MANIFEST_FORMAT,
    tool: { name: "logarchive", version: context.toolVersion },
    createdAt: context.now.toISOString(),
    request: {
      legalHold: context.status,
      namespace: context.namespace,
      from: context.from,
      to: context.to,
      hours: { first: hour(byHour[0]), last: hour(byHour.at(-1)) },
      bucket: context.bucket,
      prefix: context.prefix,
      tiers: context.tiers,
    },
    listed: {
      prefixes: outcome.prefixes,
      evidencePrefixes: outcome.evidencePrefixes,
      compactedPrefixes: outcome.compactedPrefixes,
      unparsableKeys: outcome.unparsableKeys,
    },
    versions: outcome.versions,
    deleteMarkers: outcome.deleteMarkers,
    totals: outcome.totals,
    complete: outcome.totals.versions > 0 && outcome.totals.failed === 0,
  };
  return { manifest, data: Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, "utf8") };
}
