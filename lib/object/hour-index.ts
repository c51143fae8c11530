// A node's hour index (docs/retrieval.md#hour-indexes): the shipper's statement, written once
// into the archive after a UTC hour has closed and S3 has acknowledged every batch numbered in
// it, of which batches (and loss records) it numbered in that hour: one contiguous range of its
// sequence, each with its key and the SHA-256 of its bytes, and a link to the node's previous
// index. Under a key from lib/keys/layout.ts (formatIndexKey). Written by the shipper's sink,
// read by `logarchive retrieve` (lib/retrieval/continuity.ts).
//
// Only the per-namespace sequence is indexed: stream delivery's batches are numbered under an
// epoch of their own and expire after days, so an index of them would point at objects that
// are meant to vanish, and retrieval never reads them.

import { z } from "zod";
import { indexId, parseLossKey, parseObjectKey, TIERS, type Tier } from "../keys/layout.ts";
import { parseRfc3339 } from "../record/timestamp.ts";

export const HOUR_INDEX_FORMAT = "logarchive-hour-index";
export const HOUR_INDEX_VERSION = 1;

/** S3 user metadata `logarchive-kind` of an hour index. */
export const INDEX_OBJECT_KIND = "index";

export interface HourIndexEntry {
  seq: number;
  /** A batch of lines, or a loss record (docs/shipper.md#loss-records). */
  kind: "batch" | "loss";
  key: string;
  namespace: string;
  /** The batch's tier; null for a loss record. */
  tier: Tier | null;
  /** Lowercase hex SHA-256 of the object's stored bytes. */
  sha256: string;
  bytes: number;
  records: number;
  firstTimestamp: string;
  lastTimestamp: string;
}

export interface HourIndex {
  format: typeof HOUR_INDEX_FORMAT;
  version: typeof HOUR_INDEX_VERSION;
  node: string;
  epoch: string;
  /** Start of the UTC hour (shipper's clock) in which these batches were numbered, RFC 3339. */
  hour: string;
  /** First and last batch number of the hour: `batches` holds every number between, once. */
  first: number;
  last: number;
  /**
   * The node's previous index in this epoch: its hour and last number (always first - 1). Its
   * hour is earlier, except after the shipper's clock was stepped back by more than an hour.
   * Null when the chain starts here: a new state epoch (first is 0), or a shipper that began
   * indexing in the middle of an epoch (an upgrade), whose earlier numbers are in no index.
   */
  previous: { hour: string; last: number } | null;
  batches: HourIndexEntry[];
}

const timestamp = z.string().refine((s) => parseRfc3339(s) !== null, "expected an RFC 3339 timestamp");
const count = z.number().int().nonnegative();
const hourStart = z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:00:00Z$/, "expected YYYY-MM-DDTHH:00:00Z");

const entrySchema = z.object({
  seq: count,
  kind: z.enum(["batch", "loss"]),
  key: z.string().min(1),
  namespace: z.string().min(1),
  tier: z.enum(TIERS).nullable(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, "expected 64 lowercase hex digits"),
  bytes: count,
  records: count,
  firstTimestamp: timestamp,
  lastTimestamp: timestamp,
});

const indexSchema = z.object({
  format: z.literal(HOUR_INDEX_FORMAT),
  version: z.literal(HOUR_INDEX_VERSION),
  node: z.string().min(1),
  epoch: z.string().regex(/^[0-9a-f]{8,32}$/),
  hour: hourStart,
  first: count,
  last: count,
  previous: z.object({ hour: hourStart, last: count }).nullable(),
  batches: z.array(entrySchema).min(1),
});

export class HourIndexError extends Error {
  override name = "HourIndexError";
}

/**
 * The index's body as stored: one line of JSON, the fields in this order and the batches in
 * number order, so the same facts always make the same bytes (a rewrite after a crash is
 * byte-identical, which the conditional PUT's check relies on). Nothing in it depends on when
 * or by which shipper version it was written: those are in the object metadata.
 */
export function encodeHourIndex(index: HourIndex): Buffer {
  const ordered: HourIndex = {
    format: HOUR_INDEX_FORMAT,
    version: HOUR_INDEX_VERSION,
    node: index.node,
    epoch: index.epoch,
    hour: index.hour,
    first: index.first,
    last: index.last,
    previous: index.previous === null ? null : { hour: index.previous.hour, last: index.previous.last },
    batches: [...index.batches]
      .sort((a, b) => a.seq - b.seq)
      .map((e) => ({
        seq: e.seq,
        kind: e.kind,
        key: e.key,
        namespace: e.namespace,
        tier: e.tier,
        sha256: e.sha256,
        bytes: e.bytes,
        records: e.records,
        firstTimestamp: e.firstTimestamp,
        lastTimestamp: e.lastTimestamp,
      })),
  };
  checkConsistent(ordered);
  return Buffer.from(`${JSON.stringify(ordered)}\n`, "utf8");
}

/** Reads and checks an index body: schema, and that it says one consistent thing. */
export function parseHourIndex(body: Buffer | string): HourIndex {
  let value: unknown;
  try {
    value = JSON.parse(body.toString());
  } catch (error) {
    throw new HourIndexError(`hour index is not JSON: ${(error as Error).message}`);
  }
  const result = indexSchema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new HourIndexError(`hour index field ${issue.path.join(".")} is invalid (${issue.message})`);
  }
  const index = result.data as HourIndex;
  checkConsistent(index);
  return index;
}

/**
 * What the reader relies on: the batches are exactly first..last in order, each key is the
 * node's and epoch's object with that number (or loss record) and says the entry's namespace
 * and tier, and the chain link ends right before `first`.
 */
function checkConsistent(index: HourIndex): void {
  const fail = (why: string) => new HourIndexError(`hour index ${index.node} ${index.hour}: ${why}`);
  indexId(index.node, index.epoch);
  if (index.last < index.first) throw fail(`last ${index.last} is below first ${index.first}`);
  if (index.batches.length !== index.last - index.first + 1) {
    throw fail(`lists ${index.batches.length} batches for numbers ${index.first}..${index.last}`);
  }
  index.batches.forEach((entry, i) => {
    if (entry.seq !== index.first + i)
      throw fail(`entry ${i} has number ${entry.seq}, not ${index.first + i}`);
    let parsed: { node: string; epoch: string; seq: number; namespace: string; tier: Tier | null };
    try {
      parsed = entry.kind === "loss" ? { ...parseLossKey(entry.key), tier: null } : parseObjectKey(entry.key);
    } catch (error) {
      throw fail(`entry ${entry.seq}: ${(error as Error).message}`);
    }
    if (parsed.node !== index.node || parsed.epoch !== index.epoch || parsed.seq !== entry.seq) {
      throw fail(`entry ${entry.seq}: key ${entry.key} is not this node's and epoch's number ${entry.seq}`);
    }
    if (parsed.namespace !== entry.namespace || parsed.tier !== entry.tier) {
      throw fail(`entry ${entry.seq}: key ${entry.key} disagrees with its namespace or tier`);
    }
  });
  if (index.previous !== null) {
    if (index.previous.last !== index.first - 1) {
      throw fail(`previous index ends at ${index.previous.last}, not right before first ${index.first}`);
    }
    // Usually earlier; later only after the shipper's clock was stepped back more than an hour
    // (shipper/sinks/s3/hour-index.ts): the chain is by number. Never the same hour, which
    // holds one index per node and epoch.
    if (index.previous.hour === index.hour)
      throw fail(`previous index hour ${index.previous.hour} is this index's hour`);
  }
}

/** RFC 3339 start of the UTC hour `hourNumber` (hours since 1970). */
export function hourStartText(hourNumber: number): string {
  return `${new Date(hourNumber * 3_600_000).toISOString().slice(0, 13)}:00:00Z`;
}
