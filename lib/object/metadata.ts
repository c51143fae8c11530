// Per-object metadata: what an archive object holds, written by the shipper as S3 user
// metadata (x-amz-meta-*), carried to GCS by the transfer, and read by the loader,
// `reconcile` and compliance retrieval to count and verify without reading the body.

import { z } from "zod";
import { parseRfc3339 } from "../record/timestamp.ts";

export const METADATA_PREFIX = "logarchive-";

export interface ObjectMetadata {
  /** Version of the record schema the body follows. */
  schemaVersion: number;
  /** Number of NDJSON lines in the body. */
  records: number;
  /** Earliest and latest record time, RFC 3339 UTC with nanoseconds. */
  firstTimestamp: string;
  lastTimestamp: string;
  /** Lowercase hex SHA-256 of the stored (gzip) body. */
  sha256: string;
  /** Size of the body before gzip, in bytes. */
  rawBytes: number;
  /** Batch id, equal to every record's batch_id. */
  batchId: string;
  /** Version of the shipper that wrote the object. */
  shipperVersion: string;
}

const FIELDS = {
  schemaVersion: "schema",
  records: "records",
  firstTimestamp: "first-ts",
  lastTimestamp: "last-ts",
  sha256: "sha256",
  rawBytes: "raw-bytes",
  batchId: "batch",
  shipperVersion: "shipper",
} as const satisfies Record<keyof ObjectMetadata, string>;

const count = z.string().regex(/^\d+$/, "expected a non-negative integer").transform(Number);
const timestamp = z.string().refine((s) => parseRfc3339(s) !== null, "expected an RFC 3339 timestamp");

const metadataSchema = z.object({
  schemaVersion: count,
  records: count,
  firstTimestamp: timestamp,
  lastTimestamp: timestamp,
  sha256: z.string().regex(/^[0-9a-f]{64}$/, "expected 64 lowercase hex digits"),
  rawBytes: count,
  batchId: z.string().min(1),
  shipperVersion: z.string().min(1),
});

/** S3 user metadata (keys without the x-amz-meta- prefix) for an object. */
export function toUserMetadata(m: ObjectMetadata): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [field, key] of Object.entries(FIELDS)) {
    out[METADATA_PREFIX + key] = String(m[field as keyof ObjectMetadata]);
  }
  return out;
}

/**
 * One logarchive-* value from S3 user metadata or GCS custom metadata, by its key without the
 * prefix (e.g. "sha256"). Keys are matched case-insensitively, because S3 lowercases them and
 * proxies may not; every reader of the metadata goes through here so they all agree.
 */
export function userMetadataValue(
  metadata: Record<string, string | undefined> | undefined,
  key: (typeof FIELDS)[keyof typeof FIELDS],
): string | undefined {
  if (metadata === undefined) return undefined;
  const wanted = METADATA_PREFIX + key;
  const exact = metadata[wanted];
  if (exact !== undefined) return exact;
  for (const [k, v] of Object.entries(metadata)) if (k.toLowerCase() === wanted) return v;
  return undefined;
}

export class ObjectMetadataError extends Error {
  override name = "ObjectMetadataError";
}

/**
 * Reads the contract's metadata back from S3 user metadata or GCS custom metadata.
 * Keys are matched case-insensitively, because S3 lowercases them and proxies may not.
 */
export function fromUserMetadata(metadata: Record<string, string | undefined>): ObjectMetadata {
  const raw = Object.fromEntries(
    Object.entries(FIELDS).map(([field, key]) => [field, userMetadataValue(metadata, key)]),
  );
  const result = metadataSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const field = String(issue.path[0]) as keyof ObjectMetadata;
    const key = METADATA_PREFIX + FIELDS[field];
    const problem = raw[field] === undefined ? "is missing" : `is invalid (${issue.message})`;
    throw new ObjectMetadataError(
      `object metadata ${key} ${problem}; was the object written by logarchive ship?`,
    );
  }
  return result.data;
}
