// The warehouse port: the few operations the loader needs from a warehouse. BigQuery is
// the real target (bigquery.ts); DuckDB is the embedded default for local runs
// (duckdb.ts). Both follow BigQuery's load-job semantics, so the loader's exactly-once
// rules are the same whichever adapter runs underneath:
//   - a job ID can be inserted at most once; a second insert finds the first job;
//   - a load job is atomic: it loads every source URI or none;
//   - a failed job names the bad source in `errors[].location` when it can;
//   - a failed job's ID stays taken, so a retry needs a new ID.

export interface TableRef {
  dataset: string;
  table: string;
}

export interface LoadJobSpec {
  /** Deterministic, [A-Za-z0-9_-], at most 1,024 characters. */
  jobId: string;
  destination: TableRef;
  /** gs://bucket/name URIs of gzip NDJSON objects in the record contract's schema. */
  sourceUris: readonly string[];
  /** BigQuery job labels: keys and values ≤ 63 chars of [a-z0-9_-]. */
  labels: Readonly<Record<string, string>>;
}

export type LoadJobState = "PENDING" | "RUNNING" | "DONE";

export interface LoadJobError {
  /** BigQuery's error reason: invalid, quotaExceeded, rateLimitExceeded, backendError, … */
  reason: string;
  message: string;
  /** The source URI the error is about, when the warehouse says. */
  location?: string;
}

export interface LoadJobStatus {
  jobId: string;
  state: LoadJobState;
  /** Set when the job is DONE and failed; a failed job loaded nothing. */
  errorResult?: LoadJobError;
  /** Every error the warehouse reported (BigQuery returns at most five). */
  errors: LoadJobError[];
  /** Rows the job wrote, once DONE and successful. */
  outputRows?: number;
  sourceUris: string[];
}

/**
 * Thrown by insertLoadJob when the warehouse refused to start a job for quota or rate
 * reasons (BigQuery answers 403 quotaExceeded / rateLimitExceeded). Nothing ran; the same
 * job ID may be inserted again later.
 */
export class WarehouseQuotaError extends Error {
  readonly reason: string;
  constructor(reason: string, message: string) {
    super(message);
    this.name = "WarehouseQuotaError";
    this.reason = reason;
  }
}

/** A closed-open range of the record's `timestamp`, the tables' partition column. */
export interface TimestampRange {
  from: Date;
  to: Date;
}

export interface WarehousePort {
  readonly kind: "bigquery" | "duckdb";
  /** Creates the table if missing: the contract's schema, day partitions on timestamp, clustered. */
  ensureTable(table: TableRef): Promise<void>;
  /**
   * Starts a load job (WRITE_APPEND). If a job with this ID already exists, returns that
   * job's status with existed=true instead of starting another (BigQuery's 409).
   */
  insertLoadJob(spec: LoadJobSpec): Promise<{ status: LoadJobStatus; existed: boolean }>;
  /** A job's status, or null if no job has this ID. */
  getLoadJob(jobId: string): Promise<LoadJobStatus | null>;
  /**
   * Where a dataset lives ("US", "EU", "europe-west1"…), or null if it does not exist; for the startup
   * check that load jobs can read the landing bucket. Absent where locations do not apply (DuckDB).
   */
  datasetLocation?(dataset: string): Promise<string | null>;
  /** Rows per batch_id in a table, for the given batch ids (absent ids have no rows). */
  rowCountsByBatch(table: TableRef, batchIds: readonly string[]): Promise<Map<string, number>>;
  /**
   * rowCountsByBatch of the rows with `timestamps.from <= timestamp < timestamps.to` only. The predicate is on
   * the partition column, so the warehouse reads only the partitions of the range (reconcile's count).
   */
  rowCountsByBatchBetween(
    table: TableRef,
    batchIds: readonly string[],
    timestamps: TimestampRange,
  ): Promise<Map<string, number>>;
  /**
   * The bytes rowCountsByBatchBetween would process with these arguments, summed over its queries, without
   * running it (BigQuery's dry run); 0 for a table that does not exist. Absent where the warehouse cannot
   * say (DuckDB, which bills nothing).
   */
  dryRunRowCountsByBatchBetween?(
    table: TableRef,
    batchIds: readonly string[],
    timestamps: TimestampRange,
  ): Promise<number>;
  close(): Promise<void>;
}
