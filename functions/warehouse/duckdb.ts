// The DuckDB adapter of the warehouse port: the embedded default for local runs, with BigQuery's load-job
// semantics so the loader behaves the same on both:
//   - job IDs are claimed in a jobs table (main._logarchive_load_jobs); a second insert of an ID finds the
//     first job and loads nothing, and a failed job's ID stays taken;
//   - a job is one transaction: every source loads or none does, and a failure names the source that
//     caused it (errorResult.location), the way BigQuery's errors[].location does;
//   - loads are strict like a load job with maxBadRecords 0 and ignoreUnknownValues false. DuckDB's
//     read_json alone is not: with `columns` it silently drops unknown keys and rounds 1.5 into a BIGINT,
//     so every line is first checked against the record contract (checkRecordLine).
// Jobs run inside insertLoadJob, one at a time per DuckDB instance (DuckDB has one writer), and are DONE
// when it returns.
//
// Datasets map to DuckDB schemas: the policy's default dataset is `main`, so `SELECT * FROM container_logs`
// works in the DuckDB CLI; any other dataset is a schema of the same name.

import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, open, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGunzip, createGzip } from "node:zlib";
import {
  type DuckDBConnection,
  DuckDBInstance,
  LIST,
  listValue,
  MAP,
  mapValue,
  VARCHAR,
} from "@duckdb/node-api";
import type { Storage } from "@google-cloud/storage";
import { checkRecordLine } from "../../lib/record/codec.ts";
import { duckDbDdl, duckDbSelectRecords } from "../../lib/record/ddl.ts";
import type {
  LoadJobError,
  LoadJobSpec,
  LoadJobStatus,
  TableRef,
  TimestampRange,
  WarehousePort,
} from "./port.ts";

export interface DuckDbWarehouseOptions {
  /**
   * An open instance, which close() leaves open; or a database path (":memory:" included), which is opened
   * here and closed by close().
   */
  database: DuckDBInstance | string;
  /** Reads the gs:// source URIs: locally, a client of the local GCS server. */
  storage: Storage;
  /** The policy's default dataset; its tables live in DuckDB's `main` schema. */
  defaultDataset: string;
  /** Where sources are staged while a job runs. Default: the OS temp directory. */
  tempDir?: string;
}

export const JOBS_TABLE = "_logarchive_load_jobs";

const JOBS_DDL = `CREATE TABLE IF NOT EXISTS main.${JOBS_TABLE} (
  job_id VARCHAR PRIMARY KEY,
  destination_dataset VARCHAR NOT NULL,
  destination_table VARCHAR NOT NULL,
  state VARCHAR NOT NULL,
  source_uris VARCHAR[] NOT NULL,
  labels MAP(VARCHAR, VARCHAR) NOT NULL,
  error_reason VARCHAR,
  error_message VARCHAR,
  error_location VARCHAR,
  output_rows BIGINT,
  created_at TIMESTAMPTZ NOT NULL,
  ended_at TIMESTAMPTZ
)`;

// What BigQuery refuses at jobs.insert (400), checked here so local runs fail the same way.
const JOB_ID = /^[A-Za-z0-9_-]{1,1024}$/;
const LABEL = /^[a-z0-9_-]{0,63}$/;
const DATASET_ID = /^[A-Za-z0-9_]{1,1024}$/;
const TABLE_ID = /^[A-Za-z0-9_-]{1,1024}$/;

// ---------------------------------------------------------------- one writer per instance

/** Runs tasks one after another, in call order. */
class Serializer {
  #tail: Promise<unknown> = Promise.resolve();
  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(task);
    this.#tail = result.catch(() => undefined);
    return result;
  }
}

interface InstanceState {
  writes: Serializer;
  /** Jobs loading right now, which jobs.get reports RUNNING though their claim is not committed yet. */
  running: Map<string, LoadJobStatus>;
}

// Keyed by instance so that adapters sharing one instance also share its single writer.
const instances = new WeakMap<DuckDBInstance, InstanceState>();

function stateOf(instance: DuckDBInstance): InstanceState {
  let state = instances.get(instance);
  if (state === undefined) {
    state = { writes: new Serializer(), running: new Map() };
    instances.set(instance, state);
  }
  return state;
}

/** Why a job failed, BigQuery style. Thrown inside a job to roll it back and record it as failed. */
class JobFailure extends Error {
  readonly reason: string;
  readonly location: string | undefined;
  constructor(reason: string, message: string, location?: string) {
    super(message);
    this.reason = reason;
    this.location = location;
  }
}

// ---------------------------------------------------------------- the adapter

export class DuckDbWarehouse implements WarehousePort {
  readonly kind = "duckdb" as const;
  readonly #instance: DuckDBInstance;
  readonly #ownsInstance: boolean;
  readonly #state: InstanceState;
  /** Jobs and DDL; always used through #state.writes. */
  readonly #writer: DuckDBConnection;
  /** getLoadJob and rowCountsByBatch: sees committed data only, and never waits for a load. */
  readonly #reader: DuckDBConnection;
  readonly #storage: Storage;
  readonly #defaultDataset: string;
  readonly #tempDir: string;

  private constructor(
    instance: DuckDBInstance,
    ownsInstance: boolean,
    connections: { writer: DuckDBConnection; reader: DuckDBConnection },
    options: DuckDbWarehouseOptions,
  ) {
    this.#instance = instance;
    this.#ownsInstance = ownsInstance;
    this.#state = stateOf(instance);
    this.#writer = connections.writer;
    this.#reader = connections.reader;
    this.#storage = options.storage;
    this.#defaultDataset = options.defaultDataset;
    this.#tempDir = options.tempDir ?? tmpdir();
  }

  static async open(options: DuckDbWarehouseOptions): Promise<DuckDbWarehouse> {
    const owns = typeof options.database === "string";
    const instance =
      typeof options.database === "string" ? await DuckDBInstance.create(options.database) : options.database;
    try {
      const writer = await instance.connect();
      const reader = await instance.connect();
      const warehouse = new DuckDbWarehouse(instance, owns, { writer, reader }, options);
      await warehouse.#state.writes.run(() => writer.run(JOBS_DDL));
      return warehouse;
    } catch (error) {
      if (owns) instance.closeSync();
      throw error;
    }
  }

  async ensureTable(table: TableRef): Promise<void> {
    const schema = this.#schemaOf(table);
    await this.#state.writes.run(async () => {
      if (schema !== "main") await this.#writer.run(`CREATE SCHEMA IF NOT EXISTS ${quote(schema)}`);
      await this.#writer.run(qualifiedDdl(schema, table.table));
    });
  }

  async insertLoadJob(spec: LoadJobSpec): Promise<{ status: LoadJobStatus; existed: boolean }> {
    checkSpec(spec);
    this.#schemaOf(spec.destination);
    return this.#state.writes.run(async () => {
      const existing = await readJob(this.#writer, spec.jobId);
      if (existing !== null) return { status: existing, existed: true };
      return { status: await this.#runJob(spec), existed: false };
    });
  }

  async getLoadJob(jobId: string): Promise<LoadJobStatus | null> {
    const running = this.#state.running.get(jobId);
    if (running !== undefined) return structuredClone(running);
    return readJob(this.#reader, jobId);
  }

  rowCountsByBatch(table: TableRef, batchIds: readonly string[]): Promise<Map<string, number>> {
    return this.#rowCounts(table, batchIds, null);
  }

  rowCountsByBatchBetween(
    table: TableRef,
    batchIds: readonly string[],
    timestamps: TimestampRange,
  ): Promise<Map<string, number>> {
    return this.#rowCounts(table, batchIds, timestamps);
  }

  async #rowCounts(
    table: TableRef,
    batchIds: readonly string[],
    timestamps: TimestampRange | null,
  ): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    if (batchIds.length === 0) return counts;
    // A table the loader has not created yet holds no rows (BigQuery's adapter answers the same).
    const exists = await this.#reader.runAndReadAll(
      "SELECT count(*)::INTEGER FROM information_schema.tables WHERE table_schema = $schema AND table_name = $table",
      { schema: this.#schemaOf(table), table: table.table },
    );
    if (exists.getRows()[0]?.[0] === 0) return counts;
    const ids = listValue([...new Set(batchIds)]);
    const reader =
      timestamps === null
        ? await this.#reader.runAndReadAll(
            `SELECT batch_id, count(*) AS row_count FROM ${this.#qualified(table)}
             WHERE list_contains($ids, batch_id) GROUP BY batch_id`,
            { ids },
            { ids: LIST(VARCHAR) },
          )
        : await this.#reader.runAndReadAll(
            `SELECT batch_id, count(*) AS row_count FROM ${this.#qualified(table)}
             WHERE list_contains($ids, batch_id) AND timestamp >= $from::TIMESTAMP AND timestamp < $to::TIMESTAMP
             GROUP BY batch_id`,
            // The column is a TIMESTAMP without zone that holds UTC (the contract's DDL), so the bounds go
            // in as UTC wall-clock times: a zone in the literal would be read against the session's.
            { ids, from: utcWallClock(timestamps.from), to: utcWallClock(timestamps.to) },
            { ids: LIST(VARCHAR), from: VARCHAR, to: VARCHAR },
          );
    for (const row of reader.getRowObjectsJson()) counts.set(String(row.batch_id), Number(row.row_count));
    return counts;
  }

  async close(): Promise<void> {
    // Wait for a job in flight: closing its connection mid-transaction would fail it for no reason.
    await this.#state.writes.run(async () => {
      this.#writer.closeSync();
      this.#reader.closeSync();
      if (this.#ownsInstance) this.#instance.closeSync();
    });
  }

  // ---------------------------------------------------------------- loading

  /** Claims the job, loads every source and marks it DONE in one transaction; a failure is recorded after. */
  async #runJob(spec: LoadJobSpec): Promise<LoadJobStatus> {
    const createdAt = new Date().toISOString();
    const status: LoadJobStatus = {
      jobId: spec.jobId,
      state: "RUNNING",
      errors: [],
      sourceUris: [...spec.sourceUris],
    };
    const w = this.#writer;
    this.#state.running.set(spec.jobId, status);
    let staging: string | undefined;
    try {
      await w.run("BEGIN TRANSACTION");
      await insertJobRow(w, spec, status, createdAt);
      if (!(await this.#tableExists(spec.destination))) {
        const { dataset, table } = spec.destination;
        throw new JobFailure(
          "notFound",
          `Not found: Table ${dataset}.${table} (load jobs do not create tables: call ensureTable first)`,
        );
      }
      staging = await mkdtemp(join(this.#tempDir, "logarchive-load-"));
      let outputRows = 0;
      for (const [index, uri] of spec.sourceUris.entries()) {
        outputRows += await this.#loadSource(spec.destination, uri, join(staging, String(index)));
      }
      await w.run(
        `UPDATE main.${JOBS_TABLE} SET state = 'DONE', output_rows = $rows, ended_at = $ended::TIMESTAMPTZ
         WHERE job_id = $id`,
        { id: spec.jobId, rows: outputRows, ended: new Date().toISOString() },
      );
      await w.run("COMMIT");
      return { ...status, state: "DONE", outputRows };
    } catch (error) {
      await rollback(w);
      if (!(error instanceof JobFailure)) throw error; // not the sources' fault: nothing recorded, ID still free
      const errorResult: LoadJobError = {
        reason: error.reason,
        message: error.message,
        ...(error.location === undefined ? {} : { location: error.location }),
      };
      const failed: LoadJobStatus = { ...status, state: "DONE", errorResult, errors: [errorResult] };
      await insertJobRow(w, spec, failed, createdAt, new Date().toISOString());
      return failed;
    } finally {
      this.#state.running.delete(spec.jobId);
      if (staging !== undefined) await rm(staging, { recursive: true, force: true });
    }
  }

  /**
   * Loads one source inside the job's transaction and returns its row count. The object is streamed to a
   * staging file and checked line by line from there, so its size is bounded by disk, not memory.
   */
  async #loadSource(destination: TableRef, uri: string, staging: string): Promise<number> {
    const downloaded = `${staging}.download`;
    await this.#download(uri, downloaded);
    const gzipped = await startsWithGzipMagic(downloaded);
    await checkRecordLines(downloaded, gzipped, uri);
    // duckDbSelectRecords reads gzip; BigQuery accepts plain NDJSON too, so plain sources are staged gzipped.
    const staged = `${staging}.ndjson.gz`;
    if (gzipped) await rename(downloaded, staged);
    else await pipeline(createReadStream(downloaded), createGzip(), createWriteStream(staged));
    try {
      // BY NAME: columns match by name, so a table altered first (a column added before the loader and
      // shipper know it, docs/record-format.md) still loads, the new column NULL, as a BigQuery load
      // without a schema does.
      const result = await this.#writer.run(
        `INSERT INTO ${this.#qualified(destination)} BY NAME ${duckDbSelectRecords([staged])}`,
      );
      return result.rowsChanged;
    } catch (error) {
      // What the contract check lets through but the table refuses, e.g. a timestamp like 2026-02-30. The
      // first line says what; the rest is read_json advice (ignore_errors…) that does not apply to a load.
      const [what = ""] = (error as Error).message.replaceAll(staged, uri).split("\n");
      throw readError(uri, what);
    }
  }

  async #download(uri: string, path: string): Promise<void> {
    const match = /^gs:\/\/([^/]+)\/(.+)$/.exec(uri);
    if (match === null) {
      throw new JobFailure("invalid", `Invalid source URI ${uri}: expected gs://bucket/object`);
    }
    // decompress:false: the stored bytes, as BigQuery reads them, even for Content-Encoding: gzip.
    const object = this.#storage.bucket(match[1]!).file(match[2]!);
    try {
      await pipeline(object.createReadStream({ decompress: false }), createWriteStream(path));
    } catch (error) {
      if ((error as { code?: unknown }).code === 404) {
        throw new JobFailure("notFound", `Not found: URI ${uri}`, uri);
      }
      throw error; // GCS unreachable or refusing: the job is not recorded and can be retried under its ID
    }
  }

  async #tableExists(table: TableRef): Promise<boolean> {
    const reader = await this.#writer.runAndReadAll(
      "SELECT 1 FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = $s AND table_name = $t",
      { s: this.#schemaOf(table), t: table.table },
    );
    return reader.getRows().length > 0;
  }

  // ---------------------------------------------------------------- naming

  #schemaOf(table: TableRef): string {
    if (!TABLE_ID.test(table.table)) {
      throw new Error(`invalid table name ${JSON.stringify(table.table)}: use letters, digits, _ and -`);
    }
    if (table.dataset === this.#defaultDataset) return "main";
    if (!DATASET_ID.test(table.dataset)) {
      throw new Error(`invalid dataset name ${JSON.stringify(table.dataset)}: use letters, digits and _`);
    }
    if (table.dataset === "main") {
      throw new Error(
        `dataset "main" is DuckDB's schema for the default dataset ${this.#defaultDataset}; choose another name`,
      );
    }
    return table.dataset;
  }

  #qualified(table: TableRef): string {
    return `${quote(this.#schemaOf(table))}.${quote(table.table)}`;
  }
}

// ---------------------------------------------------------------- helpers

/** An instant as a zone-less ISO time in UTC, "2026-11-21T18:00:00.000", for a TIMESTAMP that holds UTC. */
function utcWallClock(instant: Date): string {
  return instant.toISOString().slice(0, -1);
}

function quote(identifier: string): string {
  return `"${identifier.replaceAll('"', '""')}"`;
}

/** The contract's DuckDB DDL, in a schema. */
function qualifiedDdl(schema: string, table: string): string {
  const ddl = duckDbDdl(table);
  const header = `CREATE TABLE IF NOT EXISTS "${table}"`;
  if (!ddl.startsWith(header)) {
    throw new Error(
      `duckDbDdl() no longer starts with ${header}; update qualifiedDdl() in ${import.meta.url}`,
    );
  }
  return `CREATE TABLE IF NOT EXISTS ${quote(schema)}.${quote(table)}${ddl.slice(header.length)}`;
}

function readError(uri: string, detail: string): JobFailure {
  const sentence = detail.trim().replace(/\.+$/, "");
  return new JobFailure("invalid", `Error while reading data, error message: ${sentence}. File: ${uri}`, uri);
}

async function startsWithGzipMagic(path: string): Promise<boolean> {
  const file = await open(path);
  try {
    const { buffer, bytesRead } = await file.read(Buffer.alloc(2), 0, 2, 0);
    return bytesRead === 2 && buffer[0] === 0x1f && buffer[1] === 0x8b;
  } finally {
    await file.close();
  }
}

/**
 * Checks every line of an NDJSON file against the record contract, the way a load job with
 * ignoreUnknownValues=false and maxBadRecords=0 does, and throws a JobFailure naming the first bad line.
 */
async function checkRecordLines(path: string, gzipped: boolean, uri: string): Promise<void> {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let lineNumber = 0;
  const checkLine = (bytes: Buffer) => {
    lineNumber += 1;
    let line: string;
    try {
      line = decoder.decode(bytes);
    } catch {
      throw readError(uri, `line ${lineNumber}: not UTF-8`);
    }
    if (line.trim() === "") return;
    const problem = checkRecordLine(line);
    if (problem !== null) throw readError(uri, `line ${lineNumber}: ${problem}`);
  };
  const splitLines = async (chunks: AsyncIterable<Buffer>) => {
    let partial: Buffer[] = [];
    for await (const chunk of chunks) {
      let start = 0;
      for (let end = chunk.indexOf(0x0a); end !== -1; end = chunk.indexOf(0x0a, start)) {
        checkLine(Buffer.concat([...partial, chunk.subarray(start, end)]));
        partial = [];
        start = end + 1;
      }
      if (start < chunk.length) partial.push(chunk.subarray(start));
    }
    if (partial.length > 0) checkLine(Buffer.concat(partial));
  };
  try {
    if (gzipped) await pipeline(createReadStream(path), createGunzip(), splitLines);
    else await pipeline(createReadStream(path), splitLines);
  } catch (error) {
    if (error instanceof JobFailure) throw error;
    const code = String((error as NodeJS.ErrnoException).code ?? "");
    if (code.startsWith("Z_")) throw readError(uri, `not a valid gzip stream: ${(error as Error).message}`);
    throw error;
  }
}

function checkSpec(spec: LoadJobSpec): void {
  if (!JOB_ID.test(spec.jobId)) {
    throw new Error(
      `invalid job ID ${JSON.stringify(spec.jobId)}: at most 1,024 characters of [A-Za-z0-9_-]`,
    );
  }
  if (spec.sourceUris.length === 0) throw new Error("a load job needs at least one source URI");
  for (const [key, value] of Object.entries(spec.labels)) {
    if (key === "" || !LABEL.test(key) || !LABEL.test(value)) {
      throw new Error(
        `invalid label ${key}=${value}: keys and values are at most 63 characters of [a-z0-9_-]`,
      );
    }
  }
}

async function rollback(connection: DuckDBConnection): Promise<void> {
  try {
    await connection.run("ROLLBACK");
  } catch {
    // No transaction to roll back: BEGIN failed, or a failed COMMIT already ended it.
  }
}

async function insertJobRow(
  connection: DuckDBConnection,
  spec: LoadJobSpec,
  status: LoadJobStatus,
  createdAt: string,
  endedAt?: string,
): Promise<void> {
  await connection.run(
    `INSERT INTO main.${JOBS_TABLE} (job_id, destination_dataset, destination_table, state, source_uris, labels,
       error_reason, error_message, error_location, output_rows, created_at, ended_at)
     VALUES ($id, $dataset, $table, $state, $uris, $labels, $reason, $message, $location, NULL,
       $created::TIMESTAMPTZ, $ended::TIMESTAMPTZ)`,
    {
      id: spec.jobId,
      dataset: spec.destination.dataset,
      table: spec.destination.table,
      state: status.state,
      uris: listValue([...spec.sourceUris]),
      labels: mapValue(Object.entries(spec.labels).map(([key, value]) => ({ key, value }))),
      reason: status.errorResult?.reason ?? null,
      message: status.errorResult?.message ?? null,
      location: status.errorResult?.location ?? null,
      created: createdAt,
      ended: endedAt ?? null,
    },
    {
      uris: LIST(VARCHAR),
      labels: MAP(VARCHAR, VARCHAR),
      reason: VARCHAR,
      message: VARCHAR,
      location: VARCHAR,
      created: VARCHAR,
      ended: VARCHAR,
    },
  );
}

async function readJob(connection: DuckDBConnection, jobId: string): Promise<LoadJobStatus | null> {
  const reader = await connection.runAndReadAll(
    `SELECT job_id, state, source_uris, error_reason, error_message, error_location, output_rows
     FROM main.${JOBS_TABLE} WHERE job_id = $id`,
    { id: jobId },
  );
  const row = reader.getRowObjectsJson()[0];
  if (row === undefined) return null;
  const status: LoadJobStatus = {
    jobId: String(row.job_id),
    state: row.state as LoadJobStatus["state"],
    errors: [],
    sourceUris: (row.source_uris as string[]).map(String),
  };
  if (row.error_reason !== null) {
    const errorResult: LoadJobError = {
      reason: String(row.error_reason),
      message: String(row.error_message),
    };
    if (row.error_location !== null) errorResult.location = String(row.error_location);
    status.errorResult = errorResult;
    status.errors = [errorResult];
  } else if (row.output_rows !== null) {
    status.outputRows = Number(row.output_rows);
  }
  return status;
}
