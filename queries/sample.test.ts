// The DuckDB pack over the sample workload (local/sample-workload.ts) as the shipper's parser
// reads it: the counts agree with what the generator says it wrote, and every JSON line of
// the sample, whatever its level convention, has a severity.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import type { SampleCounts } from "../local/sample-workload.ts";
import { installDuckDbDefinitions, runDuckDbQuery } from "./duckdb-runner.ts";
import { loadPack, resolveParams } from "./pack.ts";
import { buildSampleWarehouse } from "./sample-warehouse.ts";

let dir: string;
let counts: SampleCounts;
let instance: DuckDBInstance;
let connection: DuckDBConnection;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "logarchive-sample-test-"));
  counts = await buildSampleWarehouse(join(dir, "sample.duckdb"), 3_000, 7);
  instance = await DuckDBInstance.create(join(dir, "sample.duckdb"), { access_mode: "READ_ONLY" });
  connection = await instance.connect();
  await installDuckDbDefinitions(connection);
});
after(async () => {
  connection?.closeSync();
  instance?.closeSync();
  await rm(dir, { recursive: true, force: true });
});

const RANGE = { from: "2026-11-21", to: "2026-11-22" };

describe("the DuckDB pack on the sample workload", () => {
  it("log_volume counts the lines the sample wrote, per namespace", async () => {
    const query = (await loadPack()).get("duckdb")!.get("log_volume")!;
    const namespaces = Object.keys(counts.linesByNamespace);
    const { rows } = await runDuckDbQuery(
      connection,
      query,
      resolveParams(query, { ...RANGE, namespaces: namespaces.join(",") }),
    );
    assert.deepEqual(
      Object.fromEntries(rows.map((r) => [r.namespace, Number(r.lines)])),
      counts.linesByNamespace,
    );
  });

  it("every JSON line has a severity, and error_rate's errors are the is_error lines", async () => {
    const reader = await connection.runAndReadAll(
      `SELECT count(*) FILTER (WHERE json_valid(message) AND severity(message) IS NULL)::INTEGER AS json_without,
              count(*) FILTER (WHERE json_valid(message))::INTEGER AS json_lines,
              count(*) FILTER (WHERE NOT json_valid(message))::INTEGER AS text_lines,
              count(*) FILTER (WHERE is_error(message))::INTEGER AS errors
       FROM container_logs`,
    );
    const totals = reader.getRowObjectsJson()[0] as Record<string, number>;
    assert.equal(totals.json_without, 0);
    assert.ok(totals.json_lines! > 500 && totals.text_lines! > 500, JSON.stringify(totals));
    const query = (await loadPack()).get("duckdb")!.get("error_rate")!;
    const { rows } = await runDuckDbQuery(
      connection,
      query,
      resolveParams(query, { ...RANGE, namespaces: Object.keys(counts.linesByNamespace).join(",") }),
    );
    assert.equal(
      rows.reduce((n, r) => n + Number(r.errors), 0),
      totals.errors,
    );
    assert.ok(totals.errors! > 0);
  });
});
