// What a compliance retrieval asks for: one namespace, an exact time range [from, to) to the
// nanosecond, and optional filters on pod, container and message. The range decides which
// hour partitions are listed (the shipper files every record under the UTC hour of its own
// timestamp, lib/keys/layout.ts), and then which records are kept.

import { matchesGlob } from "node:path";
import { compareInstants, formatRfc3339Nano, type Instant, instantFromRecord } from "../record/timestamp.ts";

export interface RetrievalQuery {
  namespace: string;
  /** Inclusive. */
  from: Instant;
  /** Exclusive. */
  to: Instant;
  /** Globs (node:path matchesGlob); a record is kept when its pod matches any. Empty: every pod. */
  pods: readonly string[];
  containers: readonly string[];
  /** A regular expression the record's message must match (JavaScript syntax), or undefined. */
  grep?: string;
}

/** The query as the manifest and the plan state it. */
export function describeQuery(q: RetrievalQuery): Record<string, unknown> {
  return {
    namespace: q.namespace,
    from: formatRfc3339Nano(q.from),
    to: formatRfc3339Nano(q.to),
    pods: [...q.pods],
    containers: [...q.containers],
    grep: q.grep ?? null,
  };
}

const HOUR_S = 3600;

function pad(n: number, width = 2): string {
  return String(n).padStart(width, "0");
}

/** The hour partitions (dt, hour) that can hold records of [from, to), oldest first. */
export function hourPartitions(from: Instant, to: Instant): { dt: string; hour: string; start: number }[] {
  const out: { dt: string; hour: string; start: number }[] = [];
  if (compareInstants(from, to) >= 0) return out;
  // The last instant of the range is just below `to`: its hour is `to`'s unless `to` is a whole hour.
  const lastSecond = to.nanos === 0 ? to.epochSeconds - 1 : to.epochSeconds;
  for (let s = Math.floor(from.epochSeconds / HOUR_S) * HOUR_S; s <= lastSecond; s += HOUR_S) {
    const d = new Date(s * 1000);
    out.push({
      dt: `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`,
      hour: pad(d.getUTCHours()),
      start: s * 1000,
    });
  }
  return out;
}

/** The fields of a record retrieval reads; the rest of the line is passed on as written. */
export interface RecordFields {
  timestamp: string;
  timestamp_nanos: number;
  namespace: string;
  pod: string;
  container: string;
  message: string;
  node: string;
  batch_id: string;
  seq: number;
}

export class RecordMatcher {
  private readonly grep: RegExp | undefined;
  private readonly query: RetrievalQuery;

  constructor(query: RetrievalQuery) {
    this.query = query;
    this.grep = query.grep === undefined ? undefined : new RegExp(query.grep, "u");
  }

  /** The record's instant when it is in the range and passes every filter; null otherwise. */
  match(record: RecordFields): Instant | null {
    const at = instantFromRecord(record.timestamp, record.timestamp_nanos);
    if (compareInstants(at, this.query.from) < 0 || compareInstants(at, this.query.to) >= 0) return null;
    if (record.namespace !== this.query.namespace) return null;
    if (this.query.pods.length > 0 && !this.query.pods.some((g) => matchesGlob(record.pod, g))) return null;
    if (
      this.query.containers.length > 0 &&
      !this.query.containers.some((g) => matchesGlob(record.container, g))
    )
      return null;
    if (this.grep !== undefined && !this.grep.test(record.message)) return null;
    return at;
  }
}
