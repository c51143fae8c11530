// Runs a pack query on Athena through @aws-sdk/client-athena: StartQueryExecution with the
// statement and its ExecutionParameters (athenaRequest() in pack.ts renders each as a SQL
// literal), GetQueryExecution until the query is SUCCEEDED, FAILED or CANCELLED (progress
// reported on each poll), then GetQueryResults page by page, whose first row is the column
// labels. Athena bills the bytes it scanned (Statistics.DataScannedInBytes), with a 10 MB
// minimum per query, at the price of lib/economics/prices.ts.
// https://docs.aws.amazon.com/athena/latest/APIReference/API_StartQueryExecution.html
// https://docs.aws.amazon.com/athena/latest/APIReference/API_GetQueryExecution.html
// https://docs.aws.amazon.com/athena/latest/APIReference/API_GetQueryResults.html
// https://aws.amazon.com/athena/pricing/

import {
  type AthenaClient,
  GetQueryExecutionCommand,
  GetQueryResultsCommand,
  type QueryExecution,
  StartQueryExecutionCommand,
} from "@aws-sdk/client-athena";
import { UserError } from "../lib/config/errors.ts";
import { DEFAULT_PRICES } from "../lib/economics/prices.ts";
import type { QueryResult } from "./duckdb-runner.ts";

export interface AthenaRunOptions {
  client: AthenaClient;
  workgroup: string;
  database: string;
  catalog?: string;
  /** s3:// URI for the result files; unset, the workgroup's (a workgroup may enforce its own). */
  outputLocation?: string;
  /** Called on each poll: the state, and the seconds since the start. */
  onProgress?(state: string, elapsedMs: number, scannedBytes: number): void;
  /** Waits between polls; default a back-off from 250 ms to 2 s. */
  sleep?(attempt: number): Promise<void>;
  now?(): number;
}

export interface AthenaResult extends QueryResult {
  queryExecutionId: string;
  dataScannedBytes: number;
}

/** Athena's minimum billed scan per query, and what a scan costs in dollars at the price table's rate. */
export const ATHENA_MINIMUM_BYTES = 10_000_000;
export function athenaScanCost(bytes: number): number {
  return (Math.max(bytes, ATHENA_MINIMUM_BYTES) / 1e12) * DEFAULT_PRICES.athena_per_tb.value;
}

const backOff = (attempt: number) =>
  new Promise<void>((resolve) => setTimeout(resolve, Math.min(2000, 250 * 2 ** Math.min(attempt, 3))));

export async function runAthenaQuery(
  request: { queryString: string; executionParameters: string[] },
  options: AthenaRunOptions,
): Promise<AthenaResult> {
  const now = options.now ?? Date.now;
  const started = now();
  const client = options.client;
  const { QueryExecutionId: id } = await send(() =>
    client.send(
      new StartQueryExecutionCommand({
        QueryString: request.queryString,
        ...(request.executionParameters.length > 0
          ? { ExecutionParameters: request.executionParameters }
          : {}),
        WorkGroup: options.workgroup,
        QueryExecutionContext: { Database: options.database, Catalog: options.catalog ?? "AwsDataCatalog" },
        ...(options.outputLocation === undefined
          ? {}
          : { ResultConfiguration: { OutputLocation: options.outputLocation } }),
      }),
    ),
  );
  if (id === undefined) throw new Error("Athena StartQueryExecution answered without a QueryExecutionId");

  let execution: QueryExecution | undefined;
  for (let attempt = 0; ; attempt++) {
    execution = (await send(() => client.send(new GetQueryExecutionCommand({ QueryExecutionId: id }))))
      .QueryExecution;
    const state = execution?.Status?.State ?? "UNKNOWN";
    options.onProgress?.(state, now() - started, execution?.Statistics?.DataScannedInBytes ?? 0);
    if (state === "SUCCEEDED") break;
    if (state === "FAILED" || state === "CANCELLED") {
      const reason = execution?.Status?.StateChangeReason ?? execution?.Status?.AthenaError?.ErrorMessage;
      // ErrorCategory 2 is the user's (bad SQL, a missing table, the workgroup's scan limit).
      const category = execution?.Status?.AthenaError?.ErrorCategory;
      const line = `Athena query ${id} ${state.toLowerCase()}: ${reason ?? "no reason given"}`;
      throw category === 2 || state === "CANCELLED" ? new UserError(line) : new Error(line);
    }
    await (options.sleep ?? backOff)(attempt);
  }

  const columns: string[] = [];
  const types: string[] = [];
  const rows: Record<string, unknown>[] = [];
  let token: string | undefined;
  let first = true;
  do {
    const page = await send(() =>
      client.send(new GetQueryResultsCommand({ QueryExecutionId: id, NextToken: token, MaxResults: 1000 })),
    );
    if (first) {
      for (const info of page.ResultSet?.ResultSetMetadata?.ColumnInfo ?? []) {
        columns.push(info.Label ?? info.Name ?? "");
        types.push(info.Type ?? "varchar");
      }
    }
    const data = page.ResultSet?.Rows ?? [];
    // The first row of the first page repeats the column labels.
    for (const row of first ? data.slice(1) : data) {
      const record: Record<string, unknown> = {};
      columns.forEach((name, i) => {
        record[name] = cellValue(types[i]!, row.Data?.[i]?.VarCharValue);
      });
      rows.push(record);
    }
    first = false;
    token = page.NextToken;
  } while (token !== undefined);

  return {
    columns,
    rows,
    queryExecutionId: id,
    dataScannedBytes: execution?.Statistics?.DataScannedInBytes ?? 0,
  };
}

/** A refused request (bad parameters, an unknown workgroup or database) is one line naming the service's reason. */
async function send<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    const e = error as Error & { $metadata?: { httpStatusCode?: number } };
    if (e.$metadata?.httpStatusCode === 400) throw new UserError(`Athena: ${e.name}: ${e.message}`);
    throw error;
  }
}

/** Cells as the duckdb engine's JSON rows give them: 64-bit integers as text, floats as numbers, timestamps as text. */
function cellValue(type: string, text: string | undefined): unknown {
  if (text === undefined) return null;
  switch (type) {
    case "integer":
    case "smallint":
    case "tinyint":
      return Number(text);
    case "double":
    case "float":
    case "real":
      return Number(text);
    case "boolean":
      return text === "true";
    case "timestamp": {
      // Athena prints timestamp(3) as `…:SS.120`; DuckDB prints `…:SS.12`, and no fraction for zero.
      const m = /^(.*\d{2}:\d{2}:\d{2})(?:\.(\d+))?$/.exec(text);
      if (m === null) return text;
      const fraction = (m[2] ?? "").replace(/0+$/, "");
      return fraction === "" ? m[1] : `${m[1]}.${fraction}`;
    }
    default:
      return type.startsWith("decimal") ? Number(text) : text;
  }
}
