import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { ConfigError } from "../config/errors.ts";
import { formatObjectKey, formatStreamKey, parseObjectKey, prefixProblem } from "../keys/layout.ts";
import {
  classifyNamespace,
  DEFAULT_POLICY,
  destinations,
  hasTablePerNamespace,
  isNamespaceName,
  lifecycleExpirationRules,
  type NotificationRule,
  notificationRules,
  parsePolicy,
  ruleMatches,
  streamDelivery,
} from "./policy.ts";

const policy = parsePolicy(`
archive:
  prefix: k8s/logs
  exclude: ["kube-node-lease", "*-scratch"]
analytics:
  include: ["payments*", "web", "team-{a,b}"]
  exclude: ["payments-sandbox"]
  delivery: per-namespace
warehouse:
  dataset: logs
  routes:
    - namespaces: ["payments*"]
      dataset: payments
      table: payments_logs
`);

describe("namespace policy", () => {
  it("archives everything by default and loads nothing", () => {
    assert.deepEqual(classifyNamespace(DEFAULT_POLICY, "default"), {
      archived: true,
      tier: "archive",
      destination: null,
    });
    assert.equal(DEFAULT_POLICY.archive.prefix, "logs");
  });

  it("classifies namespaces with include/exclude globs and routes", () => {
    assert.deepEqual(classifyNamespace(policy, "payments"), {
      archived: true,
      tier: "analytics",
      destination: { dataset: "payments", table: "payments_logs" },
    });
    assert.deepEqual(classifyNamespace(policy, "web"), {
      archived: true,
      tier: "analytics",
      destination: { dataset: "logs", table: "container_logs" },
    });
    const teamB = classifyNamespace(policy, "team-b");
    assert.ok(teamB.archived && teamB.tier === "analytics");
    assert.deepEqual(classifyNamespace(policy, "payments-sandbox"), {
      archived: true,
      tier: "archive",
      destination: null,
    });
    assert.deepEqual(classifyNamespace(policy, "web-2"), {
      archived: true,
      tier: "archive",
      destination: null,
    });
    assert.deepEqual(classifyNamespace(policy, "kube-node-lease"), {
      archived: false,
      reason: "archive.exclude kube-node-lease",
    });
    assert.equal(classifyNamespace(policy, "ci-scratch").archived, false);
  });

  it("lists each destination table once", () => {
    assert.deepEqual(destinations(policy), [
      { dataset: "logs", table: "container_logs" },
      { dataset: "payments", table: "payments_logs" },
    ]);
  });

  it("makes a table per namespace from a {namespace} route, and lists only named tables", () => {
    const perNamespace = parsePolicy(`
analytics:
  include: ["*"]
  delivery: per-namespace
warehouse:
  dataset: logs
  routes:
    - namespaces: ["team-*"]
      dataset: teams
      table: "logs_{namespace}"
`);
    assert.deepEqual(classifyNamespace(perNamespace, "team-a-api"), {
      archived: true,
      tier: "analytics",
      destination: { dataset: "teams", table: "logs_team_a_api" },
    });
    assert.deepEqual(classifyNamespace(perNamespace, "web"), {
      archived: true,
      tier: "analytics",
      destination: { dataset: "logs", table: "container_logs" },
    });
    assert.equal(hasTablePerNamespace(perNamespace), true);
    assert.equal(hasTablePerNamespace(policy), false);
    assert.deepEqual(destinations(perNamespace), [{ dataset: "logs", table: "container_logs" }]);
    assert.throws(
      () => parsePolicy('warehouse:\n  routes:\n    - namespaces: ["a"]\n      table: "logs_{ns}"\n'),
      /warehouse\.routes\[0\]\.table: is not a BigQuery table name/,
    );
  });

  it("derives notification rules that select exactly the analytics tier and the stream", () => {
    const rules = notificationRules(policy);
    assert.deepEqual(rules, [
      {
        id: "logarchive-analytics",
        prefix: "k8s/logs/analytics/",
        suffix: ".ndjson.gz",
        events: ["s3:ObjectCreated:*"],
      },
      {
        id: "logarchive-stream",
        prefix: "k8s/logs/stream/",
        suffix: ".ndjson.gz",
        events: ["s3:ObjectCreated:*"],
      },
    ]);
    // The same rules in either delivery mode, so a rollout of a mode change loses nothing.
    assert.deepEqual(
      notificationRules({ ...policy, analytics: { ...policy.analytics, delivery: "stream" } }),
      rules,
    );
    const rule = rules[0]!;
    const key = (namespace: string) => {
      const c = classifyNamespace(policy, namespace);
      assert.ok(c.archived);
      return formatObjectKey({
        prefix: policy.archive.prefix,
        tier: c.tier,
        namespace,
        dt: "2026-11-21",
        hour: "01",
        node: "n",
        epoch: "0123abcd",
        seq: 1,
      });
    };
    assert.ok(ruleMatches(rule, "ObjectCreated:Put", key("payments")));
    assert.ok(ruleMatches(rule, "ObjectCreated:CompleteMultipartUpload", key("web")));
    assert.ok(!ruleMatches(rule, "ObjectCreated:Put", key("payments-sandbox")));
    assert.ok(!ruleMatches(rule, "ObjectRemoved:Delete", key("payments")));
    assert.ok(!ruleMatches(rule, "ObjectCreated:Put", `${key("web")}.tmp`));
  });

  it("in stream delivery writes every namespace to the archive tier and notifies only stream objects", () => {
    const streamPolicy = parsePolicy(`
archive:
  prefix: k8s/logs
  exclude: ["kube-node-lease"]
  batch_max_age: 30m
  batch_age_overrides:
    - namespaces: ["audit"]
      batch_max_age: 5m
    - namespaces: ["audit*"]
      batch_max_age: 10m
analytics:
  include: ["payments*", "web"]
  delivery: stream
  stream_batch_max_age: 2m
  stream_expiration_days: 5
warehouse:
  routes:
    - namespaces: ["payments*"]
      dataset: payments
      table: payments_logs
`);
    assert.deepEqual(classifyNamespace(streamPolicy, "payments"), {
      archived: true,
      tier: "archive",
      destination: { dataset: "payments", table: "payments_logs" },
    });
    assert.deepEqual(classifyNamespace(streamPolicy, "kube-system"), {
      archived: true,
      tier: "archive",
      destination: null,
    });
    const delivery = streamDelivery(streamPolicy);
    assert.equal(delivery?.streamBatchMaxAgeMs, 120_000);
    assert.equal(delivery?.archiveBatchMaxAgeMs, 1_800_000);
    // Overrides: first matching entry wins, the rest keep archive.batch_max_age.
    assert.equal(delivery?.archiveBatchMaxAgeMsFor("audit"), 300_000);
    assert.equal(delivery?.archiveBatchMaxAgeMsFor("audit-2"), 600_000);
    assert.equal(delivery?.archiveBatchMaxAgeMsFor("payments"), 1_800_000);
    assert.equal(streamDelivery(policy), null, "per-namespace delivery has no stream");
    assert.deepEqual(lifecycleExpirationRules(streamPolicy), [
      { id: "logarchive-stream-expiry", prefix: "k8s/logs/stream/", expirationDays: 5 },
    ]);
    assert.deepEqual(lifecycleExpirationRules(policy), []);
    const [analyticsRule, streamRule] = notificationRules(streamPolicy) as [
      NotificationRule,
      NotificationRule,
    ];
    const archiveKey = formatObjectKey({
      prefix: "k8s/logs",
      tier: "archive",
      namespace: "payments",
      dt: "2026-11-21",
      hour: "01",
      node: "n",
      epoch: "0123abcd",
      seq: 1,
    });
    const streamKey = formatStreamKey({
      prefix: "k8s/logs",
      dataset: "payments",
      table: "payments_logs",
      dt: "2026-11-21",
      hour: "01",
      node: "n",
      epoch: "0123abcd",
      seq: 2,
    });
    for (const rule of [analyticsRule, streamRule])
      assert.ok(!ruleMatches(rule, "ObjectCreated:Put", archiveKey));
    assert.ok(ruleMatches(streamRule, "ObjectCreated:Put", streamKey));
    assert.ok(!ruleMatches(analyticsRule, "ObjectCreated:Put", streamKey));
    // The defaults: per-namespace delivery unless the file says stream (namespaces.yaml as
    // shipped does), a 3-minute stream, hourly archive batches.
    assert.equal(DEFAULT_POLICY.analytics.delivery, "per-namespace");
    assert.equal(DEFAULT_POLICY.analytics.stream_batch_max_age, "4m");
    assert.equal(DEFAULT_POLICY.archive.batch_max_age, "1h");
  });

  it("refuses bad delivery settings, naming the field", () => {
    try {
      parsePolicy(
        "archive:\n  batch_max_age: 2h\n  batch_age_overrides:\n    - namespaces: []\n      batch_max_age: 90m\nanalytics:\n  delivery: streaming\n  stream_batch_max_age: soon\n  stream_expiration_days: 0\n",
        "p.yaml",
      );
      assert.fail("expected a ConfigError");
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /archive\.batch_max_age: must be at most 1h/);
      assert.match(error.message, /analytics\.delivery: /);
      assert.match(error.message, /analytics\.stream_batch_max_age: expected a duration/);
      assert.match(error.message, /analytics\.stream_expiration_days: /);
      assert.match(error.message, /archive\.batch_age_overrides\[0\]\.namespaces: list at least one/);
      assert.match(error.message, /archive\.batch_age_overrides\[0\]\.batch_max_age: must be at most 1h/);
      assert.equal(error.problems.length, 6);
    }
  });

  it("reports every bad field at once, naming each", () => {
    try {
      parsePolicy(
        `
archive:
  prefix: "logs with space"
  include: ["Payments"]
analytics:
  inclde: ["web"]
warehouse:
  table: "bad-table"
`,
        "policy.yaml",
      );
      assert.fail("expected a ConfigError");
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      const text = error.message;
      assert.match(text, /^policy\.yaml is invalid:/);
      assert.match(text, /archive\.prefix: may use only letters, digits/);
      assert.match(text, /archive\.include\[0\]: is not a namespace glob/);
      assert.match(text, /analytics: Unrecognized key: "inclde"/);
      assert.match(text, /warehouse\.table: is not a BigQuery table name/);
      assert.equal(error.problems.length, 4);
    }
  });

  it("refuses archive.prefix values that make unsafe or unparsable keys, naming the field", () => {
    for (const bad of ["..", "../up", "a//b", "./x", "logs*", "it's", "a=b", "50%"]) {
      assert.throws(
        () => parsePolicy(`archive:\n  prefix: ${JSON.stringify(bad)}\n`, "p.yaml"),
        (error: unknown) =>
          error instanceof ConfigError &&
          error.problems.length === 1 &&
          error.problems[0]!.startsWith("archive.prefix: "),
        bad,
      );
    }
  });

  it("accepts exactly the prefixes keys can carry, and their rules select their keys (property)", () => {
    const prefix = fc
      .array(fc.constantFrom("/", ".", "..", "*", "'", "=", "%", " ", "logs", "k8s", "a-b", "(x)", "_"), {
        maxLength: 8,
      })
      .map((parts) => parts.join(""));
    fc.assert(
      fc.property(prefix, (text) => {
        const yaml = `archive:\n  prefix: ${JSON.stringify(text)}\nanalytics:\n  include: ["*"]\n`;
        if (prefixProblem(text) !== undefined) {
          assert.throws(
            () => parsePolicy(yaml, "p.yaml"),
            (error: unknown) => error instanceof ConfigError && /^archive\.prefix: /.test(error.problems[0]!),
          );
          return;
        }
        const parsed = parsePolicy(yaml, "p.yaml");
        const key = formatObjectKey({
          prefix: parsed.archive.prefix,
          tier: "analytics",
          namespace: "web",
          dt: "2026-11-21",
          hour: "01",
          node: "n",
          epoch: "0123abcd",
          seq: 1,
        });
        assert.equal(formatObjectKey(parseObjectKey(key)), key);
        assert.ok(ruleMatches(notificationRules(parsed)[0]!, "ObjectCreated:Put", key));
      }),
      { numRuns: 1000 },
    );
  });

  it("reports YAML syntax errors", () => {
    assert.throws(() => parsePolicy("archive: [", "p.yaml"), /p\.yaml is invalid:\n {2}- YAML syntax/);
  });
});

describe("isNamespaceName", () => {
  it("accepts exactly the Kubernetes DNS-1123 label names", () => {
    for (const good of ["a", "0", "kube-system", "team-a1", "9lives", "a".repeat(63), "a-b-c"]) {
      assert.equal(isNamespaceName(good), true, good);
    }
    for (const bad of ["", "Payments", "-a", "a-", "a_b", "a.b", "a b", "a/b", "a".repeat(64), "é", "a\n"]) {
      assert.equal(isNamespaceName(bad), false, JSON.stringify(bad));
    }
  });

  it("agrees with the rule written out (property)", () => {
    const label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom("a", "z", "0", "9", "-", "A", "_", "."), maxLength: 70 }),
        (s) => {
          assert.equal(isNamespaceName(s), label.test(s) && s.length <= 63, JSON.stringify(s));
        },
      ),
    );
  });
});

describe("docs/policy.md", () => {
  it("documents every key of the policy schema", async () => {
    const { readFile } = await import("node:fs/promises");
    const doc = await readFile(new URL("../../docs/policy.md", import.meta.url), "utf8");
    const keys = [
      ...Object.keys(DEFAULT_POLICY.archive).map((k) => `archive.${k}`),
      ...Object.keys(DEFAULT_POLICY.analytics).map((k) => `analytics.${k}`),
      ...Object.keys(DEFAULT_POLICY.warehouse).map((k) => `warehouse.${k}`),
      "warehouse.routes[].namespaces",
      "warehouse.routes[].dataset",
      "warehouse.routes[].table",
    ];
    for (const key of keys)
      assert.ok(doc.includes(`| \`${key}\` |`), `docs/policy.md lacks a row for ${key}`);
  });
});
