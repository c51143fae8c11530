// The compacted segment's keys (lib/keys/layout.ts): the documented layout, round trips over
// generated inputs, and that no reader of records today matches them (no tier prefix, no
// notification rule), so nothing reads a compacted line twice before readers use manifests.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { DEFAULT_POLICY, notificationRules } from "../policy/policy.ts";
import {
  type CompactedPartKey,
  compactedHourPrefix,
  compactedPrefix,
  compactionManifestsPrefix,
  formatCompactedPartKey,
  formatCompactionManifestKey,
  formatCompactionPlanKey,
  formatObjectKey,
  KeyLayoutError,
  parseAnyObjectKey,
  parseCompactedKey,
  parseObjectKey,
  streamPrefix,
  TIERS,
  tierPrefix,
} from "./layout.ts";

const part: CompactedPartKey = {
  prefix: "logs",
  namespace: "payments",
  dt: "2026-11-21",
  hour: "09",
  generation: 0,
  part: 3,
  plan: "0123456789abcdef",
};

describe("compacted keys", () => {
  it("formats the documented layout and parses it back", () => {
    const partKey = formatCompactedPartKey(part);
    const manifestKey = formatCompactionManifestKey({ ...part, generation: 2 });
    assert.equal(
      partKey,
      "logs/compacted/namespace=payments/dt=2026-11-21/hour=09/part-0000-0003-0123456789abcdef.ndjson.gz",
    );
    assert.equal(manifestKey, "logs/compacted/namespace=payments/dt=2026-11-21/hour=09/manifest-0002.json");
    assert.deepEqual(parseCompactedKey(partKey), { kind: "part", ...part });
    assert.deepEqual(parseCompactedKey(manifestKey), {
      kind: "manifest",
      prefix: "logs",
      namespace: "payments",
      dt: "2026-11-21",
      hour: "09",
      generation: 2,
    });
    assert.ok(partKey.startsWith(compactedHourPrefix("/logs/", "payments", "2026-11-21", "09")));
    assert.ok(manifestKey.startsWith(compactionManifestsPrefix("logs", "payments", "2026-11-21", "09")));
    assert.ok(!partKey.startsWith(compactionManifestsPrefix("logs", "payments", "2026-11-21", "09")));
    assert.equal(compactedPrefix(""), "compacted/");
  });

  it("formats a generation's plan beside its manifests, JSON that Athena's `.ndjson.gz` filter never reads, and parses it back", () => {
    const planKey = formatCompactionPlanKey({ ...part, generation: 7 });
    assert.equal(planKey, "logs/compacted/namespace=payments/dt=2026-11-21/hour=09/plan-0007.json");
    assert.ok(!planKey.endsWith(".ndjson.gz"));
    assert.ok(planKey.startsWith(compactedHourPrefix("logs", "payments", "2026-11-21", "09")));
    assert.ok(!planKey.startsWith(compactionManifestsPrefix("logs", "payments", "2026-11-21", "09")));
    assert.deepEqual(parseCompactedKey(planKey), {
      kind: "plan",
      prefix: "logs",
      namespace: "payments",
      dt: "2026-11-21",
      hour: "09",
      generation: 7,
    });
    assert.throws(
      () => formatCompactionPlanKey({ ...part, generation: 10_000 }),
      /generation 10000 is outside/,
    );
    assert.throws(
      () => parseCompactedKey("logs/compacted/namespace=payments/dt=2026-11-21/hour=09/plan-7.json"),
      /expected manifest-/,
    );
  });

  const cases: [string, Partial<CompactedPartKey>, string][] = [
    ["empty prefix", { prefix: "" }, "compacted/namespace=payments/"],
    ["nested prefix", { prefix: "a/b" }, "a/b/compacted/namespace=payments/"],
    ["namespace needing escapes", { namespace: "a=b/c d%" }, "namespace=a%3Db%2Fc%20d%25/"],
    ["last generation and part", { generation: 9999, part: 9999 }, "/part-9999-9999-"],
    ["leap day's last hour", { dt: "2028-02-29", hour: "23" }, "/dt=2028-02-29/hour=23/"],
  ];
  for (const [name, change, expected] of cases) {
    it(`round-trips: ${name}`, () => {
      const key = { ...part, ...change };
      const text = formatCompactedPartKey(key);
      assert.ok(text.includes(expected), `${text} should contain ${expected}`);
      assert.deepEqual(parseCompactedKey(text), { kind: "part", ...key });
      const manifest = formatCompactionManifestKey(key);
      assert.deepEqual(parseCompactedKey(manifest), {
        kind: "manifest",
        prefix: key.prefix,
        namespace: key.namespace,
        dt: key.dt,
        hour: key.hour,
        generation: key.generation,
      });
    });
  }

  it("round-trips any namespace, prefix, generation, part and plan (property)", () => {
    const segment = fc.stringMatching(/^[A-Za-z0-9._-]{1,12}$/).filter((s) => s !== "." && s !== "..");
    fc.assert(
      fc.property(
        fc.record({
          prefix: fc.array(segment, { maxLength: 3 }).map((parts) => parts.join("/")),
          namespace: fc.string({ unit: "grapheme", minLength: 1, maxLength: 70 }),
          dt: fc
            .date({ min: new Date("1970-01-01"), max: new Date("9999-12-31"), noInvalidDate: true })
            .map((d) => d.toISOString().slice(0, 10)),
          hour: fc.integer({ min: 0, max: 23 }).map((h) => String(h).padStart(2, "0")),
          generation: fc.integer({ min: 0, max: 9999 }),
          part: fc.integer({ min: 0, max: 9999 }),
          plan: fc.stringMatching(/^[0-9a-f]{16}$/),
        }),
        (key) => {
          assert.deepEqual(parseCompactedKey(formatCompactedPartKey(key)), { kind: "part", ...key });
          const { part: _part, plan: _plan, ...hour } = key;
          assert.deepEqual(parseCompactedKey(formatCompactionManifestKey(key)), {
            kind: "manifest",
            ...hour,
          });
        },
      ),
    );
  });

  it("refuses what it cannot write, naming the field", () => {
    assert.throws(
      () => formatCompactedPartKey({ ...part, generation: 10_000 }),
      /generation 10000 is outside/,
    );
    assert.throws(() => formatCompactedPartKey({ ...part, part: -1 }), /part -1 is outside/);
    assert.throws(() => formatCompactedPartKey({ ...part, part: 1.5 }), /part 1.5 is outside/);
    assert.throws(() => formatCompactedPartKey({ ...part, plan: "ABCDEF0123456789" }), /plan/);
    assert.throws(() => formatCompactedPartKey({ ...part, namespace: "" }), /namespace is empty/);
    assert.throws(() => formatCompactedPartKey({ ...part, dt: "2026-13-01" }), /dt/);
    assert.throws(() => formatCompactionManifestKey({ ...part, hour: "24" }), /hour/);
    assert.throws(() => formatCompactedPartKey({ ...part, prefix: "a/../b" }), /\.\./);
  });

  it("rejects malformed keys with a reason", () => {
    const good = formatCompactedPartKey(part);
    for (const [bad, why] of [
      [good.replace("compacted/", "compact/"), /segment "compact" is not compacted/],
      [good.replace("namespace=", "ns="), /namespace=/],
      [good.replace("dt=2026-11-21", "dt=2026-11-31x"), /dt=/],
      [good.replace("hour=09", "hour=9"), /hour=/],
      [
        good.replace("part-0000-0003", "part-0-3"),
        /expected manifest-<GGGG>\.json, plan-<GGGG>\.json or part-/,
      ],
      [good.replace(".ndjson.gz", ".json"), /expected manifest-/],
      [good.replace("0123456789abcdef", "0123456789abcde"), /expected manifest-/],
      ["logs/compacted/namespace=payments/dt=2026-11-21/hour=09/manifest-1.json", /expected manifest-/],
      ["manifest-0000.json", /too few parts/],
      [`//${good}`, /empty segment/],
    ] as const) {
      assert.throws(
        () => parseCompactedKey(bad),
        (e: Error) => e instanceof KeyLayoutError && why.test(e.message),
        bad,
      );
    }
    assert.throws(
      () =>
        parseCompactedKey(
          formatObjectKey({ ...part, tier: "archive", node: "n", epoch: "9f2c1a7b", seq: 1 }),
        ),
      /segment/,
    );
  });

  it("is outside every prefix records are read from today: no tier, no stream, no notification rule", () => {
    const keys = [formatCompactedPartKey(part), formatCompactionManifestKey(part)];
    for (const key of keys) {
      for (const tier of TIERS) assert.ok(!key.startsWith(tierPrefix("logs", tier)), key);
      assert.ok(!key.startsWith(streamPrefix("logs")), key);
      for (const rule of notificationRules(DEFAULT_POLICY))
        assert.ok(!key.startsWith(decodeURIComponent(rule.prefix)), key);
      assert.throws(() => parseObjectKey(key), KeyLayoutError);
      assert.throws(() => parseAnyObjectKey(key), KeyLayoutError);
    }
  });
});
