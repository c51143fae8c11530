import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { formatRfc3339Nano, parseRfc3339 } from "../../../../lib/record/timestamp.ts";
import { daysFromCivil, type InstantSlot, parseRfc3339Bytes } from "./timestamp.ts";

function viaBytes(text: string): InstantSlot | null {
  // Padding around the slice checks that nothing outside [start, end) is read.
  const b = Buffer.from(`Z+9${text}+01:00`, "latin1");
  const out = { epochSeconds: -1, nanos: -1 };
  return parseRfc3339Bytes(b, 3, 3 + Buffer.byteLength(text, "latin1"), out) ? out : null;
}

const two = (min: number, max: number) => fc.integer({ min, max }).map((n) => String(n).padStart(2, "0"));

/** Timestamps near the valid set: every field ranges a little past its limits. */
const nearRfc3339 = fc
  .tuple(
    fc.oneof(fc.integer({ min: 0, max: 9999 }), fc.constantFrom(0, 4, 99, 100, 1900, 2000, 2024, 2100)),
    two(0, 13),
    two(0, 32),
    fc.constantFrom("T", "t", " ", "x"),
    two(0, 25),
    two(0, 61),
    two(0, 61),
    fc.oneof(fc.constant(""), fc.stringMatching(/^\.\d{0,11}$/)),
    fc.oneof(
      fc.constantFrom("Z", "z", "", "Zx", " Z"),
      fc
        .tuple(fc.constantFrom("+", "-"), two(0, 25), fc.constantFrom(":", "", "::"), two(0, 61))
        .map((p) => p.join("")),
    ),
  )
  .map(
    ([y, mo, d, sep, h, mi, s, frac, zone]) =>
      `${String(y).padStart(4, "0")}-${mo}-${d}${sep}${h}:${mi}:${s}${frac}${zone}`,
  );

describe("timestamps read from bytes", () => {
  it("agree with parseRfc3339 on near-valid timestamps (property)", () => {
    fc.assert(
      fc.property(nearRfc3339, (text) => {
        assert.deepEqual(viaBytes(text), parseRfc3339(text), text);
      }),
      { numRuns: 20_000 },
    );
  });

  it("agree with parseRfc3339 on arbitrary text (property)", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary-ascii", maxLength: 40 }), (text) => {
        assert.deepEqual(viaBytes(text), parseRfc3339(text), JSON.stringify(text));
      }),
    );
  });

  it("round-trip every instant through RFC 3339 with nanoseconds (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -2_208_988_800, max: 253_402_300_799 }),
        fc.integer({ min: 0, max: 999_999_999 }),
        (s, n) => {
          assert.deepEqual(viaBytes(formatRfc3339Nano({ epochSeconds: s, nanos: n })), {
            epochSeconds: s,
            nanos: n,
          });
        },
      ),
    );
  });

  it("read containerd's trimmed and CRI-O's offset forms", () => {
    assert.deepEqual(viaBytes("2026-11-21T11:17:37.1234Z"), {
      epochSeconds: 1_795_259_857,
      nanos: 123_400_000,
    });
    assert.deepEqual(viaBytes("2026-11-21T12:17:37.123456789+01:00"), {
      epochSeconds: 1_795_259_857,
      nanos: 123_456_789,
    });
    assert.deepEqual(viaBytes("2026-11-21T11:17:37Z"), { epochSeconds: 1_795_259_857, nanos: 0 });
  });

  it("refuse a time past 9999-12-31 in UTC, as parseRfc3339 does", () => {
    assert.equal(viaBytes("9999-12-31T23:59:59.999999999-23:59"), null);
    assert.equal(viaBytes("9999-12-31T23:59:59-00:01"), null);
    assert.deepEqual(viaBytes("9999-12-31T23:59:59.999999999Z"), {
      epochSeconds: 253_402_300_799,
      nanos: 999_999_999,
    });
  });

  it("agree with parseRfc3339 at the edges of the record range (property)", () => {
    const edge = fc
      .tuple(
        fc.constantFrom("0000", "0001", "0099", "0100", "9998", "9999"),
        fc.constantFrom("01-01", "02-29", "12-31"),
        fc.constantFrom("00:00:00", "23:59:59", "23:59:60", "23:00:00"),
        fc.constantFrom("", ".999999999", ".000001"),
        fc.oneof(
          fc.constant("Z"),
          fc
            .tuple(fc.constantFrom("+", "-"), two(0, 23), fc.constantFrom(":", ""), two(0, 59))
            .map((p) => p.join("")),
        ),
      )
      .map(([y, md, hms, frac, zone]) => `${y}-${md}T${hms}${frac}${zone}`);
    fc.assert(
      fc.property(edge, (text) => {
        assert.deepEqual(viaBytes(text), parseRfc3339(text), text);
      }),
      { numRuns: 2000 },
    );
  });

  it("count days like Date.UTC, leap years included", () => {
    for (const [y, m, d] of [
      [1970, 1, 1],
      [2000, 2, 29],
      [1900, 3, 1],
      [2024, 12, 31],
      [100, 1, 1],
      [9999, 12, 31],
    ] as const) {
      assert.equal(daysFromCivil(y, m, d) * 86_400_000, Date.UTC(y, m - 1, d), `${y}-${m}-${d}`);
    }
  });
});
