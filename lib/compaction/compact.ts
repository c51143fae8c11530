// Compaction of one namespace-hour (issue 9; design: docs/design/compaction.md): the hour's
// archive objects from every node, in key order, concatenated byte for byte into parts of at
// most partMaxBytes under the compacted segment (lib/keys/layout.ts), then a manifest
// (lib/object/compaction-manifest.ts) written last, whose existence commits them.
//
// A gzip file is a series of members (RFC 1952 §2.2, https://www.rfc-editor.org/rfc/rfc1952#section-2.2),
// so a part is itself a gzip file whose inflation is its members' inflations in order.
//
// The write order, so that no complete part is ever outside a written plan (Athena's
// compacted table reads every `.ndjson.gz` under the compacted prefix and cannot see
// manifests, docs/queries.md#reads-and-compaction):
//   a. every part of the generation is uploaded as a multipart upload (part-writer.ts; not
//      visible until completed), each member's bytes checked against its SHA-256 as they stream;
//   b. if any original is refused, every upload of the run is aborted: nothing becomes visible;
//   c. the plan (`plan-<GGGG>.json`, lib/keys/layout.ts) is written with If-None-Match: * : the
//      manifest-to-be, byte for byte, naming the generation's members and their parts;
//   d. the uploads are completed (the parts become visible, each named by the plan);
//   e. the manifest, last, with the plan's bytes: its existence commits the generation.
// A run that finds a plan of the next generation without its manifest completes THAT plan
// (batches that arrived since wait for the following generation): a part already stored whole
// is verified and kept, any other is uploaded again from its originals, then the manifest is
// written. So a crash at any step leaves either nothing visible (incomplete uploads, removed by
// the bucket's AbortIncompleteMultipartUpload rule) or parts that a written plan names and the
// next run commits.
//
// Safe to re-run at any point:
// - the members and their order follow from the listing (key order), the manifests already
//   committed (their members are not taken again) and partMaxBytes, so a re-run plans the same
//   parts, under the same keys (a part's key carries the digest of its member plan);
// - the plan and the manifest are the same bytes for the same facts, written with
//   If-None-Match: * (S3's conditional write,
//   https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html: 412 when the
//   key exists); a 412 is success when the stored object has our bytes and a conflict
//   otherwise, so there is never a second plan or manifest of a generation.
//
// An original is refused, and the hour is not committed, when its metadata is missing or
// unreadable or its stored bytes do not hash to the metadata's SHA-256: a manifest without it
// would hide its lines from readers that use manifests, and copying it would pass off bytes the
// shipper never checksummed; also when it is gone (a 404 between the listing and its HEAD or
// GET: deleted, or expired). The refusal names each one; the run does not fail for it.
//
// Requests per original: one GET. A part's key names its members' key, version, SHA-256 and
// length (partPlanDigest) and is needed before its first upload part, so those four must be
// known before any original is read: the version and length come from the hour's listing
// (ListObjectVersions), the SHA-256 from the node's hour index. The rest of the metadata
// (batch, records, first and last record times, and the SHA-256 again) comes with the GET
// itself: S3 returns an object's user metadata (x-amz-meta-*) as headers of the GetObject
// response (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html; HeadObject's
// page: "The response is identical to the GET response except that there is no response body",
// https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html). Each is checked there,
// before a byte of the original is written: the metadata parses, names the key's batch, and
// gives the index's SHA-256; the bytes hash to it. A HEAD is sent only where no index gives
// the SHA-256 (--no-index-check, a node without indexes), in a dry run (it reads no body), and
// for the members of a part kept from an earlier run (no GET of them).

import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import {
  GetObjectCommand,
  HeadObjectCommand,
  type HeadObjectCommandOutput,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { forEachLimited } from "../../functions/loader/state.ts";
import {
  batchId,
  formatCompactedPartKey,
  formatCompactionManifestKey,
  formatCompactionPlanKey,
  MAX_COMPACTED_PART,
  MAX_COMPACTION_GENERATION,
  type ObjectKey,
  parseObjectKey,
  partitionPrefix,
} from "../keys/layout.ts";
import { longLivedTiers } from "../keys/tiers.ts";
import {
  COMPACTED_PART_KIND,
  COMPACTION_MANIFEST_FORMAT,
  COMPACTION_MANIFEST_KIND,
  COMPACTION_MANIFEST_VERSION,
  type CompactedPart,
  type CompactionManifest,
  type CompactionMember,
  compareKeys,
  encodeCompactionManifest,
  manifestHour,
  parseCompactionManifest,
  partPlanDigest,
} from "../object/compaction-manifest.ts";
import { fromUserMetadata, METADATA_PREFIX, type ObjectMetadata } from "../object/metadata.ts";
import { listObjectPages, listPrefixVersions, type PrefixVersion, versionParam } from "../retrieval/find.ts";
import { DEFAULT_PART_MAX_BYTES, DEFAULT_SETTLE_MS, DEFAULT_UPLOAD_CHUNK_BYTES } from "./defaults.ts";
import { CompactionError, checkHourSettled, HourNotSettledError, hourStartMs } from "./hour.ts";
import { readHourManifests } from "./manifests.ts";
import { MIN_UPLOAD_PART_BYTES, PartWriter } from "./part-writer.ts";
import {
  type CompactionIndexes,
  checkHourIndexes,
  DEFAULT_INDEX_MARGIN_HOURS,
  type LaterIndexes,
} from "./readiness.ts";

export {
  CompactionError,
  checkHourSettled,
  DEFAULT_PART_MAX_BYTES,
  DEFAULT_SETTLE_MS,
  HourNotSettledError,
  hourStartMs,
};

/** Originals fetched ahead of the one being appended (each at most the shipper's batch size in memory). */
const PREFETCH = 4;
/** HeadObject calls in flight at once. */
const HEAD_CONCURRENCY = 16;

export interface CompactOptions {
  s3: S3Client;
  bucket: string;
  /** The archive's key prefix (the policy's archive.prefix). */
  prefix: string;
  namespace: string;
  /** UTC date and hour of the records, YYYY-MM-DD and 00-23. */
  dt: string;
  hour: string;
  /** Largest part; a member larger than this gets a part of its own. Default DEFAULT_PART_MAX_BYTES. */
  partMaxBytes?: number;
  /** How long after the hour's end it may be compacted. Default DEFAULT_SETTLE_MS. */
  settleMs?: number;
  /** The clock the settle delay is judged on. */
  now?: () => Date;
  /**
   * Whether the shippers' hour indexes must agree the hour is complete (lib/compaction/readiness.ts):
   * default true. Off, only the settle delay decides.
   */
  indexCheck?: boolean;
  /** Hours after the records' hour whose indexes are read. Default DEFAULT_INDEX_MARGIN_HOURS. */
  indexMarginHours?: number;
  /**
   * The hour's indexes read once for every namespace (readCompactionIndexes), or how to get them
   * (compactPending's shared reading, asked for only once the hour's listing needs them); read
   * per call when absent.
   */
  indexReading?: CompactionIndexes | (() => Promise<CompactionIndexes>);
  /** Single nodes' later index hours, shared by a run's namespace-hours (compactPending); per call when absent. */
  laterIndexes?: LaterIndexes;
  /** Plan only: list, HEAD every original and report the parts; read no body, write nothing. */
  dryRun?: boolean;
  /** Upload part size of the parts' multipart uploads (≥ 5 MiB). Default DEFAULT_UPLOAD_CHUNK_BYTES. */
  uploadChunkBytes?: number;
  /** Written in the manifest's and parts' object metadata, not in the manifest body (which must not depend on it). */
  toolVersion?: string;
}

/** An original not compacted, and why. */
export interface RefusedOriginal {
  key: string;
  versionId: string | null;
  reason: string;
}

export interface PlannedPart {
  part: number;
  key: string;
  bytes: number;
  members: number;
  /** Set after the run: completed now, kept from an earlier run, or not written (dry run, refusal). */
  outcome: "written" | "kept" | "not-written";
}

export interface CompactionOutcome {
  /**
   * committed: a new generation's manifest is stored (by this run, or found with these exact
   * bytes from an interrupted one); up-to-date: every original is in a committed generation;
   * empty: the hour has no archive object; planned: a dry run; refused: an original failed
   * verification, nothing committed; not-ready: the hour indexes say batches of the hour are
   * missing or may still arrive (notReady says which), nothing read or written.
   */
  status: "committed" | "up-to-date" | "empty" | "planned" | "refused" | "not-ready";
  namespace: string;
  hour: string;
  /** The generation planned or committed; for up-to-date and empty, the next one. */
  generation: number;
  manifestKey: string | null;
  /** The generation's plan (lib/keys/layout.ts formatCompactionPlanKey), once planned. */
  planKey: string | null;
  /**
   * Whether this run completed a plan an interrupted run had written (its members, not a new
   * listing's: originals that arrived since wait for the next generation).
   */
  resumedPlan: boolean;
  /** The manifest committed (status committed), else null. */
  manifest: CompactionManifest | null;
  /** Whether this run's PUT created the manifest (false when an earlier run had stored the same bytes). */
  manifestWritten: boolean;
  /** The originals planned into parts, in key order. */
  members: { key: string; versionId: string | null; bytes: number; records: number; part: number }[];
  parts: PlannedPart[];
  refused: RefusedOriginal[];
  /** Originals already in earlier generations' manifests. */
  alreadyCompacted: number;
  /** Keys under the hour's tier prefixes that are not archive objects of this hour (never read). */
  ignored: string[];
  /** Why the hour is not ready, from the hour indexes (status not-ready). */
  notReady: string[];
  /**
   * Hour indexes read (0 with indexCheck off), those found unusable, `<node> <epoch>` of nodes
   * with batches but no index read, and GETs of single nodes' later index hours (readiness.ts).
   */
  indexes: {
    read: number;
    unusable: { key: string; problem: string }[];
    unindexedNodes: string[];
    laterGets: number;
  };
}

/** An original as listed: its current version and size. */
interface Listed {
  key: string;
  parsed: ObjectKey;
  versionId: string | null;
  bytes: number;
}

interface Candidate extends Listed {
  sha256: string;
  /** From a HEAD; null when the GET's own headers give it (the SHA-256 came from the hour index). */
  metadata: ObjectMetadata | null;
}

export async function compactNamespaceHour(o: CompactOptions): Promise<CompactionOutcome> {
  const partMaxBytes = o.partMaxBytes ?? DEFAULT_PART_MAX_BYTES;
  if (!Number.isSafeInteger(partMaxBytes) || partMaxBytes < 1) {
    throw new CompactionError(`partMaxBytes ${partMaxBytes} is not a positive whole number of bytes`);
  }
  const chunkBytes = o.uploadChunkBytes ?? DEFAULT_UPLOAD_CHUNK_BYTES;
  if (chunkBytes < MIN_UPLOAD_PART_BYTES) {
    throw new CompactionError(`uploadChunkBytes ${chunkBytes} is under S3's 5 MiB minimum upload part`);
  }
  checkHourSettled(o.dt, o.hour, o.settleMs ?? DEFAULT_SETTLE_MS, (o.now ?? (() => new Date()))());
  const hour = manifestHour(o);

  // 1. What earlier generations committed.
  const read = await readHourManifests(o.s3, o.bucket, o.prefix, o.namespace, o.dt, o.hour);
  if (read.problem !== null) throw new CompactionError(`${o.namespace} ${hour}: ${read.problem}`);
  const committed = read.manifests;
  const generation = committed.length;
  const compactedKeys = new Set(committed.flatMap((c) => c.manifest.members.map((m) => m.key)));
  const outcome: CompactionOutcome = {
    status: "empty",
    namespace: o.namespace,
    hour,
    generation,
    manifestKey: null,
    planKey: null,
    resumedPlan: false,
    manifest: null,
    manifestWritten: false,
    members: [],
    parts: [],
    refused: [],
    alreadyCompacted: 0,
    ignored: [],
    notReady: [],
    indexes: { read: 0, unusable: [], unindexedNodes: [], laterGets: 0 },
  };
  if (generation > MAX_COMPACTION_GENERATION) {
    throw new CompactionError(
      `hour ${hour} of ${o.namespace} already has ${generation} generations, the most keys hold`,
    );
  }
  const hourKey = { prefix: o.prefix, namespace: o.namespace, dt: o.dt, hour: o.hour, generation };
  const manifestKey = formatCompactionManifestKey(hourKey);
  const planKey = formatCompactionPlanKey(hourKey);
  const toolMetadata: Record<string, string> =
    o.toolVersion === undefined ? {} : { [`${METADATA_PREFIX}tool`]: o.toolVersion };
  const work: PlanWork = { o, chunkBytes, toolMetadata, manifestKey, planKey, outcome };

  // 2. A plan an interrupted run wrote for this generation: completed as it is.
  const storedPlan = await readObjectOrNull(o.s3, o.bucket, planKey);
  if (storedPlan !== null) {
    return await completeStoredPlan(work, storedPlan, committed.at(-1)?.sha256 ?? null);
  }

  // 3. The hour's originals in every long-lived tier, less those already compacted, in key
  // order: each key's current version and its size (ListObjectVersions; on an unversioned
  // bucket every object once, version "null"). A key whose current version is a delete marker
  // is gone, as ListObjectsV2 would not list it.
  const listed: Listed[] = [];
  for (const tier of longLivedTiers()) {
    const prefix = partitionPrefix(o.prefix, tier, o.namespace, o.dt, o.hour);
    for (const current of await currentVersions(o.s3, o.bucket, prefix)) {
      let parsed: ObjectKey;
      try {
        parsed = parseObjectKey(current.key);
      } catch {
        outcome.ignored.push(current.key);
        continue;
      }
      if (compactedKeys.has(current.key)) {
        outcome.alreadyCompacted++;
        continue;
      }
      listed.push({
        key: current.key,
        parsed,
        versionId: current.versionId === "null" ? null : current.versionId,
        bytes: current.size,
      });
    }
  }
  listed.sort((a, b) => compareKeys(a.key, b.key));
  if (listed.length === 0) {
    outcome.status = committed.length > 0 ? "up-to-date" : "empty";
    return outcome;
  }
  let indexedSha256 = new Map<string, string>();
  // An empty original is refused from the listing alone, and the hour cannot be committed: its
  // hour indexes (H-1 to H+margin, one GET per node and hour) are not read for it, and every
  // original is HEADed instead (step 4), so each bad one is named at once. A hour stuck on it is
  // retried every run at the cost of its LIST and HEADs, not of its index hours.
  const refusedByListing = listed.some((l) => l.bytes === 0);
  if (o.indexCheck !== false && !refusedByListing) {
    const reading = typeof o.indexReading === "function" ? await o.indexReading() : o.indexReading;
    const readiness = await checkHourIndexes({
      ...o,
      listed,
      compacted: compactedKeys,
      marginHours: o.indexMarginHours ?? DEFAULT_INDEX_MARGIN_HOURS,
      ...(reading === undefined ? {} : { reading }),
      ...(o.laterIndexes === undefined ? {} : { laterIndexes: o.laterIndexes }),
      now: (o.now ?? (() => new Date()))(),
    });
    outcome.indexes = {
      read: readiness.indexesRead,
      unusable: readiness.unusable,
      unindexedNodes: readiness.unindexedNodes,
      laterGets: readiness.laterIndexGets,
    };
    indexedSha256 = readiness.indexedSha256;
    if (!readiness.ready) {
      outcome.status = "not-ready";
      outcome.notReady = readiness.blocking;
      return outcome;
    }
  }

  // 4. Each original's SHA-256 before any is read (the part keys name it): from its node's hour
  // index, checked against the metadata the GET returns (step 6); where no index gives it, and
  // in a dry run, from a HEAD of the listed version, checked here. One deleted or expired since
  // the listing (404) is refused by name, like any original that cannot be copied.
  const headed = listed.filter((l) => o.dryRun === true || !indexedSha256.has(l.key));
  const heads = new Map<string, HeadObjectCommandOutput | null>();
  await forEachLimited(headed, HEAD_CONCURRENCY, async (l) => {
    heads.set(l.key, await headOriginal(o.s3, o.bucket, l));
  });
  const candidates: Candidate[] = [];
  for (const l of listed) {
    const { key, versionId } = l;
    if (l.bytes === 0) {
      outcome.refused.push({
        key,
        versionId,
        reason: "the object is empty: an archive object is at least one gzip member",
      });
      continue;
    }
    const indexed = indexedSha256.get(key);
    if (!heads.has(key)) {
      candidates.push({ ...l, sha256: indexed!, metadata: null });
      continue;
    }
    const head = heads.get(key)!;
    if (head === null) {
      outcome.refused.push({ key, versionId, reason: VANISHED });
      continue;
    }
    const metadata = readMetadata(l, head.Metadata, indexed);
    if (typeof metadata === "string") {
      outcome.refused.push({ key, versionId, reason: metadata });
      continue;
    }
    candidates.push({ ...l, bytes: head.ContentLength ?? l.bytes, sha256: metadata.sha256, metadata });
  }

  // 5. The plan: members in key order, a new part when the next would pass partMaxBytes.
  const members: CompactionMember[] = [];
  /** Members whose metadata the GET (or, for a kept part, a HEAD) has still to give. */
  const unread = new Set<CompactionMember>();
  const parts: PlannedMembers[] = [];
  for (const c of candidates) {
    let current = parts.at(-1);
    if (current === undefined || (current.bytes + c.bytes > partMaxBytes && current.members.length > 0)) {
      if (parts.length > MAX_COMPACTED_PART)
        throw new CompactionError(
          `hour ${hour} of ${o.namespace} needs more than ${MAX_COMPACTED_PART + 1} parts: raise partMaxBytes`,
        );
      current = { members: [], bytes: 0 };
      parts.push(current);
    }
    const member: CompactionMember = {
      key: c.key,
      versionId: c.versionId,
      tier: c.parsed.tier,
      node: c.parsed.node,
      epoch: c.parsed.epoch,
      seq: c.parsed.seq,
      part: parts.length - 1,
      offset: current.bytes,
      length: c.bytes,
      sha256: c.sha256,
      // Until the GET's metadata fills them (step 6): never written in a plan or manifest unfilled.
      records: c.metadata?.records ?? 0,
      firstTimestamp: c.metadata?.firstTimestamp ?? "",
      lastTimestamp: c.metadata?.lastTimestamp ?? "",
    };
    if (c.metadata === null) unread.add(member);
    current.members.push(member);
    current.bytes += c.bytes;
    members.push(member);
  }
  const partKeys = parts.map((p, i) =>
    formatCompactedPartKey({ ...hourKey, part: i, plan: partPlanDigest(p.members) }),
  );
  describePlan(outcome, members, parts, partKeys);
  outcome.manifestKey = manifestKey;
  outcome.planKey = planKey;
  if (o.dryRun) {
    outcome.status = outcome.refused.length > 0 ? "refused" : "planned";
    return outcome;
  }
  if (outcome.refused.length > 0) {
    outcome.status = "refused";
    return outcome;
  }

  // 6. (a) Every part uploaded, not completed; (b) on a refusal, every upload aborted.
  const written: CompactedPart[] = [];
  const writers: (PartWriter | null)[] = [];
  try {
    for (const [i, part] of parts.entries()) {
      const key = partKeys[i]!;
      // A part stored whole under its key (by a run that completed it before writing a plan,
      // as this code did before plans): kept, and named by the plan below.
      const kept = await keepStoredPart(o.s3, o.bucket, key, part);
      if (kept !== null) {
        // Its members' metadata from a HEAD each: nothing of them is read by GET.
        await headMembers(o.s3, o.bucket, part, unread, outcome.refused);
        written.push(describePart(i, key, part, kept));
        outcome.parts[i]!.outcome = "kept";
        writers.push(null);
        continue;
      }
      // After a refusal the rest are still read and checked (every bad original is named at
      // once) but not uploaded.
      const writer = outcome.refused.length > 0 ? null : newWriter(work, key, part);
      writers.push(writer);
      const sha = await streamPart(o.s3, o.bucket, part, writer, unread, outcome.refused);
      if (sha !== null) written.push(describePart(i, key, part, sha));
    }
    describeMembers(outcome, members);
    if (outcome.refused.length > 0) {
      await abortAll(writers);
      outcome.status = "refused";
      return outcome;
    }

    // (c) The plan; (d) the parts made visible; (e) the manifest.
    if (unread.size > 0) {
      throw new CompactionError(
        `${o.namespace} ${hour}: ${unread.size} member(s) planned without their metadata read (a bug)`,
      );
    }
    const manifest = manifestOf(o, hour, generation, committed.at(-1)?.sha256 ?? null, written, members);
    const body = encodeCompactionManifest(manifest);
    const planWritten = await putOnce(o.s3, o.bucket, planKey, body, planMetadata(toolMetadata), "plan");
    for (const [i, writer] of writers.entries()) {
      if (writer === null) continue;
      // A twin run stored the same plan first: a part it already completed is those bytes
      // (its key names the members), so this run's upload of it is dropped, not made a second version.
      if (!planWritten && (await storedSize(o.s3, o.bucket, writer.key)) === parts[i]!.bytes) {
        await writer.abort();
        outcome.parts[i]!.outcome = "kept";
        continue;
      }
      await writer.complete();
      await checkStoredSize(o.s3, o.bucket, writer.key, parts[i]!.bytes);
      outcome.parts[i]!.outcome = "written";
    }
    outcome.manifestWritten = await putOnce(
      o.s3,
      o.bucket,
      manifestKey,
      body,
      manifestMetadata(toolMetadata),
      "manifest",
    );
    outcome.manifest = manifest;
    outcome.status = "committed";
    return outcome;
  } catch (error) {
    await abortAll(writers);
    throw error;
  }
}

function describeMembers(outcome: CompactionOutcome, members: readonly CompactionMember[]): void {
  outcome.members = members.map((m) => ({
    key: m.key,
    versionId: m.versionId,
    bytes: m.length,
    records: m.records,
    part: m.part,
  }));
}

/**
 * Every key's current version under `prefix`, in key order: the version ListObjectVersions
 * marks latest; on a store that marks none (an unversioned one may not), a key's only version.
 * Keys whose current version is a delete marker are left out. `onPage` runs before each list
 * request (for a caller's request counts).
 */
export async function currentVersions(
  s3: S3Client,
  bucket: string,
  prefix: string,
  onPage?: () => void,
): Promise<PrefixVersion[]> {
  const byKey = new Map<string, PrefixVersion[]>();
  try {
    for await (const v of listPrefixVersions(s3, bucket, prefix, onPage)) {
      byKey.set(v.key, [...(byKey.get(v.key) ?? []), v]);
    }
  } catch (error) {
    // A store without ListObjectVersions (s3rver, the plain local S3, answers 405
    // MethodNotAllowed) keeps no versions: every object is its only version, "null".
    const status = httpStatus(error);
    if ((status !== 405 && status !== 501) || byKey.size > 0) throw error;
    for await (const page of listObjectPages(s3, bucket, prefix)) {
      onPage?.();
      for (const object of page) {
        if (object.Key === undefined) continue;
        byKey.set(object.Key, [
          {
            key: object.Key,
            versionId: "null",
            isLatest: true,
            isDeleteMarker: false,
            size: object.Size ?? 0,
            etag: object.ETag ?? null,
            lastModified: object.LastModified?.toISOString() ?? null,
          },
        ]);
      }
    }
  }
  const current: PrefixVersion[] = [];
  for (const [, versions] of byKey) {
    const latest = versions.find((v) => v.isLatest) ?? (versions.length === 1 ? versions[0] : undefined);
    if (latest !== undefined && !latest.isDeleteMarker) current.push(latest);
  }
  return current.sort((a, b) => compareKeys(a.key, b.key));
}

/** HeadObject of the listed version; null when it is gone (404). */
async function headOriginal(
  s3: S3Client,
  bucket: string,
  l: Pick<Listed, "key" | "versionId">,
): Promise<HeadObjectCommandOutput | null> {
  try {
    return await s3.send(
      new HeadObjectCommand({ Bucket: bucket, Key: l.key, ...versionParam(l.versionId ?? "null") }),
    );
  } catch (error) {
    if (httpStatus(error) !== 404) throw error;
    return null;
  }
}

/**
 * An original's contract metadata from a HEAD's or GET's headers, or why it may not be copied:
 * missing or unreadable, naming another batch than its key, or a SHA-256 other than its node's
 * hour index gives.
 */
function readMetadata(
  l: Pick<Listed, "parsed">,
  headers: Record<string, string> | undefined,
  indexedSha256: string | undefined,
): ObjectMetadata | string {
  let metadata: ObjectMetadata;
  try {
    metadata = fromUserMetadata(headers ?? {});
  } catch (error) {
    return (error as Error).message;
  }
  const expectedBatch = batchId(l.parsed);
  if (metadata.batchId !== expectedBatch)
    return `metadata batch ${metadata.batchId} is not the key's ${expectedBatch}`;
  if (indexedSha256 !== undefined && indexedSha256 !== metadata.sha256)
    return `its metadata says sha256 ${metadata.sha256}, its node's hour index says ${indexedSha256}`;
  return metadata;
}

/**
 * Checks the metadata an original's GET (or HEAD) returned against its member: an unread
 * member (its SHA-256 from the index) takes records and times from it; one planned from
 * metadata already (a HEAD, a stored plan) must be given the same. Null when it may be copied.
 */
function takeMetadata(
  member: CompactionMember,
  headers: Record<string, string> | undefined,
  unread: Set<CompactionMember>,
): string | null {
  const parsed = parseObjectKey(member.key);
  const metadata = readMetadata({ parsed }, headers, unread.has(member) ? member.sha256 : undefined);
  if (typeof metadata === "string") return metadata;
  if (unread.has(member)) {
    member.records = metadata.records;
    member.firstTimestamp = metadata.firstTimestamp;
    member.lastTimestamp = metadata.lastTimestamp;
    unread.delete(member);
    return null;
  }
  for (const field of ["sha256", "records", "firstTimestamp", "lastTimestamp"] as const) {
    if (metadata[field] !== member[field])
      return `its metadata says ${field} ${metadata[field]}, planned from its metadata as ${member[field]}`;
  }
  return null;
}

/** A HEAD of each unread member of a part kept from an earlier run, its metadata checked and taken. */
async function headMembers(
  s3: S3Client,
  bucket: string,
  part: PlannedMembers,
  unread: Set<CompactionMember>,
  refused: RefusedOriginal[],
): Promise<void> {
  for (const member of part.members) {
    if (!unread.has(member)) continue;
    const head = await headOriginal(s3, bucket, member);
    const problem = head === null ? VANISHED : takeMetadata(member, head.Metadata, unread);
    if (problem !== null) refused.push({ key: member.key, versionId: member.versionId, reason: problem });
  }
}

/** Why an original listed a moment ago cannot be copied: it is no longer there. */
const VANISHED =
  "the object is gone: listed, then HeadObject or GetObject answered 404 (deleted, or expired at the end of its landing days, since the listing)";

interface PlannedMembers {
  members: CompactionMember[];
  bytes: number;
}

interface PlanWork {
  o: CompactOptions;
  chunkBytes: number;
  toolMetadata: Record<string, string>;
  manifestKey: string;
  planKey: string;
  outcome: CompactionOutcome;
}

function newWriter(work: PlanWork, key: string, part: PlannedMembers): PartWriter {
  return new PartWriter({
    s3: work.o.s3,
    bucket: work.o.bucket,
    key,
    plannedBytes: part.bytes,
    chunkBytes: work.chunkBytes,
    metadata: {
      [`${METADATA_PREFIX}kind`]: COMPACTED_PART_KIND,
      [`${METADATA_PREFIX}members`]: String(part.members.length),
      ...work.toolMetadata,
    },
  });
}

async function abortAll(writers: readonly (PartWriter | null)[]): Promise<void> {
  await Promise.all(writers.map((w) => w?.abort()));
}

function describePlan(
  outcome: CompactionOutcome,
  members: readonly CompactionMember[],
  parts: readonly PlannedMembers[],
  partKeys: readonly string[],
): void {
  describeMembers(outcome, members);
  outcome.parts = parts.map((p, i) => ({
    part: i,
    key: partKeys[i]!,
    bytes: p.bytes,
    members: p.members.length,
    outcome: "not-written",
  }));
}

function manifestOf(
  o: CompactOptions,
  hour: string,
  generation: number,
  previousSha256: string | null,
  written: CompactedPart[],
  members: CompactionMember[],
): CompactionManifest {
  return {
    format: COMPACTION_MANIFEST_FORMAT,
    version: COMPACTION_MANIFEST_VERSION,
    namespace: o.namespace,
    hour,
    generation,
    previous: previousSha256 === null ? null : { generation: generation - 1, sha256: previousSha256 },
    parts: written,
    members,
    totals: {
      parts: written.length,
      members: members.length,
      bytes: written.reduce((n, p) => n + p.bytes, 0),
      records: written.reduce((n, p) => n + p.records, 0),
    },
  };
}

function planMetadata(tool: Record<string, string>): Record<string, string> {
  return { [`${METADATA_PREFIX}kind`]: COMPACTION_PLAN_KIND, ...tool };
}

function manifestMetadata(tool: Record<string, string>): Record<string, string> {
  return { [`${METADATA_PREFIX}kind`]: COMPACTION_MANIFEST_KIND, ...tool };
}

/** The `kind` metadata of a plan object (the manifest-to-be). */
export const COMPACTION_PLAN_KIND = "compaction-plan";

/** The stored object's size, or null when there is none. */
async function storedSize(s3: S3Client, bucket: string, key: string): Promise<number | null> {
  try {
    return (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ContentLength ?? 0;
  } catch (error) {
    if (httpStatus(error) === 404) return null;
    throw error;
  }
}

/** S3 has the completed part at its planned size before the manifest names it. */
async function checkStoredSize(s3: S3Client, bucket: string, key: string, bytes: number): Promise<void> {
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  if (head.ContentLength !== bytes) {
    throw new CompactionError(
      `part ${key} was stored with ${head.ContentLength} bytes, not the ${bytes} written`,
    );
  }
}

/**
 * Completes the plan an interrupted run wrote (its bytes are the manifest-to-be): each part
 * stored whole is kept, any other is uploaded again from its originals (checked against the
 * plan's SHA-256s) and completed, then the manifest is written with the plan's bytes.
 * Originals that arrived after the plan are left for the next generation.
 */
async function completeStoredPlan(
  work: PlanWork,
  body: Buffer,
  previousSha256: string | null,
): Promise<CompactionOutcome> {
  const { o, outcome, planKey, manifestKey } = work;
  let plan: CompactionManifest;
  try {
    plan = parseCompactionManifest(body);
  } catch (error) {
    throw new CompactionError(`plan ${planKey} is not usable: ${(error as Error).message}`);
  }
  if (
    plan.namespace !== o.namespace ||
    plan.hour !== outcome.hour ||
    plan.generation !== outcome.generation ||
    (plan.previous?.sha256 ?? null) !== previousSha256
  ) {
    throw new CompactionError(
      `plan ${planKey} describes ${plan.namespace} ${plan.hour} generation ${plan.generation}, not the hour's next generation after its committed manifests`,
    );
  }
  const parts: PlannedMembers[] = plan.parts.map((p) => ({
    members: plan.members.filter((m) => m.part === p.part),
    bytes: p.bytes,
  }));
  describePlan(
    outcome,
    plan.members,
    parts,
    plan.parts.map((p) => p.key),
  );
  outcome.planKey = planKey;
  outcome.manifestKey = manifestKey;
  outcome.resumedPlan = true;
  if (o.dryRun) {
    outcome.status = "planned";
    return outcome;
  }
  for (const [i, stored] of plan.parts.entries()) {
    const part = parts[i]!;
    const kept = await keepStoredPart(o.s3, o.bucket, stored.key, part);
    if (kept === stored.sha256) {
      outcome.parts[i]!.outcome = "kept";
      continue;
    }
    const writer = newWriter(work, stored.key, part);
    try {
      // The plan's members carry their metadata: the GET's must agree with it.
      const sha = await streamPart(o.s3, o.bucket, part, writer, new Set(), outcome.refused);
      if (sha === null) {
        await writer.abort();
        outcome.status = "refused";
        return outcome;
      }
      if (sha !== stored.sha256) {
        throw new CompactionError(
          `part ${stored.key} of plan ${planKey} was rebuilt with SHA-256 ${sha}, the plan says ${stored.sha256}`,
        );
      }
      await writer.complete();
    } catch (error) {
      await writer.abort();
      throw error;
    }
    await checkStoredSize(o.s3, o.bucket, stored.key, part.bytes);
    outcome.parts[i]!.outcome = "written";
  }
  outcome.manifestWritten = await putOnce(
    o.s3,
    o.bucket,
    manifestKey,
    body,
    manifestMetadata(work.toolMetadata),
    "manifest",
  );
  outcome.manifest = plan;
  outcome.status = "committed";
  return outcome;
}

function describePart(
  i: number,
  key: string,
  part: { members: CompactionMember[]; bytes: number },
  sha256: string,
): CompactedPart {
  return {
    part: i,
    key,
    bytes: part.bytes,
    sha256,
    members: part.members.length,
    records: part.members.reduce((n, m) => n + m.records, 0),
  };
}

/**
 * An earlier run's copy of the part, when one is stored under its key at its planned size
 * and every member's byte range hashes to that member's SHA-256 (the key names the plan, so
 * nothing else is stored there by this code): its SHA-256, read back in one streamed GET. Null
 * when there is none or it is not whole (then it is written again).
 */
async function keepStoredPart(
  s3: S3Client,
  bucket: string,
  key: string,
  part: { members: CompactionMember[]; bytes: number },
): Promise<string | null> {
  let head: HeadObjectCommandOutput;
  try {
    head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  } catch (error) {
    if (httpStatus(error) === 404) return null;
    throw error;
  }
  if (head.ContentLength !== part.bytes) return null;
  const response = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const whole = createHash("sha256");
  let member = 0;
  let memberHash = createHash("sha256");
  let memberLeft = part.members[0]!.length;
  let ok = true;
  let total = 0;
  for await (const chunk of response.Body as Readable) {
    let bytes = chunk as Buffer;
    whole.update(bytes);
    total += bytes.length;
    while (bytes.length > 0 && ok) {
      const current = part.members[member];
      if (current === undefined) {
        ok = false;
        break;
      }
      const take = Math.min(memberLeft, bytes.length);
      memberHash.update(bytes.subarray(0, take));
      bytes = bytes.subarray(take);
      memberLeft -= take;
      if (memberLeft === 0) {
        if (memberHash.digest("hex") !== current.sha256) ok = false;
        member++;
        memberHash = createHash("sha256");
        memberLeft = part.members[member]?.length ?? 0;
      }
    }
  }
  return ok && total === part.bytes && member === part.members.length ? whole.digest("hex") : null;
}

/**
 * Streams one part's originals, each read whole (one archive object: at most the shipper's
 * batch size) and checked against its SHA-256 before a byte of it is written, into `writer`,
 * and seals the upload (all its bytes uploaded, the object not yet visible). With a null
 * writer, or after a mismatch, the members are only checked, so every bad original is named
 * at once. Each refused member is added to `refused`; returns the part's SHA-256, or null when
 * a member was refused or there is no writer.
 */
async function streamPart(
  s3: S3Client,
  bucket: string,
  part: PlannedMembers,
  writer: PartWriter | null,
  unread: Set<CompactionMember>,
  refused: RefusedOriginal[],
): Promise<string | null> {
  let failed = writer === null;
  const reads = prefetched(part.members, (m) => readOriginal(s3, bucket, m));
  for (const [i, member] of part.members.entries()) {
    const read = await reads(i);
    const problem =
      read === null
        ? VANISHED
        : (takeMetadata(member, read.metadata, unread) ?? verifyOriginal(member, read.body));
    if (problem !== null || read === null) {
      refused.push({ key: member.key, versionId: member.versionId, reason: problem ?? VANISHED });
      failed = true;
      continue;
    }
    if (!failed) await writer!.write(read.body);
  }
  if (failed) return null;
  return (await writer!.seal()).sha256;
}

/**
 * The original's bytes of the version planned and the user metadata its GET returned (the
 * x-amz-meta-* response headers), or null when it is gone (404).
 */
async function readOriginal(
  s3: S3Client,
  bucket: string,
  member: CompactionMember,
): Promise<{ body: Buffer; metadata: Record<string, string> | undefined } | null> {
  try {
    const response = await s3.send(
      new GetObjectCommand({ Bucket: bucket, Key: member.key, ...versionParam(member.versionId ?? "null") }),
    );
    const body = Buffer.from((await response.Body?.transformToByteArray()) ?? new Uint8Array());
    return { body, metadata: response.Metadata };
  } catch (error) {
    if (httpStatus(error) === 404) return null;
    throw error;
  }
}

/** Why an original's bytes may not be copied, or null when they are what its metadata says. */
export function verifyOriginal(
  member: Pick<CompactionMember, "length" | "sha256">,
  body: Buffer,
): string | null {
  if (body.length !== member.length) return `read ${body.length} bytes, listed with ${member.length}`;
  const sha256 = createHash("sha256").update(body).digest("hex");
  if (sha256 !== member.sha256)
    return `sha256 mismatch: the stored bytes hash to ${sha256}, its metadata says ${member.sha256}`;
  return null;
}

/** A reader of items' results by index that keeps up to PREFETCH requests running ahead. */
function prefetched<T, R>(items: readonly T[], load: (item: T) => Promise<R>): (i: number) => Promise<R> {
  const started = new Map<number, Promise<R>>();
  const start = (i: number) => {
    if (i < items.length && !started.has(i)) {
      const p = load(items[i]!);
      // Awaited in order below; a rejection before its turn must not be reported as unhandled.
      p.catch(() => {});
      started.set(i, p);
    }
  };
  return (i: number) => {
    for (let j = i; j <= i + PREFETCH; j++) start(j);
    const p = started.get(i)!;
    started.delete(i);
    return p;
  };
}

/**
 * PUTs a plan or manifest unless the key exists (If-None-Match: *). True when this PUT stored
 * it, false when the same bytes were already there (an earlier or concurrent run of the same
 * facts); throws when other bytes are there. A store without conditional writes (501) gets a
 * read first and a plain PUT.
 */
async function putOnce(
  s3: S3Client,
  bucket: string,
  key: string,
  body: Buffer,
  metadata: Record<string, string>,
  what: "plan" | "manifest",
): Promise<boolean> {
  const put = (conditional: boolean) =>
    s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: body,
        ContentLength: body.length,
        ContentType: "application/json",
        ChecksumSHA256: createHash("sha256").update(body).digest("base64"),
        Metadata: metadata,
        ...(conditional ? { IfNoneMatch: "*" } : {}),
      }),
    );
  const sameOrConflict = (stored: Buffer): false => {
    if (stored.equals(body)) return false;
    throw new CompactionError(
      `${what} ${key} already exists with other content: another compaction of this hour ${what === "plan" ? "planned" : "committed"} a different set of originals`,
    );
  };
  try {
    await put(true);
    return true;
  } catch (error) {
    const status = httpStatus(error);
    // 409 ConditionalRequestConflict: a concurrent write of the key; what it stored decides.
    if (status === 412 || status === 409) {
      const stored = await readObjectOrNull(s3, bucket, key);
      if (stored === null) throw error;
      return sameOrConflict(stored);
    }
    if (status !== 501) throw error;
  }
  const stored = await readObjectOrNull(s3, bucket, key);
  if (stored !== null) return sameOrConflict(stored);
  await put(false);
  return true;
}

/** The object's bytes, or null when there is none (404). */
async function readObjectOrNull(s3: S3Client, bucket: string, key: string): Promise<Buffer | null> {
  try {
    const response = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from((await response.Body?.transformToByteArray()) ?? new Uint8Array());
  } catch (error) {
    if (httpStatus(error) === 404) return null;
    throw error;
  }
}

function httpStatus(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}
