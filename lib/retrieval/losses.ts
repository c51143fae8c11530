// The loss records of a retrieval's range (docs/shipper.md#loss-records): what the shipper
// counted lost on the node for this namespace, written into the archive. Each is listed
// from the namespace's `losses/` hour prefixes, read, and checked against the SHA-256 the
// shipper wrote in its metadata. A loss whose span (from the last line read before it to its
// detection) overlaps the range makes the retrieval incomplete.
//
// A record is filed under the hour of the last line read before the loss, so the listing
// starts `marginHours` before the range: a loss that began shortly before `from` and was
// detected inside the range is found too.

import { createHash } from "node:crypto";
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import type { ListedLoss } from "../../functions/loader/reconcile.ts";
import { lossPartitionPrefix, parseLossKey } from "../keys/layout.ts";
import { type LossRecord, lossSpan, parseLossRecord } from "../object/loss.ts";
import { userMetadataValue } from "../object/metadata.ts";
import { hourPartition, instantFromMs } from "../record/timestamp.ts";
import { listObjectPages } from "./find.ts";

const HOUR_MS = 3_600_000;

export interface LossEntry {
  key: string;
  /** The checksum in the metadata, and the one computed over the body read. */
  metadataSha256: string | null;
  sha256: string;
  checksum: "verified" | "mismatch";
  /** Null when the body is not a loss record (then `problems` says why). */
  record: LossRecord | null;
  /** Whether the loss's span overlaps the range: lines of the range may be among those lost. */
  overlapsRange: boolean;
  problems: string[];
}

/** Lists and reads the namespace's loss records filed in [rangeStart - margin, rangeEnd). */
export async function findLossRecords(
  s3: S3Client,
  bucket: string,
  keyPrefix: string,
  namespace: string,
  /** The exact range, ms: [from, to). */
  from: number,
  to: number,
  marginHours: number,
): Promise<{ listed: ListedLoss[]; entries: LossEntry[] }> {
  const listed: ListedLoss[] = [];
  const firstHour = Math.floor(from / HOUR_MS) * HOUR_MS - marginHours * HOUR_MS;
  for (let hour = firstHour; hour < to; hour += HOUR_MS) {
    const { dt, hour: hh } = hourPartition(instantFromMs(hour));
    const prefix = lossPartitionPrefix(keyPrefix, namespace, dt, hh);
    for await (const contents of listObjectPages(s3, bucket, prefix)) {
      for (const o of contents) {
        if (o.Key === undefined) continue;
        try {
          listed.push({ key: o.Key, parsed: parseLossKey(o.Key), storageClass: o.StorageClass });
        } catch {
          // Not a loss record's key; nothing of the shipper's.
        }
      }
    }
  }
  const entries: LossEntry[] = [];
  for (const o of listed) {
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: o.key }));
    const body = Buffer.from(await (got.Body?.transformToByteArray() ?? new Uint8Array()));
    const sha256 = createHash("sha256").update(body).digest("hex");
    const metadataSha256 = userMetadataValue(got.Metadata, "sha256") ?? null;
    const entry: LossEntry = {
      key: o.key,
      metadataSha256,
      sha256,
      checksum: sha256 === metadataSha256 ? "verified" : "mismatch",
      record: null,
      overlapsRange: false,
      problems: [],
    };
    if (entry.checksum === "mismatch") {
      entry.problems.push(`its SHA-256 is ${sha256}, the metadata says ${metadataSha256 ?? "(none)"}`);
    }
    try {
      entry.record = parseLossRecord(body);
      const span = lossSpan(entry.record);
      entry.overlapsRange = span.from < to && span.to >= from;
    } catch (error) {
      entry.problems.push((error as Error).message);
      // Unreadable: what it lost cannot be placed, so it counts against the range.
      entry.overlapsRange = true;
    }
    // A loss over before the range (filed in the margin, or detected before `from`) is not its.
    if (entry.overlapsRange || entry.problems.length > 0) entries.push(entry);
  }
  return { listed: listed.filter((o) => entries.some((e) => e.key === o.key)), entries };
}

/** One line naming a loss, for the verdict's problems. */
export function describeLoss(entry: LossEntry): string {
  const r = entry.record;
  if (r === null) return `${entry.key}: a loss record that cannot be read (${entry.problems.join("; ")})`;
  const range = r.range === null ? "" : ` (bytes ${r.range.start}-${r.range.end})`;
  const window = r.window.lastLineBefore === null ? "" : ` after the line of ${r.window.lastLineBefore}`;
  return `${entry.key}: node ${r.node} lost ${r.bytes} bytes${range} of ${r.file.path} to ${r.reason}${window}, detected ${r.detectedAt}`;
}
