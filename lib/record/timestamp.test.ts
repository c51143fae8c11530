import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  compareInstants,
  formatRecordTimestamp,
  formatRfc3339Nano,
  hourPartition,
  instantFromMs,
  instantFromRecord,
  parseRfc3339,
  RECORD_MAX_EPOCH_SECONDS,
  RECORD_MIN_EPOCH_SECONDS,
} from "./timestamp.ts";

describe("runtime timestamps", () => {
  const cases: [string, string, number][] = [
    // containerd: trailing zeros trimmed, Z
    ["2026-11-21T11:17:37.1234Z", "2026-11-21 11:17:37.123400", 123_400_000],
    ["2026-11-21T11:17:37Z", "2026-11-21 11:17:37.000000", 0],
    // CRI-O: 9 digits and a numeric offset
    ["2026-11-21T12:17:37.123456789+01:00", "2026-11-21 11:17:37.123456", 123_456_789],
    ["2026-11-21T00:30:00.000000001-05:30", "2026-11-21 06:00:00.000000", 1],
    // Docker json-file
    ["2019-04-30T18:33:14.873393957Z", "2019-04-30 18:33:14.873393", 873_393_957],
  ];
  for (const [input, timestamp, nanos] of cases) {
    it(`normalises ${input}`, () => {
      const t = parseRfc3339(input);
      assert.ok(t);
      assert.equal(formatRecordTimestamp(t), timestamp);
      assert.equal(t.nanos, nanos);
      assert.deepEqual(instantFromRecord(timestamp, nanos), t);
    });
  }

  it("rejects what is not RFC 3339", () => {
    for (const bad of [
      "",
      "2026-11-21",
      "2026-11-21T11:17:37",
      "2026-11-21T11:17:37.1234567890Z",
      "2026-02-30T00:00:00Z",
      "2026-13-01T00:00:00Z",
      "2026-11-21T24:00:00Z",
      "2026-11-21T11:17:37+25:00",
      "yesterday",
    ]) {
      assert.equal(parseRfc3339(bad), null, bad);
    }
  });

  it("round-trips through RFC 3339 with nanoseconds (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 253_402_300_799 }),
        fc.integer({ min: 0, max: 999_999_999 }),
        (epochSeconds, nanos) => {
          const text = formatRfc3339Nano({ epochSeconds, nanos });
          assert.deepEqual(parseRfc3339(text), { epochSeconds, nanos });
        },
      ),
    );
  });

  it("orders instants and names their hour partition", () => {
    const a = parseRfc3339("2026-11-21T23:59:59.999999999Z")!;
    const b = parseRfc3339("2026-11-22T00:00:00Z")!;
    assert.ok(compareInstants(a, b) < 0);
    assert.deepEqual(hourPartition(a), { dt: "2026-11-21", hour: "23" });
    assert.deepEqual(hourPartition(b), { dt: "2026-11-22", hour: "00" });
  });

  it("rejects a time a record cannot hold: past 9999-12-31 in UTC", () => {
    for (const late of [
      "9999-12-31T23:59:59.999999999-23:59",
      "9999-12-31T23:00:00-01:00",
      "9999-12-31T23:59:59-00:01",
    ]) {
      assert.equal(parseRfc3339(late), null, late);
    }
    const last = parseRfc3339("9999-12-31T23:59:59.999999999Z");
    assert.deepEqual(last, { epochSeconds: RECORD_MAX_EPOCH_SECONDS, nanos: 999_999_999 });
    assert.equal(formatRecordTimestamp(last!), "9999-12-31 23:59:59.999999");
    assert.equal(parseRfc3339("9999-12-31T23:59:59+00:01")?.epochSeconds, RECORD_MAX_EPOCH_SECONDS - 60);
  });

  it("reads years 0001-0099 as themselves and refuses year 0000 in UTC", () => {
    // Date.UTC would read these as 1901, 1950 and 1999 (the bug this guards against).
    assert.equal(formatRecordTimestamp(parseRfc3339("0001-01-01T00:00:00Z")!), "0001-01-01 00:00:00.000000");
    assert.equal(parseRfc3339("0001-01-01T00:00:00Z")?.epochSeconds, RECORD_MIN_EPOCH_SECONDS);
    assert.equal(
      formatRecordTimestamp(parseRfc3339("0050-06-01T12:30:00.5Z")!),
      "0050-06-01 12:30:00.500000",
    );
    assert.equal(formatRecordTimestamp(parseRfc3339("0099-12-31T23:59:59Z")!), "0099-12-31 23:59:59.000000");
    assert.equal(parseRfc3339("0000-01-01T00:00:00Z"), null);
    assert.equal(parseRfc3339("0000-12-31T23:59:59Z"), null);
    // An offset can carry the last moments of year 0 into year 1 in UTC.
    assert.equal(parseRfc3339("0000-12-31T23:30:00-01:00")?.epochSeconds, RECORD_MIN_EPOCH_SECONDS + 1800);
    assert.equal(parseRfc3339("0004-02-29T00:00:00Z") === null, false, "year 4 is a leap year");
    assert.equal(parseRfc3339("0100-02-29T00:00:00Z"), null, "year 100 is not");
  });

  it("keeps a clock reading (a touched file's mtime) inside what a record can hold", () => {
    assert.deepEqual(instantFromMs(1_795_259_857_250.5), { epochSeconds: 1_795_259_857, nanos: 250_500_000 });
    for (const [ms, epochSeconds] of [
      [253_402_300_800_000, RECORD_MAX_EPOCH_SECONDS],
      [8.64e15, RECORD_MAX_EPOCH_SECONDS],
      [-62_135_596_800_001, RECORD_MIN_EPOCH_SECONDS],
      [-8.64e15, RECORD_MIN_EPOCH_SECONDS],
      [Number.NaN, RECORD_MIN_EPOCH_SECONDS],
    ] as const) {
      const t = instantFromMs(ms);
      assert.deepEqual(t, { epochSeconds, nanos: 0 }, String(ms));
      assert.match(formatRecordTimestamp(t), /^(0001-01-01 00:00:00|9999-12-31 23:59:59)\.000000$/);
    }
  });
});
