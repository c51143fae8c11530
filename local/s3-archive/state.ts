// What the archive front knows about each object version that s3rver does not: storage class,
// restore status, Object Lock (retention, legal hold), object tags, and the version history of a
// versioned bucket. Time comes from an injected clock, so tests move restores and retention forward.

import { restoreHours } from "../../lib/retrieval/plan.ts";
import {
  accessDenied,
  invalidArgument,
  missingLockConfiguration,
  noSuchKey,
  noSuchVersion,
  type ObjectTag,
  S3WireError,
} from "./wire.ts";

/** Classes whose objects must be restored before GET (S3 Glacier Flexible Retrieval, Deep Archive). */
export const ARCHIVED_CLASSES: ReadonlySet<string> = new Set(["GLACIER", "DEEP_ARCHIVE"]);

export type RestoreTier = "Expedited" | "Standard" | "Bulk";
export type RetentionMode = "GOVERNANCE" | "COMPLIANCE";

export interface BucketConfig {
  name: string;
  /** Versioning enabled: every PUT makes a new version, DELETE without versionId a delete marker. */
  versioning?: boolean;
  /** Object Lock enabled (implies versioning, as in S3). */
  objectLock?: boolean;
  /**
   * The bucket's Object Lock default retention (PutObjectLockConfiguration's DefaultRetention,
   * in days): a new version the PUT gives no retention takes this mode, until its creation +
   * `days`. Needs `objectLock`.
   */
  defaultRetention?: { mode: RetentionMode; days: number };
}

export interface RestoreState {
  tier: RestoreTier;
  days: number;
  /** When the archive job finishes, on the front's clock. */
  readyAt: number;
  /** Set when the job has finished: when S3 removes the restored copy. */
  expiresAt?: number;
}

export interface ObjectVersion {
  versionId: string;
  isDeleteMarker: boolean;
  lastModified: number;
  storageClass: string;
  etag: string;
  size: number;
  /** Response headers of the stored body (content-type, content-encoding, x-amz-meta-*). */
  headers: Record<string, string>;
  /** The body of a non-latest version is served from here (versioned buckets only). */
  bodyPath?: string;
  restore?: RestoreState;
  legalHold?: "ON" | "OFF";
  retention?: { mode: RetentionMode; until: number };
  /** Object tags (x-amz-tagging on the PUT, or PutObjectTagging); absent when there are none. */
  tags?: ObjectTag[];
}

/**
 * Hours an archive job takes: the upper ends of the S3 user guide's retrieval options, from
 * the table `logarchive retrieve --plan` promises them from (lib/retrieval/plan.ts), so the
 * local front and the plan cannot disagree. `restore` refuses the pairs S3 does not offer first.
 */
export function defaultRestoreHours(storageClass: string, tier: RestoreTier): number {
  const hours = restoreHours(storageClass, tier);
  if (hours === undefined) throw new Error(`S3 offers no ${tier} restore for ${storageClass}`);
  return hours;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** S3 rounds a restored copy's expiry up to the next midnight UTC after `days` days. */
export function restoreExpiry(completedAt: number, days: number): number {
  const due = completedAt + days * DAY_MS;
  return Math.ceil(due / DAY_MS) * DAY_MS;
}

export class ArchiveState {
  private readonly buckets = new Map<string, BucketConfig>();
  /** bucket → key → versions, newest first. */
  private readonly objects = new Map<string, Map<string, ObjectVersion[]>>();
  private readonly now: () => number;
  private readonly restoreHours: (storageClass: string, tier: RestoreTier) => number;
  private changes = 0;

  constructor(
    buckets: readonly BucketConfig[],
    now: () => number,
    restoreHours: (storageClass: string, tier: RestoreTier) => number = defaultRestoreHours,
  ) {
    for (const bucket of buckets) {
      if (bucket.defaultRetention && !bucket.objectLock) {
        throw new Error(`bucket ${bucket.name}: a default retention needs objectLock`);
      }
      this.buckets.set(bucket.name, bucket);
    }
    this.now = now;
    this.restoreHours = restoreHours;
  }

  /** Counts changes, so the front saves only when there is something new. */
  get revision(): number {
    return this.changes;
  }

  /** Everything the front knows, for a restart of the local stack to find it again. */
  snapshot(): Record<string, Record<string, ObjectVersion[]>> {
    const out: Record<string, Record<string, ObjectVersion[]>> = {};
    for (const [bucket, keys] of this.objects) out[bucket] = Object.fromEntries(keys);
    return out;
  }

  load(saved: Record<string, Record<string, ObjectVersion[]>>): void {
    this.objects.clear();
    this.changes++;
    for (const [bucket, keys] of Object.entries(saved))
      this.objects.set(bucket, new Map(Object.entries(keys)));
  }

  clock(): number {
    return this.now();
  }

  isVersioned(bucket: string): boolean {
    const config = this.buckets.get(bucket);
    return Boolean(config?.versioning || config?.objectLock);
  }

  hasObjectLock(bucket: string): boolean {
    return Boolean(this.buckets.get(bucket)?.objectLock);
  }

  /**
   * The retention a new version takes: the PUT's own, else the bucket's default from now (S3
   * applies the default only to a version whose request names no retention).
   */
  newVersionRetention(
    bucket: string,
    requested: ObjectVersion["retention"],
  ): ObjectVersion["retention"] | undefined {
    if (requested) return requested;
    const fallback = this.buckets.get(bucket)?.defaultRetention;
    return fallback && { mode: fallback.mode, until: this.now() + fallback.days * DAY_MS };
  }

  /** Whether a new version of the bucket's keys gets a retention without asking (a default retention). */
  hasDefaultRetention(bucket: string): boolean {
    return Boolean(this.buckets.get(bucket)?.defaultRetention);
  }

  versions(bucket: string, key: string): ObjectVersion[] | undefined {
    return this.objects.get(bucket)?.get(key);
  }

  /** Every key of the bucket with its versions, in key order. */
  keys(bucket: string): [string, ObjectVersion[]][] {
    const keys = [...(this.objects.get(bucket)?.entries() ?? [])].filter(([, v]) => v.length > 0);
    return keys.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  latest(bucket: string, key: string): ObjectVersion | undefined {
    return this.versions(bucket, key)?.[0];
  }

  /** The version a request names: `versionId` if given, else the latest. */
  find(bucket: string, key: string, versionId: string | undefined): ObjectVersion | undefined {
    const versions = this.versions(bucket, key);
    if (!versions) return undefined;
    if (versionId === undefined) return versions[0];
    return versions.find((v) => v.versionId === versionId);
  }

  /** Like find, but answering as S3 does when there is nothing to find. */
  require(bucket: string, key: string, versionId: string | undefined): ObjectVersion {
    const version = this.find(bucket, key, versionId);
    if (version && !(version.isDeleteMarker && versionId === undefined)) return version;
    if (versionId !== undefined && versionId !== "null") throw noSuchVersion(key, versionId);
    throw noSuchKey(key);
  }

  /** Records a write s3rver has accepted: a new version, or (unversioned) the one "null" version. */
  record(bucket: string, key: string, version: ObjectVersion): void {
    let keys = this.objects.get(bucket);
    if (!keys) {
      keys = new Map();
      this.objects.set(bucket, keys);
    }
    this.changes++;
    const existing = keys.get(key) ?? [];
    keys.set(key, this.isVersioned(bucket) ? [version, ...existing] : [version]);
  }

  /** Removes one version (or, unversioned, the object); the new latest, if any, is returned. */
  remove(bucket: string, key: string, versionId: string | undefined): ObjectVersion | undefined {
    const keys = this.objects.get(bucket);
    const versions = keys?.get(key);
    if (!keys || !versions) return undefined;
    this.changes++;
    const rest = versionId === undefined ? [] : versions.filter((v) => v.versionId !== versionId);
    if (rest.length === 0) keys.delete(key);
    else keys.set(key, rest);
    return rest[0];
  }

  /** AccessDenied while a legal hold is on or retention has not passed, as S3 refuses a versioned DELETE. */
  checkDeletable(version: ObjectVersion, bypassGovernance: boolean): void {
    if (version.legalHold === "ON") throw accessDenied();
    const retention = version.retention;
    if (!retention || retention.until <= this.now()) return;
    if (retention.mode === "COMPLIANCE" || !bypassGovernance) throw accessDenied();
  }

  setLegalHold(bucket: string, version: ObjectVersion, status: string): void {
    if (!this.hasObjectLock(bucket)) throw missingLockConfiguration();
    if (status !== "ON" && status !== "OFF")
      throw invalidArgument("Unknown legal hold status", "Status", status);
    version.legalHold = status;
    this.changes++;
  }

  /**
   * S3's rules: compliance retention can only be extended (same mode, later date); governance can
   * be shortened, removed or relaxed only with x-amz-bypass-governance-retention.
   */
  setRetention(
    bucket: string,
    version: ObjectVersion,
    next: { mode: string; until: number } | undefined,
    bypassGovernance: boolean,
  ): void {
    if (!this.hasObjectLock(bucket)) throw missingLockConfiguration();
    if (next) {
      if (next.mode !== "GOVERNANCE" && next.mode !== "COMPLIANCE") {
        throw invalidArgument("Unknown wormMode directive.", "Mode", next.mode);
      }
      if (!Number.isFinite(next.until))
        throw invalidArgument("RetainUntilDate is not a date", "RetainUntilDate");
      if (next.until <= this.now()) {
        throw invalidArgument("The retain until date must be in the future!", "RetainUntilDate");
      }
    }
    const current = version.retention;
    if (current && current.until > this.now()) {
      const loosens =
        !next || next.until < current.until || (current.mode === "COMPLIANCE" && next.mode !== "COMPLIANCE");
      if (loosens && (current.mode === "COMPLIANCE" || !bypassGovernance)) throw accessDenied();
    }
    version.retention = next ? { mode: next.mode as RetentionMode, until: next.until } : undefined;
    this.changes++;
  }

  /** PutObjectTagging (replaces the version's whole tag set) and DeleteObjectTagging (none). */
  setTags(version: ObjectVersion, tags: readonly ObjectTag[]): void {
    if (tags.length > 0) version.tags = [...tags];
    else delete version.tags;
    this.changes++;
  }

  /** The lifecycle transition a test simulates; a class change drops any restored copy. */
  transition(version: ObjectVersion, storageClass: string): void {
    if (version.storageClass !== storageClass) delete version.restore;
    version.storageClass = storageClass;
    this.changes++;
  }

  /**
   * RestoreObject: 202 when a job starts, 200 when a restored copy exists (its expiry is moved),
   * 409 RestoreAlreadyInProgress while one runs, 403 InvalidObjectState for a class with nothing
   * to restore.
   */
  restore(version: ObjectVersion, days: number, tier: RestoreTier): 200 | 202 {
    if (!ARCHIVED_CLASSES.has(version.storageClass)) {
      throw new S3WireError(
        403,
        "InvalidObjectState",
        "Restore is not allowed for the object's current storage class",
      );
    }
    if (version.storageClass === "DEEP_ARCHIVE" && tier === "Expedited") {
      throw invalidArgument(
        "Expedited retrievals are not available for the DEEP_ARCHIVE storage class",
        "Tier",
        tier,
      );
    }
    const status = this.restoreStatus(version);
    if (status === "ongoing") {
      throw new S3WireError(409, "RestoreAlreadyInProgress", "Object restore is already in progress");
    }
    this.changes++;
    if (status === "restored") {
      version.restore!.days = days;
      version.restore!.expiresAt = restoreExpiry(this.now(), days);
      return 200;
    }
    version.restore = {
      tier,
      days,
      readyAt: this.now() + this.restoreHours(version.storageClass, tier) * HOUR_MS,
    };
    return 202;
  }

  /** Where a version's restore stands now; finishing and expiring jobs on the clock. */
  restoreStatus(version: ObjectVersion): "none" | "ongoing" | "restored" {
    const restore = version.restore;
    if (!restore) return "none";
    const now = this.now();
    if (restore.expiresAt === undefined) {
      if (now < restore.readyAt) return "ongoing";
      restore.expiresAt = restoreExpiry(restore.readyAt, restore.days);
      this.changes++;
    }
    if (now >= restore.expiresAt) {
      delete version.restore;
      this.changes++;
      return "none";
    }
    return "restored";
  }

  /** Finishes every running restore job now; how many it finished. */
  completeRestores(): number {
    let finished = 0;
    const now = this.now();
    for (const keys of this.objects.values()) {
      for (const versions of keys.values()) {
        for (const version of versions) {
          if (this.restoreStatus(version) !== "ongoing") continue;
          version.restore!.readyAt = now;
          version.restore!.expiresAt = restoreExpiry(now, version.restore!.days);
          finished++;
          this.changes++;
        }
      }
    }
    return finished;
  }

  /** GET of an archived object without a restored copy is refused (403 InvalidObjectState). */
  checkReadable(version: ObjectVersion): void {
    if (!ARCHIVED_CLASSES.has(version.storageClass)) return;
    if (this.restoreStatus(version) === "restored") return;
    throw new S3WireError(
      403,
      "InvalidObjectState",
      "The operation is not valid for the object's storage class",
      {
        StorageClass: version.storageClass,
      },
    );
  }

  /** The headers HeadObject and GetObject add for the version: class, restore, lock, version id. */
  objectHeaders(bucket: string, version: ObjectVersion): Record<string, string> {
    const headers: Record<string, string> = {};
    // S3 sends x-amz-storage-class for every class except STANDARD.
    if (version.storageClass !== "STANDARD") headers["x-amz-storage-class"] = version.storageClass;
    const status = this.restoreStatus(version);
    if (status === "ongoing") headers["x-amz-restore"] = 'ongoing-request="true"';
    if (status === "restored") {
      headers["x-amz-restore"] =
        `ongoing-request="false", expiry-date="${new Date(version.restore!.expiresAt!).toUTCString()}"`;
    }
    if (this.isVersioned(bucket)) headers["x-amz-version-id"] = version.versionId;
    if (version.legalHold) headers["x-amz-object-lock-legal-hold"] = version.legalHold;
    if (version.retention) {
      headers["x-amz-object-lock-mode"] = version.retention.mode;
      headers["x-amz-object-lock-retain-until-date"] = new Date(version.retention.until).toISOString();
    }
    return headers;
  }
}
