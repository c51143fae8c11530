// The embedded warehouse: a DuckDB file standing in for BigQuery (and, over the S3
// archive, for Athena). Tables are created from the record contract's generated DDL.

import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { type DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import { duckDbDdl } from "../lib/record/ddl.ts";

export interface LocalWarehouse {
  path: string;
  instance: DuckDBInstance;
  connect(): Promise<DuckDBConnection>;
  close(): void;
}

export async function openLocalWarehouse(path: string, tables: readonly string[]): Promise<LocalWarehouse> {
  await mkdir(dirname(path), { recursive: true });
  const instance = await DuckDBInstance.create(path);
  const setup = await instance.connect();
  try {
    for (const table of new Set(tables)) await setup.run(duckDbDdl(table));
  } finally {
    setup.closeSync();
  }
  return {
    path,
    instance,
    connect: () => instance.connect(),
    close: () => instance.closeSync(),
  };
}
