// The archived record: one NDJSON line per container log line.
//
// This list is the single source of truth for the record. The shipper's encoder, the
// BigQuery table schema, the Athena DDL and the DuckDB table are all derived from it
// (see ./ddl.ts), and record/contract.test.ts loads one generated file into DuckDB to
// check that they agree. docs/record-format.md explains the choices.

export const RECORD_SCHEMA_VERSION = 1;

/** Logical column types, named after BigQuery's standard SQL types. */
export type FieldType = "STRING" | "INT64" | "BOOL" | "TIMESTAMP";

export interface FieldSpec {
  readonly name: string;
  readonly type: FieldType;
  /** Required fields are present in every line; nullable ones are omitted when unset to save bytes. */
  readonly required: boolean;
  /** True when the object key also carries the value, so Athena exposes it as a partition key. */
  readonly partitionKey?: boolean;
  readonly description: string;
}

export const RECORD_FIELDS = [
  {
    name: "timestamp",
    type: "TIMESTAMP",
    required: true,
    description:
      "When the container runtime wrote the line, in UTC, to the microsecond (`YYYY-MM-DD HH:MM:SS.ffffff`).",
  },
  {
    name: "timestamp_nanos",
    type: "INT64",
    required: true,
    description:
      "Nanoseconds past the whole second of `timestamp` (0-999999999), so the runtime's full precision is kept.",
  },
  {
    name: "namespace",
    type: "STRING",
    required: true,
    partitionKey: true,
    description: "Kubernetes namespace of the pod.",
  },
  { name: "pod", type: "STRING", required: true, description: "Pod name." },
  {
    name: "pod_uid",
    type: "STRING",
    required: false,
    description: "Pod UID, when the log path carries it (/var/log/pods).",
  },
  { name: "container", type: "STRING", required: true, description: "Container name within the pod." },
  {
    name: "container_id",
    type: "STRING",
    required: false,
    description: "Container ID, when the log path carries it (/var/log/containers).",
  },
  {
    name: "restart_count",
    type: "INT64",
    required: false,
    description: "Container restart count, from the `<n>.log` file name under /var/log/pods.",
  },
  { name: "node", type: "STRING", required: true, description: "Kubernetes node that shipped the line." },
  { name: "stream", type: "STRING", required: true, description: "`stdout` or `stderr`." },
  {
    name: "message",
    type: "STRING",
    required: true,
    description:
      "The log line without its newline, partial chunks merged. Always text, even when it holds JSON: query it with JSON functions.",
  },
  {
    name: "message_base64",
    type: "STRING",
    required: false,
    description:
      "The exact bytes of the line, base64, present only when they are not valid UTF-8 (`message` then has U+FFFD in their place).",
  },
  {
    name: "truncated",
    type: "BOOL",
    required: false,
    description: "True when the merged line exceeded the shipper's max line size and was cut.",
  },
  {
    name: "parse_error",
    type: "STRING",
    required: false,
    description: "Why the line did not parse as CRI or Docker json-file; `message` then holds the raw line.",
  },
  {
    name: "batch_id",
    type: "STRING",
    required: true,
    description: "Identity of the archive object holding this line; equals the object's batch metadata.",
  },
  {
    name: "seq",
    type: "INT64",
    required: true,
    description: "0-based position of the line in its batch; (batch_id, seq) is unique.",
  },
] as const satisfies readonly FieldSpec[];

export type FieldName = (typeof RECORD_FIELDS)[number]["name"];

type TsTypeOf<T extends FieldType> = T extends "STRING" | "TIMESTAMP"
  ? string
  : T extends "INT64"
    ? number
    : boolean;

type RequiredKeys = Extract<(typeof RECORD_FIELDS)[number], { required: true }>["name"];
type OptionalKeys = Extract<(typeof RECORD_FIELDS)[number], { required: false }>["name"];
type FieldByName<N extends FieldName> = Extract<(typeof RECORD_FIELDS)[number], { name: N }>;

/** A record as a plain object, for tests, the CLI and the loader. The shipper encodes without building it. */
export type LogRecord = { [K in RequiredKeys]: TsTypeOf<FieldByName<K>["type"]> } & {
  [K in OptionalKeys]?: TsTypeOf<FieldByName<K>["type"]>;
};

export const FIELD_NAMES: readonly FieldName[] = RECORD_FIELDS.map((f) => f.name);
