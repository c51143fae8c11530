// Reads the shipper's hour indexes (docs/retrieval.md#hour-indexes) of a span of hours: one
// LIST of `<prefix>/index/dt=…/hour=…/` per hour (one more per 1,000 nodes), then one GET per
// node and hour. An index whose body does not match its own checksum, its key or the schema
// is not used (the caller then decides that node's hours by listing) and is named.

import { createHash } from "node:crypto";
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { forEachLimited } from "../../functions/loader/state.ts";
import { indexHourPrefix, parseIndexKey } from "../keys/layout.ts";
import { type HourIndex, hourStartText, parseHourIndex } from "../object/hour-index.ts";
import { userMetadataValue } from "../object/metadata.ts";
import { listObjectPages } from "./find.ts";

const HOUR_MS = 3_600_000;

export interface ReadIndex {
  key: string;
  /** Start of its hour, ms. */
  hourStart: number;
  index: HourIndex;
}

export interface IndexReading {
  indexes: ReadIndex[];
  /** Indexes found but not used, and why. */
  unusable: { key: string; problem: string }[];
  /** Hours read, [from, to) ms. */
  from: number;
  to: number;
  listCalls: number;
  getCalls: number;
}

export function emptyReading(from: number): IndexReading {
  return { indexes: [], unusable: [], from, to: from, listCalls: 0, getCalls: 0 };
}

/**
 * Reads every node's index of the hours [reading.to, to) into `reading`, extending it. With
 * `onIndex`, each usable index is handed to it instead of kept in `reading.indexes`, so a
 * caller that needs a little of each (the compactor, lib/compaction/readiness.ts) never
 * holds them all parsed at once.
 */
export async function readIndexHours(
  s3: S3Client,
  bucket: string,
  keyPrefix: string,
  reading: IndexReading,
  to: number,
  onIndex?: (read: ReadIndex) => void,
): Promise<void> {
  const keys: string[] = [];
  for (let hour = reading.to; hour < to; hour += HOUR_MS) {
    const text = hourStartText(hour / HOUR_MS);
    const prefix = indexHourPrefix(keyPrefix, text.slice(0, 10), text.slice(11, 13));
    for await (const contents of listObjectPages(s3, bucket, prefix)) {
      reading.listCalls++;
      for (const o of contents) if (o.Key !== undefined) keys.push(o.Key);
    }
  }
  reading.to = Math.max(reading.to, to);
  await forEachLimited(keys, 8, async (key) => {
    try {
      const parsed = parseIndexKey(key);
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      reading.getCalls++;
      const body = Buffer.from(await (got.Body?.transformToByteArray() ?? new Uint8Array()));
      const sha256 = createHash("sha256").update(body).digest("hex");
      const stored = userMetadataValue(got.Metadata, "sha256");
      if (stored !== sha256)
        throw new Error(`its SHA-256 is ${sha256}, the metadata says ${stored ?? "(none)"}`);
      const index = parseHourIndex(body);
      const hour = `${parsed.dt}T${parsed.hour}:00:00Z`;
      if (index.node !== parsed.node || index.epoch !== parsed.epoch || index.hour !== hour) {
        throw new Error(`its body is ${index.node} ${index.epoch} ${index.hour}, not what its key says`);
      }
      const read = { key, hourStart: Date.parse(hour), index };
      if (onIndex === undefined) reading.indexes.push(read);
      else onIndex(read);
    } catch (error) {
      reading.unusable.push({ key, problem: (error as Error).message });
    }
  });
}
