// Reconcile: does every archived analytics object (and, in stream delivery, every stream
// object, per table) have exactly its records in the warehouse? Per object it compares the S3 archive (record count and SHA-256 in the
// object metadata), the GCS landing copy, the loader's markers, and the warehouse's row
// count for the object's batch_id. Used by `logarchive reconcile`, the local pipeline's
// summary and the end-to-end tests.
//
// Archive-tier objects never reach the warehouse, so they are checked against what the
// archive itself proves: the body read back must have the SHA-256, the record count and
// the size the metadata states. And since a shipper numbers its batches 0, 1, 2, … per
// state epoch, across namespaces and tiers, and uploads a batch only after its number is
// committed, a number missing between two of a node's objects is a batch that never
// arrived, in whichever tier or namespace it was.
//
// Both lookups are bounded by time, so a reconcile costs what its range holds, not what
// the archive holds. The warehouse query adds a predicate on the partition column
// `timestamp` (the range, widened by a skew), so BigQuery reads only those partitions;
// and the gap lookup lists only the hour partitions of the range plus a margin each side.

import { createHash } from "node:crypto";
import { matchesGlob } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip, gunzipSync } from "node:zlib";
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import type { Bucket } from "@google-cloud/storage";
import {
  type BatchIdentity,
  batchId,
  compactedPrefix,
  type LossRecordKey,
  lossPrefix,
  type ObjectKey,
  parseCompactedKey,
  parseLossKey,
  parseObjectKey,
  parseStreamKey,
  STREAM_TIER,
  type StreamObjectKey,
  streamPrefix,
  type Tier,
  tierPrefix,
} from "../../lib/keys/layout.ts";
import type { CompactionMember } from "../../lib/object/compaction-manifest.ts";
import { fromUserMetadata, userMetadataValue } from "../../lib/object/metadata.ts";
import { classifyNamespace, type NamespacePolicy, namespaceTableName } from "../../lib/policy/policy.ts";
import { type HourManifests, readHourManifests, readPartMembers } from "../../lib/retrieval/compacted.ts";
import type { TableRef, TimestampRange, WarehousePort } from "../warehouse/port.ts";
import { type ClaimMarker, markerPaths, objectId, type QuarantineMarker, tableKey } from "./markers.ts";
import { forEachLimited, isNotFound, type StateStore } from "./state.ts";

export type ObjectVerdict =
  | "loaded"
  | "excluded"
  | "queued"
  | "not-transferred"
  | "not-queued"
  | "quarantined"
  | "conflict"
  | "duplicated"
  | "partial"
  | "unexpected-rows"
  | "bad-metadata";

/** Verdicts that are fine: the object is where the policy says it should be. */
export const OK_VERDICTS: ReadonlySet<ObjectVerdict> = new Set(["loaded", "excluded"]);

export interface ObjectReport {
  key: string;
  /**
   * The key's namespace; for a stream object, whose records may be of several namespaces,
   * `stream:<dataset>.<table>` (STREAM_LABEL), which is also its perNamespace entry.
   */
  namespace: string;
  table: string | null;
  records: number | null;
  rows: number;
  verdict: ObjectVerdict;
  detail?: string;
}

/**
 * conflict: a key a committed manifest names was written again after compaction (its current
 * version is not the member's); missing: an original listed, then gone before it was read,
 * that no committed manifest names.
 */
export type ArchiveObjectVerdict = "verified" | "cold" | "corrupt" | "bad-metadata" | "conflict" | "missing";

/** Archive-tier verdicts that are fine: the body matches its metadata, or is in cold storage. */
export const ARCHIVE_OK_VERDICTS: ReadonlySet<ArchiveObjectVerdict> = new Set(["verified", "cold"]);

export interface ArchiveObjectReport {
  key: string;
  namespace: string;
  records: number | null;
  verdict: ArchiveObjectVerdict;
  detail?: string;
}

/**
 * Batch numbers of one shipper (node and state epoch) missing from the archive, used twice,
 * or, at the lower edge of what was listed, not decided: "unknown" is the number just below a
 * shipper's first object in the range when no lower number of it is in the listed hours.
 */
export interface SequenceProblem {
  node: string;
  epoch: string;
  kind: "missing" | "reused" | "unknown";
  /** The numbers, inclusive. */
  first: number;
  last: number;
  /** The objects either side of a gap, the objects sharing a number, or the object above an unknown. */
  keys: string[];
}

export type { TimestampRange };

/** The warehouse query of one table, as planned before it runs. */
export interface WarehouseScan {
  table: string;
  batches: number;
  /** The timestamp predicate, ISO times. */
  timestamps: { from: string; to: string };
  /** Bytes the query will process, from a dry run; null where the warehouse cannot say. */
  estimatedBytes: number | null;
}

/**
 * How far outside its object's hour partition a record's `timestamp` may lie and still be
 * counted. The shipper files every record under the UTC hour of that same timestamp
 * (shipper/sinks/s3/sink.ts batchFor, lib/keys/layout.ts ObjectKey.dt/hour), so 0 is exact
 * for archives it wrote; raise it for objects from a writer that does not keep the rule.
 * A record outside the skew is not counted, and its object reads as partial.
 */
export const DEFAULT_TIMESTAMP_SKEW_MS = 0;

/**
 * Hours listed on each side of the range for the batch-gap lookup. A shipper numbers a
 * batch when it opens it, for the hour of the line it is reading, so a batch numbered
 * between two others holds lines of about the same hours unless the node read a backlog;
 * one filed further than this from the range is not looked for.
 */
export const DEFAULT_GAP_MARGIN_HOURS = 24;

/** The perNamespace/namespaces label of a table's stream objects. */
export function streamLabel(table: TableRef): string {
  return `${STREAM_TIER}:${table.dataset}.${table.table}`;
}

export interface NamespaceVerdict {
  tier: Tier | typeof STREAM_TIER;
  objects: number;
  records: number;
  ok: boolean;
  /**
   * For an archive-tier namespace, what the policy does with it (classifyNamespace): in stream
   * delivery every namespace's objects are archive-tier, and those of an analytics namespace
   * reach the warehouse through its table's stream objects; only the others are archive only.
   */
  archiveRole?: "loaded-through-stream" | "archive-only";
}

export interface ReconcileReport {
  from: string;
  to: string;
  namespace: string | null;
  /** Analytics-tier objects, checked against the warehouse. */
  objects: ObjectReport[];
  counts: Record<ObjectVerdict, number>;
  perNamespace: Record<string, { objects: number; records: number; rows: number }>;
  /** Archive-tier objects, checked against their own metadata. */
  archiveObjects: ArchiveObjectReport[];
  archiveCounts: Record<ArchiveObjectVerdict, number>;
  /** Gaps and reuse in the batch numbers of the shippers that wrote the selected objects. */
  sequence: SequenceProblem[];
  /**
   * Keys of the loss records in the range (docs/shipper.md#loss-records): lines the shipper
   * counted lost on the node. They fill their batch numbers; `logarchive retrieve` reads them.
   */
  lossRecords: string[];
  /** The hours the gap lookup listed, ISO times [from, to): the range plus the margin each side. */
  listed: { from: string; to: string };
  /** The warehouse queries, one per table, as planned before they ran. */
  warehouseScans: WarehouseScan[];
  /** Every selected namespace, either tier, with its verdict. */
  namespaces: Record<string, NamespaceVerdict>;
  /** Things worth saying about the selection, such as a namespace the policy does not archive. */
  notes: string[];
  /** False when nothing was selected: a check of nothing proves nothing. */
  ok: boolean;
}

export interface ReconcileInput {
  s3: S3Client;
  s3Bucket: string;
  landing: Bucket;
  state: StateStore;
  warehouse: WarehousePort;
  policy: NamespacePolicy;
  /** Hour partitions [from, to). */
  from: Date;
  to: Date;
  namespace?: string;
  /** Read archive-tier bodies back to verify them (default true); false checks their metadata only. */
  verifyArchiveBodies?: boolean;
  /** Widens the warehouse query's timestamp predicate on each side (default DEFAULT_TIMESTAMP_SKEW_MS). */
  timestampSkewMs?: number;
  /** Hours listed each side of the range for the batch-gap lookup (default DEFAULT_GAP_MARGIN_HOURS). */
  gapMarginHours?: number;
  /** Called with the planned warehouse queries (and a dry run's bytes) before any of them runs. */
  onWarehouseScan?: (scans: readonly WarehouseScan[]) => void;
}

function tableFor(policy: NamespacePolicy, namespace: string): TableRef {
  const route = policy.warehouse.routes.find((r) => r.namespaces.some((g) => matchesGlob(namespace, g)));
  return {
    dataset: route?.dataset ?? policy.warehouse.dataset,
    table: route ? namespaceTableName(route.table, namespace) : policy.warehouse.table,
  };
}

function hourStart(key: { dt: string; hour: string }): number {
  return Date.parse(`${key.dt}T${key.hour}:00:00Z`);
}

export interface ListedObject {
  key: string;
  parsed: ObjectKey;
  storageClass: string | undefined;
}

/** A loss record (docs/shipper.md#loss-records) as listed: it holds a batch number, not records. */
export interface ListedLoss {
  key: string;
  parsed: LossRecordKey;
  storageClass: string | undefined;
}

/** A stream object (stream delivery) as listed. */
export interface ListedStreamObject {
  key: string;
  parsed: StreamObjectKey;
  storageClass: string | undefined;
}

const HOUR_MS = 3_600_000;

function pad2(n: number): string {
  return String(n).padStart(2, "0");
}

/** The key just below the objects of `namespacePrefix` whose hour partition starts at or after `t`. */
function hourStartKey(namespacePrefix: string, t: number): string {
  const d = new Date(t);
  const dt = `${String(d.getUTCFullYear()).padStart(4, "0")}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}`;
  return `${namespacePrefix}dt=${dt}/hour=${pad2(d.getUTCHours())}/`;
}

// Above every character a key can hold after the tier prefix (escaped values are
// [A-Za-z0-9._%-], then = and /), so `<namespace prefix>~` sorts after all of its objects.
const AFTER_NAMESPACE = "~";

/**
 * The objects of one tier whose hour partition starts in [from, to). Keys sort by
 * namespace, then dt and hour, so the listing skips: it starts each namespace at `from`'s
 * hour (StartAfter) and leaves it at the first key past `to`. That costs about two LIST
 * calls per namespace plus one per 1,000 objects in the hours, whatever the archive holds.
 */
export async function listTierHours(
  s3: S3Client,
  bucket: string,
  prefix: string,
  from: number,
  to: number,
): Promise<ListedObject[]> {
  return listPartitionHours(s3, bucket, prefix, from, to, parseObjectKey);
}

/** The stream objects (stream delivery) whose hour partition starts in [from, to), listed as listTierHours does. */
export async function listStreamHours(
  s3: S3Client,
  bucket: string,
  keyPrefix: string,
  from: number,
  to: number,
): Promise<ListedStreamObject[]> {
  return listPartitionHours(s3, bucket, streamPrefix(keyPrefix), from, to, parseStreamKey);
}

/**
 * The loss records whose hour partition starts in [from, to), listed as listTierHours does.
 * They are numbered from the archive batch sequence, so every gap check lists them too: a
 * number a loss record took is a batch that arrived, not a gap.
 */
export async function listLossHours(
  s3: S3Client,
  bucket: string,
  keyPrefix: string,
  from: number,
  to: number,
): Promise<ListedLoss[]> {
  return listPartitionHours(s3, bucket, lossPrefix(keyPrefix), from, to, parseLossKey);
}

/**
 * The compacted hours (docs/design/compaction.md) with a manifest whose hour starts in
 * [from, to), of every namespace, listed as listTierHours does, each read with its every
 * generation (lib/retrieval/compacted.ts).
 */
export async function listCompactedHours(
  s3: S3Client,
  bucket: string,
  keyPrefix: string,
  from: number,
  to: number,
): Promise<HourManifests[]> {
  const listed = await listPartitionHours(s3, bucket, compactedPrefix(keyPrefix), from, to, (key) => {
    const parsed = parseCompactedKey(key);
    if (parsed.kind !== "manifest") throw new Error("not a manifest");
    return parsed;
  });
  const hours = new Map<string, { namespace: string; dt: string; hour: string }>();
  for (const { parsed } of listed) hours.set(`${parsed.namespace}/${parsed.dt}/${parsed.hour}`, parsed);
  const out: HourManifests[] = [];
  await forEachLimited([...hours.values()], 8, async (h) => {
    out.push(await readHourManifests(s3, bucket, keyPrefix, h.namespace, h.dt, h.hour));
  });
  return out;
}

async function listPartitionHours<K extends { dt: string; hour: string }>(
  s3: S3Client,
  bucket: string,
  prefix: string,
  from: number,
  to: number,
  parse: (key: string) => K,
): Promise<{ key: string; parsed: K; storageClass: string | undefined }[]> {
  const listed: { key: string; parsed: K; storageClass: string | undefined }[] = [];
  let startAfter: string | undefined;
  // Finding the next namespace takes one key; its objects before `from` are never read.
  let findingNamespace = true;
  for (;;) {
    const page = await s3.send(
      new ListObjectsV2Command({
        Bucket: bucket,
        Prefix: prefix,
        ...(startAfter === undefined ? {} : { StartAfter: startAfter }),
        ...(findingNamespace ? { MaxKeys: 1 } : {}),
      }),
    );
    const contents = page.Contents ?? [];
    if (contents.length === 0) return listed;
    findingNamespace = false;
    let jumped = false;
    for (const o of contents) {
      if (o.Key === undefined) continue;
      const slash = o.Key.indexOf("/", prefix.length);
      const namespacePrefix = slash === -1 ? o.Key : o.Key.slice(0, slash + 1);
      const windowStart = hourStartKey(namespacePrefix, from);
      if (o.Key < windowStart) {
        startAfter = windowStart;
        jumped = true;
        break;
      }
      let parsed: K;
      try {
        parsed = parse(o.Key);
      } catch {
        continue;
      }
      if (hourStart(parsed) >= to) {
        startAfter = `${namespacePrefix}${AFTER_NAMESPACE}`;
        findingNamespace = true;
        jumped = true;
        break;
      }
      listed.push({ key: o.Key, parsed, storageClass: o.StorageClass });
    }
    if (!jumped) {
      if (!page.IsTruncated) return listed;
      startAfter = contents.at(-1)?.Key;
    }
  }
}

// Glacier's classes need a restore before GetObject; Glacier Instant Retrieval does not.
const COLD_STORAGE = new Set(["GLACIER", "DEEP_ARCHIVE"]);

export async function reconcile(input: ReconcileInput): Promise<ReconcileReport> {
  const { s3, s3Bucket, policy } = input;
  const inRange = (o: { parsed: { dt: string; hour: string } }) => {
    const t = hourStart(o.parsed);
    return t >= input.from.getTime() && t < input.to.getTime();
  };
  const selected = (o: ListedObject) =>
    inRange(o) && (input.namespace === undefined || o.parsed.namespace === input.namespace);
  // A stream object's records may be of several namespaces: with --namespace, the stream
  // objects of the table the namespace routes to are checked (all of them, whole).
  const namespaceClass =
    input.namespace === undefined ? undefined : classifyNamespace(policy, input.namespace);
  const namespaceTable =
    namespaceClass === undefined
      ? undefined
      : namespaceClass.archived && namespaceClass.destination !== null
        ? tableKey(namespaceClass.destination)
        : null;
  const selectedStream = (o: ListedStreamObject) =>
    inRange(o) && (namespaceTable === undefined || tableKey(o.parsed) === namespaceTable);
  const margin = (input.gapMarginHours ?? DEFAULT_GAP_MARGIN_HOURS) * HOUR_MS;
  const listFrom = input.from.getTime() - margin;
  const listTo = input.to.getTime() + margin;
  const [[analyticsTier, archiveTier], streamTier, losses] = await Promise.all([
    Promise.all(
      (["analytics", "archive"] as const).map((tier) =>
        listTierHours(s3, s3Bucket, tierPrefix(policy.archive.prefix, tier), listFrom, listTo),
      ),
    ),
    listStreamHours(s3, s3Bucket, policy.archive.prefix, listFrom, listTo),
    listLossHours(s3, s3Bucket, policy.archive.prefix, listFrom, listTo),
  ]);
  // Compacted hours, per batch (docs/retrieval.md#compacted-hours): a member holds its batch
  // number as its original did (which the compactor deletes after compacting it), and an
  // archive-tier batch a committed manifest names is checked from its member, never also from
  // its original; every other original present (a late batch not yet in a supplement, or one
  // whose hour's compaction was refused and which the compactor keeps whole) is checked as an
  // original. The tiers are listed before the manifests: an original deleted in between is
  // named by a manifest listed after it.
  const compactedHours = await listCompactedHours(s3, s3Bucket, policy.archive.prefix, listFrom, listTo);
  const members: (ListedObject & { member: CompactionMember; hour: HourManifests })[] = [];
  const named = new Set<string>();
  for (const hour of compactedHours) {
    for (const m of hour.manifests) {
      for (const member of m.manifest.members) {
        named.add(member.key);
        members.push({
          key: member.key,
          parsed: parseObjectKey(member.key),
          storageClass: undefined,
          member,
          hour,
        });
      }
    }
  }
  const unusableHours = compactedHours.filter(
    (h) =>
      h.problem !== null &&
      inRange({ parsed: h }) &&
      (input.namespace === undefined || h.namespace === input.namespace),
  );
  const namespaceKeys = (analyticsTier ?? []).filter(selected);
  const streamKeys = streamTier.filter(selectedStream);
  const archiveKeys = (archiveTier ?? []).filter((o) => selected(o) && !named.has(o.key));
  const archiveMembers = members.filter((o) => o.member.tier === "archive" && selected(o));
  const originalKeys = new Set([...(analyticsTier ?? []), ...(archiveTier ?? [])].map((o) => o.key));
  const membersOnly = members.filter((o) => !originalKeys.has(o.key));
  // Stream batches are numbered under an epoch of their own, so their sequences are
  // checked apart from the archive's even when listed together.
  // Loss records are batches of the archive sequence: listed, they fill the numbers they took.
  const lossKeys = losses.filter(
    (o) => inRange(o) && (input.namespace === undefined || o.parsed.namespace === input.namespace),
  );
  const sequence = sequenceProblems<{ key: string; parsed: BatchIdentity & { dt: string; hour: string } }>(
    [...(analyticsTier ?? []), ...(archiveTier ?? []), ...membersOnly, ...streamTier, ...losses],
    [...namespaceKeys, ...archiveKeys, ...archiveMembers, ...streamKeys, ...lossKeys],
    inRange,
  );
  const keys: { key: string; namespace: string; streamTable: TableRef | null }[] = [
    ...namespaceKeys.map((o) => ({ key: o.key, namespace: o.parsed.namespace, streamTable: null })),
    ...streamKeys.map((o) => {
      const table = { dataset: o.parsed.dataset, table: o.parsed.table };
      return { key: o.key, namespace: streamLabel(table), streamTable: table };
    }),
  ];
  const archiveObjects: ArchiveObjectReport[] = [];
  const readBodies = input.verifyArchiveBodies !== false;
  // An original gone between the listing and its HEAD or GET (the compactor committed a
  // supplement naming it and deleted it meanwhile): its hour's manifests are read once more, and
  // the batch is checked from its member if one now names it; else it is missing, by name.
  const vanished: ListedObject[] = [];
  await forEachLimited(archiveKeys, 8, async (o) => {
    const report = await checkArchiveObject(s3, s3Bucket, o, readBodies);
    if (report === "gone") vanished.push(o);
    else archiveObjects.push(report);
  });
  const reread = new Map<string, Promise<HourManifests>>();
  const nowNamed: typeof archiveMembers = [];
  for (const o of vanished) {
    const { namespace, dt, hour } = o.parsed;
    const id = `${namespace}/${dt}/${hour}`;
    if (!reread.has(id))
      reread.set(id, readHourManifests(s3, s3Bucket, policy.archive.prefix, namespace, dt, hour));
    const read = await reread.get(id)!;
    const member = read.manifests.flatMap((m) => m.manifest.members).find((m) => m.key === o.key);
    if (member === undefined) {
      archiveObjects.push({
        key: o.key,
        namespace,
        records: null,
        verdict: "missing",
        detail:
          "listed, then gone before it was read (deleted), and no committed manifest of its hour names it: its batch is in no object of the archive",
      });
      continue;
    }
    nowNamed.push({ ...o, member, hour: read });
  }
  archiveObjects.push(
    ...(await checkCompactedMembers(s3, s3Bucket, [...archiveMembers, ...nowNamed], readBodies)),
  );
  // A named original still present whose current version is not the one its member copied
  // (other version id, or another SHA-256 in its metadata on a bucket without versioning) was
  // written again after compaction: bytes no part holds, so a conflict, not a compacted original.
  // One HEAD per named original still present (the compactor deletes them --delete-after the hour).
  const namedPresent = [...(analyticsTier ?? []), ...(archiveTier ?? [])].filter(
    (o) => selected(o) && named.has(o.key),
  );
  const memberOf = new Map(members.map((m) => [m.key, m.member]));
  await forEachLimited(namedPresent, 8, async (o) => {
    const member = memberOf.get(o.key)!;
    let head: Awaited<ReturnType<typeof headOf>>;
    try {
      head = await headOf(s3, s3Bucket, o.key);
    } catch (error) {
      if (isS3NotFound(error)) return; // deleted since the listing, as the compactor does
      throw error;
    }
    const compactedVersion = member.versionId ?? "null";
    const version = head.VersionId ?? "null";
    let sha256: string | undefined;
    try {
      sha256 = fromUserMetadata(head.Metadata ?? {}).sha256;
    } catch {
      sha256 = undefined;
    }
    if (version === compactedVersion && sha256 === member.sha256) return;
    archiveObjects.push({
      key: o.key,
      namespace: o.parsed.namespace,
      records: null,
      verdict: "conflict",
      detail: `key written again after compaction: version ${version}${sha256 === member.sha256 ? "" : ` (SHA-256 ${sha256 ?? "none in its metadata"})`} differs from the compacted version ${compactedVersion} (SHA-256 ${member.sha256}), read from its member`,
    });
  });
  for (const h of unusableHours) {
    archiveObjects.push({
      key: h.keys[0] ?? `${h.namespace} ${h.dt}T${h.hour}`,
      namespace: h.namespace,
      records: null,
      verdict: "corrupt",
      detail: `the compaction manifests of ${h.namespace} ${h.dt}T${h.hour} cannot be used: ${h.problem}`,
    });
  }

  const conflictIds = new Set(
    (await input.state.list("conflicts/")).map((e) => e.path.slice("conflicts/".length).split(".")[0]),
  );
  const objects: (ObjectReport & {
    batchId: string | null;
    tableRef: TableRef | null;
    sha256: string | null;
  })[] = [];
  const streamTables = new Map<string, TableRef>();
  await forEachLimited(keys, 16, async ({ key, namespace, streamTable }) => {
    const report: (typeof objects)[number] = {
      key,
      namespace,
      table: null,
      tableRef: null,
      records: null,
      rows: 0,
      verdict: "loaded",
      batchId: null,
      sha256: null,
    };
    objects.push(report);
    const head = await s3.send(new HeadObjectCommand({ Bucket: s3Bucket, Key: key }));
    try {
      const meta = fromUserMetadata(head.Metadata ?? {});
      report.records = meta.records;
      report.batchId = meta.batchId;
      report.sha256 = meta.sha256;
    } catch (error) {
      report.verdict = "bad-metadata";
      report.detail = (error as Error).message;
      return;
    }
    const id = objectId(key);
    const claim = await input.state.read<ClaimMarker>(markerPaths.claim(id));
    if (streamTable !== null) {
      // A stream object goes to the table its key names.
      streamTables.set(namespace, streamTable);
      report.tableRef = claim?.table ?? streamTable;
      report.table = tableKey(report.tableRef);
      return;
    }
    const classification = classifyNamespace(policy, namespace);
    // A namespace the policy does not load is still checked in the table it would go to, so
    // rows that should not be there are found.
    report.tableRef =
      claim?.table ??
      (classification.archived && classification.destination
        ? classification.destination
        : tableFor(policy, namespace));
    report.table = report.tableRef === null ? null : tableKey(report.tableRef);
  });

  // Rows per batch, one query per table.
  const byTable = new Map<string, { ref: TableRef; batchIds: string[] }>();
  for (const o of objects) {
    if (o.tableRef === null || o.batchId === null) continue;
    const entry = byTable.get(tableKey(o.tableRef)) ?? { ref: o.tableRef, batchIds: [] };
    entry.batchIds.push(o.batchId);
    byTable.set(tableKey(o.tableRef), entry);
  }
  const skew = input.timestampSkewMs ?? DEFAULT_TIMESTAMP_SKEW_MS;
  const timestamps: TimestampRange = {
    from: new Date(input.from.getTime() - skew),
    to: new Date(input.to.getTime() + skew),
  };
  const warehouse = input.warehouse;
  const warehouseScans: WarehouseScan[] = [];
  for (const [name, { ref, batchIds }] of byTable) {
    warehouseScans.push({
      table: name,
      batches: batchIds.length,
      timestamps: { from: timestamps.from.toISOString(), to: timestamps.to.toISOString() },
      estimatedBytes:
        warehouse.dryRunRowCountsByBatchBetween === undefined
          ? null
          : await warehouse.dryRunRowCountsByBatchBetween(ref, batchIds, timestamps),
    });
  }
  input.onWarehouseScan?.(warehouseScans);
  const rows = new Map<string, Map<string, number>>();
  for (const [name, { ref, batchIds }] of byTable) {
    rows.set(name, await warehouse.rowCountsByBatchBetween(ref, batchIds, timestamps));
  }

  await forEachLimited(objects, 16, async (o) => {
    if (o.verdict === "bad-metadata" || o.batchId === null || o.records === null) return;
    o.rows = o.table === null ? 0 : (rows.get(o.table)?.get(o.batchId) ?? 0);
    // A stream object is loadable as a whole: the loader checked each record's namespace
    // against its table, and quarantined it otherwise (found below).
    const classification = classifyNamespace(policy, o.namespace);
    const loadable =
      streamTables.has(o.namespace) || (classification.archived && classification.destination !== null);
    if (!loadable) {
      o.verdict = o.rows === 0 ? "excluded" : "unexpected-rows";
      if (o.rows > 0) o.detail = "the policy does not load this namespace, yet the warehouse has its rows";
      return;
    }
    if (o.rows === o.records) {
      o.verdict = "loaded";
      return;
    }
    if (o.rows > o.records) {
      o.verdict = "duplicated";
      o.detail = `${o.rows} rows for ${o.records} records`;
      return;
    }
    if (o.rows > 0) {
      o.verdict = "partial";
      o.detail = `${o.rows} rows for ${o.records} records with timestamps in ${timestamps.from.toISOString()} → ${timestamps.to.toISOString()} (the range ± the timestamp skew of ${skew} ms)`;
      return;
    }
    const id = objectId(o.key);
    if (conflictIds.has(id)) {
      o.verdict = "conflict";
      o.detail = "a different body arrived under this name; see the loader's conflicts/ markers";
      return;
    }
    const quarantined = await input.state.read<QuarantineMarker>(markerPaths.quarantined(id));
    if (quarantined !== null) {
      o.verdict = "quarantined";
      o.detail = quarantined.reason;
      return;
    }
    let gcsSha: string | undefined;
    try {
      const [meta] = await input.landing.file(o.key).getMetadata();
      // Metadata keys may come back in any case (the loader reads them the same way).
      gcsSha = userMetadataValue(meta.metadata as Record<string, string> | undefined, "sha256");
    } catch (error) {
      if (!isNotFound(error)) throw error;
      o.verdict = "not-transferred";
      o.detail = "in S3 but not in the GCS landing bucket";
      return;
    }
    if (gcsSha !== undefined && gcsSha !== o.sha256) {
      o.verdict = "conflict";
      o.detail = `the GCS copy's SHA-256 ${gcsSha} differs from S3's ${o.sha256}`;
      return;
    }
    if (o.tableRef !== null && (await input.state.exists(markerPaths.pending(o.tableRef, id)))) {
      o.verdict = "queued";
      o.detail = "queued for the table's next load";
      return;
    }
    o.verdict = "not-queued";
    o.detail = "in GCS but never queued: its finalize event was lost or is still being retried";
  });

  const counts = zeroCounts(OBJECT_VERDICTS);
  const perNamespace: ReconcileReport["perNamespace"] = {};
  const namespaces: ReconcileReport["namespaces"] = {};
  const tally = (tier: NamespaceVerdict["tier"], namespace: string, records: number | null, ok: boolean) => {
    const ns = namespaces[namespace] ?? { tier, objects: 0, records: 0, ok: true };
    namespaces[namespace] = ns;
    ns.objects++;
    ns.records += records ?? 0;
    ns.ok &&= ok;
  };
  for (const o of objects) {
    counts[o.verdict]++;
    const ns = perNamespace[o.namespace] ?? { objects: 0, records: 0, rows: 0 };
    perNamespace[o.namespace] = ns;
    ns.objects++;
    ns.records += o.records ?? 0;
    ns.rows += o.rows;
    tally(
      streamTables.has(o.namespace) ? STREAM_TIER : "analytics",
      o.namespace,
      o.records,
      OK_VERDICTS.has(o.verdict),
    );
  }
  const archiveCounts = zeroCounts(ARCHIVE_VERDICTS);
  for (const o of archiveObjects) {
    archiveCounts[o.verdict]++;
    tally("archive", o.namespace, o.records, ARCHIVE_OK_VERDICTS.has(o.verdict));
  }
  for (const [namespace, ns] of Object.entries(namespaces)) {
    if (ns.tier !== "archive") continue;
    const c = classifyNamespace(policy, namespace);
    const streamed = policy.analytics.delivery === "stream" && c.archived && c.destination !== null;
    ns.archiveRole = streamed ? "loaded-through-stream" : "archive-only";
  }
  objects.sort((a, b) => a.key.localeCompare(b.key));
  archiveObjects.sort((a, b) => a.key.localeCompare(b.key));
  const notes: string[] = [];
  // Originals of compacted hours that no manifest names yet are a normal state, said as information.
  for (const hour of compactedHours) {
    if (hour.problem !== null || !inRange({ parsed: hour })) continue;
    if (input.namespace !== undefined && hour.namespace !== input.namespace) continue;
    const uncompacted = [...(analyticsTier ?? []), ...(archiveTier ?? [])].filter(
      (o) =>
        !named.has(o.key) &&
        o.parsed.namespace === hour.namespace &&
        o.parsed.dt === hour.dt &&
        o.parsed.hour === hour.hour,
    ).length;
    if (uncompacted > 0) {
      notes.push(
        `${hour.namespace} ${hour.dt}T${hour.hour}: ${uncompacted} batch(es) not yet compacted (named by no committed manifest), checked as originals`,
      );
    }
  }
  if (input.namespace !== undefined) {
    const c = classifyNamespace(policy, input.namespace);
    if (!c.archived) notes.push(`the policy does not archive namespace ${input.namespace} (${c.reason})`);
  }
  const checked = objects.length + archiveObjects.length;
  return {
    from: input.from.toISOString(),
    to: input.to.toISOString(),
    namespace: input.namespace ?? null,
    objects: objects.map(({ batchId: _b, tableRef: _t, sha256: _s, ...o }) => o),
    counts,
    perNamespace,
    archiveObjects,
    archiveCounts,
    sequence,
    lossRecords: lossKeys.map((o) => o.key).sort(),
    listed: { from: new Date(listFrom).toISOString(), to: new Date(listTo).toISOString() },
    warehouseScans,
    namespaces,
    notes,
    ok:
      checked > 0 &&
      sequence.every((p) => p.kind === "unknown") &&
      objects.every((o) => OK_VERDICTS.has(o.verdict)) &&
      archiveObjects.every((o) => ARCHIVE_OK_VERDICTS.has(o.verdict)),
  };
}

const OBJECT_VERDICTS = [
  "loaded",
  "excluded",
  "queued",
  "not-transferred",
  "not-queued",
  "quarantined",
  "conflict",
  "duplicated",
  "partial",
  "unexpected-rows",
  "bad-metadata",
] as const satisfies readonly ObjectVerdict[];
const ARCHIVE_VERDICTS = [
  "verified",
  "cold",
  "corrupt",
  "bad-metadata",
  "conflict",
  "missing",
] as const satisfies readonly ArchiveObjectVerdict[];

function zeroCounts<V extends string>(verdicts: readonly V[]): Record<V, number> {
  return Object.fromEntries(verdicts.map((v) => [v, 0])) as Record<V, number>;
}

/**
 * Batch-number problems of the shippers that wrote `selected`: a number missing between
 * two of a shipper's objects next to one in the range, or one number on two objects.
 * `all` is every object in the listed hours (the range and a margin each side), so a batch
 * filed under a nearby hour outside the range (a late line) is found there and is no gap.
 * Below a shipper's first object in the range, with none of its lower numbers listed, the
 * next lower number is "unknown": deciding it would take listing the whole archive.
 * Numbers after a shipper's last object cannot be told from batches still open on the
 * node, so they are not counted.
 */
export function sequenceProblems<O extends { key: string; parsed: BatchIdentity }>(
  all: readonly O[],
  selected: readonly O[],
  inRange: (o: O) => boolean,
): SequenceProblem[] {
  const shipper = (o: O) => `${o.parsed.node}\u0000${o.parsed.epoch}`;
  const wanted = new Set(selected.map(shipper));
  const byShipper = new Map<string, O[]>();
  for (const o of all) {
    const id = shipper(o);
    if (!wanted.has(id)) continue;
    const list = byShipper.get(id) ?? [];
    list.push(o);
    byShipper.set(id, list);
  }
  const problems: SequenceProblem[] = [];
  for (const list of byShipper.values()) {
    list.sort((a, b) => a.parsed.seq - b.parsed.seq || a.key.localeCompare(b.key));
    const lowest = list[0] as O;
    if (inRange(lowest) && lowest.parsed.seq > 0) {
      const below = lowest.parsed.seq - 1;
      const { node, epoch } = lowest.parsed;
      problems.push({ node, epoch, kind: "unknown", first: below, last: below, keys: [lowest.key] });
    }
    for (let i = 1; i < list.length; i++) {
      const before = list[i - 1] as O;
      const after = list[i] as O;
      if (!inRange(before) && !inRange(after)) continue;
      const { node, epoch } = after.parsed;
      if (after.parsed.seq === before.parsed.seq) {
        const last = problems.at(-1);
        if (
          last?.kind === "reused" &&
          last.node === node &&
          last.epoch === epoch &&
          last.first === after.parsed.seq
        ) {
          last.keys.push(after.key);
        } else {
          problems.push({
            node,
            epoch,
            kind: "reused",
            first: after.parsed.seq,
            last: after.parsed.seq,
            keys: [before.key, after.key],
          });
        }
      } else if (after.parsed.seq > before.parsed.seq + 1) {
        problems.push({
          node,
          epoch,
          kind: "missing",
          first: before.parsed.seq + 1,
          last: after.parsed.seq - 1,
          keys: [before.key, after.key],
        });
      }
    }
  }
  return problems.sort(
    (a, b) => a.node.localeCompare(b.node) || a.epoch.localeCompare(b.epoch) || a.first - b.first,
  );
}

/** HeadObject or GetObject of a key (or version) that is not there: NotFound (HEAD), NoSuchKey, NoSuchVersion. */
function isS3NotFound(error: unknown): boolean {
  const name = (error as { name?: string }).name;
  return name === "NotFound" || name === "NoSuchKey" || name === "NoSuchVersion";
}

function headOf(s3: S3Client, bucket: string, key: string) {
  return s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
}

function getVersion(s3: S3Client, bucket: string, key: string, versionId: string | undefined) {
  return s3.send(
    new GetObjectCommand({
      Bucket: bucket,
      Key: key,
      ...(versionId === undefined || versionId === "null" ? {} : { VersionId: versionId }),
    }),
  );
}

/** An archive-tier object against its own metadata: the stored body's SHA-256, records and size. */
async function checkArchiveObject(
  s3: S3Client,
  bucket: string,
  o: ListedObject,
  readBody: boolean,
): Promise<ArchiveObjectReport | "gone"> {
  const report: ArchiveObjectReport = {
    key: o.key,
    namespace: o.parsed.namespace,
    records: null,
    verdict: "verified",
  };
  let head: Awaited<ReturnType<typeof headOf>>;
  try {
    head = await headOf(s3, bucket, o.key);
  } catch (error) {
    if (isS3NotFound(error)) return "gone";
    throw error;
  }
  let meta: ReturnType<typeof fromUserMetadata>;
  try {
    meta = fromUserMetadata(head.Metadata ?? {});
  } catch (error) {
    report.verdict = "bad-metadata";
    report.detail = (error as Error).message;
    return report;
  }
  report.records = meta.records;
  if (meta.batchId !== batchId(o.parsed)) {
    report.verdict = "bad-metadata";
    report.detail = `object metadata logarchive-batch ${meta.batchId} is not the key's batch`;
    return report;
  }
  if (o.storageClass !== undefined && COLD_STORAGE.has(o.storageClass)) {
    report.verdict = "cold";
    report.detail = `in ${o.storageClass}: metadata checked, body not read (restore it to verify)`;
    return report;
  }
  if (!readBody) return report;
  // The version HEAD saw: a delete marker put since does not hide it (a versioned bucket).
  let got: Awaited<ReturnType<typeof getVersion>>;
  try {
    got = await getVersion(s3, bucket, o.key, head.VersionId);
  } catch (error) {
    if (isS3NotFound(error)) return "gone";
    throw error;
  }
  const hash = createHash("sha256");
  let rawBytes = 0;
  let newlines = 0;
  let endsWithNewline = true;
  try {
    await pipeline(
      got.Body as Readable,
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          hash.update(chunk);
          yield chunk;
        }
      },
      createGunzip(),
      async (source: AsyncIterable<Buffer>) => {
        for await (const chunk of source) {
          rawBytes += chunk.length;
          for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) newlines++;
          if (chunk.length > 0) endsWithNewline = chunk[chunk.length - 1] === 10;
        }
      },
    );
  } catch (error) {
    report.verdict = "corrupt";
    report.detail = `the body does not inflate: ${(error as Error).message}`;
    return report;
  }
  const sha256 = hash.digest("hex");
  const records = newlines + (endsWithNewline ? 0 : 1);
  const problems = [
    sha256 === meta.sha256 ? null : `its SHA-256 is ${sha256}, the metadata says ${meta.sha256}`,
    records === meta.records ? null : `it holds ${records} records, the metadata says ${meta.records}`,
    rawBytes === meta.rawBytes
      ? null
      : `it inflates to ${rawBytes} bytes, the metadata says ${meta.rawBytes}`,
  ].filter((p) => p !== null);
  if (problems.length > 0) {
    report.verdict = "corrupt";
    report.detail = problems.join("; ");
  }
  return report;
}

/**
 * Archive-tier members of compacted hours, checked from their manifests: the record count and
 * SHA-256 each member had in its original's metadata (verified by the compactor), and, reading
 * the bodies, each member's byte range of its part (one GET per part) hashed and its lines
 * counted against them. A part in a Glacier class is "cold", as an original would be.
 */
async function checkCompactedMembers(
  s3: S3Client,
  bucket: string,
  members: readonly { member: CompactionMember; hour: HourManifests; parsed: ObjectKey }[],
  readBody: boolean,
): Promise<ArchiveObjectReport[]> {
  const byPart = new Map<string, { member: CompactionMember; parsed: ObjectKey; manifest: string }[]>();
  for (const { member, hour, parsed } of members) {
    const manifest = hour.manifests.find((m) => m.manifest.members.includes(member))!;
    const part = manifest.manifest.parts[member.part]!.key;
    byPart.set(part, [...(byPart.get(part) ?? []), { member, parsed, manifest: manifest.key }]);
  }
  const reports: ArchiveObjectReport[] = [];
  await forEachLimited([...byPart], 2, async ([part, list]) => {
    const report = (m: (typeof list)[number], verdict: ArchiveObjectVerdict, detail: string) =>
      reports.push({
        key: m.member.key,
        namespace: m.parsed.namespace,
        records: m.member.records,
        verdict,
        detail,
      });
    const where = (m: (typeof list)[number]) =>
      `compacted: bytes ${m.member.offset}-${m.member.offset + m.member.length - 1} of ${part} (manifest ${m.manifest})`;
    if (!readBody) {
      for (const m of list) report(m, "verified", `${where(m)}; manifest checked, body not read`);
      return;
    }
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: part }));
    if (head.StorageClass !== undefined && COLD_STORAGE.has(head.StorageClass)) {
      for (const m of list)
        report(
          m,
          "cold",
          `${where(m)}; the part is in ${head.StorageClass}: manifest checked, body not read`,
        );
      return;
    }
    const checked = new Map<CompactionMember, string[]>();
    await readPartMembers(
      s3,
      bucket,
      { key: part, versionId: head.VersionId ?? "null" },
      list.map((m) => m.member),
      ({ member, bytes, problem }) => {
        if (bytes === null) {
          checked.set(member, [problem ?? "not read"]);
          return;
        }
        const problems: string[] = [];
        const sha256 = createHash("sha256").update(bytes).digest("hex");
        if (sha256 !== member.sha256)
          problems.push(`its SHA-256 is ${sha256}, the manifest says ${member.sha256}`);
        try {
          const text = gunzipSync(bytes).toString("utf8");
          const records = text === "" ? 0 : text.replace(/\n$/, "").split("\n").length;
          if (records !== member.records)
            problems.push(`it holds ${records} records, the manifest says ${member.records}`);
        } catch (error) {
          problems.push(`the body does not inflate: ${(error as Error).message}`);
        }
        checked.set(member, problems);
      },
    );
    for (const m of list) {
      const problems = checked.get(m.member) ?? ["not read"];
      if (problems.length === 0) report(m, "verified", where(m));
      else report(m, "corrupt", `${where(m)}: ${problems.join("; ")}`);
    }
  });
  return reports;
}

export function describeReconcile(report: ReconcileReport): string {
  const range = `${report.from} → ${report.to}${report.namespace ? ` namespace ${report.namespace}` : ""}`;
  const lines = [
    `reconcile ${range}: ${report.objects.length} analytics object(s), ${report.archiveObjects.length} archive-tier object(s)`,
  ];
  for (const note of report.notes) lines.push(`  note: ${note}`);
  const verdictOf = (ns: string) => (report.namespaces[ns]?.ok ? "OK" : "NOT OK");
  for (const [ns, n] of Object.entries(report.perNamespace).sort()) {
    lines.push(
      `  ${ns.padEnd(24)} objects ${String(n.objects).padStart(6)}  records ${String(n.records).padStart(9)}  rows ${String(n.rows).padStart(9)}  ${verdictOf(ns)}`,
    );
  }
  for (const [ns, n] of Object.entries(report.namespaces).sort()) {
    if (n.tier !== "archive" || report.perNamespace[ns] !== undefined) continue;
    lines.push(
      `  ${ns.padEnd(24)} objects ${String(n.objects).padStart(6)}  records ${String(n.records).padStart(9)}  ${n.archiveRole === "loaded-through-stream" ? "(archive; loaded through the stream)" : "(archive only)"}  ${verdictOf(ns)}`,
    );
  }
  const counts = [...Object.entries(report.counts), ...Object.entries(report.archiveCounts)]
    .filter(([, n]) => n > 0)
    .map(([v, n]) => `${v} ${n}`)
    .join(", ");
  lines.push(`  verdicts: ${counts || "none"}`);
  for (const o of report.objects) {
    if (OK_VERDICTS.has(o.verdict)) continue;
    lines.push(`  ${o.verdict.toUpperCase().padEnd(16)} ${o.key}${o.detail ? `: ${o.detail}` : ""}`);
  }
  for (const o of report.archiveObjects) {
    if (ARCHIVE_OK_VERDICTS.has(o.verdict)) continue;
    lines.push(`  ${o.verdict.toUpperCase().padEnd(16)} ${o.key}${o.detail ? `: ${o.detail}` : ""}`);
  }
  const listed = `${report.listed.from} → ${report.listed.to}`;
  for (const p of report.sequence) {
    const numbers = p.first === p.last ? `batch ${p.first}` : `batches ${p.first}-${p.last}`;
    const shipper = `node ${p.node} epoch ${p.epoch} ${numbers}`;
    lines.push(
      p.kind === "missing"
        ? `  MISSING          ${shipper}: not in the hours ${listed}, between ${p.keys.join(" and ")} (lost, or still spooled on the node)`
        : p.kind === "reused"
          ? `  REUSED           ${shipper} names ${p.keys.length} objects: ${p.keys.join(", ")}`
          : `  UNKNOWN          ${shipper}: below ${p.keys[0]}, not in the hours ${listed}; filed under an earlier hour, or lost (widen the gap margin or --from to decide)`,
    );
  }
  for (const key of report.lossRecords) {
    lines.push(
      `  LOSS RECORDED    ${key}: the shipper counted lines of this hour lost on the node (logarchive retrieve reads it)`,
    );
  }
  for (const scan of report.warehouseScans) {
    lines.push(
      `  warehouse ${scan.table}: ${scan.batches} batch(es), rows with timestamp in ${scan.timestamps.from} → ${scan.timestamps.to}${scan.estimatedBytes === null ? "" : `, ${scan.estimatedBytes} bytes scanned (dry run)`}`,
    );
  }
  if (report.objects.length + report.archiveObjects.length === 0) {
    lines.push(
      `NOTHING CHECKED: no archived object in ${range} in either tier; check --from, --to and --namespace`,
    );
  } else {
    lines.push(
      report.ok
        ? `OK: every object is loaded exactly once or excluded by the policy, every archive-tier object matches its metadata, and no batch is missing${report.sequence.length > 0 ? ` in the hours listed (${report.sequence.length} unknown at the edge)` : ""}`
        : "NOT OK: see above",
    );
  }
  return lines.join("\n");
}
