import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseRfc3339 } from "../record/timestamp.ts";
import { parseRestoreHeader } from "./find.ts";
import { hourPartitions, RecordMatcher } from "./query.ts";

const at = (text: string) => parseRfc3339(text) ?? assert.fail(text);
const hours = (from: string, to: string) => hourPartitions(at(from), at(to)).map((h) => `${h.dt}T${h.hour}`);

describe("hourPartitions", () => {
  it("lists the hours that can hold a record of [from, to), across midnight", () => {
    assert.deepEqual(hours("2026-03-03T23:30:00Z", "2026-03-04T00:30:00Z"), [
      "2026-03-03T23",
      "2026-03-04T00",
    ]);
  });
  it("leaves out the hour that starts at `to`, and keeps it when `to` is a nanosecond past", () => {
    assert.deepEqual(hours("2026-03-03T22:00:00Z", "2026-03-04T00:00:00Z"), [
      "2026-03-03T22",
      "2026-03-03T23",
    ]);
    assert.deepEqual(hours("2026-03-03T23:00:00Z", "2026-03-04T00:00:00.000000001Z"), [
      "2026-03-03T23",
      "2026-03-04T00",
    ]);
  });
  it("is empty for an empty range", () => {
    assert.deepEqual(hours("2026-03-03T23:00:00Z", "2026-03-03T23:00:00Z"), []);
  });
});

describe("RecordMatcher", () => {
  const record = (timestamp: string, nanos: number, extra: Record<string, string> = {}) => ({
    timestamp,
    timestamp_nanos: nanos,
    namespace: "payments",
    pod: "api-1",
    container: "app",
    message: "hello",
    node: "n",
    batch_id: "b",
    seq: 0,
    ...extra,
  });
  const matcher = new RecordMatcher({
    namespace: "payments",
    from: at("2026-03-03T10:00:00.000000005Z"),
    to: at("2026-03-03T11:00:00Z"),
    pods: [],
    containers: [],
  });
  it("compares to the nanosecond: from is in, to is out", () => {
    assert.equal(matcher.match(record("2026-03-03 10:00:00.000000", 4)), null);
    assert.notEqual(matcher.match(record("2026-03-03 10:00:00.000000", 5)), null);
    assert.notEqual(matcher.match(record("2026-03-03 10:59:59.999999", 999_999_999)), null);
    assert.equal(matcher.match(record("2026-03-03 11:00:00.000000", 0)), null);
  });
  it("applies every filter given", () => {
    const filtered = new RecordMatcher({
      namespace: "payments",
      from: at("2026-03-03T10:00:00Z"),
      to: at("2026-03-03T11:00:00Z"),
      pods: ["api-*"],
      containers: ["app"],
      grep: "^ERR",
    });
    assert.equal(filtered.match(record("2026-03-03 10:00:01.000000", 0)), null);
    assert.notEqual(filtered.match(record("2026-03-03 10:00:01.000000", 0, { message: "ERR x" })), null);
    assert.equal(
      filtered.match(record("2026-03-03 10:00:01.000000", 0, { message: "ERR x", pod: "web-1" })),
      null,
    );
  });
});

describe("parseRestoreHeader", () => {
  it("reads HeadObject's x-amz-restore for the archive classes only", () => {
    assert.deepEqual(parseRestoreHeader("STANDARD", undefined), { state: "online" });
    assert.deepEqual(parseRestoreHeader("GLACIER_IR", undefined), { state: "online" });
    assert.deepEqual(parseRestoreHeader("GLACIER", undefined), { state: "archived" });
    assert.deepEqual(parseRestoreHeader("DEEP_ARCHIVE", 'ongoing-request="true"'), { state: "in-progress" });
    assert.deepEqual(
      parseRestoreHeader("GLACIER", 'ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"'),
      { state: "restored", expiry: "2012-12-21T00:00:00.000Z" },
    );
  });
});
