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

import type { S3Client } from "@aws-sdk/client-s3";
import type { ObjectKey } from "../keys/layout.ts";
import { parseObjectKey } from "../keys/layout.ts";
import { emptyReading, type IndexReading, readIndexHours } from "../retrieval/hour-indexes.ts";
import { hourStartMs } from "./hour.ts";

const HOUR_MS = 3_600_000;
/** Hours after the records' hour whose indexes are read by default (the default archive batch age is 1 h). */
export const DEFAULT_INDEX_MARGIN_HOURS = 2;

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

/**
 * Every node's hour indexes of the hours a compaction of records' hour `dt` `hour` reads:
 * one LIST per hour and one GET per node and hour. They are the same for every namespace, so
 * a run over all namespaces of an hour reads them once and passes them to each
 * (CompactOptions.indexReading) instead of one read per namespace.
 */
export async function readCompactionIndexes(o: {
  s3: S3Client;
  bucket: string;
  prefix: string;
  dt: string;
  hour: string;
  marginHours?: number;
}): Promise<IndexReading> {
  const start = hourStartMs(o.dt, o.hour);
  const reading = emptyReading(start - HOUR_MS);
  await readIndexHours(
    o.s3,
    o.bucket,
    o.prefix,
    reading,
    start + (1 + (o.marginHours ?? DEFAULT_INDEX_MARGIN_HOURS)) * HOUR_MS,
  );
  return reading;
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
  /** The indexes, read already (readCompactionIndexes); read here when absent. */
  reading?: IndexReading;
}): Promise<IndexReadiness> {
  const reading = o.reading ?? (await readCompactionIndexes(o));
  const listedKeys = new Set(o.listed.map((l) => l.key));
  const blocking: string[] = [];
  const indexedSha256 = new Map<string, string>();
  const ranges = new Map<string, { first: number; last: number; hour: string }[]>();
  for (const { key: indexKey, index } of reading.indexes) {
    const node = `${index.node} ${index.epoch}`;
    ranges.set(node, [
      ...(ranges.get(node) ?? []),
      { first: index.first, last: index.last, hour: index.hour },
    ]);
    for (const entry of index.batches) {
      if (entry.kind !== "batch" || entry.namespace !== o.namespace) continue;
      const parsed = parseObjectKey(entry.key);
      if (parsed.dt !== o.dt || parsed.hour !== o.hour) continue;
      indexedSha256.set(entry.key, entry.sha256);
      if (!listedKeys.has(entry.key) && !o.compacted.has(entry.key)) {
        blocking.push(`batch ${entry.key} is named by hour index ${indexKey} but is not in S3`);
      }
    }
  }
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
    indexesRead: reading.indexes.length,
    unusable: reading.unusable,
  };
}
