import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parsePolicy } from "../policy/policy.ts";
import { instantFromMs } from "../record/timestamp.ts";
import { archiveArrivalDelay, recentTailWarning } from "./arrival.ts";

const SHIPPER = { batchMaxAgeMs: 60_000, uploadTimeoutMs: 60_000 };
const NOW = new Date("2026-03-04T12:00:00Z");
const minutesAgo = (m: number) => instantFromMs(NOW.getTime() - m * 60_000);

describe("archive arrival delay and the recent-tail warning", () => {
  it("stream delivery: the policy's archive.batch_max_age, or the namespace's override, plus upload_timeout", () => {
    const policy = parsePolicy(
      "analytics:\n  delivery: stream\narchive:\n  batch_age_overrides:\n    - namespaces: [payments]\n      batch_max_age: 5m\n",
      "test",
    );
    const checkout = archiveArrivalDelay(policy, "checkout", SHIPPER);
    assert.equal(checkout.batchAgeMs, 3_600_000);
    assert.match(recentTailWarning(minutesAgo(30), NOW, checkout) ?? "", /less than 61m before this run/);
    assert.equal(recentTailWarning(minutesAgo(61), NOW, checkout), undefined);
    const payments = archiveArrivalDelay(policy, "payments", SHIPPER);
    assert.equal(payments.batchAgeMs, 300_000);
    assert.match(payments.batchAgeSource, /batch_age_overrides/);
    assert.equal(recentTailWarning(minutesAgo(30), NOW, payments), undefined);
    assert.match(
      recentTailWarning(minutesAgo(5), NOW, payments) ?? "",
      /run again after 2026-03-04T12:01:00\.000Z/,
    );
  });

  it("per-namespace delivery: the shipper's batch_max_age", () => {
    const delay = archiveArrivalDelay(parsePolicy("{}\n", "test"), "checkout", SHIPPER);
    assert.equal(delay.batchAgeMs, 60_000);
    assert.equal(recentTailWarning(minutesAgo(30), NOW, delay), undefined);
    assert.match(
      recentTailWarning(minutesAgo(1), NOW, delay) ?? "",
      /shipper's batch_max_age in per-namespace delivery/,
    );
  });
});
