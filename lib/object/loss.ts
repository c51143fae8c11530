// A loss record: the shipper's statement, written into the archive, that bytes of a log file
// were lost on the node before it could read them (docs/shipper.md#loss-records). One JSON
// object per loss, under a key from lib/keys/layout.ts (formatLossKey), numbered from the
// node's batch sequence so sequence-continuity checks see it as a batch, not a gap.
// Written by the shipper's sink, read by `logarchive retrieve` (lib/retrieval/losses.ts).

import { z } from "zod";
import { parseRfc3339 } from "../record/timestamp.ts";

export const LOSS_RECORD_VERSION = 1;

/** Why the bytes were lost; the `reason` label of logarchive_shipper_lost_bytes_total. */
export const LOSS_REASONS = ["rotation", "truncation", "corrupt_gzip"] as const;
export type LossReason = (typeof LOSS_REASONS)[number];

/** S3 user metadata `logarchive-kind` of a loss record (batches carry none). */
export const LOSS_OBJECT_KIND = "loss";

export interface LossRecord {
  version: typeof LOSS_RECORD_VERSION;
  /** `<node>_<epoch>_<seq>`, as in the key. */
  batchId: string;
  node: string;
  reason: LossReason;
  namespace: string;
  pod: string;
  podUid: string | null;
  container: string;
  /** The file as the shipper knew it: path last seen, inode, and fingerprint of its first bytes. */
  file: { path: string; dev: number; ino: number; fingerprint: string; compressed: boolean };
  /** Bytes lost. */
  bytes: number;
  /**
   * Byte offsets [start, end) of what was lost, in the file as stored (compressed bytes for a
   * `.gz`), when known; null when only the count is.
   */
  range: { start: number; end: number } | null;
  /** When the shipper found the loss, RFC 3339 UTC. */
  detectedAt: string;
  /**
   * The lost lines lie between these, when known: the timestamp of the last line read from
   * the file before the loss, and of the first line read after it (same file). Null: unknown.
   */
  window: { lastLineBefore: string | null; firstLineAfter: string | null };
  note: string;
  shipperVersion: string;
}

const timestamp = z.string().refine((s) => parseRfc3339(s) !== null, "expected an RFC 3339 timestamp");
const count = z.number().int().nonnegative();

const lossRecordSchema = z.object({
  version: z.literal(LOSS_RECORD_VERSION),
  batchId: z.string().min(1),
  node: z.string().min(1),
  reason: z.enum(LOSS_REASONS),
  namespace: z.string().min(1),
  pod: z.string(),
  podUid: z.string().nullable(),
  container: z.string(),
  file: z.object({
    path: z.string(),
    dev: count,
    ino: count,
    fingerprint: z.string(),
    compressed: z.boolean(),
  }),
  bytes: count,
  range: z.object({ start: count, end: count }).nullable(),
  detectedAt: timestamp,
  window: z.object({ lastLineBefore: timestamp.nullable(), firstLineAfter: timestamp.nullable() }),
  note: z.string(),
  shipperVersion: z.string(),
});

export class LossRecordError extends Error {
  override name = "LossRecordError";
}

/** The record's body as stored: one line of JSON. */
export function encodeLossRecord(record: LossRecord): Buffer {
  return Buffer.from(`${JSON.stringify(record)}\n`, "utf8");
}

export function parseLossRecord(body: Buffer | string): LossRecord {
  let value: unknown;
  try {
    value = JSON.parse(body.toString());
  } catch (error) {
    throw new LossRecordError(`loss record is not JSON: ${(error as Error).message}`);
  }
  const result = lossRecordSchema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new LossRecordError(`loss record field ${issue.path.join(".")} is invalid (${issue.message})`);
  }
  return result.data as LossRecord;
}

/**
 * The time span the lost lines may have been written in, ms since the epoch: from the last
 * line read before the loss (unbounded below when unknown) to its detection.
 */
export function lossSpan(record: LossRecord): { from: number; to: number } {
  const before = record.window.lastLineBefore;
  return { from: before === null ? Number.NEGATIVE_INFINITY : msOf(before), to: msOf(record.detectedAt) };
}

function msOf(text: string): number {
  const t = parseRfc3339(text);
  if (t === null) throw new LossRecordError(`${JSON.stringify(text)} is not an RFC 3339 timestamp`);
  return t.epochSeconds * 1000 + Math.floor(t.nanos / 1e6);
}

/** What the source knows of a loss; the sink adds the identity (batchId, node) and version. */
export type LossFacts = Omit<LossRecord, "version" | "batchId" | "node" | "shipperVersion">;
