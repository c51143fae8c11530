// The Athena catalog under pulumi.runtime.setMocks, with archive compaction on and off: the
// compacted table's location template is where lib's key layout puts a compacted part, its
// partitions have no tier, and the pack's view (the `_definitions` named query) reads each hour
// from exactly one table, split at the cutoff. The split itself is run in DuckDB over two tables
// holding every hour (and a manifest row), with Athena's date_format as a macro.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { DuckDBInstance } from "@duckdb/node-api";
import * as pulumi from "@pulumi/pulumi";
import { formatCompactedPartKey, formatCompactionManifestKey } from "../../lib/keys/layout.ts";
import { athenaColumns } from "../../lib/record/ddl.ts";
import {
  ATHENA_COMPACTED_TABLE,
  ATHENA_DEFINITIONS_QUERY,
  athenaArchiveSource,
  athenaDefinitions,
} from "../../queries/definitions.ts";
import { installMocks, type Loose, type Registered } from "../test_support/mocks.ts";

const registered: Registered[] = [];
const HOUR_MS = 3_600_000;

before(async () => {
  installMocks(registered);
  const { AthenaCatalog } = await import("./athena-catalog.ts");
  const common = {
    archiveBucketName: "archive-bucket",
    archivePrefix: "logs",
    projectionStart: "2026-01-01",
    bytesScannedCutoffPerQuery: 10 * 2 ** 30,
    resultsExpirationDays: 7,
    namedQueries: [
      { name: ATHENA_DEFINITIONS_QUERY, description: "Run once", query: athenaDefinitions() },
      { name: "error_rate", description: "Error rate", query: "SELECT 1" },
    ],
  };
  new AthenaCatalog("on", {
    ...common,
    databaseName: "on",
    compaction: { enabled: true, athenaCutoffHours: 8 },
  });
  new AthenaCatalog("off", { ...common, databaseName: "off", compaction: { enabled: false } });
  new AthenaCatalog("default-cutoff", { ...common, databaseName: "dflt", compaction: { enabled: true } });
  await pulumi.runtime.disconnect();
});

after(() => {
  registered.length = 0;
});

const tables = (prefix: string) =>
  registered.filter((r) => r.type === "aws:glue/catalogTable:CatalogTable" && r.name.startsWith(prefix));
const definitionsOf = (prefix: string): string =>
  registered.find(
    (r) =>
      r.type === "aws:athena/namedQuery:NamedQuery" &&
      r.name === `${prefix}-query-${ATHENA_DEFINITIONS_QUERY}`,
  )!.inputs.query;

describe("Athena catalog with archive compaction", () => {
  it("adds a table over the compacted prefix whose template, filled in, is where lib puts a part; no tier partition", () => {
    assert.deepEqual(
      tables("on").map((t) => t.inputs.name),
      ["container_logs", ATHENA_COMPACTED_TABLE],
    );
    const compacted = tables("on-compacted")[0]!.inputs;
    assert.equal(compacted.storageDescriptor.location, "s3://archive-bucket/logs/compacted/");
    assert.deepEqual(
      compacted.partitionKeys.map((k: Loose) => k.name),
      ["namespace", "dt", "hour"],
    );
    assert.equal(compacted.parameters["projection.enabled"], "true");
    assert.equal(compacted.parameters["projection.namespace.type"], "injected");
    assert.equal(compacted.parameters["projection.tier.type"], undefined);
    assert.equal(
      compacted.storageDescriptor.serDeInfo.serializationLibrary,
      "org.apache.hive.hcatalog.data.JsonSerDe",
    );
    const template: string = compacted.parameters["storage.location.template"];
    const hour = { prefix: "logs", namespace: "team-a", dt: "2026-12-07", hour: "09" };
    const location = template
      .replace("${namespace}", hour.namespace)
      .replace("${dt}", hour.dt)
      .replace("${hour}", hour.hour);
    for (const key of [
      formatCompactedPartKey({ ...hour, generation: 0, part: 3, plan: "0123456789abcdef" }),
      formatCompactionManifestKey({ ...hour, generation: 1 }),
    ]) {
      assert.ok(`s3://archive-bucket/${key}`.startsWith(location), `${key} is not under ${location}`);
      assert.ok(!key.slice(location.length - "s3://archive-bucket/".length).includes("/"));
    }
  });

  it("the pack's view reads the originals for newer hours and only .ndjson.gz objects of the compacted table for older ones", () => {
    const on = definitionsOf("on");
    assert.match(on, /CREATE OR REPLACE VIEW container_logs_v AS/);
    assert.match(
      on,
      /FROM container_logs\n\s+WHERE concat\(dt, ' ', hour\) > date_format\(\(current_timestamp AT TIME ZONE 'UTC'\) - INTERVAL '9' HOUR/,
    );
    assert.match(
      on,
      /FROM container_logs_compacted\n\s+WHERE concat\(dt, ' ', hour\) <= date_format\(.*INTERVAL '9' HOUR.* AND "\$path" LIKE '%\.ndjson\.gz'/,
    );
    // Cutoff 6 unless given.
    assert.match(definitionsOf("default-cutoff"), /INTERVAL '7' HOUR/);
    // The other named queries are the pack's as given.
    const others = registered.filter(
      (r) => r.type === "aws:athena/namedQuery:NamedQuery" && r.name === "on-query-error_rate",
    );
    assert.equal(others[0]!.inputs.query, "SELECT 1");
  });

  it("off: one table, and the view over the originals only, as the checked-in _definitions.sql", () => {
    assert.deepEqual(
      tables("off").map((t) => t.inputs.name),
      ["container_logs"],
    );
    assert.equal(definitionsOf("off"), athenaDefinitions());
    assert.doesNotMatch(definitionsOf("off"), /container_logs_compacted/);
  });
});

describe("the view's split at the cutoff", () => {
  it("reads every hour once: from the compacted table when it ended cutoff hours ago or more, else from the originals", async () => {
    const cutoffHours = 6;
    const columns = athenaColumns().map((c) => c.name);
    const source = athenaArchiveSource({
      originals: "container_logs",
      columns,
      compaction: { compacted: ATHENA_COMPACTED_TABLE, cutoffHours },
    });
    const db = await DuckDBInstance.create(":memory:");
    const c = await db.connect();
    try {
      const now = Date.now();
      const hours = Array.from(
        { length: 30 },
        (_, i) => new Date(Math.floor(now / HOUR_MS) * HOUR_MS - i * HOUR_MS),
      );
      const partitions = hours.map(
        (h) => `('${h.toISOString().slice(0, 10)}', '${h.toISOString().slice(11, 13)}')`,
      );
      const dataColumns = columns.map((n) => `NULL AS "${n}"`).join(", ");
      await c.run(`
        CREATE MACRO date_format(t, f) AS strftime(t, f);
        CREATE TABLE hours(dt VARCHAR, hour VARCHAR);
        INSERT INTO hours VALUES ${partitions.join(", ")};
        CREATE TABLE container_logs AS
          SELECT ${dataColumns}, 'archive' AS tier, 'payments' AS namespace, dt, hour,
            's3://b/logs/archive/namespace=payments/dt=' || dt || '/hour=' || hour || '/n_0a0b0c0d_000000000001.ndjson.gz' AS "$path"
          FROM hours;
        CREATE TABLE ${ATHENA_COMPACTED_TABLE} AS
          SELECT ${dataColumns}, 'payments' AS namespace, dt, hour,
            's3://b/logs/compacted/namespace=payments/dt=' || dt || '/hour=' || hour || suffix AS "$path"
          FROM hours, (VALUES ('/part-0000-0000-0123456789abcdef.ndjson.gz'), ('/manifest-0000.json')) AS s(suffix);
      `);
      const rows = (
        await c.runAndReadAll(
          `SELECT dt || ' ' || hour AS h, list(tier ORDER BY tier) AS tiers, list(archive_path) AS paths FROM ${source} t GROUP BY ALL ORDER BY h`,
        )
      ).getRowObjectsJson() as { h: string; tiers: string[]; paths: string[] }[];
      assert.equal(rows.length, hours.length, "every hour once");
      for (const row of rows) {
        const start = Date.parse(`${row.h.replace(" ", "T")}:00:00Z`);
        // Hours whose end is exactly at the cutoff boundary may fall either side as the clock
        // turns between the query and this check; every other hour has one right answer.
        const age = now - (start + HOUR_MS);
        if (Math.abs(age - cutoffHours * HOUR_MS) < HOUR_MS) {
          assert.equal(row.tiers.length, 1, row.h);
          continue;
        }
        const compacted = age >= cutoffHours * HOUR_MS;
        assert.deepEqual(row.tiers, [compacted ? "compacted" : "archive"], row.h);
        assert.ok(row.paths[0]!.endsWith(".ndjson.gz"), "a manifest is never a row");
      }
      assert.ok(rows.some((r) => r.tiers[0] === "compacted") && rows.some((r) => r.tiers[0] === "archive"));
    } finally {
      c.closeSync();
      db.closeSync();
    }
  });
});
