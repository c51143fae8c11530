import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  knownDestinations,
  lifecycleScopes,
  policyDatasets,
  retrievalPrefixes,
  rulesOverlap,
  shipperWritePrefixes,
  transferredPrefixes,
} from "./infra-contract.ts";
import {
  compactedPrefix,
  formatCompactedPartKey,
  formatObjectKey,
  formatStreamKey,
  streamPrefix,
  TIERS,
} from "./keys/layout.ts";
import {
  classifyNamespace,
  destinations,
  notificationRules,
  parsePolicy,
  policySchema,
  ruleMatches,
} from "./policy/policy.ts";

const segment = fc.stringMatching(/^[A-Za-z0-9!\-_.()]{1,8}$/).filter((s) => s !== "." && s !== "..");
const prefix = fc.array(segment, { maxLength: 3 }).map((parts) => parts.join("/"));
const nsName = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?$/);
const glob = fc.oneof(
  nsName,
  nsName.map((n) => `${n.slice(0, 3)}*`),
  fc.constant("*"),
  fc.constant("team-?"),
);
const route = fc.record({
  namespaces: fc.array(glob, { minLength: 1, maxLength: 3 }),
  dataset: fc.option(fc.constantFrom("finance", "ops"), { nil: undefined }),
  table: fc.constantFrom("payments", "logs_{namespace}", "audit"),
});
/** Any policy the schema accepts: prefixes, selections and routes drawn at random. */
const arbitraryPolicy = fc
  .record({
    archive: fc.record({
      prefix,
      include: fc.array(glob, { maxLength: 3 }),
      exclude: fc.array(glob, { maxLength: 3 }),
    }),
    analytics: fc.record({
      include: fc.array(glob, { maxLength: 3 }),
      exclude: fc.array(glob, { maxLength: 3 }),
      delivery: fc.constantFrom("per-namespace", "stream"),
    }),
    warehouse: fc.record({ routes: fc.array(route, { maxLength: 3 }) }),
  })
  .map((raw) => policySchema.parse(raw));

describe("notification rules", () => {
  it("never overlap for one event type, for arbitrary policies (S3 refuses overlapping configurations)", () => {
    fc.assert(
      fc.property(arbitraryPolicy, (policy) => {
        const rules = notificationRules(policy);
        for (let i = 0; i < rules.length; i++) {
          for (let j = i + 1; j < rules.length; j++) {
            assert.ok(!rulesOverlap(rules[i]!, rules[j]!), `${rules[i]!.id} overlaps ${rules[j]!.id}`);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it("select every analytics object exactly once and no archive-tier object, for arbitrary policies and namespaces", () => {
    fc.assert(
      fc.property(arbitraryPolicy, nsName, (policy, namespace) => {
        const c = classifyNamespace(policy, namespace);
        if (!c.archived) return;
        const key = formatObjectKey({
          prefix: policy.archive.prefix,
          tier: c.tier,
          namespace,
          dt: "2026-12-07",
          hour: "23",
          node: "n_1",
          epoch: "deadbeef",
          seq: 1,
        });
        const matching = notificationRules(policy).filter((r) => ruleMatches(r, "ObjectCreated:Put", key));
        assert.equal(matching.length, c.tier === "analytics" ? 1 : 0, key);
      }),
      { numRuns: 300 },
    );
  });

  it("select every stream object exactly once, for arbitrary policies and tables", () => {
    fc.assert(
      fc.property(
        arbitraryPolicy,
        fc.constantFrom("logarchive", "finance"),
        fc.constantFrom("container_logs", "logs_team_a"),
        (policy, dataset, table) => {
          const key = formatStreamKey({
            prefix: policy.archive.prefix,
            dataset,
            table,
            dt: "2026-12-07",
            hour: "00",
            node: "n",
            epoch: "deadbeef",
            seq: 2,
          });
          assert.equal(
            notificationRules(policy).filter((r) => ruleMatches(r, "ObjectCreated:Put", key)).length,
            1,
            key,
          );
        },
      ),
      { numRuns: 100 },
    );
  });

  it("rulesOverlap sees overlapping prefixes and suffixes, and only for events that meet", () => {
    const rule = (prefix: string, suffix: string, events = ["s3:ObjectCreated:*"]) => ({
      prefix,
      suffix,
      events,
    });
    assert.equal(rulesOverlap(rule("logs/", ".gz"), rule("logs/analytics/", ".ndjson.gz")), true);
    assert.equal(rulesOverlap(rule("logs/analytics/", ""), rule("logs/archive/", "")), false);
    assert.equal(rulesOverlap(rule("logs/", ".gz"), rule("logs/", ".json")), false);
    assert.equal(rulesOverlap(rule("logs/", ""), rule("logs/", "", ["s3:ObjectRemoved:*"])), false);
    assert.equal(rulesOverlap(rule("logs/", ""), rule("logs/", "", ["s3:ObjectCreated:Put"])), true);
    assert.equal(rulesOverlap(rule("a%2Bb/", ""), rule("a+b/x/", "")), true);
  });
});

describe("grants and scopes from the layout", () => {
  const policy = parsePolicy("archive: {prefix: /k8s/logs/}\nanalytics: {include: ['*']}\n");

  it("one lifecycle scope per tier, then the shipper's evidence, under the archive prefix; only the transferred tier feeds the transfer", () => {
    assert.deepEqual(lifecycleScopes(policy), [
      ...TIERS.map((tier) => ({
        kind: "tier",
        segment: tier,
        prefix: `k8s/logs/${tier}/`,
        feedsTransfer: tier === "analytics",
      })),
      { kind: "evidence", segment: "losses", prefix: "k8s/logs/losses/", feedsTransfer: false },
      { kind: "evidence", segment: "index", prefix: "k8s/logs/index/", feedsTransfer: false },
    ]);
    const transferred = transferredPrefixes(policy);
    assert.ok(transferred.includes("k8s/logs/analytics/"), transferred.join());
    assert.ok(!transferred.includes("k8s/logs/archive/"), transferred.join());
    assert.ok(
      transferred.every((p) => p.startsWith("k8s/logs/")),
      transferred.join(),
    );
  });

  it("the shipper may write every tier of the archive prefix, its loss records and hour indexes, and nothing else", () => {
    assert.deepEqual(shipperWritePrefixes(policy), [
      ...TIERS.map((t) => `k8s/logs/${t}/`),
      "k8s/logs/losses/",
      "k8s/logs/index/",
    ]);
  });

  it("the compliance commands read and hold every tier, the evidence and the compacted parts and manifests, and no stream copy", () => {
    const streamed = parsePolicy(
      "archive: {prefix: /k8s/logs/}\nanalytics: {include: ['*'], delivery: stream}\nwarehouse: {dataset: d}\n",
    );
    for (const p of [policy, streamed]) {
      const prefixes = retrievalPrefixes(p);
      assert.deepEqual(prefixes, [
        ...TIERS.map((t) => `k8s/logs/${t}/`),
        "k8s/logs/losses/",
        "k8s/logs/index/",
        compactedPrefix("/k8s/logs/"),
      ]);
      assert.equal(compactedPrefix("/k8s/logs/"), "k8s/logs/compacted/");
      // Every compacted part and manifest key falls under it.
      const part = formatCompactedPartKey({
        prefix: "/k8s/logs/",
        namespace: "web",
        dt: "2026-03-03",
        hour: "10",
        generation: 0,
        part: 1,
        plan: "0123456789abcdef",
      });
      assert.ok(
        prefixes.some((x) => part.startsWith(x)),
        part,
      );
      assert.ok(!prefixes.includes(streamPrefix("/k8s/logs/")));
    }
  });

  it("known destinations add the tables of listed namespaces that a {namespace} route sends to their own table", () => {
    const routed = parsePolicy(`
analytics: {include: ['*'], exclude: [kube-system]}
warehouse:
  routes:
    - {namespaces: [payments], dataset: finance, table: payments}
    - {namespaces: ['team-*'], table: 'logs_{namespace}'}
`);
    assert.deepEqual(
      knownDestinations(routed, destinations(routed), ["team-a", "team-a", "kube-system", "web"]),
      [
        { dataset: "logarchive", table: "container_logs" },
        { dataset: "finance", table: "payments" },
        { dataset: "logarchive", table: "logs_team_a" },
      ],
    );
    assert.deepEqual(policyDatasets(routed), ["logarchive", "finance"]);
  });
});
