import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  athenaLocationTemplate,
  batchId,
  formatIndexKey,
  formatLossKey,
  formatObjectKey,
  formatStreamKey,
  indexHourPrefix,
  indexPrefix,
  isStreamKey,
  KeyLayoutError,
  lossPartitionPrefix,
  lossPrefix,
  MAX_PREFIX_LENGTH,
  OBJECT_SUFFIX,
  type ObjectKey,
  parseAnyObjectKey,
  parseBatchId,
  parseIndexKey,
  parseLossKey,
  parseObjectKey,
  parseStreamKey,
  partitionPrefix,
  prefixProblem,
  type StreamObjectKey,
  streamPartitionPrefix,
  streamPrefix,
  TIERS,
  tierPrefix,
} from "./layout.ts";

const base: ObjectKey = {
  prefix: "logs",
  tier: "analytics",
  namespace: "payments",
  dt: "2026-11-21",
  hour: "09",
  node: "ip-10-0-1-5.eu-west-1.compute.internal",
  epoch: "9f2c1a7b",
  seq: 42,
};

describe("object key layout", () => {
  it("formats the documented layout", () => {
    assert.equal(
      formatObjectKey(base),
      "logs/analytics/namespace=payments/dt=2026-11-21/hour=09/ip-10-0-1-5.eu-west-1.compute.internal_9f2c1a7b_000000000042.ndjson.gz",
    );
  });

  const cases: [string, Partial<ObjectKey>, string][] = [
    ["empty prefix", { prefix: "" }, "analytics/namespace=payments/"],
    ["nested prefix with slashes trimmed", { prefix: "/a/b/" }, "a/b/analytics/namespace=payments/"],
    ["archive tier", { tier: "archive" }, "logs/archive/namespace=payments/"],
    ["namespace of digits and dashes", { namespace: "0-a--b-9" }, "logs/analytics/namespace=0-a--b-9/"],
    ["63-char namespace", { namespace: "a".repeat(63) }, `logs/analytics/namespace=${"a".repeat(63)}/`],
    ["namespace needing escapes", { namespace: "a=b/c d%" }, "logs/analytics/namespace=a%3Db%2Fc%20d%25/"],
    ["node with underscore is escaped", { node: "my_node" }, "/my%5Fnode_9f2c1a7b_"],
    ["node that is an IP", { node: "10.0.0.7" }, "/10.0.0.7_9f2c1a7b_"],
    ["last hour of a leap day", { dt: "2028-02-29", hour: "23" }, "/dt=2028-02-29/hour=23/"],
  ];
  for (const [name, change, expected] of cases) {
    it(`round-trips: ${name}`, () => {
      const key = { ...base, ...change };
      const text = formatObjectKey(key);
      assert.ok(text.includes(expected), `${text} should contain ${expected}`);
      assert.deepEqual(parseObjectKey(text), { ...key, prefix: key.prefix.replace(/^\/+|\/+$/g, "") });
    });
  }

  it("round-trips any namespace, node, prefix and sequence (property)", () => {
    const segment = fc.stringMatching(/^[A-Za-z0-9._-]{1,12}$/).filter((s) => s !== "." && s !== "..");
    fc.assert(
      fc.property(
        fc.record({
          prefix: fc.array(segment, { maxLength: 3 }).map((parts) => parts.join("/")),
          tier: fc.constantFrom(...TIERS),
          namespace: fc.string({ unit: "grapheme", minLength: 1, maxLength: 70 }),
          dt: fc
            .date({ min: new Date("1970-01-01"), max: new Date("9999-12-31"), noInvalidDate: true })
            .map((d) => d.toISOString().slice(0, 10)),
          hour: fc.integer({ min: 0, max: 23 }).map((h) => String(h).padStart(2, "0")),
          node: fc.string({ unit: "grapheme", minLength: 1, maxLength: 70 }),
          epoch: fc.stringMatching(/^[0-9a-f]{8,32}$/),
          seq: fc.integer({ min: 0, max: 999_999_999_999 }),
        }),
        (key) => {
          // fast-check records have no prototype; spread into a plain object for the strict comparison.
          assert.deepEqual(parseObjectKey(formatObjectKey(key)), { ...key });
        },
      ),
    );
  });

  describe("key prefixes", () => {
    const tail = { ...base, prefix: "" };
    // The rule, restated independently of layout.ts: trimmed of outer slashes, every segment
    // is non-empty, not . or .., and made of S3 safe characters without * and '.
    const isValidPrefix = (p: string): boolean => {
      if (p.length > MAX_PREFIX_LENGTH) return false;
      const trimmed = p.replace(/^\/+|\/+$/g, "");
      return (
        trimmed === "" ||
        trimmed.split("/").every((s) => s !== "." && s !== ".." && /^[A-Za-z0-9!()_.-]+$/.test(s))
      );
    };
    const prefixText = fc
      .array(
        fc.oneof(
          fc.constantFrom(
            "/",
            ".",
            "..",
            "*",
            "'",
            "=",
            "%",
            "?",
            "[",
            "]",
            "{",
            "}",
            "$",
            "#",
            " ",
            "\n",
            "\\",
          ),
          fc.constantFrom("logs", "k8s", "a", "(x)", "!", "-", "_", "é"),
        ),
        { maxLength: 12 },
      )
      .map((parts) => parts.join(""));

    it("refuses the prefixes the issue found: .., empty segments and *", () => {
      for (const bad of ["..", "../logs", "logs/..", ".", "a/./b", "a//b", "logs*", "lo*gs/x", "it's"]) {
        assert.notEqual(prefixProblem(bad), undefined, bad);
        assert.throws(() => formatObjectKey({ ...base, prefix: bad }), /^KeyLayoutError: key prefix /, bad);
        assert.throws(() => tierPrefix(bad, "analytics"), KeyLayoutError, bad);
      }
      assert.throws(
        () => formatObjectKey({ ...base, prefix: "a".repeat(MAX_PREFIX_LENGTH + 1) }),
        /longer than/,
      );
      for (const good of ["", "/", "logs", "/k8s/logs/", "a.b/c-d/e_f", "x(1)!"]) {
        assert.equal(prefixProblem(good), undefined, good);
      }
    });

    it("parses only keys formatObjectKey could have written, so //analytics/... no longer loses its slashes", () => {
      const key = formatObjectKey(tail);
      for (const bad of [
        `/${key}`,
        `//${key}`,
        `logs//${key}`,
        `../${key}`,
        `./${key}`,
        `a*/${key}`,
        `it's/${key}`,
      ]) {
        assert.throws(() => parseObjectKey(bad), /prefix/, bad);
      }
    });

    it("round-trips every valid prefix and refuses every invalid one, naming it (property)", () => {
      fc.assert(
        fc.property(prefixText, (prefix) => {
          const key = { ...base, prefix };
          if (isValidPrefix(prefix)) {
            const text = formatObjectKey(key);
            const parsed = parseObjectKey(text);
            assert.deepEqual(parsed, { ...key, prefix: prefix.replace(/^\/+|\/+$/g, "") });
            assert.equal(formatObjectKey(parsed), text);
          } else {
            assert.throws(() => formatObjectKey(key), /^KeyLayoutError: key prefix /);
          }
        }),
        { numRuns: 2000 },
      );
    });

    it("format(parse(key)) is the key for every key that parses (property)", () => {
      const suffix = formatObjectKey(tail);
      fc.assert(
        fc.property(prefixText, (prefix) => {
          const text = `${prefix}/${suffix}`;
          let parsed: ObjectKey;
          try {
            parsed = parseObjectKey(text);
          } catch (error) {
            assert.ok(error instanceof KeyLayoutError);
            return;
          }
          assert.equal(formatObjectKey(parsed), text);
        }),
        { numRuns: 2000 },
      );
    });
  });

  it("orders keys of one node and partition by sequence", () => {
    const keys = [7, 100, 3, 99_999].map((seq) => formatObjectKey({ ...base, seq }));
    assert.deepEqual(
      [...keys].sort().map((k) => parseObjectKey(k).seq),
      [3, 7, 100, 99_999],
    );
  });

  it("rejects malformed keys with a reason", () => {
    const good = formatObjectKey(base);
    assert.throws(() => parseObjectKey(good.replace("analytics", "hot")), /tier "hot"/);
    assert.throws(() => parseObjectKey(good.replace("dt=2026-11-21", "dt=2026-13-01")), /dt=YYYY-MM-DD/);
    assert.throws(() => parseObjectKey(good.replace("hour=09", "hour=24")), /hour=HH/);
    assert.throws(() => parseObjectKey(good.replace(".ndjson.gz", ".json")), /\.ndjson\.gz/);
    assert.throws(
      () => parseObjectKey(good.replace("namespace=payments", "namespace=")),
      /namespace is empty/,
    );
    assert.throws(() => parseObjectKey(good.replace("namespace=payments", "namespace=%ZZ")), /malformed/);
    assert.throws(() => parseObjectKey("a/b.ndjson.gz"), KeyLayoutError);
    assert.throws(() => formatObjectKey({ ...base, seq: -1 }), /outside/);
    assert.throws(() => formatObjectKey({ ...base, epoch: "XYZ" }), /epoch/);
  });

  it("round-trips batch ids", () => {
    const id = batchId(base);
    assert.equal(id, "ip-10-0-1-5.eu-west-1.compute.internal_9f2c1a7b_000000000042");
    assert.deepEqual(parseBatchId(id), { node: base.node, epoch: base.epoch, seq: base.seq });
    assert.throws(() => parseBatchId("a_b"), /<node>_<epoch>_<seq>/);
  });

  it("gives listing prefixes and the Athena location template", () => {
    assert.equal(tierPrefix("logs", "archive"), "logs/archive/");
    assert.equal(
      partitionPrefix("logs", "analytics", "web", "2026-01-02", "03"),
      "logs/analytics/namespace=web/dt=2026-01-02/hour=03/",
    );
    assert.equal(
      athenaLocationTemplate("bkt", "logs"),
      "s3://bkt/logs/${tier}/namespace=${namespace}/dt=${dt}/hour=${hour}/",
    );
    // The template, filled in, is the prefix of a real key.
    const filled = athenaLocationTemplate("bkt", "logs")
      .replace("${tier}", base.tier)
      .replace("${namespace}", base.namespace)
      .replace("${dt}", base.dt)
      .replace("${hour}", base.hour);
    assert.ok(`s3://bkt/${formatObjectKey(base)}`.startsWith(filled));
  });
});

describe("stream object key layout", () => {
  const stream: StreamObjectKey = {
    prefix: "logs",
    dataset: "logarchive",
    table: "container_logs",
    dt: "2026-11-21",
    hour: "09",
    node: "ip-10-0-1-5.eu-west-1.compute.internal",
    epoch: "9f2c1a7b",
    seq: 43,
  };

  it("formats the documented layout", () => {
    assert.equal(
      formatStreamKey(stream),
      "logs/stream/table=logarchive.container_logs/dt=2026-11-21/hour=09/ip-10-0-1-5.eu-west-1.compute.internal_9f2c1a7b_000000000043.ndjson.gz",
    );
    assert.equal(streamPrefix("/logs/"), "logs/stream/");
    assert.equal(streamPrefix(""), "stream/");
    assert.equal(
      streamPartitionPrefix("logs", stream, "2026-11-21", "09"),
      "logs/stream/table=logarchive.container_logs/dt=2026-11-21/hour=09/",
    );
  });

  it("escapes a . inside a dataset or table, so the one literal . separates them", () => {
    const key = { ...stream, dataset: "a.b", table: "c.d=e/f" };
    const text = formatStreamKey(key);
    assert.ok(text.includes("/table=a%2Eb.c%2Ed%3De%2Ff/"), text);
    assert.deepEqual(parseStreamKey(text), key);
  });

  it("round-trips any dataset, table, node, prefix and sequence (property)", () => {
    const segment = fc.stringMatching(/^[A-Za-z0-9._-]{1,12}$/).filter((s) => s !== "." && s !== "..");
    fc.assert(
      fc.property(
        fc.record({
          prefix: fc.array(segment, { maxLength: 3 }).map((parts) => parts.join("/")),
          dataset: fc.string({ unit: "grapheme", minLength: 1, maxLength: 40 }),
          table: fc.string({ unit: "grapheme", minLength: 1, maxLength: 70 }),
          dt: fc
            .date({ min: new Date("1970-01-01"), max: new Date("9999-12-31"), noInvalidDate: true })
            .map((d) => d.toISOString().slice(0, 10)),
          hour: fc.integer({ min: 0, max: 23 }).map((h) => String(h).padStart(2, "0")),
          node: fc.string({ unit: "grapheme", minLength: 1, maxLength: 70 }),
          epoch: fc.stringMatching(/^[0-9a-f]{8,32}$/),
          seq: fc.integer({ min: 0, max: 999_999_999_999 }),
        }),
        (key) => {
          const text = formatStreamKey(key);
          assert.ok(isStreamKey(text));
          assert.deepEqual(parseStreamKey(text), { ...key });
          assert.deepEqual(parseAnyObjectKey(text), { kind: "stream", ...key });
        },
      ),
    );
  });

  it("tells stream keys from namespace keys, whatever the prefix", () => {
    for (const prefix of ["", "logs", "stream", "stream/stream", "archive"]) {
      const s = formatStreamKey({ ...stream, prefix });
      const n = formatObjectKey({ ...base, prefix });
      assert.equal(parseAnyObjectKey(s).kind, "stream", s);
      assert.equal(parseAnyObjectKey(n).kind, "namespace", n);
      assert.throws(() => parseObjectKey(s), /tier "stream"/);
      assert.throws(() => parseStreamKey(n), /is not stream/);
    }
  });

  it("rejects malformed stream keys with a reason", () => {
    const good = formatStreamKey(stream);
    assert.throws(
      () => parseStreamKey(good.replace("table=logarchive.", "table=logarchive")),
      /table=<dataset>/,
    );
    assert.throws(() => parseStreamKey(good.replace("table=logarchive.", "table=.")), /table=<dataset>/);
    assert.throws(() => parseStreamKey(good.replace("table=", "tbl=")), /table=<dataset>/);
    assert.throws(() => parseStreamKey(good.replace("table=logarchive", "table=%ZZ")), /malformed/);
    assert.throws(() => parseStreamKey(good.replace("hour=09", "hour=24")), /hour=HH/);
    assert.throws(() => parseStreamKey(`/${good}`), /prefix/);
    assert.throws(() => formatStreamKey({ ...stream, table: "" }), /table is empty/);
  });
});

describe("loss record keys", () => {
  const loss = {
    prefix: "logs",
    namespace: "pay ments",
    dt: "2026-11-21",
    hour: "09",
    node: "node_a",
    epoch: "9f2c1a7b",
    seq: 43,
  };

  it("formats the documented layout, beside the tiers, and parses it back", () => {
    const key = formatLossKey(loss);
    assert.equal(
      key,
      "logs/losses/namespace=pay%20ments/dt=2026-11-21/hour=09/node%5Fa_9f2c1a7b_000000000043.loss.json",
    );
    assert.deepEqual(parseLossKey(key), loss);
    assert.ok(key.startsWith(lossPrefix("/logs/")));
    assert.ok(key.startsWith(lossPartitionPrefix("logs", "pay ments", "2026-11-21", "09")));
  });

  it("is never an object key: not under a tier, not a .ndjson.gz, so no notification rule, Athena partition or DuckDB read matches it", () => {
    const key = formatLossKey(loss);
    assert.ok(!key.endsWith(OBJECT_SUFFIX));
    for (const tier of TIERS) assert.ok(!key.startsWith(tierPrefix("logs", tier)));
    assert.ok(!key.startsWith(streamPrefix("logs")));
    assert.throws(() => parseObjectKey(key), KeyLayoutError);
    assert.throws(() => parseLossKey(formatObjectKey({ ...base, tier: "archive" })), /segment/);
    assert.throws(() => parseLossKey(key.replace(".loss.json", ".json")), /\.loss\.json/);
  });
});

describe("hour index keys", () => {
  const index = { prefix: "logs/eu", dt: "2026-11-21", hour: "09", node: "node_a", epoch: "9f2c1a7b" };

  it("formats the documented layout, beside the tiers, and parses it back", () => {
    const key = formatIndexKey(index);
    assert.equal(key, "logs/eu/index/dt=2026-11-21/hour=09/node%5Fa_9f2c1a7b.json");
    assert.deepEqual(parseIndexKey(key), index);
    assert.ok(key.startsWith(indexPrefix("/logs/eu/")));
    assert.ok(key.startsWith(indexHourPrefix("logs/eu", "2026-11-21", "09")));
    assert.equal(
      formatIndexKey({ ...index, prefix: "" }),
      "index/dt=2026-11-21/hour=09/node%5Fa_9f2c1a7b.json",
    );
    assert.deepEqual(parseIndexKey(formatIndexKey({ ...index, prefix: "" })), { ...index, prefix: "" });
  });

  it("round-trips any node name and refuses what is not an index key", () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 40 }), (node) => {
        assert.deepEqual(parseIndexKey(formatIndexKey({ ...index, node })), { ...index, node });
      }),
    );
    const key = formatIndexKey(index);
    assert.ok(!key.endsWith(OBJECT_SUFFIX));
    for (const tier of TIERS) assert.ok(!key.startsWith(tierPrefix("logs/eu", tier)));
    assert.throws(() => parseObjectKey(key), KeyLayoutError);
    assert.throws(() => parseIndexKey(formatLossKey({ ...index, namespace: "ns", seq: 1 })), /segment/);
    assert.throws(() => parseIndexKey(key.replace("hour=09", "hour=24")), /hour=HH/);
    assert.throws(() => parseIndexKey(key.replace(".json", ".txt")), /\.json/);
    assert.throws(() => parseIndexKey(key.replace("_9f2c1a7b", "_9f2c1a7b_000000000001")), /<node>_<epoch>/);
    assert.throws(() => parseIndexKey(key.replace("9f2c1a7b", "xyz")), /epoch/);
    assert.throws(() => parseIndexKey(`/${key}`), /prefix/);
    assert.throws(() => formatIndexKey({ ...index, dt: "2026-13-01" }), /YYYY-MM-DD/);
    assert.throws(() => formatIndexKey({ ...index, node: "" }), /empty/);
  });
});
