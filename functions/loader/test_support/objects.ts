// Archive objects as the shipper writes them (key, gzip NDJSON body, metadata), for the
// loader's tests, built from the record contract.

import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { batchId, formatObjectKey, formatStreamKey } from "../../../lib/keys/layout.ts";
import { toUserMetadata } from "../../../lib/object/metadata.ts";
import { encodeRecord } from "../../../lib/record/codec.ts";

export interface ArchiveObject {
  name: string;
  body: Buffer;
  metadata: Record<string, string>;
  records: number;
  batchId: string;
}

export function archiveObject(o: {
  namespace: string;
  seq: number;
  records: number;
  node?: string;
  hour?: string;
  tier?: "analytics" | "archive";
  /** Alters the message text, for "same name, different body". */
  variant?: string;
}): ArchiveObject {
  const identity = { node: o.node ?? "node-a", epoch: "0123abcd", seq: o.seq };
  const id = batchId(identity);
  const hour = o.hour ?? "10";
  const lines: string[] = [];
  for (let i = 0; i < o.records; i++) {
    lines.push(
      encodeRecord({
        timestamp: `2026-11-21 ${hour}:00:${String(i % 60).padStart(2, "0")}.000000`,
        timestamp_nanos: i,
        namespace: o.namespace,
        pod: "api-7c9f",
        container: "api",
        node: identity.node,
        stream: i % 3 === 0 ? "stderr" : "stdout",
        message: `${o.variant ?? "line"} ${o.namespace} ${o.seq} ${i}`,
        batch_id: id,
        seq: i,
      }),
    );
  }
  const raw = Buffer.from(`${lines.join("\n")}\n`);
  const body = gzipSync(raw);
  const name = formatObjectKey({
    prefix: "logs",
    tier: o.tier ?? "analytics",
    namespace: o.namespace,
    dt: "2026-11-21",
    hour,
    ...identity,
  });
  const metadata = toUserMetadata({
    schemaVersion: 1,
    records: o.records,
    firstTimestamp: `2026-11-21T${hour}:00:00Z`,
    lastTimestamp: `2026-11-21T${hour}:00:59Z`,
    sha256: createHash("sha256").update(body).digest("hex"),
    rawBytes: raw.length,
    batchId: id,
    shipperVersion: "test",
  });
  return { name, body, metadata, records: o.records, batchId: id };
}

/** A stream object (stream delivery) of `table`, its records taking `namespaces` in turn. */
export function streamObject(o: {
  namespaces: readonly string[];
  dataset: string;
  table: string;
  seq: number;
  records: number;
  node?: string;
  hour?: string;
  /** The stream's own epoch (a shipper numbers stream batches apart from its archive batches). */
  epoch?: string;
  /** UTC date of the records and the key, default 2026-11-21. */
  day?: string;
}): ArchiveObject {
  const day = o.day ?? "2026-11-21";
  const identity = { node: o.node ?? "node-a", epoch: o.epoch ?? "5e5e5e5e", seq: o.seq };
  const id = batchId(identity);
  const hour = o.hour ?? "10";
  const lines: string[] = [];
  for (let i = 0; i < o.records; i++) {
    const namespace = o.namespaces[i % o.namespaces.length]!;
    lines.push(
      encodeRecord({
        timestamp: `${day} ${hour}:00:${String(i % 60).padStart(2, "0")}.000000`,
        timestamp_nanos: i,
        namespace,
        pod: "api-7c9f",
        container: "api",
        node: identity.node,
        stream: "stdout",
        message: `stream ${namespace} ${o.seq} ${i}`,
        batch_id: id,
        seq: i,
      }),
    );
  }
  const raw = Buffer.from(`${lines.join("\n")}\n`);
  const body = gzipSync(raw);
  const name = formatStreamKey({
    prefix: "logs",
    dataset: o.dataset,
    table: o.table,
    dt: day,
    hour,
    ...identity,
  });
  const metadata = toUserMetadata({
    schemaVersion: 1,
    records: o.records,
    firstTimestamp: `${day}T${hour}:00:00Z`,
    lastTimestamp: `${day}T${hour}:00:59Z`,
    sha256: createHash("sha256").update(body).digest("hex"),
    rawBytes: raw.length,
    batchId: id,
    shipperVersion: "test",
  });
  return { name, body, metadata, records: o.records, batchId: id };
}
