// Step 5 of a retrieval: read one object version's body, verify it, and keep the records the
// query asks for.
//
// The SHA-256 is taken over the stored (gzip) bytes as they arrive and compared with the
// `logarchive-sha256` the shipper wrote into the metadata before the first upload attempt
// (lib/object/metadata.ts). Then the body must agree with its own key and metadata: as many
// lines as `records`, each with the object's `batch_id` and namespace, `seq` running 0..n-1
// in order, and a timestamp inside the object's hour partition. Records of an object that
// fails any of these are not put in the bundle; the manifest names the object and why.

import { createHash } from "node:crypto";
import { gunzipSync } from "node:zlib";
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { batchId, type ObjectKey } from "../keys/layout.ts";
import { hourPartition, type Instant } from "../record/timestamp.ts";
import { type InspectedVersion, versionParam } from "./find.ts";
import type { RecordFields, RecordMatcher } from "./query.ts";

export interface KeptRecord {
  at: Instant;
  /** The line exactly as archived, so the bundle carries the shipper's bytes. */
  line: string;
}

export interface DownloadResult {
  /** SHA-256 of the bytes read. */
  sha256: string;
  /** Whether it equals the metadata's; false also when the metadata has none. */
  checksumMatches: boolean;
  recordsTotal: number;
  /** Empty unless the object passed every check. */
  kept: KeptRecord[];
  /** Every way the body disagrees with its key or metadata; empty when it agrees. */
  problems: string[];
}

const MAX_PROBLEMS = 5;

export async function downloadAndFilter(
  s3: S3Client,
  bucket: string,
  version: InspectedVersion,
  matcher: RecordMatcher,
): Promise<DownloadResult> {
  const response = await s3.send(
    new GetObjectCommand({ Bucket: bucket, Key: version.key, ...versionParam(version.versionId) }),
  );
  // One object's stored bytes at a time (the shipper cuts batches at batch_max_bytes, 8 MiB by
  // default): hashed whole, so a body that is not gzip still gets its real SHA-256 reported.
  const stored = Buffer.from((await response.Body?.transformToByteArray()) ?? new Uint8Array());
  return verifyAndFilter(
    stored,
    version.parsed,
    {
      sha256: version.metadata?.sha256,
      source: "the metadata",
      missing: `no logarchive-sha256 in the metadata to verify against (${version.metadataProblem ?? "missing"})`,
      records: version.metadata?.records ?? null,
      batchId: version.metadata?.batchId ?? null,
    },
    matcher,
  );
}

/** What an archive object's bytes must be: from its metadata, or from a compaction manifest's member. */
export interface BodyExpectation {
  sha256: string | undefined;
  /** Where the expectation comes from, for the problems ("the metadata", "manifest …"). */
  source: string;
  /** The problem to report when there is no SHA-256 to check against. */
  missing: string;
  records: number | null;
  batchId: string | null;
}

/**
 * Checks one archive object's stored (gzip) bytes, read whole or cut from a compacted part at
 * its manifest offsets, against what is expected of them and its key, and keeps the records
 * the query asks for (none when any check fails).
 */
export function verifyAndFilter(
  stored: Buffer,
  parsed: ObjectKey,
  expect: BodyExpectation,
  matcher: RecordMatcher,
): DownloadResult {
  let lines: string[] = [];
  let gzipProblem: string | null = null;
  try {
    const text = gunzipSync(stored).toString("utf8");
    lines = text === "" ? [] : text.replace(/\n$/, "").split("\n");
  } catch (error) {
    gzipProblem = `the body is not readable gzip (${(error as Error).message})`;
  }
  const sha256 = createHash("sha256").update(stored).digest("hex");
  const expected = expect.sha256;
  const checksumMatches = expected !== undefined && expected === sha256;
  const problems: string[] = [];
  if (!checksumMatches) {
    problems.push(
      expected === undefined
        ? expect.missing
        : `SHA-256 mismatch: the body is ${sha256}, ${expect.source} says ${expected}`,
    );
  }
  if (gzipProblem !== null) problems.push(gzipProblem);
  const recordProblems: string[] = [];
  const note = (problem: string) => {
    if (recordProblems.length < MAX_PROBLEMS) recordProblems.push(problem);
    else if (recordProblems.length === MAX_PROBLEMS)
      recordProblems.push("… (further record problems not listed)");
  };
  const kept: KeptRecord[] = [];
  const expectedBatch = batchId(parsed);
  lines.forEach((line, index) => {
    let record: RecordFields;
    try {
      record = JSON.parse(line) as RecordFields;
    } catch {
      note(`line ${index + 1} is not JSON`);
      return;
    }
    if (record.seq !== index)
      note(`line ${index + 1} has seq ${record.seq}, expected ${index} (seq runs 0..n-1)`);
    if (record.batch_id !== expectedBatch)
      note(`line ${index + 1} has batch_id ${record.batch_id}, the key says ${expectedBatch}`);
    if (record.namespace !== parsed.namespace) {
      note(`line ${index + 1} has namespace ${record.namespace}, the key says ${parsed.namespace}`);
    }
    let at: Instant | null;
    try {
      const partition = hourPartition(instantFromFields(record));
      if (partition.dt !== parsed.dt || partition.hour !== parsed.hour) {
        note(
          `line ${index + 1} is of ${partition.dt} hour ${partition.hour}, filed under ${parsed.dt} hour ${parsed.hour}`,
        );
      }
      at = matcher.match(record);
    } catch (error) {
      note(`line ${index + 1}: ${(error as Error).message}`);
      return;
    }
    if (at !== null) kept.push({ at, line });
  });
  problems.push(...recordProblems);
  if (expect.records !== null && expect.records !== lines.length) {
    problems.push(`${lines.length} lines, ${expect.source} says ${expect.records} records`);
  }
  if (expect.batchId !== null && expect.batchId !== expectedBatch) {
    problems.push(`${expect.source}'s batch ${expect.batchId} is not the key's ${expectedBatch}`);
  }
  return {
    sha256,
    checksumMatches,
    recordsTotal: lines.length,
    kept: problems.length === 0 ? kept : [],
    problems,
  };
}

function instantFromFields(record: RecordFields): Instant {
  if (typeof record.timestamp !== "string" || typeof record.timestamp_nanos !== "number") {
    throw new Error("has no timestamp and timestamp_nanos");
  }
  const seconds = Date.parse(`${record.timestamp.replace(" ", "T").slice(0, 19)}Z`);
  if (Number.isNaN(seconds))
    throw new Error(`has an unreadable timestamp ${JSON.stringify(record.timestamp)}`);
  return { epochSeconds: Math.floor(seconds / 1000), nanos: record.timestamp_nanos };
}
