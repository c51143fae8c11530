import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatSize, parseDuration, parseSize } from "./units.ts";

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

  it("formats sizes back to the largest exact unit", () => {
    assert.equal(formatSize(8 * 2 ** 20), "8MiB");
    assert.equal(formatSize(1536), "1536B");
    assert.equal(formatSize(2 ** 30), "1GiB");
  });
});
