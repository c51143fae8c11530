// The DuckDB adapter loading real gzip NDJSON objects from the local GCS server, with BigQuery's load-job
// semantics: once per job ID, all sources or none, the failing source named, strict about the schema.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { DuckDBInstance } from "@duckdb/node-api";
import { type Bucket, Storage } from "@google-cloud/storage";
import { encodeRecord } from "../../lib/record/codec.ts";
import type { LogRecord } from "../../lib/record/schema.ts";
import { type LocalGcs, startLocalGcs } from "../../local/gcs/server.ts";
import { DuckDbWarehouse, JOBS_TABLE } from "./duckdb.ts";
import type { LoadJobSpec, TableRef } from "./port.ts";

const BUCKET = "landing";
const DEFAULT_DATASET = "logarchive";
const LOGS: TableRef = { dataset: DEFAULT_DATASET, table: "container_logs" };

function record(batch: string, seq: number, extra: Partial<LogRecord> = {}): LogRecord {
  return {
    timestamp: `2026-11-21 09:15:${String(seq % 60).padStart(2, "0")}.${String(seq).padStart(6, "0")}`,
    timestamp_nanos: seq * 1000 + 7,
    namespace: "payments",
    pod: "api-7c9f-x2x",
    container: "api",
    node: "node-a",
    stream: seq % 2 === 0 ? "stdout" : "stderr",
    message: `line ${seq} of ${batch}`,
    batch_id: batch,
    seq,
    ...extra,
  };
}

function ndjson(lines: readonly string[]): string {
  return `${lines.join("\n")}\n`;
}

function batchLines(batch: string, count: number): string[] {
  return Array.from({ length: count }, (_, seq) => encodeRecord(record(batch, seq)));
}

/** A record line changed after encoding, to break the schema in one way. */
function brokenLine(batch: string, seq: number, change: (fields: Record<string, unknown>) => void): string {
  const fields = JSON.parse(encodeRecord(record(batch, seq))) as Record<string, unknown>;
  change(fields);
  return JSON.stringify(fields);
}

let jobCounter = 0;
function job(sourceUris: string[], destination: TableRef = LOGS): LoadJobSpec {
  jobCounter += 1;
  return {
    jobId: `ld_payments_${String(jobCounter).padStart(6, "0")}_a1`,
    destination,
    sourceUris,
    labels: { logarchive: "loader", namespace: "payments" },
  };
}

/**
 * An HTTP proxy in front of the local GCS server that holds object downloads (alt=media) until released,
 * so a test can look at a job while it is loading.
 */
async function startGatedProxy(
  target: string,
): Promise<{ url: string; release(): void; stop(): Promise<void> }> {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const server: Server = createServer((req, res) => {
    const forward = () => {
      const upstream = httpRequest(
        `${target}${req.url}`,
        { method: req.method, headers: req.headers },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      upstream.on("error", () => res.destroy());
      req.pipe(upstream);
    };
    if (req.url?.includes("alt=media")) void gate.then(forward);
    else forward();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    release,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe("DuckDbWarehouse", () => {
  let dir: string;
  let gcs: LocalGcs;
  let storage: Storage;
  let bucket: Bucket;
  let instance: DuckDBInstance;
  let warehouse: DuckDbWarehouse;

  /** Uploads an object and returns its gs:// URI. */
  async function put(name: string, body: string | Buffer): Promise<string> {
    await bucket.file(name).save(body, { resumable: false });
    return `gs://${BUCKET}/${name}`;
  }
  const putBatch = (batch: string, count: number) =>
    put(`logs/analytics/namespace=payments/${batch}.ndjson.gz`, gzipSync(ndjson(batchLines(batch, count))));

  async function query(sql: string): Promise<Record<string, unknown>[]> {
    const connection = await instance.connect();
    try {
      return (await connection.runAndReadAll(sql)).getRowObjectsJson();
    } finally {
      connection.closeSync();
    }
  }

  const counts = (batchIds: string[], table: TableRef = LOGS) => warehouse.rowCountsByBatch(table, batchIds);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logarchive-duckdb-warehouse-"));
    gcs = await startLocalGcs({ dataDir: join(dir, "gcs"), port: 0, host: "127.0.0.1" });
    storage = new Storage({ apiEndpoint: gcs.url, projectId: "local" });
    [bucket] = await storage.createBucket(BUCKET);
    instance = await DuckDBInstance.create(":memory:");
    warehouse = await DuckDbWarehouse.open({
      database: instance,
      storage,
      defaultDataset: DEFAULT_DATASET,
      tempDir: dir,
    });
    await warehouse.ensureTable(LOGS);
  });

  after(async () => {
    await warehouse.close();
    instance.closeSync();
    await gcs.stop();
    await rm(dir, { recursive: true, force: true });
  });

  describe("loading", () => {
    it("loads every source of a job into the default dataset's table, `container_logs` in main", async () => {
      const a = await putBatch("node-a_00000001_000000000001", 3);
      const b = await putBatch("node-a_00000001_000000000002", 2);
      const spec = job([a, b]);
      const { status, existed } = await warehouse.insertLoadJob(spec);

      assert.equal(existed, false);
      assert.deepEqual(status, {
        jobId: spec.jobId,
        state: "DONE",
        errors: [],
        outputRows: 5,
        sourceUris: [a, b],
      });
      assert.deepEqual(await warehouse.getLoadJob(spec.jobId), status);
      assert.deepEqual(
        await counts(["node-a_00000001_000000000001", "node-a_00000001_000000000002", "never-loaded"]),
        new Map([
          ["node-a_00000001_000000000001", 3],
          ["node-a_00000001_000000000002", 2],
        ]),
      );
      // Unqualified, as anyone would type it in the DuckDB CLI.
      const rows = await query(
        `SELECT * REPLACE (strftime("timestamp", '%Y-%m-%d %H:%M:%S.%f') AS "timestamp") FROM container_logs
         WHERE batch_id = 'node-a_00000001_000000000001' ORDER BY seq`,
      );
      assert.deepEqual(rows[1], {
        timestamp: "2026-11-21 09:15:01.000001",
        timestamp_nanos: "1007",
        namespace: "payments",
        pod: "api-7c9f-x2x",
        pod_uid: null,
        container: "api",
        container_id: null,
        restart_count: null,
        node: "node-a",
        stream: "stderr",
        message: "line 1 of node-a_00000001_000000000001",
        message_base64: null,
        truncated: null,
        parse_error: null,
        batch_id: "node-a_00000001_000000000001",
        seq: "1",
      });
      const [jobRow] = await query(
        `SELECT state, destination_dataset, destination_table, source_uris, map_extract(labels, 'namespace') AS ns,
                output_rows, error_reason, ended_at >= created_at AS ordered
         FROM main.${JOBS_TABLE} WHERE job_id = '${spec.jobId}'`,
      );
      assert.deepEqual(jobRow, {
        state: "DONE",
        destination_dataset: DEFAULT_DATASET,
        destination_table: "container_logs",
        source_uris: [a, b],
        ns: ["payments"],
        output_rows: "5",
        error_reason: null,
        ordered: true,
      });
    });

    it("loads plain (not gzipped) NDJSON too, as BigQuery does", async () => {
      const batch = "node-a_00000001_000000000010";
      const uri = await put(`plain/${batch}.ndjson`, ndjson(batchLines(batch, 4)));
      const { status } = await warehouse.insertLoadJob(job([uri]));
      assert.equal(status.outputRows, 4);
      assert.deepEqual(await counts([batch]), new Map([[batch, 4]]));
    });

    it("keeps every field's value, optional ones included", async () => {
      const batch = "node-a_00000001_000000000011";
      const full = record(batch, 0, {
        pod_uid: "8d3f0a6e-2b1c-4e2f-9a57-0c1d2e3f4a5b",
        container_id: "f".repeat(64),
        restart_count: 3,
        message: 'tab\there, quote " unicode ✓ \ufffd',
        message_base64: Buffer.from([0x61, 0xff]).toString("base64"),
        truncated: true,
        parse_error: "no CRI stream field",
      });
      const uri = await put(`full/${batch}.ndjson.gz`, gzipSync(ndjson([encodeRecord(full)])));
      await warehouse.insertLoadJob(job([uri]));
      const [row] = await query(
        `SELECT * REPLACE (strftime("timestamp", '%Y-%m-%d %H:%M:%S.%f') AS "timestamp", restart_count::INTEGER AS restart_count,
                timestamp_nanos::INTEGER AS timestamp_nanos, seq::INTEGER AS seq)
         FROM container_logs WHERE batch_id = '${batch}'`,
      );
      assert.deepEqual(row, full);
    });
  });

  describe("one load per job ID", () => {
    it("answers a second insert of the same ID with the first job and loads nothing", async () => {
      const batch = "node-a_00000002_000000000001";
      const spec = job([await putBatch(batch, 3)]);
      const first = await warehouse.insertLoadJob(spec);
      const second = await warehouse.insertLoadJob(spec);
      assert.equal(first.existed, false);
      assert.equal(second.existed, true);
      assert.deepEqual(second.status, first.status);
      assert.deepEqual(await counts([batch]), new Map([[batch, 3]]));
    });

    it("loads once when many callers insert the same ID at the same time", async () => {
      const batch = "node-a_00000002_000000000002";
      const spec = job([await putBatch(batch, 5)]);
      const results = await Promise.all(Array.from({ length: 25 }, () => warehouse.insertLoadJob(spec)));
      assert.equal(results.filter((r) => !r.existed).length, 1);
      for (const r of results) assert.equal(r.status.outputRows, 5);
      assert.deepEqual(await counts([batch]), new Map([[batch, 5]]));
    });

    it("loads once when two adapters on the same DuckDB instance race", async () => {
      const other = await DuckDbWarehouse.open({
        database: instance,
        storage,
        defaultDataset: DEFAULT_DATASET,
      });
      try {
        const batch = "node-a_00000002_000000000003";
        const spec = job([await putBatch(batch, 2)]);
        const results = await Promise.all(
          Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? warehouse : other).insertLoadJob(spec)),
        );
        assert.equal(results.filter((r) => !r.existed).length, 1);
        assert.deepEqual(await counts([batch]), new Map([[batch, 2]]));
      } finally {
        await other.close();
      }
    });

    it("reports a job RUNNING while it loads, without waiting for it", async () => {
      const proxy = await startGatedProxy(gcs.url);
      const gated = await DuckDbWarehouse.open({
        database: instance,
        storage: new Storage({ apiEndpoint: proxy.url, projectId: "local" }),
        defaultDataset: DEFAULT_DATASET,
      });
      try {
        const batch = "node-a_00000002_000000000004";
        const spec = job([await putBatch(batch, 2)]);
        const loading = gated.insertLoadJob(spec);
        let seen = await gated.getLoadJob(spec.jobId);
        for (let i = 0; i < 200 && seen === null; i++) {
          await new Promise((resolve) => setTimeout(resolve, 5));
          seen = await gated.getLoadJob(spec.jobId);
        }
        assert.equal(seen?.state, "RUNNING");
        assert.equal(seen?.outputRows, undefined);
        assert.deepEqual(await counts([batch]), new Map(), "nothing visible before the job commits");
        proxy.release();
        assert.equal((await loading).status.state, "DONE");
        assert.equal((await gated.getLoadJob(spec.jobId))?.outputRows, 2);
      } finally {
        proxy.release();
        await gated.close();
        await proxy.stop();
      }
    });
  });

  describe("a failing source fails the whole job and is named", () => {
    const cases: { name: string; body: (batch: string) => Buffer; detail: RegExp }[] = [
      {
        name: "a corrupt gzip stream",
        body: (batch) => {
          const whole = gzipSync(ndjson(batchLines(batch, 50)));
          return whole.subarray(0, whole.length - 40);
        },
        detail: /not a valid gzip stream/,
      },
      {
        name: "a body that is not JSON",
        body: () => gzipSync("<html><body>503 Service Unavailable</body></html>\n"),
        detail: /line 1: not JSON/,
      },
      {
        name: "a line with an unknown field",
        body: (batch) =>
          gzipSync(
            ndjson([
              ...batchLines(batch, 2),
              brokenLine(batch, 2, (f) => Object.assign(f, { level: "info" })),
            ]),
          ),
        detail: /line 3: unknown field level/,
      },
      {
        name: "a line missing a required field",
        body: (batch) =>
          gzipSync(ndjson([brokenLine(batch, 0, (f) => delete f.message), ...batchLines(batch, 1)])),
        detail: /line 1: missing required field message/,
      },
      {
        name: "a fraction where an integer goes (read_json would round it)",
        body: (batch) => gzipSync(ndjson([brokenLine(batch, 0, (f) => Object.assign(f, { seq: 1.5 }))])),
        detail: /line 1: field seq: expected an integer/,
      },
      {
        name: "an impossible timestamp (caught by DuckDB, after rows of earlier sources went in)",
        body: (batch) =>
          gzipSync(
            ndjson([
              brokenLine(batch, 0, (f) => Object.assign(f, { timestamp: "2026-02-30 10:00:00.000000" })),
            ]),
          ),
        detail: /2026-02-30/,
      },
    ];

    cases.forEach(({ name, body, detail }, index) => {
      it(`${name}: nothing loads, the URI is named, the ID stays taken, the rest loads under a new ID`, async () => {
        const prefix = `node-f_${String(index).padStart(8, "0")}`;
        const [goodBefore, badBatch, goodAfter] = [1, 2, 3].map((n) => `${prefix}_00000000000${n}`) as [
          string,
          string,
          string,
        ];
        const first = await putBatch(goodBefore, 4);
        const bad = await put(`logs/analytics/namespace=payments/${badBatch}.ndjson.gz`, body(badBatch));
        const last = await putBatch(goodAfter, 3);

        const failing = job([first, bad, last]);
        const { status, existed } = await warehouse.insertLoadJob(failing);
        assert.equal(existed, false);
        assert.equal(status.state, "DONE");
        assert.equal(status.errorResult?.reason, "invalid");
        assert.equal(status.errorResult?.location, bad);
        assert.match(status.errorResult?.message ?? "", detail);
        assert.ok(status.errorResult?.message.includes(bad), "the message names the file too");
        assert.doesNotMatch(
          status.errorResult?.message ?? "",
          /ignore_errors|\n/,
          "one line, no read_json advice",
        );
        assert.deepEqual(status.errors, [status.errorResult]);
        assert.equal(status.outputRows, undefined);
        assert.deepEqual(
          await counts([goodBefore, badBatch, goodAfter]),
          new Map(),
          "nothing of the job is visible",
        );
        assert.deepEqual(await warehouse.getLoadJob(failing.jobId), status);

        const again = await warehouse.insertLoadJob(failing);
        assert.equal(again.existed, true, "a failed job's ID stays taken");
        assert.deepEqual(again.status, status);

        const retry = { ...job([first, last]), jobId: `${failing.jobId.replace(/_a1$/, "")}_a2` };
        const retried = await warehouse.insertLoadJob(retry);
        assert.equal(retried.status.errorResult, undefined);
        assert.equal(retried.status.outputRows, 7);
        assert.deepEqual(
          await counts([goodBefore, badBatch, goodAfter]),
          new Map([
            [goodBefore, 4],
            [goodAfter, 3],
          ]),
        );
      });
    });

    it("a missing object: notFound with its URI, like BigQuery's 'Not found: URI'", async () => {
      const batch = "node-g_00000000_000000000001";
      const present = await putBatch(batch, 2);
      const missing = `gs://${BUCKET}/logs/analytics/namespace=payments/node-g_00000000_000000000002.ndjson.gz`;
      const { status } = await warehouse.insertLoadJob(job([present, missing]));
      assert.deepEqual(status.errorResult, {
        reason: "notFound",
        message: `Not found: URI ${missing}`,
        location: missing,
      });
      assert.deepEqual(await counts([batch]), new Map());
    });

    it("a missing destination table: notFound, nothing created, the ID taken", async () => {
      const batch = "node-g_00000000_000000000003";
      const spec = job([await putBatch(batch, 1)], { dataset: DEFAULT_DATASET, table: "not_created" });
      const { status } = await warehouse.insertLoadJob(spec);
      assert.equal(status.errorResult?.reason, "notFound");
      assert.equal(status.errorResult?.location, undefined);
      assert.match(status.errorResult?.message ?? "", /Table logarchive\.not_created .*ensureTable/);
      assert.deepEqual(
        await query("SELECT table_name FROM duckdb_tables() WHERE table_name = 'not_created'"),
        [],
      );
      assert.equal((await warehouse.insertLoadJob(spec)).existed, true);
    });

    it("GCS unreachable: throws, records nothing, and the same ID can run later", async () => {
      const unreachable = await DuckDbWarehouse.open({
        database: instance,
        storage: new Storage({
          apiEndpoint: "http://127.0.0.1:9",
          projectId: "local",
          retryOptions: { autoRetry: false },
        }),
        defaultDataset: DEFAULT_DATASET,
      });
      const batch = "node-g_00000000_000000000004";
      const spec = job([await putBatch(batch, 2)]);
      try {
        await assert.rejects(unreachable.insertLoadJob(spec), /ECONNREFUSED|connect/);
        assert.equal(await warehouse.getLoadJob(spec.jobId), null);
      } finally {
        await unreachable.close();
      }
      assert.equal((await warehouse.insertLoadJob(spec)).status.outputRows, 2);
    });

    it("refuses what BigQuery refuses at insert (400), recording nothing", async () => {
      const uri = await putBatch("node-g_00000000_000000000005", 1);
      await assert.rejects(warehouse.insertLoadJob({ ...job([uri]), jobId: "has spaces" }), /invalid job ID/);
      await assert.rejects(warehouse.insertLoadJob(job([])), /at least one source URI/);
      await assert.rejects(
        warehouse.insertLoadJob({ ...job([uri]), labels: { Team: "payments" } }),
        /invalid label Team=payments/,
      );
      assert.equal(await warehouse.getLoadJob("has spaces"), null);
    });
  });

  describe("rowCountsByBatchBetween", () => {
    const range = { from: new Date("2026-11-21T09:00:00Z"), to: new Date("2026-11-21T10:00:00Z") };

    it("counts only the rows with from <= timestamp < to, the column's UTC wall-clock times", async () => {
      const batch = "node-t_00000001_000000000001";
      const other = "node-t_00000001_000000000002";
      const at = (seq: number, timestamp: string, id = batch) => encodeRecord(record(id, seq, { timestamp }));
      const uri = await put(
        `between/${batch}.ndjson.gz`,
        gzipSync(
          ndjson([
            at(0, "2026-11-21 08:59:59.999999"),
            at(1, "2026-11-21 09:00:00.000000"),
            at(2, "2026-11-21 09:30:00.000000"),
            at(3, "2026-11-21 09:59:59.999999"),
            at(4, "2026-11-21 10:00:00.000000"),
            at(5, "2026-11-22 09:30:00.000000"),
            at(0, "2026-11-21 09:15:00.000000", other),
            at(1, "2026-11-21 11:15:00.000000", other),
          ]),
        ),
      );
      const { status } = await warehouse.insertLoadJob(job([uri]));
      assert.equal(status.outputRows, 8);
      assert.deepEqual(
        await warehouse.rowCountsByBatchBetween(LOGS, [batch, other, "node-t_00000001_000000000009"], range),
        new Map([
          [batch, 3],
          [other, 1],
        ]),
      );
      assert.deepEqual(
        await counts([batch, other]),
        new Map([
          [batch, 6],
          [other, 2],
        ]),
      );
      // A range that holds only the rows of the next day, and one that holds none.
      const nextDay = { from: new Date("2026-11-22T00:00:00Z"), to: new Date("2026-11-23T00:00:00Z") };
      assert.deepEqual(
        await warehouse.rowCountsByBatchBetween(LOGS, [batch, other], nextDay),
        new Map([[batch, 1]]),
      );
      const empty = { from: range.to, to: range.to };
      assert.deepEqual(await warehouse.rowCountsByBatchBetween(LOGS, [batch], empty), new Map());
    });

    it("answers an empty map for no batch ids and for a table that does not exist", async () => {
      assert.deepEqual(await warehouse.rowCountsByBatchBetween(LOGS, [], range), new Map());
      assert.deepEqual(
        await warehouse.rowCountsByBatchBetween({ dataset: DEFAULT_DATASET, table: "nosuch" }, ["x"], range),
        new Map(),
      );
    });

    it("has no dry run: DuckDB bills nothing, so reconcile prints no byte estimate", () => {
      assert.equal("dryRunRowCountsByBatchBetween" in warehouse, false);
    });
  });

  describe("datasets and tables", () => {
    const AUDIT: TableRef = { dataset: "audit", table: "container_logs" };

    it("maps another dataset to a DuckDB schema of its name, separate from main", async () => {
      await warehouse.ensureTable(AUDIT);
      await warehouse.ensureTable(AUDIT); // idempotent
      const batch = "node-h_00000000_000000000001";
      const { status } = await warehouse.insertLoadJob(job([await putBatch(batch, 3)], AUDIT));
      assert.equal(status.outputRows, 3);
      assert.deepEqual(await counts([batch], AUDIT), new Map([[batch, 3]]));
      assert.deepEqual(await counts([batch], LOGS), new Map());
      assert.deepEqual(
        await query(`SELECT count(*) AS n FROM audit.container_logs WHERE batch_id = '${batch}'`),
        [{ n: "3" }],
      );
    });

    it("creates tables from the contract's DDL, NOT NULL on required fields", async () => {
      const columns = await query(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_schema = 'audit' AND table_name = 'container_logs' AND column_name IN ('message', 'pod_uid', 'seq') ORDER BY column_name",
      );
      assert.deepEqual(columns, [
        { column_name: "message", data_type: "VARCHAR", is_nullable: "NO" },
        { column_name: "pod_uid", data_type: "VARCHAR", is_nullable: "YES" },
        { column_name: "seq", data_type: "BIGINT", is_nullable: "NO" },
      ]);
    });

    it("a table altered first, with one extra column, still loads (upgrade order: table, loader, shipper)", async () => {
      const altered: TableRef = { dataset: "altered", table: "container_logs" };
      await warehouse.ensureTable(altered);
      await query("ALTER TABLE altered.container_logs ADD COLUMN trace_id VARCHAR");
      await warehouse.ensureTable(altered); // an existing table is left as it is
      const batch = "node-i_00000000_000000000001";
      const { status } = await warehouse.insertLoadJob(job([await putBatch(batch, 3)], altered));
      assert.equal(status.errorResult, undefined, status.errorResult?.message);
      assert.equal(status.outputRows, 3);
      assert.deepEqual(
        await query(
          `SELECT count(*) AS n, count(trace_id) AS traced, min(seq) AS first FROM altered.container_logs WHERE batch_id = '${batch}'`,
        ),
        [{ n: "3", traced: "0", first: "0" }],
      );
    });

    it("refuses a dataset called main unless it is the default", async () => {
      await assert.rejects(
        warehouse.ensureTable({ dataset: "main", table: "container_logs" }),
        /choose another/,
      );
    });
  });

  describe("lifecycle", () => {
    it("close() leaves an instance it was given open", async () => {
      const borrowed = await DuckDbWarehouse.open({
        database: instance,
        storage,
        defaultDataset: DEFAULT_DATASET,
      });
      await borrowed.close();
      assert.deepEqual(await query("SELECT 1 AS one"), [{ one: 1 }]);
    });

    it("opens a database file by path, keeps jobs across reopening, and closes what it opened", async () => {
      const path = join(dir, "warehouse.duckdb");
      const opened = await DuckDbWarehouse.open({ database: path, storage, defaultDataset: DEFAULT_DATASET });
      await opened.ensureTable(LOGS);
      const batch = "node-i_00000000_000000000001";
      const spec = job([await putBatch(batch, 2)]);
      await opened.insertLoadJob(spec);
      await opened.close();

      // The file is no longer held open: a new instance (which takes DuckDB's write lock) can open it.
      const reopened = await DuckDbWarehouse.open({
        database: path,
        storage,
        defaultDataset: DEFAULT_DATASET,
      });
      try {
        assert.equal((await reopened.getLoadJob(spec.jobId))?.outputRows, 2);
        assert.equal((await reopened.insertLoadJob(spec)).existed, true);
        assert.deepEqual(await reopened.rowCountsByBatch(LOGS, [batch]), new Map([[batch, 2]]));
      } finally {
        await reopened.close();
      }
    });
  });
});
