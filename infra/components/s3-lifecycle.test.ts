import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { lifecycleScopes, shipperWritePrefixes } from "../../lib/infra-contract.ts";
import { formatIndexKey, formatLossKey } from "../../lib/keys/layout.ts";
import { lifecycleExpirationRules, parsePolicy } from "../../lib/policy/policy.ts";
import { installMocks, type Loose, type Registered } from "../test_support/mocks.ts";
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
        // The shipper's evidence: read by every retrieval with a plain GET, never cold, expires with the archive.
        ["logarchive-losses", "logs/losses/", [], 730],
        ["logarchive-index", "logs/index/", [], 730],
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

describe("archive lifecycle deployed (pulumi.runtime.setMocks)", () => {
  const registered: Registered[] = [];
  const policy = parsePolicy("archive: {prefix: k8s/logs}\n");
  let rules: Loose[] = [];

  before(async () => {
    installMocks(registered);
    const { ArchiveBucket } = await import("./archive-bucket.ts");
    new ArchiveBucket("lifecycle-test", {
      objectLock: { mode: "GOVERNANCE", days: 30 },
      keyAliasPrefix: "alias/logarchive-test-archive-",
      lifecycleRules: archiveLifecycleRules(lifecycleScopes(policy), settings),
    });
    await pulumi.runtime.disconnect();
    const config = registered.filter(
      (r) => r.type === "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    );
    assert.equal(config.length, 1);
    rules = config[0]!.inputs.rules;
  });
  after(() => {
    registered.length = 0;
  });

  it("loss records and hour indexes stay out of every cold class and expire at the archive's retention", () => {
    const at = { prefix: "k8s/logs", dt: "2026-11-21", hour: "09", node: "n", epoch: "9f2c1a7b" };
    for (const key of [formatLossKey({ ...at, namespace: "payments", seq: 3 }), formatIndexKey(at)]) {
      const matching = rules.filter((r: Loose) => key.startsWith(r.filter.prefix));
      assert.equal(matching.length, 1, `exactly one rule applies to ${key}`);
      const [rule] = matching;
      assert.equal(rule.transitions, undefined, `${key} never moves to a colder class`);
      assert.equal(rule.expiration.days, settings.retentionDays);
      assert.equal(rule.noncurrentVersionExpiration.noncurrentDays, settings.noncurrentVersionDays);
    }
    // The shipper may write them; the tiers keep their transitions.
    assert.ok(shipperWritePrefixes(policy).includes("k8s/logs/index/"));
    assert.ok(shipperWritePrefixes(policy).includes("k8s/logs/losses/"));
    const tierRule = rules.find((r: Loose) => r.filter.prefix === "k8s/logs/archive/");
    assert.equal(tierRule.transitions.length, 3);
  });
});
