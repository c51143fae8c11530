// Runs a pack query on a DuckDB connection: the macros of _definitions.sql first, then the
// query as a prepared statement with its parameters bound by name.

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { DuckDBConnection } from "@duckdb/node-api";
import { duckDbBindings, PACK_DIR, type PackQuery, type ParamValue } from "./pack.ts";

export interface QueryResult {
  columns: string[];
  /** Rows as JSON-safe values: timestamps as text, big integers as numbers when they fit. */
  rows: Record<string, unknown>[];
}

/** Creates the pack's macros on the connection (temporary: they need no write access to the database). */
export async function installDuckDbDefinitions(connection: DuckDBConnection, dir = PACK_DIR): Promise<void> {
  await connection.run(await readFile(join(dir, "duckdb", "_definitions.sql"), "utf8"));
}

export async function runDuckDbQuery(
  connection: DuckDBConnection,
  query: Pick<PackQuery, "body">,
  values: ReadonlyMap<string, ParamValue>,
): Promise<QueryResult> {
  const prepared = await connection.prepare(query.body);
  try {
    const bindings = duckDbBindings(values);
    if (Object.keys(bindings).length > 0) prepared.bind(bindings);
    const reader = await prepared.runAndReadAll();
    return { columns: reader.columnNames(), rows: reader.getRowObjectsJson() as Record<string, unknown>[] };
  } finally {
    prepared.destroySync();
  }
}
