// Warehouse schemas generated from RECORD_FIELDS: BigQuery, Athena and DuckDB.
// Nothing here is maintained by hand in parallel with the record; add a field to
// schema.ts and every engine follows.

import { archiveLocation, athenaLocationTemplate, TIERS } from "../keys/layout.ts";
import { type FieldType, RECORD_FIELDS } from "./schema.ts";

export const DEFAULT_TABLE = "container_logs";

// ---------------------------------------------------------------- BigQuery

const BIGQUERY_TYPES: Record<FieldType, string> = {
  STRING: "STRING",
  INT64: "INTEGER",
  BOOL: "BOOLEAN",
  TIMESTAMP: "TIMESTAMP",
};

export interface BigQueryField {
  name: string;
  type: string;
  mode: "REQUIRED" | "NULLABLE";
  description: string;
}

/** The `schema.fields` of a BigQuery table or load job. */
export function bigQuerySchema(): BigQueryField[] {
  return RECORD_FIELDS.map((f) => ({
    name: f.name,
    type: BIGQUERY_TYPES[f.type],
    mode: f.required ? "REQUIRED" : "NULLABLE",
    description: f.description,
  }));
}

/** Partitioning and clustering of every destination table: by day on `timestamp`, clustered for per-workload queries. */
export const BIGQUERY_TIME_PARTITIONING = { type: "DAY", field: "timestamp" } as const;
export const BIGQUERY_CLUSTERING = { fields: ["namespace", "pod", "container"] } as const;

function sqlString(text: string, quote: "'" | '"'): string {
  return quote + text.replaceAll("\\", "\\\\").replaceAll(quote, `\\${quote}`) + quote;
}

/** BigQuery DDL for a destination table, equivalent to bigQuerySchema() plus partitioning and clustering. */
export function bigQueryDdl(dataset: string, table = DEFAULT_TABLE): string {
  const columns = RECORD_FIELDS.map(
    (f) =>
      `  \`${f.name}\` ${f.type}${f.required ? " NOT NULL" : ""} OPTIONS(description=${sqlString(f.description, '"')})`,
  );
  return [
    `CREATE TABLE IF NOT EXISTS \`${dataset}.${table}\` (`,
    columns.join(",\n"),
    ")",
    `PARTITION BY DATE(\`${BIGQUERY_TIME_PARTITIONING.field}\`)`,
    `CLUSTER BY ${BIGQUERY_CLUSTERING.fields.join(", ")};`,
  ].join("\n");
}

// ---------------------------------------------------------------- Athena

const ATHENA_TYPES: Record<FieldType, string> = {
  STRING: "string",
  INT64: "bigint",
  BOOL: "boolean",
  TIMESTAMP: "timestamp",
};

/** Hive partition keys read from the object key; Athena forbids them as data columns too. */
export const ATHENA_PARTITION_KEYS = ["tier", "namespace", "dt", "hour"] as const;

export function athenaColumns(): { name: string; type: string; comment: string }[] {
  return RECORD_FIELDS.filter((f) => !("partitionKey" in f && f.partitionKey)).map((f) => ({
    name: f.name,
    type: ATHENA_TYPES[f.type],
    comment: f.description,
  }));
}

/** How Athena reads the objects: Hive JSON SerDe (deterministic, unlike OpenX) over gzip NDJSON text. */
export const ATHENA_STORAGE = {
  serde: "org.apache.hive.hcatalog.data.JsonSerDe",
  inputFormat: "org.apache.hadoop.mapred.TextInputFormat",
  outputFormat: "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
} as const;

export interface AthenaTableOptions {
  database: string;
  table?: string;
  bucket: string;
  prefix: string;
  /** First day the projection covers, YYYY-MM-DD. */
  projectionStart: string;
}

/** The Glue table properties that make partition projection work over the key layout. */
export function athenaTableProperties(o: AthenaTableOptions): Record<string, string> {
  return {
    "projection.enabled": "true",
    "projection.tier.type": "enum",
    "projection.tier.values": TIERS.join(","),
    // Injected: every query must say which namespaces it reads, which bounds the scan.
    "projection.namespace.type": "injected",
    "projection.dt.type": "date",
    "projection.dt.format": "yyyy-MM-dd",
    "projection.dt.range": `${o.projectionStart},NOW`,
    "projection.dt.interval": "1",
    "projection.dt.interval.unit": "DAYS",
    "projection.hour.type": "integer",
    "projection.hour.range": "0,23",
    "projection.hour.digits": "2",
    "storage.location.template": athenaLocationTemplate(o.bucket, o.prefix),
    has_encrypted_data: "false",
  };
}

/** Athena DDL: Hive JSON SerDe (deterministic, unlike OpenX) over the gzip NDJSON objects. */
export function athenaDdl(o: AthenaTableOptions): string {
  const columns = athenaColumns().map(
    (c) => `  \`${c.name}\` ${c.type} COMMENT ${sqlString(c.comment, "'")}`,
  );
  const properties = Object.entries(athenaTableProperties(o)).map(
    ([k, v]) => `  ${sqlString(k, "'")} = ${sqlString(v, "'")}`,
  );
  return [
    `CREATE EXTERNAL TABLE IF NOT EXISTS \`${o.database}\`.\`${o.table ?? DEFAULT_TABLE}\` (`,
    columns.join(",\n"),
    ")",
    `PARTITIONED BY (${ATHENA_PARTITION_KEYS.map((k) => `\`${k}\` string`).join(", ")})`,
    `ROW FORMAT SERDE '${ATHENA_STORAGE.serde}'`,
    `STORED AS INPUTFORMAT '${ATHENA_STORAGE.inputFormat}'`,
    `OUTPUTFORMAT '${ATHENA_STORAGE.outputFormat}'`,
    `LOCATION '${archiveLocation(o.bucket, o.prefix)}'`,
    "TBLPROPERTIES (",
    properties.join(",\n"),
    ");",
  ].join("\n");
}

// ---------------------------------------------------------------- DuckDB

const DUCKDB_TYPES: Record<FieldType, string> = {
  STRING: "VARCHAR",
  INT64: "BIGINT",
  BOOL: "BOOLEAN",
  // Naive TIMESTAMP holding UTC: TIMESTAMPTZ would parse the zone-less text in the session's zone.
  TIMESTAMP: "TIMESTAMP",
};

export function duckDbColumnTypes(): Record<string, string> {
  return Object.fromEntries(RECORD_FIELDS.map((f) => [f.name, DUCKDB_TYPES[f.type]]));
}

export function duckDbDdl(table = DEFAULT_TABLE): string {
  const columns = RECORD_FIELDS.map(
    (f) => `  "${f.name}" ${DUCKDB_TYPES[f.type]}${f.required ? " NOT NULL" : ""}`,
  );
  return `CREATE TABLE IF NOT EXISTS "${table}" (\n${columns.join(",\n")}\n);`;
}

/** The `columns={...}` argument of DuckDB's read_json, so files are read with the contract's types, not guessed ones. */
export function duckDbReadJsonColumns(): string {
  return `{${RECORD_FIELDS.map((f) => `'${f.name}': '${DUCKDB_TYPES[f.type]}'`).join(", ")}}`;
}

function sqlLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/**
 * A SELECT of the record's columns from gzip NDJSON files, read with the contract's types.
 * Hive partitioning is off: the columns come from the records, never from the path.
 */
export function duckDbSelectRecords(files: readonly string[]): string {
  const list = `[${files.map(sqlLiteral).join(", ")}]`;
  const columns = RECORD_FIELDS.map((f) => `"${f.name}"`).join(", ");
  return `SELECT ${columns} FROM read_json(${list}, format='newline_delimited', compression='gzip', hive_partitioning=false, columns=${duckDbReadJsonColumns()})`;
}
