import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import {
  archiveTransitions,
  DEFAULT_ARCHIVE_TIER_DAYS,
  transitionSizeBands,
} from "../../lib/archive-lifecycle.ts";
import { applyPriceOverrides, DEFAULT_PRICES } from "../../lib/economics/prices.ts";
import { lifecycleScopes, shipperWritePrefixes } from "../../lib/infra-contract.ts";
import { compactedPrefix, formatIndexKey, formatLossKey } from "../../lib/keys/layout.ts";
import { lifecycleExpirationRules, parsePolicy } from "../../lib/policy/policy.ts";
import { installMocks, type Loose, type Registered } from "../test_support/mocks.ts";
import {
  archiveLifecycleRules,
  firstTransitionDay,
  policyExpirationRules,
  type S3LifecycleRule,
} from "./s3-lifecycle.ts";

const settings = {
  standardIa: 30,
  glacierIr: 90,
  deepArchive: 180,
  retentionDays: 730,
  noncurrentVersionDays: 30,
  abortIncompleteUploadDays: 7,
  transferWindowDays: 14,
  transitionSizes: "off" as "off" | "break-even",
};
const prefixOf = (rule: S3LifecycleRule) =>
  "prefix" in rule.filter ? rule.filter.prefix : rule.filter.and.prefix;
const classes = (rule: { transitions?: { storageClass: string; days: number }[] }) =>
  (rule.transitions ?? []).map((t) => `${t.storageClass}@${t.days}`);

/** An object as lifecycle filters see it: key and size. */
interface LifecycleObject {
  key: string;
  size: number;
}

/** Whether a rule's filter selects the object: prefix and exclusive size bounds. */
function selects(rule: S3LifecycleRule, o: LifecycleObject): boolean {
  if ("prefix" in rule.filter) return o.key.startsWith(rule.filter.prefix);
  const and = rule.filter.and;
  if (!o.key.startsWith(and.prefix)) return false;
  return (
    and.objectSizeGreaterThan < o.size &&
    (and.objectSizeLessThan === undefined || o.size < and.objectSizeLessThan)
  );
}

/**
 * What S3 does to an object that several rules select, by its documented precedence
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-conflicts.html): of two
 * overlapping expirations the shorter is honoured, and so for noncurrent expirations; the
 * transitions of every selecting rule apply (to the current version only).
 */
function effective(rules: readonly S3LifecycleRule[], o: LifecycleObject) {
  const matching = rules.filter((r) => selects(r, o));
  const min = (xs: (number | undefined)[]) => {
    const defined = xs.filter((x): x is number => x !== undefined);
    return defined.length === 0 ? undefined : Math.min(...defined);
  };
  const transitions = matching.flatMap((r) => r.transitions ?? []).sort((a, b) => a.days - b.days);
  return {
    rules: matching.map((r) => r.id),
    expirationDays: min(matching.map((r) => r.expiration?.days)),
    noncurrentDays: min(matching.map((r) => r.noncurrentVersionExpiration?.noncurrentDays)),
    firstTransitionDay: transitions[0]?.days,
    transitions: transitions.map((t) => `${t.storageClass}@${t.days}`),
  };
}

describe("archive lifecycle with compaction (archiveCompaction.enabled)", () => {
  const policy = parsePolicy("archive: {prefix: logs}\nanalytics: {include: [web]}\n");
  const compaction = { landingDays: 3, compactedPrefix: compactedPrefix("logs") };
  const MiB = 1024 ** 2;

  it("age-only: each tier keeps its rules, with its noncurrent versions removed after 1 day, and no rule expires originals by age or tag; the compacted prefix takes the tiers without the transfer's hold", () => {
    // A Deep Archive earlier than the transfer window shows the hold: the analytics tier keeps
    // it to day 14 (its originals are still transferred), the compacted prefix does not.
    const s = { ...settings, standardIa: null, glacierIr: null, deepArchive: 10, retentionDays: 400 };
    const rules = archiveLifecycleRules(lifecycleScopes(policy), s, DEFAULT_PRICES, compaction);
    assert.deepEqual(
      rules.map((r) => [
        r.id,
        r.filter,
        classes(r),
        r.expiration?.days,
        r.noncurrentVersionExpiration?.noncurrentDays,
        r.abortIncompleteMultipartUpload?.daysAfterInitiation,
      ]),
      [
        ["logarchive-analytics", { prefix: "logs/analytics/" }, ["DEEP_ARCHIVE@14"], 400, 1, 7],
        ["logarchive-archive", { prefix: "logs/archive/" }, ["DEEP_ARCHIVE@10"], 400, 1, 7],
        ["logarchive-losses", { prefix: "logs/losses/" }, [], 400, 30, 7],
        ["logarchive-index", { prefix: "logs/index/" }, [], 400, 30, 7],
        ["logarchive-compacted", { prefix: "logs/compacted/" }, ["DEEP_ARCHIVE@10"], 400, 30, 7],
      ],
    );
    // Without compaction: the same rules but the tiers' noncurrent days, and no compacted rule.
    const without = archiveLifecycleRules(lifecycleScopes(policy), s, DEFAULT_PRICES);
    assert.deepEqual(
      without.map((r) => [r.id, r.noncurrentVersionExpiration?.noncurrentDays]),
      [
        ["logarchive-analytics", 30],
        ["logarchive-archive", 30],
        ["logarchive-losses", 30],
        ["logarchive-index", 30],
      ],
    );
    assert.deepEqual(
      rules
        .filter((r) => r.id !== "logarchive-compacted")
        .map((r) => ({ ...r, noncurrentVersionExpiration: undefined })),
      without.map((r) => ({ ...r, noncurrentVersionExpiration: undefined })),
    );
    // No rule has a tag filter or an expiry shorter than the retention: nothing expires an
    // original the compactor has not removed (a refused or stuck hour stays whole).
    for (const r of rules) {
      assert.ok(!("and" in r.filter) || !("tags" in r.filter.and), r.id);
      if (r.expiration !== undefined) assert.equal(r.expiration.days, 400, r.id);
    }
  });

  for (const transitionSizes of ["off", "break-even"] as const) {
    it(`${transitionSizes}: an original (any size) keeps the tier's transitions and the retention while current; once the compactor's delete marker makes it noncurrent, its version goes after 1 day (when its retention allows)`, () => {
      const s = { ...settings, transitionSizes };
      const rules = archiveLifecycleRules(lifecycleScopes(policy), s, DEFAULT_PRICES, compaction);
      const off = archiveLifecycleRules(lifecycleScopes(policy), s, DEFAULT_PRICES);
      for (const tier of ["archive", "analytics"]) {
        for (const size of [4 * 1024, MiB, 64 * MiB]) {
          const key = `logs/${tier}/namespace=web/dt=2026-03-03/hour=10/node=n-1/b.ndjson.gz`;
          const original = effective(rules, { key, size });
          assert.equal(original.expirationDays, 730, `${tier} ${size}`);
          assert.equal(original.noncurrentDays, 1, `${tier} ${size}`);
          // The current original gets exactly the transitions it got before compaction was on.
          const before = effective(off, { key, size });
          assert.deepEqual(original.transitions, before.transitions);
          assert.deepEqual(original.rules, before.rules);
          assert.equal(before.noncurrentDays, 30);
        }
      }
      // Off: every size moves at day 30; break-even: large objects do, at the tier's days.
      const large = effective(rules, {
        key: "logs/archive/namespace=web/dt=2026-03-03/hour=10/node=n-1/b.ndjson.gz",
        size: 64 * MiB,
      });
      assert.equal(large.firstTransitionDay, 30);
      // The compacted parts: kept for the retention, transitioned, noncurrent versions as configured.
      const part = effective(rules, { key: "logs/compacted/namespace=web/p.ndjson.gz", size: 512 * MiB });
      assert.equal(part.expirationDays, 730);
      assert.equal(part.noncurrentDays, 30);
      assert.equal(part.firstTransitionDay, 30);
      // Evidence keeps its noncurrent days: nothing deletes an hour index or a loss record.
      const index = effective(rules, { key: "logs/index/dt=2026-03-03/hour=10/node=n-1/x.json", size: MiB });
      assert.equal(index.noncurrentDays, 30);
    });
  }

  it("refuses a landingDays on or after the first transition: originals would move to a colder class before the compactor has read them", () => {
    for (const landingDays of [30, 31]) {
      assert.throws(
        () =>
          archiveLifecycleRules(lifecycleScopes(policy), settings, DEFAULT_PRICES, {
            ...compaction,
            landingDays,
          }),
        /landingDays \(3[01]\) must be less than the first transition \(day 30\)/,
      );
    }
    assert.equal(firstTransitionDay({ standardIa: null, glacierIr: 90, deepArchive: 180 }), 90);
    assert.equal(firstTransitionDay({ standardIa: null, glacierIr: null, deepArchive: null }), null);
    archiveLifecycleRules(lifecycleScopes(policy), settings, DEFAULT_PRICES, {
      ...compaction,
      landingDays: 29,
    });
  });
});

describe("archive lifecycle, age-only (archiveTransitionSizes: off)", () => {
  const policy = parsePolicy("archive: {prefix: logs}\n");

  it("the default tiers on every tier scope", () => {
    const rules = archiveLifecycleRules(lifecycleScopes(policy), settings);
    assert.deepEqual(
      rules.map((r) => [r.id, prefixOf(r), classes(r), r.expiration?.days]),
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
      expiring.map((r) => [prefixOf(r), r.expiration?.days, classes(r)]),
      [["logs/stream/", 3, []]],
    );
    for (const scope of lifecycleScopes(stream)) assert.ok(!scope.prefix.startsWith("logs/stream/"));
    assert.ok(shipperWritePrefixes(stream).includes("logs/stream/"));
    assert.ok(!shipperWritePrefixes(policy).includes("logs/stream/"));
    assert.deepEqual(policyExpirationRules(lifecycleExpirationRules(policy), settings), []);
  });
});

describe("archive lifecycle, size-aware (archiveTransitionSizes: break-even, the default)", () => {
  const policy = parsePolicy("archive: {prefix: logs}\n");
  const sized = { ...settings, transitionSizes: "break-even" as const };

  it("each tier scope keeps its expiring rule, and one rule per size band carries that band's transitions", () => {
    const rules = archiveLifecycleRules(lifecycleScopes(policy), sized);
    const bands = transitionSizeBands(archiveTransitions(DEFAULT_ARCHIVE_TIER_DAYS), 730, DEFAULT_PRICES);
    // lib's bands at 730 days (lib/archive-lifecycle.test.ts computes them by hand).
    assert.deepEqual(
      bands.map((b) => b.minBytes),
      [0, 67_170, 518_408, 1_059_773],
    );
    assert.deepEqual(
      rules
        .filter((r) => prefixOf(r) === "logs/archive/")
        .map((r) => [
          r.id,
          "and" in r.filter && "objectSizeGreaterThan" in r.filter.and
            ? [r.filter.and.objectSizeGreaterThan, r.filter.and.objectSizeLessThan]
            : null,
          classes(r),
          r.expiration?.days,
        ]),
      [
        ["logarchive-archive", null, [], 730],
        ["logarchive-archive-67170-518408", [67_169, 518_408], ["GLACIER_IR@90"], undefined],
        [
          "logarchive-archive-518408-1059773",
          [518_407, 1_059_773],
          ["STANDARD_IA@30", "GLACIER_IR@90"],
          undefined,
        ],
        [
          "logarchive-archive-1059773-up",
          [1_059_772, undefined],
          ["STANDARD_IA@30", "GLACIER_IR@90", "DEEP_ARCHIVE@180"],
          undefined,
        ],
      ],
    );
    // Evidence is untouched, and no object size falls in two bands of one scope.
    assert.deepEqual(classes(rules.find((r) => r.id === "logarchive-index")!), []);
    assert.ok(rules.length <= 1000);
  });

  it("the sizes follow the prices infra is given and the retention", () => {
    const dearer = applyPriceOverrides({ s3_transition_deep_archive_per_1k: 0.1 });
    const deep = (rules: S3LifecycleRule[]) =>
      rules.find(
        (r) => r.id.startsWith("logarchive-archive-") && classes(r).some((c) => c.startsWith("DEEP_ARCHIVE")),
      );
    const base = deep(archiveLifecycleRules(lifecycleScopes(policy), sized))!;
    const pricier = deep(archiveLifecycleRules(lifecycleScopes(policy), sized, dearer))!;
    const min = (r: S3LifecycleRule) =>
      "and" in r.filter && "objectSizeGreaterThan" in r.filter.and ? r.filter.and.objectSizeGreaterThan : 0;
    assert.ok(min(pricier) > min(base));
    const shorter = deep(archiveLifecycleRules(lifecycleScopes(policy), { ...sized, retentionDays: 365 }))!;
    assert.ok(min(shorter) > min(base));
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
      lifecycleRules: archiveLifecycleRules(lifecycleScopes(policy), {
        ...settings,
        transitionSizes: "break-even",
      }),
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
      const matching = rules.filter((r: Loose) => key.startsWith(r.filter.prefix ?? r.filter.and.prefix));
      assert.equal(matching.length, 1, `exactly one rule applies to ${key}`);
      const [rule] = matching;
      assert.equal(rule.transitions, undefined, `${key} never moves to a colder class`);
      assert.equal(rule.expiration.days, settings.retentionDays);
      assert.equal(rule.noncurrentVersionExpiration.noncurrentDays, settings.noncurrentVersionDays);
    }
    // The shipper may write them; the tiers keep their transitions.
    assert.ok(shipperWritePrefixes(policy).includes("k8s/logs/index/"));
    assert.ok(shipperWritePrefixes(policy).includes("k8s/logs/losses/"));
    const sized = rules.filter((r: Loose) => r.filter.and?.prefix === "k8s/logs/archive/");
    assert.equal(sized.at(-1).transitions.length, 3);
  });

  it("the deployed transition rules carry the size bands lib computes from the price table, tiers and retention", () => {
    const bands = transitionSizeBands(
      archiveTransitions(DEFAULT_ARCHIVE_TIER_DAYS),
      settings.retentionDays,
      DEFAULT_PRICES,
    ).filter((b) => b.transitions.length > 0);
    for (const prefix of ["k8s/logs/analytics/", "k8s/logs/archive/"]) {
      const sized = rules.filter((r: Loose) => r.filter.and?.prefix === prefix);
      assert.deepEqual(
        sized.map((r: Loose) => ({
          above: r.filter.and.objectSizeGreaterThan,
          below: r.filter.and.objectSizeLessThan,
          transitions: r.transitions.map((t: Loose) => `${t.storageClass}@${t.days}`),
        })),
        bands.map((b) => ({
          above: b.minBytes - 1,
          below: b.maxBytes ?? undefined,
          transitions: b.transitions.map((t) => `${t.storageClass}@${t.afterDays}`),
        })),
      );
      // The scope's own rule expires everything, any size, and moves nothing.
      const own = rules.find((r: Loose) => r.filter.prefix === prefix);
      assert.equal(own.transitions, undefined);
      assert.equal(own.expiration.days, settings.retentionDays);
    }
    // A 666 KiB object (the reference scenario's median) matches exactly one band: IA and GIR, no Deep Archive.
    const median = 666 * 1024;
    const matching = rules.filter(
      (r: Loose) =>
        r.filter.and?.prefix === "k8s/logs/archive/" &&
        median > r.filter.and.objectSizeGreaterThan &&
        (r.filter.and.objectSizeLessThan === undefined || median < r.filter.and.objectSizeLessThan),
    );
    assert.deepEqual(
      matching.map((r: Loose) => r.transitions.map((t: Loose) => t.storageClass)),
      [["STANDARD_IA", "GLACIER_IR"]],
    );
  });
});
