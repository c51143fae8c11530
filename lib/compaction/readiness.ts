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
// Memory. At 10,000 nodes a pending hour reads 40,000 indexes (H-1 to H+2) of about 31 entries
// each; held parsed, as IndexReading keeps them, that is well over a GiB of heap
// (benchmarks/compaction.bench.ts, docs/benchmarks.md#compaction). The compactor keeps of each
// index only its node and number range, and of its entries only the key and SHA-256 of the
// batches of the namespace-hours it is compacting, grouped by records' hour and namespace, and
// it reads them one at a time (readIndexHours' onIndex), so the rest is garbage at once.

import type { S3Client } from "@aws-sdk/client-s3";
import type { ObjectKey } from "../keys/layout.ts";
import { parseObjectKey } from "../keys/layout.ts";
import { emptyReading, readIndexHours } from "../retrieval/hour-indexes.ts";
import { hourStartMs } from "./hour.ts";

const HOUR_MS = 3_600_000;
/** Hours after the records' hour whose indexes are read by default (the default archive batch age is 1 h). */
export const DEFAULT_INDEX_MARGIN_HOURS = 2;

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
}): Promise<IndexReadiness> {
  const reading = o.reading ?? (await readCompactionIndexes(o));
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
  const ranges = nodeRanges(reading);
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
        `node ${node}: batch ${key} is numbered after its last index read (number ${lastIndexed}): the index of the hour it was numbered in is not written yet`,
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
    unusable: reading.hours.flatMap((h) => h.unusable),
  };
}
