// How long after a line is written its archive object can still be missing from S3, and the
// warning `logarchive retrieve` gives when the range ends inside that window: the objects of
// its last hour may still be open batches on the nodes, so a COMPLETE verdict covers only
// what has arrived (docs/retrieval.md#a-range-that-ends-recently).

import { formatDuration } from "../config/units.ts";
import { type NamespacePolicy, streamDelivery } from "../policy/policy.ts";
import { formatRfc3339Nano, type Instant } from "../record/timestamp.ts";

/** The longest a line waits on its node before its archive object is in S3, and why. */
export interface ArrivalDelay {
  /** Age at which the line's batch is cut. */
  batchAgeMs: number;
  /** Where batchAgeMs comes from, for the warning. */
  batchAgeSource: string;
  /** Time after the cut for the upload: the shipper's upload_timeout, one PutObject attempt. */
  uploadMarginMs: number;
}

/**
 * The arrival delay of `namespace`'s archive objects. In stream delivery its archive batches
 * are cut at the policy's archive.batch_max_age (or its batch_age_overrides entry), 1 h by
 * default; per namespace, at the shipper's batch_max_age (docs/shipper.md#batching).
 */
export function archiveArrivalDelay(
  policy: NamespacePolicy,
  namespace: string,
  shipper: { batchMaxAgeMs: number; uploadTimeoutMs: number },
): ArrivalDelay {
  const stream = streamDelivery(policy);
  if (stream !== null) {
    const ms = stream.archiveBatchMaxAgeMsFor(namespace);
    const overridden = ms !== stream.archiveBatchMaxAgeMs;
    return {
      batchAgeMs: ms,
      batchAgeSource: overridden
        ? "the policy's archive.batch_age_overrides entry for the namespace in stream delivery"
        : "the policy's archive.batch_max_age in stream delivery",
      uploadMarginMs: shipper.uploadTimeoutMs,
    };
  }
  return {
    batchAgeMs: shipper.batchMaxAgeMs,
    batchAgeSource: "the shipper's batch_max_age in per-namespace delivery",
    uploadMarginMs: shipper.uploadTimeoutMs,
  };
}

/** The warning for a range ending later than now minus the arrival delay, else undefined. */
export function recentTailWarning(to: Instant, now: Date, delay: ArrivalDelay): string | undefined {
  const windowMs = delay.batchAgeMs + delay.uploadMarginMs;
  const toMs = to.epochSeconds * 1000 + to.nanos / 1e6;
  if (toMs <= now.getTime() - windowMs) return undefined;
  const settled = new Date(Math.ceil(toMs) + windowMs).toISOString();
  return `the range ends at ${formatRfc3339Nano(to)}, less than ${formatDuration(windowMs)} before this run (${now.toISOString()}): archive batches are cut every ${formatDuration(delay.batchAgeMs)} (${delay.batchAgeSource}) and uploaded within about ${formatDuration(delay.uploadMarginMs)} (the shipper's upload_timeout), so lines of the range's tail may still be in open batches on the nodes; run again after ${settled} for them`;
}
