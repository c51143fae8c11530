// Whether a namespace-hour is ready to compact by the shippers' own account: their hour
// indexes (lib/object/hour-index.ts, docs/retrieval.md#hour-indexes), each written once a node's
// clock hour has closed and S3 has acknowledged every batch numbered in it. The hour is ready
// when every batch of the namespace-hour that an index names is in S3 (or already compacted),
// and every listed batch of a node that writes indexes is covered by one (a node whose covering
// index is not written yet may still have batches of the hour open or uploading).
//
// A batch of records' hour H is numbered when it is cut: in H, or later by up to the archive
// batch age (lib/retrieval/arrival.ts), so indexes of H-1 (clock skew between the records'
// timestamps and the shipper's clock) to H + marginHours are read. A node with batches in the
// hour and no index in those hours (a shipper from before indexes, or one down since) does not
// block: it is named, and a batch of it that arrives later goes into a supplement generation.
//
// A batch numbered after the hours read. A batch of records' hour H whose number is above its
// node's last index in H-1..H+margin was numbered later than the margin (a stalled upload, a
// node's clock far ahead of its records): waiting on H+margin's indexes alone would block the
// hour forever. Its node's own index of each later closed hour (its key is known: node, epoch,
// hour, lib/keys/layout.ts formatIndexKey) is read, one GET each, until one covers the number
// (the hour may be ready), or every closed hour up to now is read (not ready yet: the covering
// index is not written), at most MAX_LATER_INDEX_HOURS of them per node. Only the nodes with
// such a batch are read, and each (node, hour) once per LaterIndexes (compactPending shares
// one across a run), so a stuck hour costs a GET per later hour of its late nodes, not a whole
// index hour (one GET per node of the fleet).
//
// Memory. At 10,000 nodes a pending hour reads 40,000 indexes (H-1 to H+2) of about 31 entries
// each; held parsed, as IndexReading keeps them, that is well over a GiB of heap
// (benchmarks/compaction.bench.ts, docs/benchmarks.md#compaction). The compactor keeps of each
// index only its node and number range, and of its entries only the key and SHA-256 of the
// batches of the namespace-hours it is compacting, grouped by records' hour and namespace, and
// it reads them one at a time (readIndexHours' onIndex), so the rest is garbage at once.

import { createHash } from "node:crypto";
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import type { ObjectKey } from "../keys/layout.ts";
import { formatIndexKey, parseObjectKey } from "../keys/layout.ts";
import { parseHourIndex } from "../object/hour-index.ts";
import { userMetadataValue } from "../object/metadata.ts";
import { emptyReading, readIndexHours } from "../retrieval/hour-indexes.ts";
import { hourStartMs } from "./hour.ts";

const HOUR_MS = 3_600_000;
/** Hours after the records' hour whose indexes are read by default (the default archive batch age is 1 h). */
export const DEFAULT_INDEX_MARGIN_HOURS = 2;

/**
 * Most later index hours read for one node's late batch: a week of hours, far past any batch
 * age or upload retry, so a node whose indexes stopped (down, removed) costs at most this many
 * GETs per run and stays not-ready rather than being read back to the epoch.
 */
export const MAX_LATER_INDEX_HOURS = 7 * 24;

/** One node's index of one later hour, as LaterIndexes keeps it. */
type LaterIndex =
  | { status: "absent"; key: string }
  | { status: "unusable"; key: string; problem: string }
  | {
      status: "read";
      key: string;
      first: number;
      last: number;
      /** Its batch entries, by batchGroup: key and SHA-256. */
      batches: Map<string, { key: string; sha256: string }[]>;
    };

/**
 * Single nodes' indexes of single hours, each read at most once per instance (a run's
 * compactPending shares one across its namespace-hours; checkHourIndexes makes its own
 * otherwise). `gets` counts the GetObject requests sent.
 */
export class LaterIndexes {
  gets = 0;
  readonly #read = new Map<string, Promise<LaterIndex>>();
  readonly #o: { s3: S3Client; bucket: string; prefix: string };
  constructor(o: { s3: S3Client; bucket: string; prefix: string }) {
    this.#o = o;
  }

  read(node: string, epoch: string, hourStart: number): Promise<LaterIndex> {
    const id = `${node} ${epoch} ${hourStart}`;
    let reading = this.#read.get(id);
    if (reading === undefined) {
      reading = this.#get(node, epoch, hourStart);
      reading.catch(() => {});
      this.#read.set(id, reading);
    }
    return reading;
  }

  async #get(node: string, epoch: string, hourStart: number): Promise<LaterIndex> {
    const iso = new Date(hourStart).toISOString();
    const dt = iso.slice(0, 10);
    const hour = iso.slice(11, 13);
    const key = formatIndexKey({ prefix: this.#o.prefix, dt, hour, node, epoch });
    let body: Buffer;
    let metadata: Record<string, string> | undefined;
    try {
      this.gets++;
      const got = await this.#o.s3.send(new GetObjectCommand({ Bucket: this.#o.bucket, Key: key }));
      body = Buffer.from(await (got.Body?.transformToByteArray() ?? new Uint8Array()));
      metadata = got.Metadata;
    } catch (error) {
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 404 || (error as Error).name === "NoSuchKey") return { status: "absent", key };
      throw error;
    }
    // The checks lib/retrieval/hour-indexes.ts readIndexHours makes of every index it reads.
    try {
      const sha256 = createHash("sha256").update(body).digest("hex");
      const stored = userMetadataValue(metadata, "sha256");
      if (stored !== sha256)
        throw new Error(`its SHA-256 is ${sha256}, the metadata says ${stored ?? "(none)"}`);
      const index = parseHourIndex(body);
      if (index.node !== node || index.epoch !== epoch || index.hour !== `${dt}T${hour}:00:00Z`) {
        throw new Error(`its body is ${index.node} ${index.epoch} ${index.hour}, not what its key says`);
      }
      const batches = new Map<string, { key: string; sha256: string }[]>();
      for (const entry of index.batches) {
        if (entry.kind !== "batch") continue;
        const parsed = parseObjectKey(entry.key);
        const group = batchGroup(hourStartMs(parsed.dt, parsed.hour), entry.namespace);
        batches.set(group, [...(batches.get(group) ?? []), { key: entry.key, sha256: entry.sha256 }]);
      }
      return { status: "read", key, first: index.first, last: index.last, batches };
    } catch (error) {
      return { status: "unusable", key, problem: (error as Error).message };
    }
  }
}

/** What the compactor keeps of one hour's indexes of every node. */
export interface IndexHourSummary {
  /** Start of the index hour, ms. */
  hourStart: number;
  /** Each index read: its key, `<node> <epoch>` and the batch numbers it covers. */
  indexes: { key: string; node: string; first: number; last: number }[];
  /**
   * Batch entries kept (those of the namespace-hours wanted), by `<records' hour start ms> <namespace>`:
   * the batch's key, its SHA-256 and the index naming it.
   */
  batches: Map<string, { key: string; sha256: string; index: string }[]>;
  /** Indexes found but not used, and why. */
  unusable: { key: string; problem: string }[];
  listCalls: number;
  getCalls: number;
}

/** The index hours a compaction of one records' hour reads (H-1 to H+margin), summarized. */
export interface CompactionIndexes {
  hours: IndexHourSummary[];
}

/** The key of IndexHourSummary.batches. */
export function batchGroup(recordsHourStart: number, namespace: string): string {
  return `${recordsHourStart} ${namespace}`;
}

/**
 * Reads every node's index of the hour starting at `hourStart`, keeping of it what
 * checkHourIndexes needs for the namespace-hours `keep` accepts: one LIST per 1,000 nodes,
 * one GET per node, one parsed index in memory per GET in flight.
 */
export async function readIndexHourSummary(
  o: { s3: S3Client; bucket: string; prefix: string },
  hourStart: number,
  keep: (namespace: string, recordsHourStart: number) => boolean,
): Promise<IndexHourSummary> {
  const reading = emptyReading(hourStart);
  const summary: IndexHourSummary = {
    hourStart,
    indexes: [],
    batches: new Map(),
    unusable: reading.unusable,
    listCalls: 0,
    getCalls: 0,
  };
  await readIndexHours(o.s3, o.bucket, o.prefix, reading, hourStart + HOUR_MS, ({ key, index }) => {
    const kept: [string, { key: string; sha256: string; index: string }][] = [];
    for (const entry of index.batches) {
      if (entry.kind !== "batch") continue;
      const parsed = parseObjectKey(entry.key);
      const recordsHour = hourStartMs(parsed.dt, parsed.hour);
      if (!keep(entry.namespace, recordsHour)) continue;
      kept.push([
        batchGroup(recordsHour, entry.namespace),
        { key: entry.key, sha256: entry.sha256, index: key },
      ]);
    }
    // Only once every entry parsed: an index with a bad entry is unusable as a whole.
    summary.indexes.push({ key, node: `${index.node} ${index.epoch}`, first: index.first, last: index.last });
    for (const [group, entry] of kept) {
      const list = summary.batches.get(group);
      if (list === undefined) summary.batches.set(group, [entry]);
      else list.push(entry);
    }
  });
  summary.listCalls = reading.listCalls;
  summary.getCalls = reading.getCalls;
  return summary;
}

/**
 * Every node's hour indexes of the hours a compaction of records' hour `dt` `hour` reads,
 * keeping the entries of that records' hour (every namespace): one LIST per hour and one GET
 * per node and hour. They are the same for every namespace, so a run over all namespaces of
 * an hour reads them once and passes them to each (CompactOptions.indexReading) instead of
 * one read per namespace.
 */
export async function readCompactionIndexes(o: {
  s3: S3Client;
  bucket: string;
  prefix: string;
  dt: string;
  hour: string;
  marginHours?: number;
}): Promise<CompactionIndexes> {
  const start = hourStartMs(o.dt, o.hour);
  const hours: IndexHourSummary[] = [];
  for (
    let h = start - HOUR_MS;
    h <= start + (o.marginHours ?? DEFAULT_INDEX_MARGIN_HOURS) * HOUR_MS;
    h += HOUR_MS
  ) {
    hours.push(await readIndexHourSummary(o, h, (_, recordsHour) => recordsHour === start));
  }
  return { hours };
}

/** Each node's covered number ranges, computed once per CompactionIndexes (shared by every namespace). */
const rangesCache = new WeakMap<CompactionIndexes, Map<string, { first: number; last: number }[]>>();
function nodeRanges(reading: CompactionIndexes): Map<string, { first: number; last: number }[]> {
  let ranges = rangesCache.get(reading);
  if (ranges === undefined) {
    ranges = new Map();
    for (const hour of reading.hours) {
      for (const { node, first, last } of hour.indexes) {
        const list = ranges.get(node);
        if (list === undefined) ranges.set(node, [{ first, last }]);
        else list.push({ first, last });
      }
    }
    rangesCache.set(reading, ranges);
  }
  return ranges;
}

export interface IndexReadiness {
  ready: boolean;
  /** Why not, one sentence each. */
  blocking: string[];
  /** `<node> <epoch>` of nodes with batches in the hour but no index in the hours read. */
  unindexedNodes: string[];
  /** SHA-256 each index gives for a batch of the hour, by key: the compactor checks the metadata against it. */
  indexedSha256: Map<string, string>;
  indexesRead: number;
  /** Indexes found but not used (checksum, key or schema problems), and why. */
  unusable: { key: string; problem: string }[];
  /** GETs of single nodes' later index hours this check sent (batches numbered after the hours read). */
  laterIndexGets: number;
}

export async function checkHourIndexes(o: {
  s3: S3Client;
  bucket: string;
  prefix: string;
  namespace: string;
  dt: string;
  hour: string;
  /** The hour's archive objects in S3 now, not yet compacted. */
  listed: readonly { key: string; parsed: ObjectKey }[];
  /** Keys already in committed manifests (present, though perhaps expired since). */
  compacted: ReadonlySet<string>;
  marginHours?: number;
  /** The indexes, read already (readCompactionIndexes, or compactPending's); read here when absent. */
  reading?: CompactionIndexes;
  /** The clock: later index hours are read up to the last closed hour. Default now. */
  now?: Date;
  /** Later single-node index reads, shared across a run (compactPending); a new one when absent. */
  laterIndexes?: LaterIndexes;
}): Promise<IndexReadiness> {
  const reading = o.reading ?? (await readCompactionIndexes(o));
  const later = o.laterIndexes ?? new LaterIndexes(o);
  const getsBefore = later.gets;
  const unusable = reading.hours.flatMap((h) => h.unusable);
  const listedKeys = new Set(o.listed.map((l) => l.key));
  const blocking: string[] = [];
  const indexedSha256 = new Map<string, string>();
  const group = batchGroup(hourStartMs(o.dt, o.hour), o.namespace);
  for (const hour of reading.hours) {
    for (const entry of hour.batches.get(group) ?? []) {
      indexedSha256.set(entry.key, entry.sha256);
      if (!listedKeys.has(entry.key) && !o.compacted.has(entry.key)) {
        blocking.push(`batch ${entry.key} is named by hour index ${entry.index} but is not in S3`);
      }
    }
  }
  const ranges = new Map(nodeRanges(reading));
  await readLaterIndexes(
    o,
    reading,
    later,
    ranges,
    group,
    (entry, index) => {
      indexedSha256.set(entry.key, entry.sha256);
      if (!listedKeys.has(entry.key) && !o.compacted.has(entry.key)) {
        blocking.push(`batch ${entry.key} is named by hour index ${index} but is not in S3`);
      }
    },
    unusable,
  );
  const unindexed = new Set<string>();
  for (const { key, parsed } of o.listed) {
    const node = `${parsed.node} ${parsed.epoch}`;
    const indexed = ranges.get(node);
    if (indexed === undefined) {
      unindexed.add(node);
      continue;
    }
    if (indexed.some((r) => r.first <= parsed.seq && parsed.seq <= r.last)) continue;
    const lastIndexed = Math.max(...indexed.map((r) => r.last));
    const firstIndexed = Math.min(...indexed.map((r) => r.first));
    if (parsed.seq < firstIndexed) {
      // Numbered before the hours read (a clock far behind the records): no index to wait for here.
      unindexed.add(node);
    } else if (parsed.seq > lastIndexed) {
      blocking.push(
        `node ${node}: batch ${key} is numbered after its last index read (number ${lastIndexed}): the index of the hour it was numbered in is not written yet (its node's indexes are read up to the last closed hour)`,
      );
    } else {
      blocking.push(
        `node ${node}: batch ${key} falls in a gap between its indexes (a missing or unusable index)`,
      );
    }
  }
  return {
    ready: blocking.length === 0,
    blocking,
    unindexedNodes: [...unindexed].sort(),
    indexedSha256,
    indexesRead: reading.hours.reduce((n, h) => n + h.indexes.length, 0),
    unusable,
    laterIndexGets: later.gets - getsBefore,
  };
}

/**
 * For each node with a listed batch numbered above every index of it read, its own indexes of
 * the later closed hours, one at a time, until one reaches the highest such number (see the
 * header). Each index read is added to `ranges` (a copy: the shared one is not changed) and its
 * entries of `group` handed to `onEntry`.
 */
async function readLaterIndexes(
  o: {
    listed: readonly { key: string; parsed: ObjectKey }[];
    now?: Date;
  },
  reading: CompactionIndexes,
  later: LaterIndexes,
  ranges: Map<string, { first: number; last: number }[]>,
  group: string,
  onEntry: (entry: { key: string; sha256: string }, index: string) => void,
  unusable: { key: string; problem: string }[],
): Promise<void> {
  const highest = new Map<string, { node: string; epoch: string; seq: number }>();
  for (const { parsed } of o.listed) {
    const id = `${parsed.node} ${parsed.epoch}`;
    const indexed = ranges.get(id);
    if (indexed === undefined) continue; // a node without indexes: not waited on
    if (indexed.some((r) => r.first <= parsed.seq && parsed.seq <= r.last)) continue;
    if (parsed.seq <= Math.max(...indexed.map((r) => r.last))) continue;
    const seen = highest.get(id);
    if (seen === undefined || seen.seq < parsed.seq) {
      highest.set(id, { node: parsed.node, epoch: parsed.epoch, seq: parsed.seq });
    }
  }
  if (highest.size === 0) return;
  const lastRead = Math.max(...reading.hours.map((h) => h.hourStart));
  const closedBefore = Math.floor((o.now ?? new Date()).getTime() / HOUR_MS) * HOUR_MS;
  const until = Math.min(closedBefore, lastRead + (MAX_LATER_INDEX_HOURS + 1) * HOUR_MS);
  for (const [id, { node, epoch, seq }] of highest) {
    const list = [...(ranges.get(id) ?? [])];
    ranges.set(id, list);
    for (let h = lastRead + HOUR_MS; h < until; h += HOUR_MS) {
      const index = await later.read(node, epoch, h);
      if (index.status === "absent") continue;
      if (index.status === "unusable") {
        unusable.push({ key: index.key, problem: index.problem });
        continue;
      }
      list.push({ first: index.first, last: index.last });
      for (const entry of index.batches.get(group) ?? []) onEntry(entry, index.key);
      if (index.last >= seq) break;
    }
  }
}
