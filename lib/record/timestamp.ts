// Runtime timestamps → the record's `timestamp` + `timestamp_nanos` pair.
//
// containerd writes RFC3339Nano with trailing zeros trimmed and `Z` or a local offset;
// CRI-O writes 9 fractional digits and a numeric offset; Docker json-file writes UTC `Z`.
// All of them normalise to UTC here. Precision below the microsecond goes to `nanos`,
// because BigQuery and Athena timestamps stop at micro- and milliseconds.

export interface Instant {
  /** Whole seconds since the Unix epoch, UTC. */
  readonly epochSeconds: number;
  /** Nanoseconds past `epochSeconds`, 0-999999999. */
  readonly nanos: number;
}

/** 0001-01-01T00:00:00Z: the first second a record's `timestamp` (and BigQuery's TIMESTAMP) can hold. */
export const RECORD_MIN_EPOCH_SECONDS = -62_135_596_800;
/** 9999-12-31T23:59:59Z: the last second a record's `timestamp` (four-digit years) can hold. */
export const RECORD_MAX_EPOCH_SECONDS = 253_402_300_799;

/** Whether a record can hold this second; a time outside is a malformed line's, not a record's. */
export function inRecordRange(epochSeconds: number): boolean {
  return epochSeconds >= RECORD_MIN_EPOCH_SECONDS && epochSeconds <= RECORD_MAX_EPOCH_SECONDS;
}

/** The nearest second a record can hold (the first one for NaN). */
export function clampToRecordRange(epochSeconds: number): number {
  if (epochSeconds >= RECORD_MIN_EPOCH_SECONDS) return Math.min(epochSeconds, RECORD_MAX_EPOCH_SECONDS);
  return RECORD_MIN_EPOCH_SECONDS;
}

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):?(\d{2}))$/;

/**
 * Parses an RFC 3339 timestamp with up to nanosecond precision; returns null when it is not
 * one, or when it lies outside what a record can hold (years 0001-9999 in UTC; a
 * `9999-12-31T23:59:59-01:00` is in year 10000).
 */
export function parseRfc3339(text: string): Instant | null {
  const m = RFC3339.exec(text);
  if (m === null) return null;
  const [, y, mo, d, h, mi, s, frac, , sign, oh, om] = m;
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return null;
  // Not Date.UTC: it reads years 0-99 as 1900-1999, so `0050-06-01` would become 1950.
  const date = new Date(0);
  date.setUTCFullYear(Number(y), month - 1, day);
  date.setUTCHours(hour, minute, second === 60 ? 59 : second, 0);
  let epochMs = date.getTime();
  // The Date rolls 31 February into March; a log line with such a date is malformed.
  if (date.getUTCDate() !== day) return null;
  if (sign !== undefined) {
    const offsetMinutes = Number(oh) * 60 + Number(om);
    if (Number(oh) > 23 || Number(om) > 59) return null;
    epochMs -= (sign === "+" ? 1 : -1) * offsetMinutes * 60_000;
  }
  const epochSeconds = Math.floor(epochMs / 1000);
  if (!inRecordRange(epochSeconds)) return null;
  const nanos = frac === undefined ? 0 : Number(frac.padEnd(9, "0"));
  return { epochSeconds, nanos };
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}

/** The record's `timestamp` text: UTC, microseconds, a form BigQuery, Athena's Hive SerDe and DuckDB all read. */
export function formatRecordTimestamp(t: Instant): string {
  const d = new Date(t.epochSeconds * 1000);
  return (
    `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)} ` +
    `${pad(d.getUTCHours(), 2)}:${pad(d.getUTCMinutes(), 2)}:${pad(d.getUTCSeconds(), 2)}.` +
    pad(Math.floor(t.nanos / 1000), 6)
  );
}

/** RFC 3339 in UTC with all nine fractional digits; used in object metadata and manifests. */
export function formatRfc3339Nano(t: Instant): string {
  const d = new Date(t.epochSeconds * 1000);
  return `${d.toISOString().slice(0, 19)}.${pad(t.nanos, 9)}Z`;
}

/** Reads the record's `timestamp` + `timestamp_nanos` back into an instant. */
export function instantFromRecord(timestamp: string, timestampNanos: number): Instant {
  const parsed = parseRfc3339(`${timestamp.replace(" ", "T")}Z`);
  if (parsed === null) throw new Error(`not a record timestamp: ${JSON.stringify(timestamp)}`);
  return { epochSeconds: parsed.epochSeconds, nanos: timestampNanos };
}

export function compareInstants(a: Instant, b: Instant): number {
  return a.epochSeconds - b.epochSeconds || a.nanos - b.nanos;
}

/** UTC date (YYYY-MM-DD) and hour (HH) of an instant: the object key's time partition. */
export function hourPartition(t: Instant): { dt: string; hour: string } {
  const d = new Date(t.epochSeconds * 1000);
  return {
    dt: `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)}`,
    hour: pad(d.getUTCHours(), 2),
  };
}

/**
 * An instant from a millisecond clock reading such as a file's mtimeMs (which may carry a
 * fraction), moved into the range a record can hold: a file can be touched to any date.
 */
export function instantFromMs(ms: number): Instant {
  const epochSeconds = Math.floor(ms / 1000);
  if (!inRecordRange(epochSeconds)) return { epochSeconds: clampToRecordRange(epochSeconds), nanos: 0 };
  return { epochSeconds, nanos: Math.floor((ms - epochSeconds * 1000) * 1e6) };
}
