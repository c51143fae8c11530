// The scheduled compactor's run (`logarchive compact --pending`, the hourly CronJob of
// infra/k8s/compactor-cronjob.ts): find every namespace-hour in the lookback that has settled
// and holds archive originals no committed manifest names, and compact each with
// compactNamespaceHour. One namespace-hour's failure (a refused original, an hour the indexes
// say is not complete, an S3 error) is reported and the others go on.
//
// After compacting, the run sweeps the originals of its lookback (docs/design/compaction.md,
// the revision after the adversarial review; sweepOriginals):
//   (a) an original a committed manifest names, of an hour that ended at least --delete-after
//       ago (default the Athena cutoff, so Athena's view never needs an original of an hour it
//       reads from parts), gets DeleteObject WITHOUT a version id: a delete marker, which S3
//       allows on a locked version; the locked version becomes noncurrent and the tier rules'
//       NoncurrentVersionExpiration removes it once its short landing retention has passed. Never
//       a version delete. The hour's manifests are read again as readers read them
//       (readHourManifests) and only what they name is deleted, and only when the key's current
//       version (ListObjectVersions of the hour's partition prefixes) is the version the manifest
//       names; the DELETE carries If-Match with that version's ETag. A key written again after
//       compaction is a conflict: not deleted, kept whole (b), and the run fails. A DELETE
//       without a version id on a versioned bucket adds a delete marker and deletes nothing
//       (https://docs.aws.amazon.com/AmazonS3/latest/userguide/DeleteMarker.html); Object Lock
//       protects versions, not keys, so it is allowed on a locked one
//       (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock.html); a conditional
//       delete is judged against the current version
//       (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-deletes.html).
//   (b) an original no committed manifest names (a refused one, a stuck hour, an hour whose
//       manifests do not chain) whose hour ended at least a day ago (KEPT_WHOLE_AFTER_MS), in
//       every run while its hour is in the lookback, gets PutObjectRetention to LastModified +
//       --lock-days (never shorter than it has), and is reported: it stays current at the full
//       lock, nothing expires it. One HEAD each run (ListObjectsV2 returns no lock fields;
//       HeadObject returns the version's x-amz-object-lock-mode and -retain-until-date,
//       https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html) and, unless it is
//       already locked that long, one PutObjectRetention of that version with the mode it has
//       (https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObjectRetention.html); a HEAD
//       with no lock fields is a sweep error. Requests: a delete per compacted original (DELETE
//       is free), plus one LIST of manifests, one ListObjectVersions per tier and the manifest
//       GETs of each hour with deletes; a HEAD per uncompacted original a day old each run and a
//       PUT-class request per original the first time (none in the steady state).
// Nothing expires an original by age, so an hour outside the lookback loses nothing: a batch that
// lands more than the lookback after its hour keeps its landing retention and stays current,
// read as an original; `logarchive compact --namespace --hour` compacts it by hand. The
// extension (b) happens from the first run a day after the hour and is retried by every later
// run while the hour is in the lookback (48 h by default, against 3 landing days).
//
// Enumeration, and why this way. The key layout puts the namespace before the hour
// (`<prefix>/<tier>/namespace=/dt=/hour=/…`, lib/keys/layout.ts), so no listing answers "which
// namespaces have objects in hour H". Per run, with N namespaces, W hours in the window and
// O originals in the window:
//   1. ListObjectsV2 with Delimiter "/" on each long-lived tier prefix: the `namespace=` common
//      prefixes, one request per 1,000 namespaces per tier (a page holds at most 1,000 keys and
//      common prefixes, https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html);
//   2. per namespace and tier it appears in, one paginated ListObjectsV2 starting after the
//      window's first hour prefix ("Amazon S3 starts listing after this specified key",
//      https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/s3/aws.sdk.kotlin.services.s3.model/-list-objects-v2-request/start-after.html;
//      keys come in UTF-8 binary order, which in this layout is time order) and left at the
//      first key past the last settled hour: about O / 1,000 + N × tiers requests;
//   3. per namespace with originals in the window, one ListObjectsV2 of its compacted keys from
//      the same hour (W × (parts + manifests), about 100 keys, one page), and one GetObject per
//      manifest of an hour with originals, to see whether every original is named.
// At the reference scale (10,000 nodes, 1,000 namespaces all active every hour, 7.44 million
// originals a day, W = 46 at the defaults): 2 + about 16,000 + 1,000 LISTs and about 46,000
// manifest GETs a run, about 12 million LISTs ($61) and 33 million GETs ($13) a month of hourly
// runs. Listing each namespace-hour's two tier prefixes and its manifests instead would be
// 3 × 1,000 × 46 = 138,000 LISTs a run (a LIST costs 12.5 GETs, https://aws.amazon.com/s3/pricing/).
// Only the pending hours then pay compactNamespaceHour's own listing (3 LISTs each).

// Sharding (`--shard i/N`, shard.ts): one process cannot compact an hour of the reference
// archive (about 425 GiB) inside the CronJob's run, so N runs share it by namespace. A shard
// still makes the tier listings of step 1 (a few requests), then lists, reads and compacts only
// its own namespaces; its hour-index keep() holds only its own pending namespace-hours' entries,
// so that memory falls with N. Every shard still GETs every node's index of the hours it needs
// (an index holds every namespace of its node): N × the index GETs below a run.

// Hour indexes: each index hour a pending hour needs (records' hour H reads H-1 to H+margin,
// readiness.ts) is read once per run, one LIST per 1,000 nodes and one GET per node, and shared
// by every namespace and every pending hour that needs it (CompactOptions.indexReading); it is
// dropped when the last of those hours is done. In the steady state one new hour is pending, so
// 4 index hours: 40,000 GETs a run at 10,000 nodes. Of each index only its node and number range
// are kept, and of its entries only the key and SHA-256 of batches of the pending
// namespace-hours (readIndexHourSummary): measured in benchmarks/compaction.bench.ts
// (docs/benchmarks.md#compaction).

import {
  DeleteObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectRetentionCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { forEachLimited } from "../../functions/loader/state.ts";
import {
  compactedHourPrefix,
  compactedPrefix,
  type ObjectKey,
  parseCompactedKey,
  parseObjectKey,
  partitionPrefix,
  type Tier,
  tierPrefix,
} from "../keys/layout.ts";
import { longLivedTiers } from "../keys/tiers.ts";
import {
  type CompactionOutcome,
  type CompactOptions,
  compactNamespaceHour,
  currentVersions,
} from "./compact.ts";
import { DEFAULT_LOOKBACK_MS, DEFAULT_PENDING_CONCURRENCY, DEFAULT_SETTLE_MS } from "./defaults.ts";
import { readHourManifests, readListedHourManifests } from "./manifests.ts";
import { inShard, type Shard, WHOLE_ARCHIVE } from "./shard.ts";

export { DEFAULT_LOOKBACK_MS, DEFAULT_PENDING_CONCURRENCY };

import {
  batchGroup,
  type CompactionIndexes,
  DEFAULT_INDEX_MARGIN_HOURS,
  type IndexHourSummary,
  LaterIndexes,
  readIndexHourSummary,
} from "./readiness.ts";

const HOUR_MS = 3_600_000;
/** Namespaces enumerated (listed, their manifests read) at once. */
const ENUMERATION_CONCURRENCY = 16;

export interface PendingOptions
  extends Pick<
    CompactOptions,
    "s3" | "bucket" | "prefix" | "partMaxBytes" | "indexCheck" | "dryRun" | "uploadChunkBytes" | "toolVersion"
  > {
  settleMs?: number;
  /** How far back hours are looked at. Default DEFAULT_LOOKBACK_MS. */
  lookbackMs?: number;
  /** Namespace-hours compacted at once (across hours and namespaces). Default DEFAULT_PENDING_CONCURRENCY. */
  concurrency?: number;
  now?: () => Date;
  /**
   * Only the namespaces of this shard (shard.ts): their originals listed, their manifests read,
   * their entries of the hour indexes kept. Default WHOLE_ARCHIVE.
   */
  shard?: Shard;
  /** Each namespace-hour's result as it finishes. */
  onResult?: (result: PendingResult) => void;
  /**
   * After compacting, give a delete marker (DeleteObject without a version id) to every
   * original in the lookback that a committed manifest names and whose hour ended at least this
   * long ago. Absent: nothing is deleted (`compact --pending` always sets it).
   */
  deleteAfterMs?: number;
  /**
   * The originals' landing retention, days after the end of their hour (the shipper's
   * landing_days), reported with each original kept whole. With lockDays, every original in the
   * lookback that no committed manifest names and whose hour ended at least KEPT_WHOLE_AFTER_MS
   * ago gets its retention extended to LastModified + lockDays. Absent: no retention is changed.
   */
  landingDays?: number;
  /** The bucket's default retention days (infra objectLockDays): what an original kept whole gets. */
  lockDays?: number;
}

/**
 * An original no committed manifest names (or whose current version is not the one a manifest
 * names: a conflict), of an hour that ended at least a day ago: kept whole, at the full lock.
 */
export interface KeptWhole {
  key: string;
  /** Its records' hour, YYYY-MM-DDTHH. */
  hour: string;
  /** When its landing retention ends (hour end + landing days), ISO. */
  landingEnds: string;
  /** extended: PutObjectRetention sent (in a dry run: would be); already: its retain-until is already at least the full lock; no-retention: its HEAD shows no Object Lock retention (the role lacks s3:GetObjectRetention, or the object is unlocked; a sweep error, since --lock-days says Object Lock is expected); gone: deleted since the listing. */
  action: "extended" | "already" | "no-retention" | "gone";
  /** Its retain-until after this run (ISO), null when it has none. */
  retainUntil: string | null;
  mode: string | null;
}

/** What a run did to the originals after compacting. */
export interface OriginalsSweep {
  /** Originals given a delete marker (dry run: that would be), named by a committed manifest. */
  deleted: number;
  keptWhole: KeptWhole[];
  /**
   * Originals a committed manifest names whose current version is another one (the key written
   * again after compaction, with other bytes or not): not deleted, kept whole (the run fails).
   */
  conflicts: SweepConflict[];
  /** Requests that failed, by key (the run fails). */
  errors: { key: string; message: string }[];
}

export interface SweepConflict {
  key: string;
  /** Its records' hour, YYYY-MM-DDTHH. */
  hour: string;
  /** The version the manifest names ("null": an unversioned one). */
  manifestVersionId: string;
  /** The key's current version (null when the conditional delete found it changed). */
  currentVersionId: string | null;
  message: string;
}

export interface NamespaceHour {
  namespace: string;
  dt: string;
  hour: string;
}

export type PendingResult =
  | (NamespaceHour & { outcome: CompactionOutcome; error?: undefined })
  | (NamespaceHour & { outcome?: undefined; error: Error });

export interface PendingRun {
  /** First and last hour looked at (YYYY-MM-DDTHH), null when the window is empty. */
  window: { from: string; to: string } | null;
  /** The shard this run handled (WHOLE_ARCHIVE unless --shard). */
  shard: Shard;
  /** Namespaces found under the tier prefixes that are in the run's shard. */
  namespaces: number;
  /** The namespace-hours found pending, in hour then namespace order. */
  pending: NamespaceHour[];
  results: PendingResult[];
  sweep: OriginalsSweep;
  requests: {
    /** ListObjectsV2 pages: namespaces (delimiter), originals and compacted keys in the window. */
    lists: number;
    /** Manifests read to decide whether an hour is pending. */
    manifestGets: number;
    /** Hour indexes: LIST pages and GETs (once per node and index hour). */
    indexLists: number;
    indexGets: number;
    /** GETs of single nodes' later index hours, for batches numbered after H+margin (readiness.ts LaterIndexes). */
    laterIndexGets: number;
    /** DeleteObject (no version id, If-Match), HeadObject and PutObjectRetention of originals, and the manifest and version LISTs checking deletes. */
    deletes: number;
    heads: number;
    retentionPuts: number;
    sweepManifestLists: number;
    sweepVersionLists: number;
  };
}

/** Whether a result counts as a failure of the run: refused, not ready, or an error. */
export function isFailure(result: PendingResult): boolean {
  return (
    result.error !== undefined || result.outcome.status === "refused" || result.outcome.status === "not-ready"
  );
}

/** The hours a run looks at: settled, and ending after now − lookback. Hour starts in ms. */
export function pendingWindow(now: Date, settleMs: number, lookbackMs: number): number[] {
  const last = Math.floor((now.getTime() - settleMs - HOUR_MS) / HOUR_MS) * HOUR_MS;
  const first = Math.floor((now.getTime() - lookbackMs) / HOUR_MS) * HOUR_MS;
  const hours: number[] = [];
  for (let h = first; h <= last; h += HOUR_MS) hours.push(h);
  return hours;
}

function hourFields(start: number): { dt: string; hour: string } {
  const iso = new Date(start).toISOString();
  return { dt: iso.slice(0, 10), hour: iso.slice(11, 13) };
}

function hourText(start: number): string {
  return new Date(start).toISOString().slice(0, 13);
}

function keyHourStart(k: { dt: string; hour: string }): number {
  return Date.parse(`${k.dt}T${k.hour}:00:00Z`);
}

export async function compactPending(o: PendingOptions): Promise<PendingRun> {
  const settleMs = o.settleMs ?? DEFAULT_SETTLE_MS;
  const lookbackMs = o.lookbackMs ?? DEFAULT_LOOKBACK_MS;
  const now = (o.now ?? (() => new Date()))();
  const hours = pendingWindow(now, settleMs, lookbackMs);
  const run: PendingRun = {
    window: hours.length === 0 ? null : { from: hourText(hours[0]!), to: hourText(hours.at(-1)!) },
    shard: o.shard ?? WHOLE_ARCHIVE,
    namespaces: 0,
    pending: [],
    results: [],
    sweep: { deleted: 0, keptWhole: [], conflicts: [], errors: [] },
    requests: {
      lists: 0,
      manifestGets: 0,
      indexLists: 0,
      indexGets: 0,
      laterIndexGets: 0,
      deletes: 0,
      heads: 0,
      retentionPuts: 0,
      sweepManifestLists: 0,
      sweepVersionLists: 0,
    },
  };
  if (hours.length === 0) return run;
  const limits = sweepLimits(now, hours[0]!, hours.at(-1)!, o);
  const {
    pending: found,
    toDelete,
    keptWholeCandidates,
  } = await findPendingHours(o, hours[0]!, hours.at(-1)!, limits, run);
  run.pending = found;

  const indexCheck = o.indexCheck !== false;
  const pendingGroups = new Set(found.map((p) => batchGroup(keyHourStart(p), p.namespace)));
  const indexes = new IndexHours({
    s3: o.s3,
    bucket: o.bucket,
    prefix: o.prefix,
    marginHours: DEFAULT_INDEX_MARGIN_HOURS,
    counts: run.requests,
    keep: (namespace, recordsHour) => pendingGroups.has(batchGroup(recordsHour, namespace)),
  });
  const laterIndexes = new LaterIndexes(o);
  const remaining = new Map<number, number>();
  for (const p of found) {
    const start = keyHourStart(p);
    if (!remaining.has(start) && indexCheck) indexes.need(start);
    remaining.set(start, (remaining.get(start) ?? 0) + 1);
  }
  await forEachLimited(found, o.concurrency ?? DEFAULT_PENDING_CONCURRENCY, async (p) => {
    const start = keyHourStart(p);
    let result: PendingResult;
    try {
      // Read only if compactNamespaceHour gets as far as the readiness check (not for an hour
      // found up to date, a stored plan to complete, or one refused by its listing).
      const indexReading = indexCheck ? () => indexes.readingFor(start) : undefined;
      const outcome = await compactNamespaceHour({
        s3: o.s3,
        bucket: o.bucket,
        prefix: o.prefix,
        ...p,
        settleMs,
        now: () => now,
        indexCheck,
        ...(indexReading === undefined ? {} : { indexReading, laterIndexes }),
        ...(o.partMaxBytes === undefined ? {} : { partMaxBytes: o.partMaxBytes }),
        ...(o.dryRun === undefined ? {} : { dryRun: o.dryRun }),
        ...(o.uploadChunkBytes === undefined ? {} : { uploadChunkBytes: o.uploadChunkBytes }),
        ...(o.toolVersion === undefined ? {} : { toolVersion: o.toolVersion }),
      });
      result = { ...p, outcome };
    } catch (error) {
      result = { ...p, error: error instanceof Error ? error : new Error(String(error)) };
    }
    const left = (remaining.get(start) ?? 1) - 1;
    remaining.set(start, left);
    if (left === 0 && indexCheck) indexes.release(start);
    run.results.push(result);
    o.onResult?.(result);
  });
  run.requests.laterIndexGets = laterIndexes.gets;
  await sweepOriginals(o, now, limits, run, toDelete, keptWholeCandidates);
  return run;
}

/**
 * An original no committed manifest names is kept whole once its hour ended this long ago, and
 * in every run after that while its hour is in the lookback (one HEAD a run; the retention is
 * extended once, later runs find it `already`), so no outage of a few runs lets its landing
 * retention lapse. A day: compaction of an hour has had a day of hourly runs by then.
 */
export const KEPT_WHOLE_AFTER_MS = 24 * HOUR_MS;

/** The sweep's hour limits (hour starts, ms); null where that step is off. */
interface SweepLimits {
  /** Hours up to this one ended at least deleteAfter ago: their compacted originals are deleted. */
  deleteThrough: number | null;
  /** Hours up to this one ended at least KEPT_WHOLE_AFTER_MS ago: their uncompacted originals are kept whole. */
  keptWholeThrough: number | null;
  /** The last hour listed: the settled window's. */
  listThrough: number;
}

function sweepLimits(
  now: Date,
  first: number,
  last: number,
  o: Pick<PendingOptions, "deleteAfterMs" | "landingDays" | "lockDays">,
): SweepLimits {
  const floorHour = (ms: number) => Math.floor(ms / HOUR_MS) * HOUR_MS;
  const deleteThrough =
    o.deleteAfterMs === undefined ? null : floorHour(now.getTime() - o.deleteAfterMs - HOUR_MS);
  // hour end + KEPT_WHOLE_AFTER_MS <= now
  const keptWholeThrough =
    o.landingDays !== undefined && o.lockDays !== undefined
      ? floorHour(now.getTime() - KEPT_WHOLE_AFTER_MS - HOUR_MS)
      : null;
  // Never past the last closed hour; never before the window.
  const closed = floorHour(now.getTime()) - HOUR_MS;
  const listThrough = Math.max(last, Math.min(keptWholeThrough ?? last, closed));
  return {
    deleteThrough: deleteThrough !== null && deleteThrough >= first ? deleteThrough : null,
    keptWholeThrough: keptWholeThrough !== null && keptWholeThrough >= first ? keptWholeThrough : null,
    listThrough,
  };
}

/** A namespace-hour's originals a committed manifest names, still current: delete-marker candidates. */
interface DeleteCandidates extends NamespaceHour {
  keys: Set<string>;
}

interface FoundHours {
  pending: NamespaceHour[];
  /** By `<namespace> <hour start>`. */
  toDelete: Map<string, DeleteCandidates>;
  keptWholeCandidates: { namespace: string; start: number; key: string }[];
}

/**
 * Every namespace-hour in [first, last] (hour starts, ms) with an original no committed
 * manifest of the hour names, in hour then namespace order (see the header for the requests);
 * and for the sweep after compacting, the current originals that manifests name in hours up to
 * limits.deleteThrough, and those none names in hours up to limits.keptWholeThrough.
 */
async function findPendingHours(
  o: Pick<PendingOptions, "s3" | "bucket" | "prefix" | "shard">,
  first: number,
  last: number,
  limits: SweepLimits,
  run: PendingRun,
): Promise<FoundHours> {
  const toDelete = new Map<string, DeleteCandidates>();
  const keptWholeCandidates: FoundHours["keptWholeCandidates"] = [];
  // 1. namespace=… segments per tier.
  const tiersOf = new Map<string, Tier[]>();
  for (const tier of longLivedTiers()) {
    const base = tierPrefix(o.prefix, tier);
    let token: string | undefined;
    do {
      const page = await o.s3.send(
        new ListObjectsV2Command({
          Bucket: o.bucket,
          Prefix: base,
          Delimiter: "/",
          ...(token === undefined ? {} : { ContinuationToken: token }),
        }),
      );
      run.requests.lists++;
      for (const cp of page.CommonPrefixes ?? []) {
        const segment = cp.Prefix?.slice(base.length);
        if (segment === undefined || !segment.startsWith("namespace=")) continue;
        tiersOf.set(segment, [...(tiersOf.get(segment) ?? []), tier]);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  // The namespaces, each checked against the layout's own formatting (a stray prefix is
  // skipped), and of those only the run's shard's: the others are never listed or read.
  const firstHour = hourFields(first);
  const shard = o.shard ?? WHOLE_ARCHIVE;
  const mine: [segment: string, namespace: string, tiers: Tier[]][] = [];
  for (const [segment, tiers] of tiersOf) {
    let ns: string;
    try {
      ns = decodeURIComponent(segment.slice("namespace=".length, -1));
      const probe = partitionPrefix(o.prefix, tiers[0]!, ns, firstHour.dt, firstHour.hour);
      if (!probe.startsWith(`${tierPrefix(o.prefix, tiers[0]!)}${segment}`)) continue;
    } catch {
      continue;
    }
    if (inShard(ns, shard)) mine.push([segment, ns, tiers]);
  }
  run.namespaces = mine.length;

  const pending: NamespaceHour[] = [];
  await forEachLimited(mine, ENUMERATION_CONCURRENCY, async ([segment, ns, tiers]) => {
    // 2. The namespace's originals in the window, by hour.
    const originals = new Map<number, Set<string>>();
    for (const tier of tiers) {
      const from = partitionPrefix(o.prefix, tier, ns, firstHour.dt, firstHour.hour);
      for await (const key of listFrom(o, `${tierPrefix(o.prefix, tier)}${segment}`, from, run)) {
        let parsed: ObjectKey;
        try {
          parsed = parseObjectKey(key);
        } catch {
          continue; // not an archive object: compactNamespaceHour names it if its hour is compacted
        }
        const start = keyHourStart(parsed);
        if (start > limits.listThrough) break;
        if (start < first) continue;
        originals.set(start, (originals.get(start) ?? new Set()).add(key));
      }
    }
    if (originals.size === 0) return;

    // 3. Its manifests in the window, by hour.
    const manifests = new Map<number, string[]>();
    const compactedFrom = compactedHourPrefix(o.prefix, ns, firstHour.dt, firstHour.hour);
    for await (const key of listFrom(o, `${compactedPrefix(o.prefix)}${segment}`, compactedFrom, run)) {
      let parsed: ReturnType<typeof parseCompactedKey>;
      try {
        parsed = parseCompactedKey(key);
      } catch {
        continue;
      }
      const start = keyHourStart(parsed);
      if (start > limits.listThrough) break;
      if (parsed.kind === "manifest" && start >= first) {
        manifests.set(start, [...(manifests.get(start) ?? []), key]);
      }
    }

    // 4. Pending: an original that no manifest of its hour names. The manifests are judged as
    // readers judge them (read, parsed and chained, readListedHourManifests): an hour whose
    // chain is broken names nothing, so its originals are pending (compactNamespaceHour reports
    // why), never deleted, and kept whole.
    for (const [start, keys] of originals) {
      const named = new Set<string>();
      let readable = true;
      const manifestKeys = manifests.get(start) ?? [];
      if (manifestKeys.length > 0) {
        const { dt, hour } = hourFields(start);
        try {
          const read = await readListedHourManifests(o.s3, o.bucket, ns, dt, hour, manifestKeys);
          run.requests.manifestGets += read.gets;
          if (read.problem !== null) readable = false;
          for (const m of read.manifests) for (const member of m.manifest.members) named.add(member.key);
        } catch {
          readable = false;
        }
      }
      if (start <= last && (!readable || [...keys].some((k) => !named.has(k)))) {
        pending.push({ namespace: ns, ...hourFields(start) });
      }
      if (readable && limits.deleteThrough !== null && start <= limits.deleteThrough) {
        const compacted = new Set([...keys].filter((k) => named.has(k)));
        if (compacted.size > 0)
          toDelete.set(`${ns} ${start}`, { namespace: ns, ...hourFields(start), keys: compacted });
      }
      if (limits.keptWholeThrough !== null && start <= limits.keptWholeThrough) {
        // An unusable chain names nothing here: extending a lock never loses a line.
        for (const key of keys) {
          if (!readable || !named.has(key)) keptWholeCandidates.push({ namespace: ns, start, key });
        }
      }
    }
  });
  const sorted = pending.sort(
    (a, b) =>
      keyHourStart(a) - keyHourStart(b) ||
      (a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : 0),
  );
  return { pending: sorted, toDelete, keptWholeCandidates };
}

/** Requests of the sweep in flight at once. */
const SWEEP_CONCURRENCY = 16;

/**
 * After compacting: (a) a delete marker for every current original a committed manifest names
 * in hours that ended at least deleteAfter ago, each checked against the manifests as readers
 * read them (readHourManifests: chained, every generation; an hour whose manifests are not
 * usable keeps its originals); (b) the full lock for every original no committed manifest names
 * whose hour ended at least KEPT_WHOLE_AFTER_MS ago, and for each conflict. A dry run sends only the reads.
 */
async function sweepOriginals(
  o: PendingOptions,
  now: Date,
  limits: SweepLimits,
  run: PendingRun,
  toDelete: Map<string, DeleteCandidates>,
  keptWholeCandidates: FoundHours["keptWholeCandidates"],
): Promise<void> {
  const committedNow = new Set<string>();
  for (const r of run.results) {
    if (r.outcome?.status !== "committed" || r.outcome.manifest === null) continue;
    const start = keyHourStart(r);
    for (const m of r.outcome.manifest.members) committedNow.add(m.key);
    if (limits.deleteThrough === null || start > limits.deleteThrough) continue;
    const id = `${r.namespace} ${start}`;
    const entry = toDelete.get(id) ?? { namespace: r.namespace, dt: r.dt, hour: r.hour, keys: new Set() };
    for (const m of r.outcome.manifest.members) entry.keys.add(m.key);
    toDelete.set(id, entry);
  }

  // (a) Delete markers, only on the version a manifest names. A key written again after its
  // compaction (two shippers sharing a state epoch, a node restored from a snapshot: the
  // shipper's If-None-Match only sees the current version, so after a delete marker the PUT
  // succeeds) has a current version no manifest names: it is the only copy of its bytes, so it
  // is a conflict, kept whole, never deleted. The current version comes from ListObjectVersions
  // of the hour's partition prefixes, and the DELETE carries If-Match with its ETag, so a PUT
  // between the listing and the DELETE makes it fail (412) rather than hide the new bytes
  // (conditional deletes are judged against the current version,
  // https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-deletes.html).
  const conflictCandidates: FoundHours["keptWholeCandidates"] = [];
  await forEachLimited([...toDelete.values()], SWEEP_CONCURRENCY, async (h) => {
    const start = keyHourStart(h);
    let named: Map<string, string>;
    try {
      run.requests.sweepManifestLists++;
      const read = await readHourManifests(o.s3, o.bucket, o.prefix, h.namespace, h.dt, h.hour);
      run.requests.manifestGets += read.manifests.length;
      if (read.problem !== null) throw new Error(read.problem);
      named = new Map();
      for (const m of read.manifests)
        for (const member of m.manifest.members) named.set(member.key, member.versionId ?? "null");
    } catch (error) {
      run.sweep.errors.push({
        key: compactedHourPrefix(o.prefix, h.namespace, h.dt, h.hour),
        message: `its originals are not deleted: ${(error as Error).message}`,
      });
      return;
    }
    let current: Map<string, CurrentVersion>;
    try {
      current = await currentVersionsOf(
        o,
        h,
        [...h.keys].filter((k) => named.has(k)),
        run,
      );
    } catch (error) {
      run.sweep.errors.push({
        key: compactedHourPrefix(o.prefix, h.namespace, h.dt, h.hour),
        message: `its originals are not deleted: ListObjectVersions: ${(error as Error).message}`,
      });
      return;
    }
    const conflict = (
      key: string,
      manifestVersionId: string,
      currentVersionId: string | null,
      message: string,
    ) => {
      run.sweep.conflicts.push({ key, hour: hourText(start), manifestVersionId, currentVersionId, message });
      conflictCandidates.push({ namespace: h.namespace, start, key });
    };
    for (const key of h.keys) {
      const manifestVersionId = named.get(key);
      if (manifestVersionId === undefined) continue;
      const latest = current.get(key);
      if (latest === undefined) continue; // deleted (a delete marker) since the listing
      if (latest.versionId !== manifestVersionId) {
        conflict(
          key,
          manifestVersionId,
          latest.versionId,
          `its current version ${latest.versionId} is not the version ${manifestVersionId} a committed manifest names (written again after compaction): not deleted, kept whole`,
        );
        continue;
      }
      if (o.dryRun !== true) {
        try {
          run.requests.deletes++;
          // No VersionId: a delete marker. The locked version stays until its retention ends
          // and the tier rules' NoncurrentVersionExpiration removes it.
          await o.s3.send(new DeleteObjectCommand({ Bucket: o.bucket, Key: key, IfMatch: latest.etag }));
        } catch (error) {
          const status = httpStatus(error);
          if (status === 404) continue; // deleted since the version listing
          if (status === 412) {
            conflict(
              key,
              manifestVersionId,
              null,
              "written again between the version listing and the delete (If-Match failed): not deleted, kept whole",
            );
            continue;
          }
          run.sweep.errors.push({ key, message: `DeleteObject: ${(error as Error).message}` });
          continue;
        }
      }
      run.sweep.deleted++;
    }
  });

  // (b) The full lock for originals kept whole.
  const lockMs = (o.lockDays ?? 0) * 24 * HOUR_MS;
  // A conflict first (it may also be a candidate of the enumeration), each key once.
  const candidates = new Map<string, FoundHours["keptWholeCandidates"][number]>();
  for (const c of [...conflictCandidates, ...keptWholeCandidates.filter((k) => !committedNow.has(k.key))]) {
    if (!candidates.has(c.key)) candidates.set(c.key, c);
  }
  await forEachLimited([...candidates.values()], SWEEP_CONCURRENCY, async (c) => {
    const kept: KeptWhole = {
      key: c.key,
      hour: hourText(c.start),
      landingEnds: new Date(c.start + HOUR_MS + (o.landingDays ?? 0) * 24 * HOUR_MS).toISOString(),
      action: "already",
      retainUntil: null,
      mode: null,
    };
    try {
      run.requests.heads++;
      // ListObjectsV2 gives no lock fields; the HEAD gives the version, its LastModified, mode
      // and retain-until: enough to never shorten a retention and to keep the mode it has
      // (a COMPLIANCE lock cannot be changed to GOVERNANCE, and the bucket default's mode is
      // what the original already carries), so no --lock-mode flag is needed.
      const head = await o.s3.send(new HeadObjectCommand({ Bucket: o.bucket, Key: c.key }));
      const current = head.ObjectLockRetainUntilDate?.getTime() ?? null;
      kept.mode = head.ObjectLockMode ?? null;
      kept.retainUntil = current === null ? null : new Date(current).toISOString();
      if (head.ObjectLockMode === undefined || current === null) {
        kept.action = "no-retention";
        run.sweep.errors.push({
          key: c.key,
          message:
            "keeping it whole: its HEAD shows no Object Lock retention (the role lacks s3:GetObjectRetention, or the object is not locked), though --lock-days says Object Lock is expected",
        });
      } else {
        const target = (head.LastModified ?? now).getTime() + lockMs;
        if (current < target) {
          if (o.dryRun !== true) {
            run.requests.retentionPuts++;
            await o.s3.send(
              new PutObjectRetentionCommand({
                Bucket: o.bucket,
                Key: c.key,
                ...(head.VersionId === undefined ? {} : { VersionId: head.VersionId }),
                Retention: { Mode: head.ObjectLockMode, RetainUntilDate: new Date(target) },
              }),
            );
          }
          kept.action = "extended";
          kept.retainUntil = new Date(target).toISOString();
        }
      }
    } catch (error) {
      if (httpStatus(error) === 404) kept.action = "gone";
      else {
        run.sweep.errors.push({ key: c.key, message: `keeping it whole: ${(error as Error).message}` });
        return;
      }
    }
    run.sweep.keptWhole.push(kept);
  });
  run.sweep.keptWhole.sort((a, b) => compareText(a.key, b.key));
  run.sweep.conflicts.sort((a, b) => compareText(a.key, b.key));
}

function httpStatus(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

interface CurrentVersion {
  versionId: string;
  etag: string;
}

/**
 * The current version of each of `keys` (one namespace-hour's originals), from compact.ts's
 * currentVersions over each tier's partition prefix of the hour (ListObjectVersions, a page per
 * 1,000 versions and delete markers); a key whose current version is a delete marker is absent.
 */
async function currentVersionsOf(
  o: Pick<PendingOptions, "s3" | "bucket" | "prefix">,
  h: NamespaceHour,
  keys: string[],
  run: PendingRun,
): Promise<Map<string, CurrentVersion>> {
  const wanted = new Set(keys);
  const prefixes = new Set<string>();
  for (const key of keys)
    prefixes.add(partitionPrefix(o.prefix, parseObjectKey(key).tier, h.namespace, h.dt, h.hour));
  const found = new Map<string, CurrentVersion>();
  for (const prefix of prefixes) {
    const versions = await currentVersions(o.s3, o.bucket, prefix, () => run.requests.sweepVersionLists++);
    for (const v of versions) {
      if (wanted.has(v.key)) found.set(v.key, { versionId: v.versionId, etag: v.etag ?? "" });
    }
  }
  return found;
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Keys under `prefix` after `startAfter` (exclusive), page by page; the caller stops early by
 * leaving the loop, so pages past the window are never asked for.
 */
async function* listFrom(
  o: Pick<PendingOptions, "s3" | "bucket">,
  prefix: string,
  startAfter: string,
  run: PendingRun,
): AsyncGenerator<string> {
  let token: string | undefined;
  do {
    run.requests.lists++;
    const page = await o.s3.send(
      new ListObjectsV2Command({
        Bucket: o.bucket,
        Prefix: prefix,
        ...(token === undefined ? { StartAfter: startAfter } : { ContinuationToken: token }),
      }),
    );
    for (const object of page.Contents ?? []) if (object.Key !== undefined) yield object.Key;
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
}

interface IndexHoursOptions {
  s3: S3Client;
  bucket: string;
  prefix: string;
  marginHours: number;
  /** The run's request counts, which each index hour's reads are added to. */
  counts: PendingRun["requests"];
  /** Which index entries to keep: those of the pending namespace-hours. */
  keep: (namespace: string, recordsHourStart: number) => boolean;
}

/**
 * Each index hour read once and shared: need() counts the pending records' hours that will use
 * it, readingFor() reads what a records' hour needs (H-1 to H+margin, as readCompactionIndexes),
 * release() drops what no hour still needs.
 */
class IndexHours {
  readonly #hours = new Map<number, Promise<IndexHourSummary>>();
  readonly #users = new Map<number, number>();
  readonly #o: IndexHoursOptions;
  constructor(o: IndexHoursOptions) {
    this.#o = o;
  }

  #span(recordsHour: number): number[] {
    const hours: number[] = [];
    for (let h = recordsHour - HOUR_MS; h <= recordsHour + this.#o.marginHours * HOUR_MS; h += HOUR_MS)
      hours.push(h);
    return hours;
  }

  need(recordsHour: number): void {
    for (const h of this.#span(recordsHour)) this.#users.set(h, (this.#users.get(h) ?? 0) + 1);
  }

  release(recordsHour: number): void {
    for (const h of this.#span(recordsHour)) {
      const left = (this.#users.get(h) ?? 1) - 1;
      this.#users.set(h, left);
      if (left === 0) this.#hours.delete(h);
    }
  }

  async readingFor(recordsHour: number): Promise<CompactionIndexes> {
    return { hours: await Promise.all(this.#span(recordsHour).map((h) => this.#hour(h))) };
  }

  #hour(start: number): Promise<IndexHourSummary> {
    let reading = this.#hours.get(start);
    if (reading === undefined) {
      reading = (async () => {
        const r = await readIndexHourSummary(this.#o, start, this.#o.keep);
        this.#o.counts.indexLists += r.listCalls;
        this.#o.counts.indexGets += r.getCalls;
        return r;
      })();
      // Awaited by every hour that needs it; a failure is reported there, not as unhandled.
      reading.catch(() => {});
      this.#hours.set(start, reading);
    }
    return reading;
  }
}
