// Steps 1 and 2 of a retrieval: find every object version of a namespace's hours, in every
// long-lived tier, and read each one's state with HeadObject (storage class, restore status,
// Object Lock, size, the logarchive metadata).
//
// Listing uses ListObjectVersions on every bucket: on a versioned bucket it returns every
// version and delete marker, and on an unversioned one it returns each object once with
// version id "null" (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectVersions.html),
// so one code path serves both and an overwritten or deleted object is never missed. It needs
// s3:ListBucketVersions besides s3:ListBucket.

import {
  HeadObjectCommand,
  type HeadObjectCommandOutput,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  type S3Client,
  type _Object as S3Object,
} from "@aws-sdk/client-s3";
import { type ObjectKey, parseObjectKey, partitionPrefix, type Tier } from "../keys/layout.ts";
import { longLivedTiers } from "../keys/tiers.ts";
import { fromUserMetadata, type ObjectMetadata } from "../object/metadata.ts";
import { hourPartitions, type RetrievalQuery } from "./query.ts";

/** One version (or delete marker) of an object key, as listed. */
export interface ListedVersion {
  key: string;
  parsed: ObjectKey;
  /** "null" on an unversioned bucket, as S3 says it. */
  versionId: string;
  isLatest: boolean;
  isDeleteMarker: boolean;
  size: number;
  etag: string | null;
  lastModified: string | null;
  /** Start of the object's hour partition, ms since the epoch. */
  hourStart: number;
}

/** The hour partitions listed, per tier: what "every object" means in the manifest. */
export interface ListedPrefix {
  tier: Tier;
  prefix: string;
  hourStart: number;
  versions: number;
}

/**
 * Every page of current objects under `prefix` (ListObjectsV2), one call per page: for the
 * small evidence objects (loss records, hour indexes) retrieval reads at their current version,
 * the objects an archive query reads, and the local S3 front's listing of an unversioned
 * bucket. An empty prefix (the whole bucket) is left out of the request, not sent as `prefix=`.
 */
export async function* listObjectPages(
  s3: S3Client,
  bucket: string,
  prefix: string,
): AsyncGenerator<S3Object[]> {
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({
        Bucket: bucket,
        ...(prefix === "" ? {} : { Prefix: prefix }),
        ...(token === undefined ? {} : { ContinuationToken: token }),
      }),
    );
    yield page.Contents ?? [];
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
}

/** One version or delete marker under a key prefix, as ListObjectVersions gives it. */
export type PrefixVersion = Omit<ListedVersion, "parsed" | "hourStart">;

/** Every version and delete marker under `prefix`, page after page; `onPage` runs before each request. */
export async function* listPrefixVersions(
  s3: S3Client,
  bucket: string,
  prefix: string,
  onPage?: () => void,
): AsyncGenerator<PrefixVersion> {
  let keyMarker: string | undefined;
  let versionIdMarker: string | undefined;
  for (;;) {
    onPage?.();
    const page = await s3.send(
      new ListObjectVersionsCommand({
        Bucket: bucket,
        Prefix: prefix,
        ...(keyMarker === undefined ? {} : { KeyMarker: keyMarker }),
        ...(versionIdMarker === undefined ? {} : { VersionIdMarker: versionIdMarker }),
      }),
    );
    const entries = [
      ...(page.Versions ?? []).map((v) => ({ ...v, isDeleteMarker: false })),
      ...(page.DeleteMarkers ?? []).map((m) => ({ ...m, Size: 0, ETag: undefined, isDeleteMarker: true })),
    ];
    for (const e of entries) {
      if (e.Key === undefined) continue;
      yield {
        key: e.Key,
        versionId: e.VersionId ?? "null",
        isLatest: e.IsLatest === true,
        isDeleteMarker: e.isDeleteMarker,
        size: e.Size ?? 0,
        etag: e.ETag ?? null,
        lastModified: e.LastModified?.toISOString() ?? null,
      };
    }
    if (!page.IsTruncated) break;
    keyMarker = page.NextKeyMarker;
    versionIdMarker = page.NextVersionIdMarker;
    if (keyMarker === undefined) break;
  }
}

export async function listVersions(
  s3: S3Client,
  bucket: string,
  keyPrefix: string,
  query: RetrievalQuery,
): Promise<{ versions: ListedVersion[]; prefixes: ListedPrefix[]; unparsable: string[] }> {
  const versions: ListedVersion[] = [];
  const prefixes: ListedPrefix[] = [];
  const unparsable: string[] = [];
  for (const tier of longLivedTiers()) {
    for (const { dt, hour, start } of hourPartitions(query.from, query.to)) {
      const prefix = partitionPrefix(keyPrefix, tier, query.namespace, dt, hour);
      let count = 0;
      for await (const e of listPrefixVersions(s3, bucket, prefix)) {
        let parsed: ObjectKey;
        try {
          parsed = parseObjectKey(e.key);
        } catch {
          // Not an archive object (a stray upload); named in the manifest, never read.
          unparsable.push(e.key);
          continue;
        }
        count++;
        versions.push({ ...e, parsed, hourStart: start });
      }
      prefixes.push({ tier, prefix, hourStart: start, versions: count });
    }
  }
  // Per key newest first, as S3 lists them: the latest, then by modification time.
  versions.sort(
    (a, b) =>
      a.key.localeCompare(b.key) ||
      Number(b.isLatest) - Number(a.isLatest) ||
      (b.lastModified ?? "").localeCompare(a.lastModified ?? ""),
  );
  return { versions, prefixes, unparsable };
}

/** Where an archived object's body is, as HeadObject's x-amz-restore says. */
export type RestoreStatus =
  /** Readable now: not in an archive class. */
  | { state: "online" }
  /** In GLACIER or DEEP_ARCHIVE with no restored copy and no job running. */
  | { state: "archived" }
  | { state: "in-progress" }
  /** A restored copy exists until `expiry` (ISO time). */
  | { state: "restored"; expiry: string | null };

export interface LockState {
  mode: string | null;
  retainUntil: string | null;
  legalHold: "ON" | "OFF" | null;
}

/** One object version's state: what HeadObject says and the contract's metadata. */
export interface InspectedVersion extends ListedVersion {
  storageClass: string;
  restore: RestoreStatus;
  lock: LockState;
  metadata: ObjectMetadata | null;
  /** Why the metadata could not be read, when metadata is null. */
  metadataProblem: string | null;
}

/** Classes whose objects need RestoreObject before GetObject (Glacier Instant Retrieval does not). */
export const RESTORE_CLASSES: ReadonlySet<string> = new Set(["GLACIER", "DEEP_ARCHIVE"]);

/** `ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"` → a status (HeadObject reference). */
export function parseRestoreHeader(storageClass: string, header: string | undefined): RestoreStatus {
  if (!RESTORE_CLASSES.has(storageClass)) return { state: "online" };
  if (header === undefined || header === "") return { state: "archived" };
  if (/ongoing-request="true"/i.test(header)) return { state: "in-progress" };
  const expiry = /expiry-date="([^"]+)"/i.exec(header)?.[1];
  const ms = expiry === undefined ? Number.NaN : Date.parse(expiry);
  return { state: "restored", expiry: Number.isNaN(ms) ? null : new Date(ms).toISOString() };
}

/** The VersionId parameter for a version: none for an unversioned bucket's "null". */
export function versionParam(versionId: string): { VersionId?: string } {
  return versionId === "null" ? {} : { VersionId: versionId };
}

export async function inspectVersion(
  s3: S3Client,
  bucket: string,
  listed: ListedVersion,
): Promise<InspectedVersion> {
  const head: HeadObjectCommandOutput = await s3.send(
    new HeadObjectCommand({ Bucket: bucket, Key: listed.key, ...versionParam(listed.versionId) }),
  );
  return stateFromHead(listed, head);
}

export function stateFromHead(listed: ListedVersion, head: HeadObjectCommandOutput): InspectedVersion {
  // S3 omits x-amz-storage-class for STANDARD.
  const storageClass = head.StorageClass ?? "STANDARD";
  let metadata: ObjectMetadata | null = null;
  let metadataProblem: string | null = null;
  try {
    metadata = fromUserMetadata(head.Metadata ?? {});
  } catch (error) {
    metadataProblem = (error as Error).message;
  }
  const legalHold = head.ObjectLockLegalHoldStatus;
  return {
    ...listed,
    size: head.ContentLength ?? listed.size,
    etag: head.ETag ?? listed.etag,
    storageClass,
    restore: parseRestoreHeader(storageClass, head.Restore),
    lock: {
      mode: head.ObjectLockMode ?? null,
      retainUntil: head.ObjectLockRetainUntilDate?.toISOString() ?? null,
      legalHold: legalHold === "ON" || legalHold === "OFF" ? legalHold : null,
    },
    metadata,
    metadataProblem,
  };
}
