// `logarchive query`: the analyst questions of queries/ (docs/queries.md), run with their
// parameters bound: on the local warehouse (duckdb), over archive objects (archive), on
// BigQuery (a dry run and a byte cap first) or on Athena (data scanned and its cost after).
//
// DuckDB lets one process hold a database file, so while `logarchive local` runs the
// warehouse cannot be opened, not even read-only. The command then copies the file (and
// its write-ahead log, which holds the commits since the last checkpoint) and reads the
// copy, saying when it was taken and how old its newest line is.

import { copyFile, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { AthenaClient } from "@aws-sdk/client-athena";
import type { S3Client } from "@aws-sdk/client-s3";
import type { BigQuery } from "@google-cloud/bigquery";
import { Command, Option } from "commander";
import { UserError } from "../../lib/config/errors.ts";
import type { Engine } from "../../queries/definitions.ts";
import type { QueryResult } from "../../queries/duckdb-runner.ts";
import type { PackQuery, ParamValue } from "../../queries/pack.ts";
import { type S3Target, withS3Setup } from "../options.ts";

// The pack is imported when the command runs: the shipper image carries cli/ but not queries/.
const definitions = () => import("../../queries/definitions.ts");
const pack = () => import("../../queries/pack.ts");

export const DEFAULT_WAREHOUSE = ".logarchive/local/warehouse.duckdb";
const FORMATS = ["table", "csv", "json"] as const;
type Format = (typeof FORMATS)[number];
const RUN_ENGINES = ["duckdb", "archive", "athena", "bigquery"] as const;
/** Longest cell of the table format: a log line can be 16 KiB; csv and json keep it whole. */
const TABLE_CELL_CHARS = 120;
const SNAPSHOT_ATTEMPTS = 3;

export interface QueryIo {
  write(text: string): void;
  /** Notes about the run (row count, time, snapshot age): stderr, so csv and json stay clean. */
  note(text: string): void;
  now(): number;
  /** Tests point the cloud engines at local endpoints; default: the official clients with their usual credentials. */
  bigquery?(projectId: string, location: string | undefined): BigQuery;
  s3?(endpoint: string | undefined): S3Client;
  athena?(): AthenaClient;
  /** Whether stderr is a terminal, where a progress line is redrawn in place. */
  isTty?: boolean;
}

const PROCESS_IO: QueryIo = {
  write: (text) => process.stdout.write(text),
  note: (text) => process.stderr.write(text),
  now: () => Date.now(),
  isTty: process.stderr.isTTY === true,
};

/** The default --max-bytes: 10 GiB, about $0.06 at BigQuery's on-demand rate. */
const DEFAULT_MAX_BYTES = "10GiB";

interface QueryOptions {
  engine: (typeof RUN_ENGINES)[number];
  db: string;
  param: string[];
  format: Format;
  list?: boolean;
  sql?: string;
  project?: string;
  dataset: string;
  location?: string;
  maxBytes: string;
  archive?: string;
  s3Endpoint?: string;
  workgroup: string;
  database: string;
  catalog: string;
  outputLocation?: string;
}

export function queryCommand(io: QueryIo = PROCESS_IO): Command {
  return new Command("query")
    .description("Run a question of the query pack (queries/, docs/queries.md) with its parameters bound.")
    .argument("[name]", "the query, as `--list` names it")
    .addOption(new Option("--engine <engine>", "where to run it").choices(RUN_ENGINES).default("duckdb"))
    .option("--db <file>", "the DuckDB warehouse (duckdb engine)", DEFAULT_WAREHOUSE)
    .option(
      "--param <name=value>",
      "a parameter of the query; repeat for each",
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .addOption(new Option("--format <format>", "output format").choices(FORMATS).default("table"))
    .option("--list", "list the queries and their parameters")
    .option(
      "--sql <file>",
      "run this SQL file instead of a pack query (a pack-style header declares its parameters)",
    )
    .option(
      "--archive <location>",
      "the archive to read (archive): s3://BUCKET/PREFIX, or a folder holding its <tier>/namespace=… and compacted/… trees; a namespace-hour with a compaction manifest is read from the parts its manifests name, any other from its originals",
    )
    .option(
      "--s3-endpoint <url>",
      "an S3-compatible endpoint instead of AWS's (archive); on a loopback address, with no AWS credentials in the environment, the local S3 of `logarchive local` (its credentials, region us-east-1)",
    )
    .option("--workgroup <name>", "the Athena workgroup (athena)", "primary")
    .option("--database <name>", "the Glue database of the archive table and view (athena)", "logarchive")
    .option("--catalog <name>", "the data catalog (athena)", "AwsDataCatalog")
    .option(
      "--output-location <s3-uri>",
      "where Athena writes the result files (athena; default: the workgroup's)",
    )
    .option(
      "--project <id>",
      "the Google Cloud project that runs the job (bigquery; default: $GOOGLE_CLOUD_PROJECT)",
    )
    .option("--dataset <name>", "the dataset holding container_logs (bigquery)", "logarchive")
    .option("--location <location>", "the dataset's location, e.g. US, EU (bigquery)")
    .option(
      "--max-bytes <bytes>",
      "refuse a query whose dry run bills more, and cap the run there (bigquery; 1000000, 500MB, 2GiB…)",
      DEFAULT_MAX_BYTES,
    )
    .action(async (name: string | undefined, o: QueryOptions) => {
      if (o.list) {
        const { ENGINES } = await definitions();
        io.write(await describePack(ENGINES.find((e) => e === o.engine && e !== "duckdb")));
        return;
      }
      if ((name === undefined) === (o.sql === undefined)) {
        throw new UserError(
          "give a query name (see `logarchive query --list`) or --sql FILE, not both or neither",
        );
      }
      const engine: Engine = o.engine === "archive" ? "duckdb" : o.engine;
      const { loadQuery, parseParamArgs, resolveParams } = await pack();
      const query =
        o.sql !== undefined ? await sqlFileQuery(o.sql, engine) : await loadQuery(engine, name as string);
      const values = resolveParams(query, parseParamArgs(o.param));
      switch (o.engine) {
        case "duckdb":
          return runOnWarehouse(io, resolve(o.db), query, values, o.format);
        case "bigquery":
          return runOnBigQuery(io, o, query, values);
        case "archive":
          return runOnArchive(io, o, query, values);
        case "athena":
          return runOnAthena(io, o, query, values);
      }
    });
}

async function describePack(only: Engine | undefined): Promise<string> {
  const [{ ENGINES }, { loadPack }] = await Promise.all([definitions(), pack()]);
  const queries = await loadPack();
  const duckdb = queries.get("duckdb")!;
  const { SAMPLE_END, SAMPLE_SPAN_MS } = await import("../../queries/sample-warehouse.ts");
  const [from, to] = [SAMPLE_END - SAMPLE_SPAN_MS, SAMPLE_END].map((t) => new Date(t).toISOString());
  const lines: string[] = [
    `Examples are for the sample warehouse (node_modules/.bin/node queries/sample-warehouse.ts FILE, then --db FILE): ${from!.slice(0, 10)} ${from!.slice(11, 16)}-${to!.slice(11, 16)} UTC. The lines of \`logarchive local\` are today's: --param from=$(date -u +%F) --param to=$(date -u +%FT%T).`,
    "",
  ];
  for (const query of duckdb.values()) {
    const engines = ENGINES.filter((e) => queries.get(e)!.has(query.name));
    if (only !== undefined && !engines.includes(only)) continue;
    lines.push(`${query.name}  (${engines.join(", ")})`, `  ${query.title}`);
    for (const p of query.params) {
      lines.push(
        `  --param ${p.name}=${p.example}  ${p.type}, ${p.description}${p.default !== undefined ? ` (default ${p.default})` : ""}`,
      );
    }
    lines.push("");
  }
  return lines.join("\n");
}

/** A --sql file: with a pack header its parameters are declared and typed; without one each $name is text. */
async function sqlFileQuery(path: string, engine: Engine): Promise<PackQuery> {
  const text = await readFile(path, "utf8");
  const { parseQuery } = await pack();
  if (/^--\s?title:/.test(text)) return parseQuery(text, path, engine);
  if (engine !== "duckdb") {
    throw new UserError(
      `--sql ${path}: a ${engine} file needs a pack header (title, answers, cost, param lines; see docs/queries.md) to bind its parameters`,
    );
  }
  const code = text.replace(/'(?:[^']|'')*'/g, "''").replace(/--.*$/gm, "");
  const names = [...new Set(Array.from(code.matchAll(/\$([a-z_][a-z0-9_]*)/g), (m) => m[1]!))];
  return {
    name: path,
    engine: "duckdb",
    path,
    title: path,
    answers: "",
    cost: "",
    params: names.map((n) => ({ name: n, type: "STRING" as const, description: "text", example: "…" })),
    positional: [],
    lookbackHours: 0,
    body: text.trim(),
  };
}

async function runOnWarehouse(
  io: QueryIo,
  path: string,
  query: PackQuery,
  values: ReadonlyMap<string, ParamValue>,
  format: Format,
): Promise<void> {
  try {
    await stat(path);
  } catch {
    throw new UserError(
      `--db ${path}: no warehouse there; run \`logarchive local\` first, or give --db the warehouse.duckdb of its --data-dir`,
    );
  }
  const { DuckDBInstance } = await import("@duckdb/node-api");
  const { installDuckDbDefinitions, runDuckDbQuery } = await import("../../queries/duckdb-runner.ts");
  let snapshotDir: string | undefined;
  let instance: Awaited<ReturnType<typeof DuckDBInstance.create>>;
  try {
    instance = await DuckDBInstance.create(path, { access_mode: "READ_ONLY" });
  } catch (error) {
    if (!/lock/i.test((error as Error).message)) throw error;
    const snapshot = await openSnapshot(path);
    snapshotDir = snapshot.dir;
    instance = snapshot.instance;
    io.note(
      `${path} is in use (by a running \`logarchive local\`?): reading a copy taken ${new Date(snapshot.takenAt).toISOString()}; lines loaded after that are not in it.\n`,
    );
  }
  const connection = await instance.connect();
  try {
    if (snapshotDir !== undefined) io.note(await freshness(connection, io.now()));
    await installDuckDbDefinitions(connection);
    const started = io.now();
    let result: Awaited<ReturnType<typeof runDuckDbQuery>>;
    try {
      result = await runDuckDbQuery(connection, query, values);
    } catch (error) {
      const message = (error as Error).message;
      if (/Catalog Error: Table with name container_logs does not exist/.test(message)) {
        throw new UserError(`--db ${path} has no container_logs table: is it the local warehouse?`);
      }
      throw error;
    }
    printResult(io, result, format, io.now() - started);
  } finally {
    connection.closeSync();
    instance.closeSync();
    if (snapshotDir !== undefined) await rm(snapshotDir, { recursive: true, force: true });
  }
}

function printResult(io: QueryIo, result: QueryResult, format: Format, took: number): void {
  io.write(render(result.columns, result.rows, format));
  const summary = `${result.rows.length} row${result.rows.length === 1 ? "" : "s"} in ${took} ms\n`;
  if (format === "table") io.write(summary);
  else io.note(summary);
}

/** `--max-bytes` as a byte count: digits, optionally with a unit (KB, MB, GB, TB are powers of 1000; KiB… of 1024). */
export function parseByteCount(text: string): bigint {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGTP]i?B|B)?\s*$/i.exec(text);
  if (m === null) {
    throw new UserError(`--max-bytes ${text}: expected a byte count such as 1000000, 500MB or 2GiB`);
  }
  const unit = (m[2] ?? "B").toUpperCase();
  const power = "BKMGTP".indexOf(unit[0]!);
  const base = unit.includes("I") ? 1024 : 1000;
  const [whole, fraction = ""] = m[1]!.split(".");
  // Exact arithmetic: 1.5GiB is 1610612736, not a float's approximation of it.
  const scale = BigInt(base) ** BigInt(power);
  return (BigInt(whole! + fraction) * scale) / 10n ** BigInt(fraction.length);
}

/**
 * A client that cannot start (no region, no credentials) is the user's setup to fix: one line
 * naming the engine and what to set, not the SDK's stack trace.
 */
async function withCloudSetup<T>(engine: "athena" | "bigquery", run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    const message = (error as Error).message ?? "";
    if (/Region is missing/i.test(message)) {
      throw new UserError(`--engine ${engine}: no AWS region; set AWS_REGION (or a profile's region)`);
    }
    if ((error as Error).name === "CredentialsProviderError" || /Could not load credentials/i.test(message)) {
      throw new UserError(`--engine ${engine}: no AWS credentials (${message.split("\n")[0]})`);
    }
    if (/Could not load the default credentials/i.test(message)) {
      throw new UserError(
        `--engine ${engine}: no Google credentials; run \`gcloud auth application-default login\` or set GOOGLE_APPLICATION_CREDENTIALS`,
      );
    }
    throw error;
  }
}

const SPINNER = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

async function runOnAthena(
  io: QueryIo,
  o: QueryOptions,
  query: PackQuery,
  values: ReadonlyMap<string, ParamValue>,
): Promise<void> {
  const { athenaRequest } = await pack();
  const { athenaScanCost, ATHENA_MINIMUM_BYTES, runAthenaQuery } = await import(
    "../../queries/athena-runner.ts"
  );
  const { formatBytes } = await import("../../queries/bigquery-runner.ts");
  const { DEFAULT_PRICES, PRICES_AS_OF } = await import("../../lib/economics/prices.ts");
  const client = io.athena?.() ?? new (await import("@aws-sdk/client-athena")).AthenaClient({});
  let polls = 0;
  let progressShown = false;
  const started = io.now();
  let result: Awaited<ReturnType<typeof runAthenaQuery>>;
  try {
    result = await withCloudSetup("athena", () =>
      runAthenaQuery(athenaRequest(query, values), {
        client,
        workgroup: o.workgroup,
        database: o.database,
        catalog: o.catalog,
        ...(o.outputLocation === undefined ? {} : { outputLocation: o.outputLocation }),
        now: () => io.now(),
        onProgress: (state, elapsedMs, scanned) => {
          if (!io.isTty) return;
          progressShown = true;
          const spin = SPINNER[polls++ % SPINNER.length];
          // \r and erase-line: one line redrawn in place, cleared before the results print.
          io.note(
            `\r\x1b[2K${spin} Athena ${state.toLowerCase()} ${(elapsedMs / 1000).toFixed(1)} s, ${formatBytes(BigInt(scanned))} scanned`,
          );
        },
      }),
    );
  } finally {
    if (progressShown) io.note("\r\x1b[2K");
  }
  printResult(io, result, o.format, io.now() - started);
  const price = DEFAULT_PRICES.athena_per_tb;
  const billed = Math.max(result.dataScannedBytes, ATHENA_MINIMUM_BYTES);
  io.note(
    `Athena scanned ${formatBytes(BigInt(result.dataScannedBytes))} (${result.dataScannedBytes} bytes${billed > result.dataScannedBytes ? `, billed as the ${ATHENA_MINIMUM_BYTES / 1e6} MB minimum` : ""}): $${athenaScanCost(result.dataScannedBytes).toFixed(6)} at $${price.value}/TB (${price.source}, prices as of ${PRICES_AS_OF}); query ${result.queryExecutionId}.\n`,
  );
}

/** The region `logarchive local` runs in (local/stack.ts's default), which its banner prints. */
const LOCAL_REGION = "us-east-1";

/** localhost, ::1 or 127.x.x.x: an endpoint on this machine, such as the S3 of `logarchive local`. */
export function isLoopbackEndpoint(url: string): boolean {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, "");
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * The S3 client of --engine archive: AWS's usual credentials and region; but an endpoint on a
 * loopback address with no AWS credentials in the environment is taken to be the S3 of
 * `logarchive local`, signed with its credentials (S3RVER) and, unless AWS_REGION says
 * otherwise, its region (us-east-1), as `reconcile --data-dir` does.
 */
async function archiveS3Client(endpoint: string | undefined, env: NodeJS.ProcessEnv): Promise<S3Client> {
  const { S3Client } = await import("@aws-sdk/client-s3");
  if (endpoint === undefined) return new S3Client({});
  const ownCredentials = env.AWS_ACCESS_KEY_ID !== undefined || env.AWS_PROFILE !== undefined;
  if (isLoopbackEndpoint(endpoint) && !ownCredentials) {
    const { localS3Client } = await import("../../local/s3.ts");
    return localS3Client(endpoint, env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? LOCAL_REGION);
  }
  return new S3Client({ endpoint, forcePathStyle: true });
}

async function runOnArchive(
  io: QueryIo,
  o: QueryOptions,
  query: PackQuery,
  values: ReadonlyMap<string, ParamValue>,
): Promise<void> {
  if (o.archive === undefined) {
    throw new UserError(
      "--engine archive needs --archive s3://BUCKET/PREFIX (or a folder holding the archive's tree)",
    );
  }
  const { parseArchiveLocation, runArchiveQuery } = await import("../../queries/archive-runner.ts");
  const location = parseArchiveLocation(o.archive);
  let source: Parameters<typeof runArchiveQuery>[2];
  if ("root" in location) {
    try {
      await stat(location.root);
    } catch {
      throw new UserError(`--archive ${o.archive}: no such folder (or give s3://BUCKET/PREFIX)`);
    }
    source = { kind: "dir", root: resolve(location.root) };
  } else {
    const client = io.s3?.(o.s3Endpoint) ?? (await archiveS3Client(o.s3Endpoint, process.env));
    source = { kind: "s3", client, ...location };
  }
  const started = io.now();
  // No credentials, no region, no such bucket, an endpoint that refuses: one line naming the
  // flag or variable to fix, as retrieve and hold say it (cli/options.ts).
  const target: S3Target = {
    bucket: `--archive ${o.archive}`,
    ...(o.s3Endpoint === undefined ? {} : { endpoint: `--s3-endpoint ${o.s3Endpoint}` }),
    region: "AWS_REGION (or a profile's region)",
  };
  const result = await withS3Setup(target, () => runArchiveQuery(query, values, source));
  io.note(`${archiveReadNote(result)}\n`);
  printResult(io, result, o.format, io.now() - started);
}

/**
 * What an archive run read: originals, and for compacted namespace-hours the parts their
 * manifests name; originals of compacted hours that no manifest names yet are information.
 */
export function archiveReadNote(r: {
  objects: number;
  parts: number;
  compactedHours: number;
  uncompactedBatches: number;
  bytes: number;
}): string {
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  const compacted =
    r.compactedHours === 0
      ? ""
      : ` and ${plural(r.parts, "compacted part")} (${plural(r.compactedHours, "compacted namespace-hour")}${r.uncompactedBatches === 0 ? "" : `; ${r.uncompactedBatches} of their batches not yet compacted, read from their originals`})`;
  return `Read ${plural(r.objects, "archive object")}${compacted} (${r.bytes} bytes gzip).`;
}

async function runOnBigQuery(
  io: QueryIo,
  o: QueryOptions,
  query: PackQuery,
  values: ReadonlyMap<string, ParamValue>,
): Promise<void> {
  const maxBytes = parseByteCount(o.maxBytes);
  const projectId = o.project ?? process.env.GOOGLE_CLOUD_PROJECT;
  if (projectId === undefined || projectId === "") {
    throw new UserError(
      "--engine bigquery needs --project ID (or GOOGLE_CLOUD_PROJECT): the project that runs the job",
    );
  }
  const { bigQueryRequest } = await pack();
  const { formatBytes, runBigQueryQuery } = await import("../../queries/bigquery-runner.ts");
  const bigquery =
    io.bigquery?.(projectId, o.location) ??
    new (await import("@google-cloud/bigquery")).BigQuery({
      projectId,
      ...(o.location === undefined ? {} : { location: o.location }),
    });
  const started = io.now();
  const result = await withCloudSetup("bigquery", () =>
    runBigQueryQuery(bigQueryRequest(query, values), {
      bigquery,
      projectId,
      dataset: o.dataset,
      ...(o.location === undefined ? {} : { location: o.location }),
      maxBytes,
      onDryRun: (bytes) =>
        io.note(
          `BigQuery dry run: this query will process ${formatBytes(bytes)} (${bytes} bytes; --max-bytes ${maxBytes}).\n`,
        ),
    }),
  );
  printResult(io, result, o.format, io.now() - started);
  if (result.bytesBilled !== undefined) {
    io.note(`BigQuery billed ${formatBytes(result.bytesBilled)} (${result.bytesBilled} bytes).\n`);
  }
}

/**
 * Copies the database and its WAL and opens the copy. A checkpoint running during the copy
 * can leave a copy DuckDB refuses; the next attempt then copies a settled file.
 */
async function openSnapshot(path: string) {
  const { DuckDBInstance } = await import("@duckdb/node-api");
  let lastError: unknown;
  for (let attempt = 0; attempt < SNAPSHOT_ATTEMPTS; attempt++) {
    const dir = await mkdtemp(join(tmpdir(), "logarchive-query-"));
    const copy = join(dir, "warehouse.duckdb");
    const takenAt = Date.now();
    try {
      await copyFile(path, copy);
      try {
        await copyFile(`${path}.wal`, `${copy}.wal`);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      }
      return { dir, takenAt, instance: await DuckDBInstance.create(copy, { access_mode: "READ_ONLY" }) };
    } catch (error) {
      lastError = error;
      await rm(dir, { recursive: true, force: true });
    }
  }
  throw new UserError(
    `${path} is in use and a copy of it could not be opened (${(lastError as Error).message.split("\n")[0]}): stop \`logarchive local\` or try again`,
  );
}

async function freshness(
  connection: { runAndReadAll(sql: string): Promise<{ getRowObjectsJson(): unknown[] }> },
  now: number,
): Promise<string> {
  try {
    const reader = await connection.runAndReadAll(
      "SELECT strftime(max(\"timestamp\"), '%Y-%m-%dT%H:%M:%S.%fZ') AS newest FROM container_logs",
    );
    const newest = (reader.getRowObjectsJson()[0] as { newest: string | null }).newest;
    if (newest === null) return "The copy holds no lines yet.\n";
    const minutes = Math.max(0, Math.round((now - Date.parse(newest)) / 60_000));
    return `The newest line in the copy is from ${newest} (${minutes} min ago).\n`;
  } catch {
    return "";
  }
}

// ------------------------------------------------------------ output

function cellText(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function csvCell(value: unknown): string {
  const text = cellText(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

function tableCell(value: unknown): string {
  if (value === null || value === undefined) return "NULL";
  // One row per line: control characters in a log line would break the grid.
  const text = cellText(value).replace(/\p{Cc}/gu, (c) => (c === "\t" ? "\\t" : c === "\n" ? "\\n" : "?"));
  return [...text].length > TABLE_CELL_CHARS ? `${[...text].slice(0, TABLE_CELL_CHARS - 1).join("")}…` : text;
}

const width = (text: string) => [...text].length;
const pad = (text: string, n: number) => text + " ".repeat(Math.max(0, n - width(text)));

export function render(
  columns: readonly string[],
  rows: readonly Record<string, unknown>[],
  format: Format,
): string {
  if (format === "json") return rows.map((row) => `${JSON.stringify(row)}\n`).join("");
  if (format === "csv") {
    return [
      columns.map(csvCell).join(","),
      ...rows.map((row) => columns.map((c) => csvCell(row[c])).join(",")),
    ]
      .map((line) => `${line}\r\n`)
      .join("");
  }
  const cells = rows.map((row) => columns.map((c) => tableCell(row[c])));
  const widths = columns.map((c, i) => Math.max(width(c), ...cells.map((r) => width(r[i]!))));
  const line = (values: readonly string[]) =>
    `${values
      .map((v, i) => pad(v, widths[i]!))
      .join("  ")
      .trimEnd()}\n`;
  return line(columns) + line(widths.map((w) => "-".repeat(w))) + cells.map(line).join("");
}
