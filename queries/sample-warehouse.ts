// Builds a DuckDB warehouse from the sample workload (local/sample-workload.ts) without
// running the pipeline: the sample's log files go through `logarchive parse` (the shipper's
// decoder and encoder) and into the table of lib's DuckDB DDL. docs/queries.md's example
// outputs come from it:
//
//   node_modules/.bin/node queries/sample-warehouse.ts /tmp/sample.duckdb
//   npx logarchive query error_rate --db /tmp/sample.duckdb --param namespaces=payments,checkout ...
//
// The sample spans 2026-11-21 10:00-12:00 UTC, so the examples do not move with the clock.
// Batches are one per (namespace, hour) here, where the shipper cuts them by size and time.

import { spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { finished } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { DuckDBInstance } from "@duckdb/node-api";
import { DEFAULT_TABLE, duckDbDdl, duckDbReadJsonColumns } from "../lib/record/ddl.ts";
import { type SampleCounts, writeSampleBacklog } from "../local/sample-workload.ts";

export const SAMPLE_END = Date.parse("2026-11-21T12:00:00Z");
export const SAMPLE_SPAN_MS = 2 * 3_600_000;

/** Writes the warehouse; resolves with what the sample wrote, for checks against it. */
export async function buildSampleWarehouse(out: string, lines = 20_000, seed = 12): Promise<SampleCounts> {
  const dir = await mkdtemp(join(tmpdir(), "logarchive-sample-"));
  try {
    const counts = await writeSampleBacklog({
      root: join(dir, "pods"),
      lines,
      seed,
      now: SAMPLE_END,
      spanMs: SAMPLE_SPAN_MS,
    });
    const ndjson = join(dir, "records.ndjson");
    const cli = fileURLToPath(new URL("../cli/logarchive.ts", import.meta.url));
    const child = spawn(process.execPath, [cli, "parse", "--node", "node-a", ...counts.files], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const sink = createWriteStream(ndjson);
    child.stdout.pipe(sink);
    const [code] = await Promise.all([
      new Promise<number | null>((r) => child.on("exit", r)),
      finished(sink),
    ]);
    // 1: a damaged .gz was salvaged; the sample has none, but its records would still be good.
    if (code !== 0 && code !== 1) throw new Error(`logarchive parse exited ${code}`);
    const instance = await DuckDBInstance.create(resolve(out));
    const connection = await instance.connect();
    await connection.run(duckDbDdl());
    const columns = duckDbReadJsonColumns();
    await connection.run(
      `INSERT INTO ${DEFAULT_TABLE} BY NAME
       SELECT * REPLACE (
         'node-a_0000000a_' || lpad(CAST(dense_rank() OVER (ORDER BY namespace, date_trunc('hour', "timestamp")) AS VARCHAR), 12, '0') AS batch_id,
         (row_number() OVER (PARTITION BY namespace, date_trunc('hour', "timestamp") ORDER BY "timestamp", timestamp_nanos) - 1) AS seq)
       FROM read_json('${ndjson.replaceAll("'", "''")}', format='newline_delimited', columns=${columns})`,
    );
    connection.closeSync();
    instance.closeSync();
    return counts;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const out = process.argv[2];
  if (out === undefined) {
    process.stderr.write("usage: node_modules/.bin/node queries/sample-warehouse.ts OUT.duckdb [LINES]\n");
    process.exit(2);
  }
  await buildSampleWarehouse(out, process.argv[3] === undefined ? undefined : Number(process.argv[3]));
  process.stdout.write(`wrote ${out}\n`);
}
