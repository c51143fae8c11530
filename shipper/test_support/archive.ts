// Test support: read back the whole archive from S3 to count every record's lid, and check
// it holds every line exactly once. (Running `logarchive ship` is in harness.ts.)

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { gunzipSync } from "node:zlib";
import { GetObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { isIndexKey, LOSS_SUFFIX, parseAnyObjectKey, parseLossKey } from "../../lib/keys/layout.ts";
import { type LossRecord, parseLossRecord } from "../../lib/object/loss.ts";
import { fromUserMetadata } from "../../lib/object/metadata.ts";
import { checkRecordLine } from "../../lib/record/codec.ts";
import { LID } from "./workload.ts";

// Kept here too: the e2e tests imported the shipper process from this module first.
export { type ShipperProcess, startShipper } from "./harness.ts";

const LIDS = new RegExp(LID.source, "g");

/** The stream objects of stream delivery, counted apart from the per-namespace ones. */
export interface StreamContents {
  objects: number;
  records: number;
  /** lid → number of stream records carrying it. */
  lids: Map<string, number>;
  /** `<dataset>.<table>` of each stream object's key → the namespaces of its records. */
  namespacesByTable: Map<string, Set<string>>;
}

export interface ArchiveContents {
  /** Per-namespace objects (tiers analytics and archive); the counts below are of these. */
  objects: number;
  records: number;
  /** lid → number of records carrying it. */
  lids: Map<string, number>;
  /** Records whose line broke the record schema (must be none). */
  invalid: string[];
  /** Objects whose metadata disagrees with the body (count or sha256). */
  inconsistent: string[];
  storedBytes: number;
  rawBytes: number;
  parseErrors: number;
  truncated: number;
  /** Records whose message carries no lid: a line split in two would show up here. */
  withoutLid: string[];
  /** The lids of each record that carries several (multi-line records), in message order. */
  merged: string[][];
  /** Stream objects (tier stream), each checked against its metadata and the schema as well. */
  stream: StreamContents;
  /**
   * `<node>_<epoch>` → the batch numbers of its objects, per kind: the gap checks' input.
   * Loss records take numbers of the namespace sequence and are counted in it.
   */
  sequences: { namespace: Map<string, number[]>; stream: Map<string, number[]> };
  /** Loss records (`losses/…​.loss.json`), with their stored metadata checked against the body. */
  losses: { key: string; record: LossRecord; kind: string | undefined }[];
}

/** Numbers missing from 0..max of each sequence, or used twice: none when a shipper finished cleanly. */
export function sequenceGaps(sequences: Map<string, number[]>): string[] {
  const problems: string[] = [];
  for (const [id, seqs] of sequences) {
    const sorted = [...seqs].sort((a, b) => a - b);
    sorted.forEach((seq, i) => {
      if (seq !== i) problems.push(`${id}: batch ${i} ${seq < i ? "reused" : "missing"}`);
    });
  }
  return problems.slice(0, 10);
}

export function s3Client(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
  });
}

/** Reads every object in the bucket and checks it against its metadata and the schema. */
export async function readArchive(endpoint: string, bucket: string): Promise<ArchiveContents> {
  const s3 = s3Client(endpoint);
  const out: ArchiveContents = {
    objects: 0,
    records: 0,
    lids: new Map(),
    invalid: [],
    inconsistent: [],
    storedBytes: 0,
    rawBytes: 0,
    parseErrors: 0,
    truncated: 0,
    withoutLid: [],
    merged: [],
    stream: { objects: 0, records: 0, lids: new Map(), namespacesByTable: new Map() },
    sequences: { namespace: new Map(), stream: new Map() },
    losses: [],
  };
  try {
    let token: string | undefined;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
      for (const o of page.Contents ?? []) {
        const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: o.Key })).catch((error) => {
          throw new Error(`GetObject ${bucket}/${o.Key}: ${error}`, { cause: error });
        });
        const body = Buffer.from(await got.Body!.transformToByteArray());
        const meta = fromUserMetadata(got.Metadata ?? {});
        // An hour index (docs/retrieval.md#hour-indexes), written when a run spans an hour's end: no records, no number.
        if (isIndexKey(o.Key!)) {
          if (createHash("sha256").update(body).digest("hex") !== meta.sha256) out.inconsistent.push(o.Key!);
          continue;
        }
        if (o.Key!.endsWith(LOSS_SUFFIX)) {
          const key = parseLossKey(o.Key!);
          const shipperId = `${key.node}_${key.epoch}`;
          const sequences = out.sequences.namespace;
          sequences.set(shipperId, [...(sequences.get(shipperId) ?? []), key.seq]);
          if (createHash("sha256").update(body).digest("hex") !== meta.sha256) out.inconsistent.push(o.Key!);
          out.losses.push({
            key: o.Key!,
            record: parseLossRecord(body),
            kind: got.Metadata?.["logarchive-kind"],
          });
          continue;
        }
        const key = parseAnyObjectKey(o.Key!);
        const stream = key.kind === "stream" ? out.stream : null;
        const sequences = out.sequences[key.kind];
        const shipperId = `${key.node}_${key.epoch}`;
        sequences.set(shipperId, [...(sequences.get(shipperId) ?? []), key.seq]);
        const raw = gunzipSync(body);
        const lines = raw.toString("utf8").split("\n");
        if (lines.at(-1) === "") lines.pop();
        if (
          lines.length !== meta.records ||
          createHash("sha256").update(body).digest("hex") !== meta.sha256 ||
          raw.length !== meta.rawBytes
        ) {
          out.inconsistent.push(o.Key!);
        }
        if (stream !== null) {
          stream.objects++;
        } else {
          out.objects++;
          out.storedBytes += body.length;
          out.rawBytes += raw.length;
        }
        for (const [i, line] of lines.entries()) {
          const problem = checkRecordLine(line);
          if (problem !== null) {
            out.invalid.push(`${o.Key} line ${i}: ${problem}`);
            continue;
          }
          const r = JSON.parse(line) as {
            message: string;
            parse_error?: string;
            truncated?: boolean;
            batch_id: string;
            seq: number;
            namespace: string;
            timestamp: string;
          };
          if (
            r.batch_id !== meta.batchId ||
            r.seq !== i ||
            (key.kind === "namespace" && r.namespace !== key.namespace)
          ) {
            out.inconsistent.push(`${o.Key} line ${i}: batch_id/seq/namespace do not match the object`);
          }
          if (!r.timestamp.startsWith(`${key.dt} ${key.hour}:`)) {
            out.inconsistent.push(`${o.Key} line ${i}: timestamp ${r.timestamp} outside the key's hour`);
          }
          if (stream !== null && key.kind === "stream") {
            // Stream records are copies of archived ones: count their lids apart.
            stream.records++;
            const table = `${key.dataset}.${key.table}`;
            const namespaces = stream.namespacesByTable.get(table) ?? new Set<string>();
            stream.namespacesByTable.set(table, namespaces);
            namespaces.add(r.namespace);
            for (const m of r.message.matchAll(LIDS))
              stream.lids.set(m[1]!, (stream.lids.get(m[1]!) ?? 0) + 1);
            continue;
          }
          out.records++;
          if (r.parse_error) out.parseErrors++;
          if (r.truncated) out.truncated++;
          // A multi-line record carries the lid of each of its lines.
          const lids = Array.from(r.message.matchAll(LIDS), (m) => m[1]!);
          for (const lid of lids) out.lids.set(lid, (out.lids.get(lid) ?? 0) + 1);
          if (lids.length === 0) out.withoutLid.push(`${o.Key} seq ${i}: ${r.message.slice(0, 120)}`);
          if (lids.length > 1) out.merged.push(lids);
        }
      }
      token = page.NextContinuationToken;
    } while (token !== undefined);
  } finally {
    s3.destroy();
  }
  return out;
}

/** lids written but not archived, and lids archived more than once. */
export function deliveryProblems(
  expected: readonly string[],
  archive: ArchiveContents,
): { missing: string[]; duplicated: string[]; unexpected: string[] } {
  const want = new Set(expected);
  const missing = expected.filter((lid) => !archive.lids.has(lid));
  const duplicated = [...archive.lids].filter(([, n]) => n > 1).map(([lid, n]) => `${lid}×${n}`);
  const unexpected = [...archive.lids.keys()].filter((lid) => !want.has(lid));
  return { missing, duplicated, unexpected };
}

export interface ExactlyOnceOptions {
  /** The number of records expected; default one per lid, `false` to skip (multi-line records). */
  records?: number | false;
  /** Also require every record to carry a lid (no line split in two). Default true. */
  wholeLines?: boolean;
}

/**
 * Asserts the archive holds every expected lid exactly once and nothing else, with every
 * object consistent with its metadata and every record valid.
 */
export function assertExactlyOnce(
  expected: readonly string[],
  archive: ArchiveContents,
  options: ExactlyOnceOptions = {},
): void {
  const problems = deliveryProblems(expected, archive);
  assert.deepEqual(
    problems.missing.slice(0, 10),
    [],
    `${problems.missing.length} of ${expected.length} lines missing`,
  );
  assert.deepEqual(problems.duplicated.slice(0, 10), [], `${problems.duplicated.length} lines doubled`);
  assert.deepEqual(problems.unexpected.slice(0, 10), [], `${problems.unexpected.length} lines not written`);
  assert.deepEqual(archive.invalid.slice(0, 5), [], `${archive.invalid.length} invalid records`);
  assert.deepEqual(
    archive.inconsistent.slice(0, 5),
    [],
    `${archive.inconsistent.length} inconsistent objects`,
  );
  if (options.wholeLines ?? true)
    assert.deepEqual(
      archive.withoutLid.slice(0, 5),
      [],
      `${archive.withoutLid.length} records without a lid`,
    );
  if (options.records !== false)
    assert.equal(archive.records, options.records ?? expected.length, "one record per logical line");
}

/**
 * Asserts the stream objects hold every expected lid (those of the analytics namespaces)
 * exactly once and nothing else, each table's objects only the namespaces routed to it.
 */
export function assertStreamExactlyOnce(
  expected: readonly string[],
  archive: ArchiveContents,
  tables: Readonly<Record<string, readonly string[]>>,
): void {
  const { lids } = archive.stream;
  const want = new Set(expected);
  const missing = expected.filter((lid) => !lids.has(lid));
  const duplicated = [...lids].filter(([, n]) => n > 1).map(([lid, n]) => `${lid}×${n}`);
  const unexpected = [...lids.keys()].filter((lid) => !want.has(lid));
  assert.deepEqual(
    missing.slice(0, 10),
    [],
    `${missing.length} of ${expected.length} lines missing from the stream`,
  );
  assert.deepEqual(duplicated.slice(0, 10), [], `${duplicated.length} lines doubled in the stream`);
  assert.deepEqual(
    unexpected.slice(0, 10),
    [],
    `${unexpected.length} lines in the stream that are not analytics lines`,
  );
  assert.deepEqual(
    archive.inconsistent.slice(0, 5),
    [],
    `${archive.inconsistent.length} inconsistent objects`,
  );
  const seen = Object.fromEntries(
    [...archive.stream.namespacesByTable].map(([t, ns]) => [t, [...ns].sort()]),
  );
  assert.deepEqual(
    seen,
    Object.fromEntries(Object.entries(tables).map(([t, ns]) => [t, [...ns].sort()])),
    "each table's stream holds exactly its namespaces",
  );
}
