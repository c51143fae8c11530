// Archive objects as the shipper writes them (key, gzip NDJSON body, contract metadata), with
// records at exact instants, for the retrieval tests; and a local stack with the archive front.

import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { PutObjectCommand, type PutObjectCommandInput, type S3Client } from "@aws-sdk/client-s3";
import {
  batchId,
  formatIndexKey,
  formatLossKey,
  formatObjectKey,
  parseLossKey,
  parseObjectKey,
  type Tier,
} from "../keys/layout.ts";
import {
  encodeHourIndex,
  HOUR_INDEX_FORMAT,
  HOUR_INDEX_VERSION,
  type HourIndexEntry,
  INDEX_OBJECT_KIND,
} from "../object/hour-index.ts";
import { encodeLossRecord, LOSS_OBJECT_KIND, LOSS_RECORD_VERSION, type LossRecord } from "../object/loss.ts";
import { fromUserMetadata, METADATA_PREFIX, toUserMetadata } from "../object/metadata.ts";
import { encodeRecord } from "../record/codec.ts";
import {
  formatRecordTimestamp,
  formatRfc3339Nano,
  hourPartition,
  type Instant,
  parseRfc3339,
} from "../record/timestamp.ts";

export interface TestLine {
  /** RFC 3339 to the nanosecond. */
  at: string;
  pod?: string;
  container?: string;
  message?: string;
}

export interface TestObject {
  key: string;
  body: Buffer;
  metadata: Record<string, string>;
  lines: string[];
}

/** One batch of `lines` (all in one UTC hour, as the shipper cuts them). */
export function testObject(o: {
  namespace: string;
  node: string;
  epoch: string;
  seq: number;
  tier: Tier;
  lines: readonly TestLine[];
  prefix?: string;
}): TestObject {
  const identity = { node: o.node, epoch: o.epoch, seq: o.seq };
  const id = batchId(identity);
  const instants = o.lines.map((l) => {
    const t = parseRfc3339(l.at);
    if (t === null) throw new Error(`bad test time ${l.at}`);
    return t;
  });
  const lines = o.lines.map((l, i) =>
    encodeRecord({
      timestamp: formatRecordTimestamp(instants[i]!),
      timestamp_nanos: instants[i]!.nanos,
      namespace: o.namespace,
      pod: l.pod ?? "api-1",
      container: l.container ?? "app",
      node: o.node,
      stream: "stdout",
      message: l.message ?? `line ${i} of ${id}`,
      batch_id: id,
      seq: i,
    }),
  );
  const raw = Buffer.from(`${lines.join("\n")}\n`);
  const body = gzipSync(raw);
  const { dt, hour } = hourPartition(instants[0]!);
  const sorted = [...instants].sort((a, b) => a.epochSeconds - b.epochSeconds || a.nanos - b.nanos);
  const key = formatObjectKey({
    prefix: o.prefix ?? "logs",
    tier: o.tier,
    namespace: o.namespace,
    dt,
    hour,
    ...identity,
  });
  const metadata = toUserMetadata({
    schemaVersion: 1,
    records: lines.length,
    firstTimestamp: formatRfc3339Nano(sorted[0]!),
    lastTimestamp: formatRfc3339Nano(sorted.at(-1)!),
    sha256: createHash("sha256").update(body).digest("hex"),
    rawBytes: raw.length,
    batchId: id,
    shipperVersion: "test",
  });
  return { key, body, metadata, lines };
}

export async function putTestObject(
  s3: S3Client,
  bucket: string,
  object: TestObject,
  extra: Partial<PutObjectCommandInput> = {},
): Promise<void> {
  await s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: object.key,
      Body: object.body,
      Metadata: object.metadata,
      ContentType: "application/gzip",
      ...extra,
    }),
  );
}

/** Counts the commands an S3 client sends, by name (e.g. RestoreObjectCommand). */
export function countCommands(s3: S3Client): Map<string, number> {
  const counts = new Map<string, number>();
  s3.middlewareStack.add(
    (next, context) => async (args) => {
      const name = (context as { commandName?: string }).commandName ?? "?";
      counts.set(name, (counts.get(name) ?? 0) + 1);
      return next(args);
    },
    { step: "initialize", name: "countCommands" },
  );
  return counts;
}

/** A loss record as the shipper's sink writes it (shipper/sinks/s3/sink.ts recordLoss). */
export function testLossRecord(o: {
  namespace: string;
  node: string;
  epoch: string;
  seq: number;
  bytes: number;
  /** The last line read before the loss (files the record under its hour), RFC 3339. */
  lastLineBefore: string;
  detectedAt: string;
  prefix?: string;
}): TestObject {
  const identity = { node: o.node, epoch: o.epoch, seq: o.seq };
  const id = batchId(identity);
  const record: LossRecord = {
    version: LOSS_RECORD_VERSION,
    batchId: id,
    node: o.node,
    reason: "rotation",
    namespace: o.namespace,
    pod: "api-1",
    podUid: "uid-1",
    container: "app",
    file: {
      path: `/var/log/pods/${o.namespace}_api-1_uid-1/app/0.log`,
      dev: 1,
      ino: 2,
      fingerprint: "00",
      compressed: false,
    },
    bytes: o.bytes,
    range: { start: 100, end: 100 + o.bytes },
    detectedAt: o.detectedAt,
    window: { lastLineBefore: o.lastLineBefore, firstLineAfter: null },
    note: "the file was rotated away or removed before it was read to the end",
    shipperVersion: "test",
  };
  const body = encodeLossRecord(record);
  const filed = parseRfc3339(o.lastLineBefore);
  if (filed === null) throw new Error(`bad test time ${o.lastLineBefore}`);
  const { dt, hour } = hourPartition(filed);
  const key = formatLossKey({ prefix: o.prefix ?? "logs", namespace: o.namespace, dt, hour, ...identity });
  const metadata = {
    ...toUserMetadata({
      schemaVersion: 1,
      records: 0,
      firstTimestamp: o.lastLineBefore,
      lastTimestamp: o.detectedAt,
      sha256: createHash("sha256").update(body).digest("hex"),
      rawBytes: body.length,
      batchId: id,
      shipperVersion: "test",
    }),
    "logarchive-kind": LOSS_OBJECT_KIND,
  };
  return { key, body, metadata, lines: [] };
}

/**
 * A node's hour index as the shipper's sink writes it (shipper/sinks/s3/hour-index.ts): the
 * batches and loss records it numbered in `hour`, in number order, chained to `previous`.
 */
export function testHourIndex(o: {
  node: string;
  epoch: string;
  /** YYYY-MM-DDTHH. */
  hour: string;
  batches: readonly TestObject[];
  previous: { hour: string; last: number } | null;
  prefix?: string;
}): TestObject {
  const entries: HourIndexEntry[] = o.batches.map((b) => {
    const loss = b.metadata[`${METADATA_PREFIX}kind`] === LOSS_OBJECT_KIND;
    const parsed = loss ? { ...parseLossKey(b.key), tier: null } : parseObjectKey(b.key);
    const meta = fromUserMetadata(b.metadata);
    return {
      seq: parsed.seq,
      kind: loss ? "loss" : "batch",
      key: b.key,
      namespace: parsed.namespace,
      tier: parsed.tier,
      sha256: meta.sha256,
      bytes: b.body.length,
      records: meta.records,
      firstTimestamp: meta.firstTimestamp,
      lastTimestamp: meta.lastTimestamp,
    };
  });
  const body = encodeHourIndex({
    format: HOUR_INDEX_FORMAT,
    version: HOUR_INDEX_VERSION,
    node: o.node,
    epoch: o.epoch,
    hour: `${o.hour}:00:00Z`,
    first: entries[0]!.seq,
    last: entries.at(-1)!.seq,
    previous: o.previous === null ? null : { hour: `${o.previous.hour}:00:00Z`, last: o.previous.last },
    batches: entries,
  });
  const key = formatIndexKey({
    prefix: o.prefix ?? "logs",
    dt: o.hour.slice(0, 10),
    hour: o.hour.slice(11, 13),
    node: o.node,
    epoch: o.epoch,
  });
  const metadata = {
    ...toUserMetadata({
      schemaVersion: HOUR_INDEX_VERSION,
      records: entries.length,
      firstTimestamp: `${o.hour}:00:00Z`,
      lastTimestamp: `${o.hour}:00:00Z`,
      sha256: createHash("sha256").update(body).digest("hex"),
      rawBytes: body.length,
      batchId: `${o.node}_${o.epoch}`,
      shipperVersion: "test",
    }),
    [`${METADATA_PREFIX}kind`]: INDEX_OBJECT_KIND,
  };
  return { key, body, metadata, lines: [] };
}

/** An RFC 3339 text as an Instant, for test ranges; a malformed one throws. */
export function at(text: string): Instant {
  const t = parseRfc3339(text);
  if (t === null) throw new Error(text);
  return t;
}
