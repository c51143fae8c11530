import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  checkDuration,
  formatDuration,
  formatSize,
  MAX_TIMER_MS,
  parseDuration,
  parseSize,
} from "./units.ts";

describe("units", () => {
  it("parses sizes in binary and decimal units", () => {
    assert.equal(parseSize("8MiB"), 8 * 2 ** 20);
    assert.equal(parseSize("1 GiB"), 2 ** 30);
    assert.equal(parseSize("128KB"), 128_000);
    assert.equal(parseSize("1.5KiB"), 1536);
    assert.equal(parseSize("42"), 42);
    assert.equal(parseSize(42), 42);
    for (const bad of ["", "8 mb", "-1", "MiB", "8XiB", "1e3", "1.5", "0.1KiB"])
      assert.equal(parseSize(bad), null, bad);
  });

  it("parses durations", () => {
    assert.equal(parseDuration("60s"), 60_000);
    assert.equal(parseDuration("500ms"), 500);
    assert.equal(parseDuration("1.5m"), 90_000);
    assert.equal(parseDuration("1h"), 3_600_000);
    for (const bad of ["60", "s", "1d", "-1s"]) assert.equal(parseDuration(bad), null, bad);
  });

  it("refuses a duration longer than a Node timer can wait, which Node would clamp to 1 ms", () => {
    assert.equal(parseDuration(`${MAX_TIMER_MS}ms`), MAX_TIMER_MS);
    assert.equal(parseDuration("596h"), 596 * 3_600_000);
    for (const tooLong of [`${MAX_TIMER_MS + 1}ms`, "597h", "2147484s", "9999999h", `1${"0".repeat(400)}h`]) {
      assert.equal(parseDuration(tooLong), null, tooLong);
    }
    assert.equal(parseDuration("2m", 60_000), null);
    assert.equal(parseDuration("1m", 60_000), 60_000);
    // A larger max than a timer allows is still capped.
    assert.equal(parseDuration("600h", Number.MAX_SAFE_INTEGER), null);
  });

  it("says which bound a duration broke", () => {
    assert.deepEqual(checkDuration("60s", { min: 1000, max: 3_600_000 }), { ms: 60_000 });
    assert.deepEqual(checkDuration("2h", { max: 3_600_000 }), { problem: "must be at most 1h" });
    assert.deepEqual(checkDuration("10ms", { min: 1000 }), { problem: "must be at least 1s" });
    assert.deepEqual(checkDuration("900h"), {
      problem: "must be at most 2147483647ms (about 24.8 days), the longest timer Node can set",
    });
    assert.deepEqual(checkDuration(60), { problem: "expected a duration such as 500ms, 60s or 5m" });
    assert.deepEqual(checkDuration("soon"), { problem: "expected a duration such as 500ms, 60s or 5m" });
  });

  it("every duration it accepts is a whole number of ms a timer honours", () => {
    const duration = fc
      .tuple(
        fc.oneof(fc.nat().map(String), fc.stringMatching(/^\d{1,25}(\.\d{1,6})?$/)),
        fc.constantFrom("ms", "s", "m", "h"),
      )
      .map(([n, unit]) => `${n}${unit}`);
    fc.assert(
      fc.property(duration, fc.option(fc.nat(), { nil: undefined }), (text, max) => {
        const ms = parseDuration(text, max);
        if (ms === null) return;
        assert.ok(Number.isSafeInteger(ms) && ms >= 0 && ms <= MAX_TIMER_MS, `${text} -> ${ms}`);
        if (max !== undefined) assert.ok(ms <= max);
      }),
    );
  });

  it("formats sizes back to the largest exact unit", () => {
    assert.equal(formatSize(8 * 2 ** 20), "8MiB");
    assert.equal(formatSize(1536), "1536B");
    assert.equal(formatSize(2 ** 30), "1GiB");
  });

  it("formats durations in the largest exact unit, and they parse back", () => {
    for (const [ms, text] of [
      [250, "250ms"],
      [90_000, "90s"],
      [300_000, "5m"],
      [7_200_000, "2h"],
      [MAX_TIMER_MS, "2147483647ms"],
    ] as const) {
      assert.equal(formatDuration(ms), text);
      assert.equal(parseDuration(text), ms);
    }
  });
});
