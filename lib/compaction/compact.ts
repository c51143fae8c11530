// Compaction of one namespace-hour (issue 9; design: docs/design/compaction.md): the hour's
// archive objects from every node, in key order, concatenated byte for byte into parts of at
// most partMaxBytes under the compacted segment (lib/keys/layout.ts), then a manifest
// (lib/object/compaction-manifest.ts) written last, whose existence commits them.
//
// A gzip file is a series of members (RFC 1952 §2.2, https://www.rfc-editor.org/rfc/rfc1952#section-2.2),
// so a part is itself a gzip file whose inflation is its members' inflations in order.
//
// Safe to re-run at any point:
// - the members and their order follow from the listing (key order), the manifests already
//   committed (their members are not taken again) and partMaxBytes, so a re-run plans the same
//   parts, under the same keys (a part's key carries the digest of its member plan);
// - a part already stored under its key is read back and kept when every member's byte range
//   hashes to that member's SHA-256, instead of being written again (on a bucket with Object
//   Lock every version written stays for the retention, so a rewrite would be paid for a year);
// - the manifest is the same bytes for the same facts, written with If-None-Match: * (S3's
//   conditional write, https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html:
//   412 when the key exists); a 412 is success when the stored manifest has our bytes and a
//   conflict otherwise, so there is never a second manifest of a generation.
//
// Parts stored before a refusal (or a crash) stay uncommitted, named by no manifest; a re-run
// with the same plan keeps them (they are under the same keys).
//
// An original is refused, and the hour is not committed, when its metadata is missing or
// unreadable or its stored bytes do not hash to the metadata's SHA-256: a manifest without it
// would hide its lines from readers that use manifests, and copying it would pass off bytes the
// shipper never checksummed. The refusal names each one.

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
  compactionManifestsPrefix,
  formatCompactedPartKey,
  formatCompactionManifestKey,
  MAX_COMPACTED_PART,
  MAX_COMPACTION_GENERATION,
  type ObjectKey,
  parseCompactedKey,
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
  manifestSha256,
  parseCompactionManifest,
  partPlanDigest,
} from "../object/compaction-manifest.ts";
import { fromUserMetadata, METADATA_PREFIX, type ObjectMetadata } from "../object/metadata.ts";
import { listObjectPages, versionParam } from "../retrieval/find.ts";
import type { IndexReading } from "../retrieval/hour-indexes.ts";
import { DEFAULT_PART_MAX_BYTES, DEFAULT_SETTLE_MS } from "./defaults.ts";
import { CompactionError, checkHourSettled, HourNotSettledError, hourStartMs } from "./hour.ts";
import { DEFAULT_UPLOAD_CHUNK_BYTES, MIN_UPLOAD_PART_BYTES, PartWriter } from "./part-writer.ts";
import { checkHourIndexes, DEFAULT_INDEX_MARGIN_HOURS } from "./readiness.ts";

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
  /** The hour's indexes read once for every namespace (readCompactionIndexes); read per call when absent. */
  indexReading?: IndexReading;
  /** Plan only: list, HEAD and report the parts; read no body, write nothing. */
  dryRun?: boolean;
  /** Upload part size of multipart uploads, and the largest part sent as one PutObject (≥ 5 MiB). */
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
  /** Set after the run: written now, kept from an earlier run, or not written (dry run, refusal). */
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
  /** Hour indexes read (0 with indexCheck off), those found unusable, and `<node> <epoch>` of nodes with batches but no index read. */
  indexes: { read: number; unusable: { key: string; problem: string }[]; unindexedNodes: string[] };
}

interface Candidate {
  key: string;
  parsed: ObjectKey;
  versionId: string | null;
  bytes: number;
  metadata: ObjectMetadata;
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
  const committed = await readCommittedManifests(o);
  const generation = committed.length;
  const compactedKeys = new Set(committed.flatMap((c) => c.manifest.members.map((m) => m.key)));
  const outcome: CompactionOutcome = {
    status: "empty",
    namespace: o.namespace,
    hour,
    generation,
    manifestKey: null,
    manifest: null,
    manifestWritten: false,
    members: [],
    parts: [],
    refused: [],
    alreadyCompacted: 0,
    ignored: [],
    notReady: [],
    indexes: { read: 0, unusable: [], unindexedNodes: [] },
  };

  // 2. The hour's originals in every long-lived tier, less those already compacted, in key order.
  const listed: { key: string; parsed: ObjectKey }[] = [];
  for (const tier of longLivedTiers()) {
    const prefix = partitionPrefix(o.prefix, tier, o.namespace, o.dt, o.hour);
    for await (const page of listObjectPages(o.s3, o.bucket, prefix)) {
      for (const object of page) {
        if (object.Key === undefined) continue;
        let parsed: ObjectKey;
        try {
          parsed = parseObjectKey(object.Key);
        } catch {
          outcome.ignored.push(object.Key);
          continue;
        }
        if (compactedKeys.has(object.Key)) {
          outcome.alreadyCompacted++;
          continue;
        }
        listed.push({ key: object.Key, parsed });
      }
    }
  }
  listed.sort((a, b) => compareKeys(a.key, b.key));
  if (listed.length === 0) {
    outcome.status = committed.length > 0 ? "up-to-date" : "empty";
    return outcome;
  }
  let indexedSha256 = new Map<string, string>();
  if (o.indexCheck !== false) {
    const readiness = await checkHourIndexes({
      ...o,
      listed,
      compacted: compactedKeys,
      marginHours: o.indexMarginHours ?? DEFAULT_INDEX_MARGIN_HOURS,
      ...(o.indexReading === undefined ? {} : { reading: o.indexReading }),
    });
    outcome.indexes = {
      read: readiness.indexesRead,
      unusable: readiness.unusable,
      unindexedNodes: readiness.unindexedNodes,
    };
    indexedSha256 = readiness.indexedSha256;
    if (!readiness.ready) {
      outcome.status = "not-ready";
      outcome.notReady = readiness.blocking;
      return outcome;
    }
  }
  if (generation > MAX_COMPACTION_GENERATION) {
    throw new CompactionError(
      `hour ${hour} of ${o.namespace} already has ${generation} generations, the most keys hold`,
    );
  }

  // 3. Each original's version, size and contract metadata (HeadObject).
  const heads = new Map<string, { head: HeadObjectCommandOutput }>();
  await forEachLimited(listed, HEAD_CONCURRENCY, async ({ key }) => {
    heads.set(key, { head: await o.s3.send(new HeadObjectCommand({ Bucket: o.bucket, Key: key })) });
  });
  const candidates: Candidate[] = [];
  for (const { key, parsed } of listed) {
    const { head } = heads.get(key)!;
    const versionId = head.VersionId === undefined || head.VersionId === "null" ? null : head.VersionId;
    let metadata: ObjectMetadata;
    try {
      metadata = fromUserMetadata(head.Metadata ?? {});
    } catch (error) {
      outcome.refused.push({ key, versionId, reason: (error as Error).message });
      continue;
    }
    const expectedBatch = batchId(parsed);
    if (metadata.batchId !== expectedBatch) {
      outcome.refused.push({
        key,
        versionId,
        reason: `metadata batch ${metadata.batchId} is not the key's ${expectedBatch}`,
      });
      continue;
    }
    const indexed = indexedSha256.get(key);
    if (indexed !== undefined && indexed !== metadata.sha256) {
      outcome.refused.push({
        key,
        versionId,
        reason: `its metadata says sha256 ${metadata.sha256}, its node's hour index says ${indexed}`,
      });
      continue;
    }
    const bytes = head.ContentLength ?? 0;
    if (bytes === 0) {
      outcome.refused.push({
        key,
        versionId,
        reason: "the object is empty: an archive object is at least one gzip member",
      });
      continue;
    }
    candidates.push({ key, parsed, versionId, bytes, metadata });
  }

  // 4. The plan: members in key order, a new part when the next would pass partMaxBytes.
  const members: CompactionMember[] = [];
  const parts: { members: CompactionMember[]; bytes: number }[] = [];
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
      sha256: c.metadata.sha256,
      records: c.metadata.records,
      firstTimestamp: c.metadata.firstTimestamp,
      lastTimestamp: c.metadata.lastTimestamp,
    };
    current.members.push(member);
    current.bytes += c.bytes;
    members.push(member);
  }
  const partKeys = parts.map((p, i) =>
    formatCompactedPartKey({
      prefix: o.prefix,
      namespace: o.namespace,
      dt: o.dt,
      hour: o.hour,
      generation,
      part: i,
      plan: partPlanDigest(p.members),
    }),
  );
  outcome.members = members.map((m) => ({
    key: m.key,
    versionId: m.versionId,
    bytes: m.length,
    records: m.records,
    part: m.part,
  }));
  outcome.parts = parts.map((p, i) => ({
    part: i,
    key: partKeys[i]!,
    bytes: p.bytes,
    members: p.members.length,
    outcome: "not-written",
  }));
  const manifestKey = formatCompactionManifestKey({
    prefix: o.prefix,
    namespace: o.namespace,
    dt: o.dt,
    hour: o.hour,
    generation,
  });
  outcome.manifestKey = manifestKey;
  if (o.dryRun) {
    outcome.status = outcome.refused.length > 0 ? "refused" : "planned";
    return outcome;
  }
  if (outcome.refused.length > 0) {
    outcome.status = "refused";
    return outcome;
  }

  // 5. Each part: kept if an earlier run stored it whole, else written from verified originals.
  const written: CompactedPart[] = [];
  const toolMetadata: Record<string, string> =
    o.toolVersion === undefined ? {} : { [`${METADATA_PREFIX}tool`]: o.toolVersion };
  for (const [i, part] of parts.entries()) {
    const key = partKeys[i]!;
    const kept = await keepStoredPart(o.s3, o.bucket, key, part);
    if (kept !== null) {
      written.push(describePart(i, key, part, kept));
      outcome.parts[i]!.outcome = "kept";
      continue;
    }
    const sha = await writePart(
      o.s3,
      o.bucket,
      key,
      part,
      chunkBytes,
      {
        [`${METADATA_PREFIX}kind`]: COMPACTED_PART_KIND,
        [`${METADATA_PREFIX}members`]: String(part.members.length),
        ...toolMetadata,
      },
      outcome.refused,
    );
    if (sha === null) break;
    // Stored as planned: S3 has the object at its full size before the manifest names it.
    const head = await o.s3.send(new HeadObjectCommand({ Bucket: o.bucket, Key: key }));
    if (head.ContentLength !== part.bytes) {
      throw new CompactionError(
        `part ${key} was stored with ${head.ContentLength} bytes, not the ${part.bytes} written`,
      );
    }
    written.push(describePart(i, key, part, sha));
    outcome.parts[i]!.outcome = "written";
  }
  if (outcome.refused.length > 0) {
    outcome.status = "refused";
    return outcome;
  }

  // 6. The manifest, last: its existence commits the generation.
  const previous = committed.at(-1);
  const manifest: CompactionManifest = {
    format: COMPACTION_MANIFEST_FORMAT,
    version: COMPACTION_MANIFEST_VERSION,
    namespace: o.namespace,
    hour,
    generation,
    previous:
      previous === undefined ? null : { generation: previous.manifest.generation, sha256: previous.sha256 },
    parts: written,
    members,
    totals: {
      parts: written.length,
      members: members.length,
      bytes: written.reduce((n, p) => n + p.bytes, 0),
      records: written.reduce((n, p) => n + p.records, 0),
    },
  };
  const body = encodeCompactionManifest(manifest);
  outcome.manifestWritten = await putManifestOnce(o.s3, o.bucket, manifestKey, body, {
    [`${METADATA_PREFIX}kind`]: COMPACTION_MANIFEST_KIND,
    ...toolMetadata,
  });
  outcome.manifest = manifest;
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

/** Every committed manifest of the hour, in generation order, checked and chained. */
async function readCommittedManifests(
  o: CompactOptions,
): Promise<{ manifest: CompactionManifest; sha256: string }[]> {
  const keys: { key: string; generation: number }[] = [];
  for await (const page of listObjectPages(
    o.s3,
    o.bucket,
    compactionManifestsPrefix(o.prefix, o.namespace, o.dt, o.hour),
  )) {
    for (const object of page) {
      if (object.Key === undefined) continue;
      const parsed = parseCompactedKey(object.Key);
      if (parsed.kind === "manifest") keys.push({ key: object.Key, generation: parsed.generation });
    }
  }
  keys.sort((a, b) => a.generation - b.generation);
  const out: { manifest: CompactionManifest; sha256: string }[] = [];
  for (const [i, { key, generation }] of keys.entries()) {
    if (generation !== i)
      throw new CompactionError(
        `manifest generation ${i} of ${key.replace(/manifest-\d+\.json$/, "")} is missing (found ${generation})`,
      );
    const response = await o.s3.send(new GetObjectCommand({ Bucket: o.bucket, Key: key }));
    const body = Buffer.from((await response.Body?.transformToByteArray()) ?? new Uint8Array());
    const manifest = parseCompactionManifest(body);
    if (
      manifest.namespace !== o.namespace ||
      manifest.hour !== manifestHour(o) ||
      manifest.generation !== generation
    ) {
      throw new CompactionError(
        `manifest ${key} describes ${manifest.namespace} ${manifest.hour} generation ${manifest.generation}`,
      );
    }
    const previous = out.at(-1);
    if (previous !== undefined && manifest.previous?.sha256 !== previous.sha256) {
      throw new CompactionError(`manifest ${key} does not chain to generation ${generation - 1}'s SHA-256`);
    }
    out.push({ manifest, sha256: manifestSha256(body) });
  }
  return out;
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
 * Writes one part from its originals, each read whole (one archive object: at most the
 * shipper's batch size) and checked against its metadata's SHA-256 before a byte of it is
 * appended. On a mismatch the upload is abandoned, the remaining members are still checked
 * (so every bad original is named at once), they are added to `refused`, and null is returned.
 */
async function writePart(
  s3: S3Client,
  bucket: string,
  key: string,
  part: { members: CompactionMember[]; bytes: number },
  chunkBytes: number,
  metadata: Record<string, string>,
  refused: RefusedOriginal[],
): Promise<string | null> {
  const writer = new PartWriter({ s3, bucket, key, plannedBytes: part.bytes, chunkBytes, metadata });
  let failed = false;
  try {
    const bodies = prefetched(part.members, (m) => readOriginal(s3, bucket, m));
    for (const [i, member] of part.members.entries()) {
      const body = await bodies(i);
      const problem = verifyOriginal(member, body);
      if (problem !== null) {
        refused.push({ key: member.key, versionId: member.versionId, reason: problem });
        failed = true;
        continue;
      }
      if (!failed) await writer.write(body);
    }
    if (failed) {
      await writer.abort();
      return null;
    }
    return (await writer.finish()).sha256;
  } catch (error) {
    await writer.abort();
    throw error;
  }
}

async function readOriginal(s3: S3Client, bucket: string, member: CompactionMember): Promise<Buffer> {
  const response = await s3.send(
    new GetObjectCommand({ Bucket: bucket, Key: member.key, ...versionParam(member.versionId ?? "null") }),
  );
  return Buffer.from((await response.Body?.transformToByteArray()) ?? new Uint8Array());
}

/** Why an original's bytes may not be copied, or null when they are what its metadata says. */
export function verifyOriginal(
  member: Pick<CompactionMember, "length" | "sha256">,
  body: Buffer,
): string | null {
  if (body.length !== member.length) return `read ${body.length} bytes, HeadObject said ${member.length}`;
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
 * PUTs the manifest unless the key exists (If-None-Match: *). True when this PUT stored it,
 * false when the same bytes were already there (an earlier run committed before it stopped);
 * throws when other bytes are there. A store without conditional writes (501) gets a read
 * first and a plain PUT.
 */
async function putManifestOnce(
  s3: S3Client,
  bucket: string,
  key: string,
  body: Buffer,
  metadata: Record<string, string>,
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
  const existing = async (): Promise<Buffer | null> => {
    try {
      const response = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return Buffer.from((await response.Body?.transformToByteArray()) ?? new Uint8Array());
    } catch (error) {
      if (httpStatus(error) === 404) return null;
      throw error;
    }
  };
  const sameOrConflict = (stored: Buffer): false => {
    if (stored.equals(body)) return false;
    throw new CompactionError(
      `manifest ${key} already exists with other content: another compaction of this hour committed a different plan`,
    );
  };
  try {
    await put(true);
    return true;
  } catch (error) {
    const status = httpStatus(error);
    // 409 ConditionalRequestConflict: a concurrent write of the key; what it stored decides.
    if (status === 412 || status === 409) {
      const stored = await existing();
      if (stored === null) throw error;
      return sameOrConflict(stored);
    }
    if (status !== 501) throw error;
  }
  const stored = await existing();
  if (stored !== null) return sameOrConflict(stored);
  await put(false);
  return true;
}

function httpStatus(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}
