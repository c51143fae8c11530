// RFC 3339 timestamps read straight from log bytes, without making a string.
//
// Must agree exactly with parseRfc3339 in lib/record/timestamp.ts (a property test checks
// it), including that module's quirks: `T`, `t` or a space between date and time, `z`,
// offsets with or without the colon, second 60 read as 59, and that a time a record cannot
// hold (before 0001-01-01 or past 9999-12-31 in UTC) is not a timestamp.

import { inRecordRange } from "../../../../lib/record/timestamp.ts";

/** Where a parsed instant is written; reused by the caller so parsing allocates nothing. */
export interface InstantSlot {
  epochSeconds: number;
  nanos: number;
}

const D0 = 0x30;

function digit2(b: Uint8Array, i: number): number {
  const hi = b[i]! - D0;
  const lo = b[i + 1]! - D0;
  return hi >= 0 && hi <= 9 && lo >= 0 && lo <= 9 ? hi * 10 + lo : -1;
}

function isLeap(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

/**
 * Parses `b[start, end)` as an RFC 3339 timestamp with up to nine fractional digits into
 * `out`. Returns false, leaving `out` unspecified, when the bytes are not one or name a
 * time outside the record range.
 */
export function parseRfc3339Bytes(b: Uint8Array, start: number, end: number, out: InstantSlot): boolean {
  // Shortest form: YYYY-MM-DDTHH:MM:SSZ
  if (end - start < 20) return false;
  const s = start;
  const c1 = digit2(b, s);
  const c2 = digit2(b, s + 2);
  if (c1 < 0 || c2 < 0) return false;
  const sep = b[s + 10];
  if (b[s + 4] !== 0x2d || b[s + 7] !== 0x2d || b[s + 13] !== 0x3a || b[s + 16] !== 0x3a) return false;
  if (sep !== 0x54 && sep !== 0x74 && sep !== 0x20) return false;
  const month = digit2(b, s + 5);
  const day = digit2(b, s + 8);
  const hour = digit2(b, s + 11);
  const minute = digit2(b, s + 14);
  const second = digit2(b, s + 17);
  if (month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59) return false;
  if (second < 0 || second > 60) return false;

  let i = s + 19;
  let nanos = 0;
  if (b[i] === 0x2e) {
    i++;
    const fracStart = i;
    while (i < end && i - fracStart < 10) {
      const d = b[i]! - D0;
      if (d < 0 || d > 9) break;
      nanos = nanos * 10 + d;
      i++;
    }
    const digits = i - fracStart;
    if (digits === 0 || digits > 9) return false;
    for (let k = digits; k < 9; k++) nanos *= 10;
  }

  let offsetSeconds = 0;
  const zone = b[i];
  if (zone === 0x5a || zone === 0x7a) {
    if (i + 1 !== end) return false;
  } else if (zone === 0x2b || zone === 0x2d) {
    const oh = i + 3 <= end ? digit2(b, i + 1) : -1;
    if (oh < 0) return false;
    let j = i + 3;
    if (b[j] === 0x3a) j++;
    const om = j + 2 === end ? digit2(b, j) : -1;
    if (om < 0 || oh > 23 || om > 59) return false;
    offsetSeconds = (zone === 0x2b ? 1 : -1) * (oh * 3600 + om * 60);
  } else {
    return false;
  }

  // Years 0-99 are those years (the proleptic Gregorian calendar), as in the reference parser.
  const year = c1 * 100 + c2;
  const dim = month === 2 && isLeap(year) ? 29 : DAYS_IN_MONTH[month - 1]!;
  if (day > dim) return false;
  const epochSeconds =
    daysFromCivil(year, month, day) * 86_400 +
    hour * 3600 +
    minute * 60 +
    (second === 60 ? 59 : second) -
    offsetSeconds;
  if (!inRecordRange(epochSeconds)) return false;
  out.epochSeconds = epochSeconds;
  out.nanos = nanos;
  return true;
}
