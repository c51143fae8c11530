import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { lifecycleScopes, shipperWritePrefixes } from "../../lib/infra-contract.ts";
import { lifecycleExpirationRules, parsePolicy } from "../../lib/policy/policy.ts";
import { archiveLifecycleRules, policyExpirationRules } from "./s3-lifecycle.ts";

const settings = {
  standardIa: 30,
  glacierIr: 90,
  deepArchive: 180,
  retentionDays: 730,
  noncurrentVersionDays: 30,
  abortIncompleteUploadDays: 7,
  transferWindowDays: 14,
};
const classes = (rule: { transitions?: { storageClass: string; days: number }[] }) =>
  (rule.transitions ?? []).map((t) => `${t.storageClass}@${t.days}`);

describe("archive lifecycle", () => {
  const policy = parsePolicy("archive: {prefix: logs}\n");

  it("the default tiers on every tier scope", () => {
    const rules = archiveLifecycleRules(lifecycleScopes(policy), settings);
    assert.deepEqual(
      rules.map((r) => [r.id, r.filter.prefix, classes(r), r.expiration.days]),
      [
        [
          "logarchive-analytics",
          "logs/analytics/",
          ["STANDARD_IA@30", "GLACIER_IR@90", "DEEP_ARCHIVE@180"],
          730,
        ],
        ["logarchive-archive", "logs/archive/", ["STANDARD_IA@30", "GLACIER_IR@90", "DEEP_ARCHIVE@180"], 730],
      ],
    );
  });

  it("objects the transfer copies stay out of Deep Archive (which it reads only restored) until the transfer window has passed", () => {
    const early = { ...settings, standardIa: null, glacierIr: 1, deepArchive: 5 };
    const [analytics, archive] = archiveLifecycleRules(lifecycleScopes(policy), early);
    assert.deepEqual(classes(analytics!), ["GLACIER_IR@1", "DEEP_ARCHIVE@14"]);
    assert.deepEqual(classes(archive!), ["GLACIER_IR@1", "DEEP_ARCHIVE@5"]);
  });

  it("when holding back lands two classes on one day, the colder one is kept (S3 refuses two)", () => {
    const both = { ...settings, standardIa: null, glacierIr: 14, deepArchive: 5 };
    const [analytics] = archiveLifecycleRules(lifecycleScopes(policy), both);
    assert.deepEqual(classes(analytics!), ["DEEP_ARCHIVE@14"]);
  });

  it("stream delivery: its copies expire by the policy's own rule, outside every tier scope, and the shipper may write them", () => {
    const stream = parsePolicy(
      "archive: {prefix: logs}\nanalytics: {include: ['*'], delivery: stream, stream_expiration_days: 3}\n",
    );
    const expiring = policyExpirationRules(lifecycleExpirationRules(stream), settings);
    assert.deepEqual(
      expiring.map((r) => [r.filter.prefix, r.expiration.days, classes(r)]),
      [["logs/stream/", 3, []]],
    );
    for (const scope of lifecycleScopes(stream)) assert.ok(!scope.prefix.startsWith("logs/stream/"));
    assert.ok(shipperWritePrefixes(stream).includes("logs/stream/"));
    assert.ok(!shipperWritePrefixes(policy).includes("logs/stream/"));
    assert.deepEqual(policyExpirationRules(lifecycleExpirationRules(policy), settings), []);
  });
});
