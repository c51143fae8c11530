// Runs a pack query on BigQuery through the REST API (jobs.query, then getQueryResults for the
// pages), sent with the official client's authenticated request():
//   1. a dry run, which BigQuery answers at once with the bytes the query would process
//      (what on-demand pricing bills), without running it;
//   2. a refusal, before anything is billed, when that is over the caller's limit;
//   3. the run, with maximumBytesBilled set to the same limit, so a query that reads more
//      than the dry run said (the table grew in between) fails without being billed;
//   4. the pages of the result, until no pageToken is left.
// https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/query
// https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/getQueryResults
// https://cloud.google.com/bigquery/docs/best-practices-costs (dry run, maximum bytes billed)

import type { BigQuery } from "@google-cloud/bigquery";
import { UserError } from "../lib/config/errors.ts";
import type { QueryResult } from "./duckdb-runner.ts";
import type { BigQueryRequest } from "./pack.ts";

export interface BigQueryRunOptions {
  bigquery: BigQuery;
  projectId: string;
  /** The dataset the pack's unqualified `container_logs` is read from. */
  dataset: string;
  /** Location of the dataset ("US", "EU", "europe-west1"…); default: BigQuery's, from the dataset. */
  location?: string;
  /** Refuse (and cap the run at) this many bytes billed. */
  maxBytes: bigint;
  /** Told the dry run's bytes before the run starts. */
  onDryRun?(bytes: bigint): void;
  /** How long to wait for the job; default 10 minutes. */
  timeoutMs?: number;
}

export interface BigQueryResult extends QueryResult {
  /** What the dry run said the query would process. */
  dryRunBytes: bigint;
  /** What the job reports it billed, when it says. */
  bytesBilled?: bigint;
}

interface Field {
  name: string;
  type: string;
  mode?: string;
  fields?: Field[];
}

interface Cell {
  v: unknown;
}

interface QueryResponse {
  jobComplete?: boolean;
  jobReference?: { jobId?: string; location?: string };
  pageToken?: string;
  schema?: { fields?: Field[] };
  rows?: { f: Cell[] }[];
  totalBytesProcessed?: string;
  totalBytesBilled?: string;
}

/** The request's parameters as the REST API's QueryParameter objects. */
export function restQueryParameters(request: BigQueryRequest): unknown[] {
  return Object.entries(request.params).map(([name, value]) => {
    const type = request.types[name]!;
    if (Array.isArray(type)) {
      return {
        name,
        parameterType: { type: "ARRAY", arrayType: { type: type[0] } },
        parameterValue: { arrayValues: (value as string[]).map((v) => ({ value: v })) },
      };
    }
    // A TIMESTAMP parameter is read as written; the pack's text is UTC, so say so with Z.
    const text = type === "TIMESTAMP" ? `${String(value).replace(" ", "T")}Z` : String(value);
    return { name, parameterType: { type }, parameterValue: { value: text } };
  });
}

const POLL_TIMEOUT_MS = 10_000;

export async function runBigQueryQuery(
  request: BigQueryRequest,
  options: BigQueryRunOptions,
): Promise<BigQueryResult> {
  const base = {
    query: request.query,
    useLegacySql: false,
    parameterMode: "NAMED",
    queryParameters: restQueryParameters(request),
    defaultDataset: { projectId: options.projectId, datasetId: options.dataset },
    ...(options.location === undefined ? {} : { location: options.location }),
  };
  const call = <T>(o: Parameters<BigQuery["request"]>[0]) =>
    new Promise<T>((resolve, reject) => {
      options.bigquery.request({ ...o, projectId: options.projectId }, (error, body) => {
        if (error) reject(bigQueryError(error));
        else resolve(body as T);
      });
    });

  const dryRun = await call<QueryResponse>({
    method: "POST",
    uri: "/queries",
    json: { ...base, dryRun: true },
  });
  const dryRunBytes = BigInt(dryRun.totalBytesProcessed ?? "0");
  options.onDryRun?.(dryRunBytes);
  if (dryRunBytes > options.maxBytes) {
    throw new UserError(
      `--max-bytes ${options.maxBytes}: BigQuery would bill ${formatBytes(dryRunBytes)} (${dryRunBytes} bytes) for this query; narrow the range or namespaces, or raise --max-bytes`,
    );
  }

  const deadline = Date.now() + (options.timeoutMs ?? 600_000);
  let response = await call<QueryResponse>({
    method: "POST",
    uri: "/queries",
    json: {
      ...base,
      maximumBytesBilled: options.maxBytes.toString(),
      timeoutMs: POLL_TIMEOUT_MS,
      // TIMESTAMP cells as integer microseconds, not the default float seconds that lose digits.
      formatOptions: { useInt64Timestamp: true },
    },
  });
  const jobId = response.jobReference?.jobId;
  const location = response.jobReference?.location ?? options.location;
  const rows: Record<string, unknown>[] = [];
  let fields: Field[] | undefined;
  let bytesBilled: bigint | undefined;
  for (;;) {
    if (response.jobComplete === true) {
      fields ??= response.schema?.fields ?? [];
      for (const row of response.rows ?? []) rows.push(rowObject(fields, row.f));
      if (response.totalBytesBilled !== undefined) bytesBilled = BigInt(response.totalBytesBilled);
      if (response.pageToken === undefined) break;
    } else if (Date.now() > deadline) {
      throw new Error(`BigQuery job ${jobId} did not finish in time; see it in the console`);
    }
    if (jobId === undefined) throw new Error("BigQuery jobs.query answered without a jobReference");
    response = await call<QueryResponse>({
      method: "GET",
      uri: `/queries/${encodeURIComponent(jobId)}`,
      qs: {
        ...(location === undefined ? {} : { location }),
        timeoutMs: POLL_TIMEOUT_MS,
        "formatOptions.useInt64Timestamp": true,
        ...(response.jobComplete === true ? { pageToken: response.pageToken } : {}),
      },
    });
  }
  return {
    columns: (fields ?? []).map((f) => f.name),
    rows,
    dryRunBytes,
    ...(bytesBilled === undefined ? {} : { bytesBilled }),
  };
}

/** An API error as one line; a refused query (bad SQL, no such table, the byte cap) is the user's to fix. */
function bigQueryError(error: Error & { code?: number; errors?: { reason?: string }[] }): Error {
  const reason = error.errors?.[0]?.reason;
  const line = `BigQuery: ${error.message.split("\n")[0]}${reason === undefined ? "" : ` (${reason})`}`;
  if (error.code === 400 || error.code === 404 || error.code === 403) return new UserError(line);
  return new Error(line, { cause: error });
}

/** Cells as the duckdb engine's JSON rows give them: int64 as text, floats as numbers, timestamps as UTC text. */
function cellValue(field: Field, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (field.mode === "REPEATED") {
    return (value as Cell[]).map((cell) => cellValue({ ...field, mode: "NULLABLE" }, cell.v));
  }
  switch (field.type) {
    case "RECORD":
    case "STRUCT":
      return rowObject(field.fields ?? [], (value as { f: Cell[] }).f);
    case "FLOAT":
    case "FLOAT64":
    case "NUMERIC":
    case "BIGNUMERIC":
      return Number(value);
    case "BOOLEAN":
    case "BOOL":
      return value === "true" || value === true;
    case "TIMESTAMP":
      return timestampText(String(value));
    default:
      return value;
  }
}

function rowObject(fields: readonly Field[], cells: readonly Cell[]): Record<string, unknown> {
  const row: Record<string, unknown> = {};
  fields.forEach((field, i) => {
    row[field.name] = cellValue(field, cells[i]?.v);
  });
  return row;
}

/** Integer microseconds since the epoch as `YYYY-MM-DD HH:MM:SS[.ffffff]`, trailing zeros trimmed, as DuckDB prints. */
export function timestampText(micros: string): string {
  const value = BigInt(micros);
  const seconds = value / 1_000_000n - (value < 0n && value % 1_000_000n !== 0n ? 1n : 0n);
  const fraction = value - seconds * 1_000_000n;
  const text = new Date(Number(seconds) * 1000).toISOString().slice(0, 19).replace("T", " ");
  return fraction === 0n ? text : `${text}.${fraction.toString().padStart(6, "0").replace(/0+$/, "")}`;
}

export function formatBytes(bytes: bigint): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let value = Number(bytes);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}
