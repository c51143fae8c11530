// The record, the key layout and the three engines' schemas agree: one generated file is
// loaded into DuckDB with the generated DDL and read back field by field.

import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { DuckDBInstance } from "@duckdb/node-api";
import { formatObjectKey, type ObjectKey } from "../keys/layout.ts";
import { checkRecordLine, encodeRecord } from "./codec.ts";
import {
  ATHENA_PARTITION_KEYS,
  athenaColumns,
  athenaDdl,
  bigQueryDdl,
  bigQuerySchema,
  duckDbColumnTypes,
  duckDbDdl,
  duckDbReadJsonColumns,
  duckDbSelectRecords,
} from "./ddl.ts";
import { FIELD_NAMES, type LogRecord, RECORD_FIELDS } from "./schema.ts";

const key: ObjectKey = {
  prefix: "logs",
  tier: "analytics",
  namespace: "payments",
  dt: "2026-11-21",
  hour: "11",
  node: "node-a",
  epoch: "0123abcd",
  seq: 7,
};
const batch = "node-a_0123abcd_000000000007";

const records: LogRecord[] = [
  {
    timestamp: "2026-11-21 11:00:00.000001",
    timestamp_nanos: 1_999,
    namespace: "payments",
    pod: "api-7c9f-x2x.canary",
    pod_uid: "8d3f0a6e-2b1c-4e2f-9a57-0c1d2e3f4a5b",
    container: "api",
    restart_count: 3,
    node: "node-a",
    stream: "stdout",
    message: '{"level":"info","msg":"charge ok","amount":12.5,"tags":["a","b"]}',
    batch_id: batch,
    seq: 0,
  },
  {
    timestamp: "2026-11-21 11:59:59.999999",
    timestamp_nanos: 999_999_999,
    namespace: "payments",
    pod: "api-7c9f-x2x",
    container: "api",
    container_id: "f".repeat(64),
    node: "node-a",
    stream: "stderr",
    message: 'tab\there, quote " backslash \\ newline-free, unicode ✓ \u0000 end',
    truncated: true,
    batch_id: batch,
    seq: 1,
  },
  {
    timestamp: "2026-11-21 11:30:00.500000",
    timestamp_nanos: 500_000_000,
    namespace: "payments",
    pod: "api-7c9f-x2x",
    container: "api",
    node: "node-a",
    stream: "stdout",
    message: "bad \ufffd byte",
    message_base64: Buffer.from([0x62, 0x61, 0x64, 0x20, 0xff, 0x20, 0x62, 0x79, 0x74, 0x65]).toString(
      "base64",
    ),
    parse_error: "no CRI stream field",
    batch_id: batch,
    seq: 2,
  },
];

describe("record contract across engines", () => {
  let dir: string;
  let file: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logarchive-contract-"));
    file = join(dir, formatObjectKey(key));
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, gzipSync(`${records.map(encodeRecord).join("\n")}\n`));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("encodes fields in schema order and omits unset nullable fields", () => {
    const line = encodeRecord(records[1]!);
    const keys = Object.keys(JSON.parse(line));
    assert.deepEqual(
      keys,
      FIELD_NAMES.filter((n) => keys.includes(n)),
    );
    assert.ok(!line.includes("pod_uid"));
    for (const r of records) assert.equal(checkRecordLine(encodeRecord(r)), null);
  });

  it("loads into DuckDB with the generated DDL, every value intact", async () => {
    const db = await DuckDBInstance.create(":memory:");
    const c = await db.connect();
    try {
      await c.run(duckDbDdl());
      await c.run(`INSERT INTO container_logs ${duckDbSelectRecords([file])}`);
      const described = await c.runAndReadAll("DESCRIBE container_logs");
      const types = Object.fromEntries(
        described.getRowObjectsJson().map((r) => [String(r.column_name), String(r.column_type)]),
      );
      assert.deepEqual(types, duckDbColumnTypes());
      const rows = (
        await c.runAndReadAll(
          `SELECT * REPLACE (strftime("timestamp", '%Y-%m-%d %H:%M:%S.%f') AS "timestamp") FROM container_logs ORDER BY seq`,
        )
      ).getRowObjectsJson();
      assert.equal(rows.length, records.length);
      rows.forEach((row, i) => {
        const expected = records[i]! as Record<string, unknown>;
        for (const field of RECORD_FIELDS) {
          const want = expected[field.name];
          const got = row[field.name];
          if (want === undefined) assert.equal(got, null, `${field.name} of row ${i}`);
          else if (field.type === "INT64") assert.equal(got, String(want), `${field.name} of row ${i}`);
          else assert.equal(got, want, `${field.name} of row ${i}`);
        }
      });
      // Hive partitioning over the key layout yields the same namespace as the records.
      const hive = await c.runAndReadAll(
        `SELECT DISTINCT namespace, dt, hour FROM read_json('${dir}/**/*.ndjson.gz', hive_partitioning=true, format='newline_delimited', compression='gzip', columns=${duckDbReadJsonColumns()})`,
      );
      assert.deepEqual(hive.getRowObjectsJson(), [{ namespace: "payments", dt: "2026-11-21", hour: "11" }]);
    } finally {
      c.closeSync();
      db.closeSync();
    }
  });

  it("gives BigQuery the same fields, in order, with modes from the record", () => {
    const schema = bigQuerySchema();
    assert.deepEqual(
      schema.map((f) => f.name),
      FIELD_NAMES,
    );
    for (const [i, f] of schema.entries()) {
      assert.equal(f.mode, RECORD_FIELDS[i]!.required ? "REQUIRED" : "NULLABLE");
      assert.ok(["STRING", "INTEGER", "BOOLEAN", "TIMESTAMP"].includes(f.type), f.type);
    }
    const ddl = bigQueryDdl("logarchive");
    for (const name of FIELD_NAMES) assert.match(ddl, new RegExp(`\`${name}\` `));
    assert.match(ddl, /PARTITION BY DATE\(`timestamp`\)/);
    assert.match(ddl, /CLUSTER BY namespace, pod, container;/);
  });

  it("gives Athena every field, namespace as a partition key read from the key", () => {
    const columns = athenaColumns().map((c) => c.name);
    assert.deepEqual(
      [...columns, ...ATHENA_PARTITION_KEYS].sort(),
      [...FIELD_NAMES, "tier", "dt", "hour"].sort(),
    );
    assert.ok(!columns.includes("namespace"));
    const ddl = athenaDdl({
      database: "logarchive",
      bucket: "bkt",
      prefix: "logs",
      projectionStart: "2026-01-01",
    });
    assert.match(ddl, /ROW FORMAT SERDE 'org\.apache\.hive\.hcatalog\.data\.JsonSerDe'/);
    assert.match(
      ddl,
      /'storage\.location\.template' = 's3:\/\/bkt\/logs\/\$\{tier\}\/namespace=\$\{namespace\}\/dt=\$\{dt\}\/hour=\$\{hour\}\/'/,
    );
    assert.match(ddl, /LOCATION 's3:\/\/bkt\/logs\/'/);
  });

  it("names the field when a line breaks the schema", () => {
    const good = JSON.parse(encodeRecord(records[0]!));
    const check = (change: Record<string, unknown>) =>
      checkRecordLine(JSON.stringify({ ...good, ...change }));
    assert.equal(check({ seq: "1" }), "field seq: expected an integer");
    assert.equal(
      check({ timestamp: "2026-11-21T11:00:00Z" }),
      "field timestamp: expected `YYYY-MM-DD HH:MM:SS.ffffff`",
    );
    assert.equal(check({ truncated: "yes" }), "field truncated: expected true or false");
    assert.equal(check({ extra: 1 }), "unknown field extra");
    assert.equal(check({ message: undefined }), "missing required field message");
    assert.match(checkRecordLine("{not json") ?? "", /^not JSON/);
    // JSON.stringify writes a lone surrogate as the escape `\ud800`, which parses as JSON,
    // but the warehouse load refuses it; a pair is a character like any other.
    assert.match(check({ message: "x\ud800y" }) ?? "", /^field message: holds an unpaired UTF-16 surrogate/);
    assert.match(check({ pod: "\udfff" }) ?? "", /^field pod: holds an unpaired/);
    assert.equal(check({ message: "\ud83d\ude00" }), null);
    assert.equal(checkRecordLine("[1]"), "not a JSON object");
  });
});
