// The BigQuery adapter of the warehouse port: load jobs through the REST API (jobs.insert, jobs.get,
// tables.get/insert, jobs.query), sent with the official client's authenticated `request()` rather than
// its higher-level helpers, because those get in the way of exactly-once loading:
//   - createJob() turns a 409 into success only for IDs it generated itself (nodejs-bigquery PR 864), so a
//     duplicate of our deterministic ID would surface as an error;
//   - createJob() rejects when the inserted job already carries status.errors, although the job exists and
//     its ID is taken, so the caller could not tell "refused" from "created and failed".
// Requests still go through the client's auth, endpoint and retry settings.

import { BigQuery } from "@google-cloud/bigquery";
import { BIGQUERY_CLUSTERING, BIGQUERY_TIME_PARTITIONING, bigQuerySchema } from "../../lib/record/ddl.ts";
import {
  type LoadJobError,
  type LoadJobSpec,
  type LoadJobState,
  type LoadJobStatus,
  type TableRef,
  type TimestampRange,
  type WarehousePort,
  WarehouseQuotaError,
} from "./port.ts";

export interface BigQueryWarehouseOptions {
  projectId: string;
  /** Location of the datasets and jobs, e.g. "EU" or "europe-west1". Jobs are looked up in it. */
  location: string;
  /** A ready client (tests point one at a fake). Default: `new BigQuery({ projectId, location })` with ADC. */
  bigquery?: BigQuery;
  /** How long rowCountsByBatch(Between) waits for each of its queries. Default 120 s. */
  queryTimeoutMs?: number;
}

// ---------------------------------------------------------------- REST shapes (the parts we read)

interface ErrorProto {
  reason?: string;
  message?: string;
  location?: string;
}

interface JobResource {
  jobReference?: { jobId?: string; location?: string };
  configuration?: { load?: { sourceUris?: string[] } };
  status?: { state?: string; errorResult?: ErrorProto; errors?: ErrorProto[] };
  statistics?: { load?: { outputRows?: string } };
}

/** A jobs.query request body. */
interface QueryRequest {
  query: string;
  useLegacySql: false;
  parameterMode: "NAMED";
  queryParameters: unknown[];
  location: string;
  timeoutMs: number;
  dryRun?: boolean;
}

interface QueryRow {
  f: { v: unknown }[];
}

interface QueryResponse {
  jobComplete?: boolean;
  jobReference?: { jobId?: string; location?: string };
  pageToken?: string;
  rows?: QueryRow[];
  /** An int64 (a string): what the query bills, or would bill in a dry run. */
  totalBytesProcessed?: string;
}

/** What the client's request() rejects with: common's ApiError. */
interface ApiErrorLike {
  code?: number;
  message: string;
  errors?: { reason?: string; message?: string }[];
}

type RequestOptions = Parameters<BigQuery["request"]>[0];

const QUOTA_REASONS = new Set(["quotaExceeded", "rateLimitExceeded"]);
const ROW_COUNT_CHUNK = 10_000;
// Dataset IDs are letters, digits and underscores; table IDs allow more, but ours never need it, and these
// names are spliced into SQL.
const DATASET_ID = /^[A-Za-z0-9_]{1,1024}$/;
const TABLE_ID = /^[A-Za-z0-9_-]{1,1024}$/;

// ---------------------------------------------------------------- the adapter

export class BigQueryWarehouse implements WarehousePort {
  readonly kind = "bigquery" as const;
  readonly #bigquery: BigQuery;
  readonly #projectId: string;
  readonly #location: string;
  readonly #queryTimeoutMs: number;

  constructor(options: BigQueryWarehouseOptions) {
    this.#bigquery =
      options.bigquery ?? new BigQuery({ projectId: options.projectId, location: options.location });
    this.#projectId = options.projectId;
    this.#location = options.location;
    this.#queryTimeoutMs = options.queryTimeoutMs ?? 120_000;
  }

  async ensureTable(table: TableRef): Promise<void> {
    checkTableRef(table);
    const path = `/datasets/${encodeURIComponent(table.dataset)}/tables`;
    try {
      await this.#call({ method: "GET", uri: `${path}/${encodeURIComponent(table.table)}` });
      return;
    } catch (error) {
      if (codeOf(error) !== 404) throw error;
    }
    try {
      await this.#call({
        method: "POST",
        uri: path,
        json: {
          tableReference: { projectId: this.#projectId, datasetId: table.dataset, tableId: table.table },
          schema: { fields: bigQuerySchema() },
          timePartitioning: { ...BIGQUERY_TIME_PARTITIONING },
          clustering: { fields: [...BIGQUERY_CLUSTERING.fields] },
          requirePartitionFilter: false,
        },
      });
    } catch (error) {
      if (codeOf(error) === 409) return; // created meanwhile by another instance: what we wanted
      if (codeOf(error) === 404) {
        throw new Error(
          `BigQuery dataset ${this.#projectId}:${table.dataset} does not exist in ${this.#location}; ` +
            `create it first (pulumi up creates the policy's datasets): ${(error as Error).message}`,
        );
      }
      throw error;
    }
  }

  /** A dataset's location as datasets.get reports it ("US", "EU", "europe-west1"…), or null if it does not exist. */
  async datasetLocation(dataset: string): Promise<string | null> {
    checkTableRef({ dataset, table: "t" });
    try {
      const resource = await this.#call<{ location?: string }>({
        method: "GET",
        uri: `/datasets/${encodeURIComponent(dataset)}`,
      });
      return resource.location ?? "US";
    } catch (error) {
      if (codeOf(error) === 404) return null;
      throw error;
    }
  }

  async insertLoadJob(spec: LoadJobSpec): Promise<{ status: LoadJobStatus; existed: boolean }> {
    checkTableRef(spec.destination);
    try {
      const job = await this.#call<JobResource>({
        method: "POST",
        uri: "/jobs",
        json: this.#loadJobBody(spec),
      });
      return { status: toLoadJobStatus(job, spec.jobId), existed: false };
    } catch (error) {
      const code = codeOf(error);
      // A job with this ID exists: ours from an earlier call, or from an automatic retry of this very
      // insert whose first attempt reached BigQuery. Either way it must not run twice.
      if (code === 409) {
        const existing = await this.getLoadJob(spec.jobId);
        if (existing === null) {
          throw new Error(
            `BigQuery says job ${spec.jobId} already exists but jobs.get finds none in ${this.#location}; ` +
              `the job ID was probably used in another location. Use a new job ID.`,
          );
        }
        return { status: existing, existed: true };
      }
      const reason = quotaReasonOf(error);
      if (reason !== undefined) throw new WarehouseQuotaError(reason, (error as Error).message);
      throw error;
    }
  }

  async getLoadJob(jobId: string): Promise<LoadJobStatus | null> {
    try {
      const job = await this.#call<JobResource>({
        method: "GET",
        uri: `/jobs/${encodeURIComponent(jobId)}`,
        qs: { location: this.#location },
      });
      return toLoadJobStatus(job, jobId);
    } catch (error) {
      if (codeOf(error) === 404) return null;
      throw error;
    }
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

  /** What rowCountsByBatchBetween would bill: each chunk's query sent as a dry run, which runs no job. */
  async dryRunRowCountsByBatchBetween(
    table: TableRef,
    batchIds: readonly string[],
    timestamps: TimestampRange,
  ): Promise<number> {
    checkTableRef(table);
    let bytes = 0;
    for (const chunk of batchIdChunks(batchIds)) {
      try {
        const response = await this.#call<QueryResponse>({
          method: "POST",
          uri: "/queries",
          json: {
            ...this.#queryBody(rowCountSql(this.#projectId, table, true), chunk, timestamps),
            dryRun: true,
          },
        });
        bytes += Number(response.totalBytesProcessed ?? 0);
      } catch (error) {
        // The count answers an empty map for a missing table, and reads nothing.
        if (codeOf(error) === 404) return 0;
        throw error;
      }
    }
    return bytes;
  }

  async #rowCounts(
    table: TableRef,
    batchIds: readonly string[],
    timestamps: TimestampRange | null,
  ): Promise<Map<string, number>> {
    checkTableRef(table);
    const counts = new Map<string, number>();
    const sql = rowCountSql(this.#projectId, table, timestamps !== null);
    for (const chunk of batchIdChunks(batchIds)) {
      let rows: QueryRow[];
      try {
        rows = await this.#query(this.#queryBody(sql, chunk, timestamps));
      } catch (error) {
        // A table the loader has not created yet holds no rows.
        if (codeOf(error) === 404) return counts;
        throw error;
      }
      for (const row of rows) counts.set(String(row.f[0]?.v), Number(row.f[1]?.v));
    }
    return counts;
  }

  async close(): Promise<void> {
    // The client holds no connections that need closing.
  }

  #loadJobBody(spec: LoadJobSpec) {
    return {
      jobReference: { projectId: this.#projectId, jobId: spec.jobId, location: this.#location },
      configuration: {
        load: {
          sourceUris: [...spec.sourceUris],
          // gzip is detected from the bytes: no compression flag exists or is needed for NDJSON.
          sourceFormat: "NEWLINE_DELIMITED_JSON",
          destinationTable: {
            projectId: this.#projectId,
            datasetId: spec.destination.dataset,
            tableId: spec.destination.table,
          },
          writeDisposition: "WRITE_APPEND",
          // ensureTable creates tables with partitioning and clustering; a load must never create a bare one.
          // So no schema, partitioning or clustering is sent: the table's own apply. A schema sent with
          // WRITE_APPEND must equal the table's, so a column added to the table first (the documented
          // upgrade order, docs/record-format.md) would fail every load with "Provided Schema does not match
          // Table" (reason invalid, which pauses the table).
          createDisposition: "CREATE_NEVER",
          maxBadRecords: 0,
          ignoreUnknownValues: false,
        },
        labels: { ...spec.labels },
      },
    };
  }

  /** A jobs.query body with @batch_ids (ARRAY<STRING>) and, given timestamps, @from and @to (TIMESTAMP). */
  #queryBody(sql: string, batchIds: readonly string[], timestamps: TimestampRange | null): QueryRequest {
    const queryParameters: unknown[] = [
      {
        name: "batch_ids",
        parameterType: { type: "ARRAY", arrayType: { type: "STRING" } },
        parameterValue: { arrayValues: batchIds.map((value) => ({ value })) },
      },
    ];
    if (timestamps !== null) {
      queryParameters.push(
        timestampParameter("from", timestamps.from),
        timestampParameter("to", timestamps.to),
      );
    }
    return {
      query: sql,
      useLegacySql: false,
      parameterMode: "NAMED",
      queryParameters,
      location: this.#location,
      timeoutMs: Math.min(this.#queryTimeoutMs, 10_000),
    };
  }

  /** Runs a query and returns every row, waiting and paging as needed. */
  async #query(body: QueryRequest): Promise<QueryRow[]> {
    const deadline = Date.now() + this.#queryTimeoutMs;
    let response = await this.#call<QueryResponse>({ method: "POST", uri: "/queries", json: body });
    const jobId = response.jobReference?.jobId;
    const rows: QueryRow[] = [];
    for (;;) {
      if (response.jobComplete === true) {
        rows.push(...(response.rows ?? []));
        if (response.pageToken === undefined) return rows;
      } else if (Date.now() > deadline) {
        throw new Error(
          `BigQuery query job ${jobId} did not finish within ${this.#queryTimeoutMs} ms; ` +
            "raise queryTimeoutMs or check the job in the console",
        );
      }
      if (jobId === undefined) throw new Error("BigQuery jobs.query answered without a jobReference");
      response = await this.#call<QueryResponse>({
        method: "GET",
        uri: `/queries/${encodeURIComponent(jobId)}`,
        qs: {
          location: response.jobReference?.location ?? this.#location,
          timeoutMs: 10_000,
          ...(response.jobComplete === true ? { pageToken: response.pageToken } : {}),
        },
      });
    }
  }

  #call<T = unknown>(options: RequestOptions): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#bigquery.request({ ...options, projectId: this.#projectId }, (error, body) => {
        if (error) reject(error);
        else resolve(body as T);
      });
    });
  }
}

// ---------------------------------------------------------------- queries

function rowCountSql(projectId: string, table: TableRef, timeBounded: boolean): string {
  return (
    `SELECT batch_id, COUNT(*) AS row_count FROM \`${projectId}.${table.dataset}.${table.table}\` ` +
    `WHERE ${timeBounded ? "timestamp >= @from AND timestamp < @to AND " : ""}batch_id IN UNNEST(@batch_ids) ` +
    "GROUP BY batch_id"
  );
}

function timestampParameter(name: string, instant: Date) {
  // An RFC 3339 time with its zone (Z): BigQuery reads a TIMESTAMP parameter as that instant.
  return { name, parameterType: { type: "TIMESTAMP" }, parameterValue: { value: instant.toISOString() } };
}

/** The distinct batch ids, ROW_COUNT_CHUNK per query, so no one request carries an unbounded parameter. */
function* batchIdChunks(batchIds: readonly string[]): Generator<string[]> {
  const unique = [...new Set(batchIds)];
  for (let start = 0; start < unique.length; start += ROW_COUNT_CHUNK) {
    yield unique.slice(start, start + ROW_COUNT_CHUNK);
  }
}

// ---------------------------------------------------------------- mapping

function checkTableRef(table: TableRef): void {
  if (!DATASET_ID.test(table.dataset)) {
    throw new Error(
      `invalid BigQuery dataset ID ${JSON.stringify(table.dataset)}: use letters, digits and _`,
    );
  }
  if (!TABLE_ID.test(table.table)) {
    throw new Error(`invalid table ID ${JSON.stringify(table.table)}: use letters, digits, _ and -`);
  }
}

function codeOf(error: unknown): number | undefined {
  return (error as ApiErrorLike | undefined)?.code;
}

function quotaReasonOf(error: unknown): string | undefined {
  const { code, errors } = (error ?? {}) as ApiErrorLike;
  if (code !== 403 && code !== 429) return undefined;
  const reason = errors?.map((e) => e.reason).find((r) => r !== undefined && QUOTA_REASONS.has(r));
  // A bare 429 is a rate limit whatever its body says.
  return reason ?? (code === 429 ? "rateLimitExceeded" : undefined);
}

const GS_URI = /gs:\/\/[^\s,;'"]+/;

/**
 * BigQuery's `location` is not always a URI: quota errors put a quota name there. Only a gs:// URI is kept.
 * "Not found: URI gs://…" carries the URI in its message only, so it is taken from there.
 */
function sourceUriOf(error: ErrorProto): string | undefined {
  if (error.location?.startsWith("gs://")) return error.location;
  if (error.reason === "notFound") return error.message?.match(GS_URI)?.[0];
  return undefined;
}

function toLoadJobError(error: ErrorProto): LoadJobError {
  const location = sourceUriOf(error);
  return {
    reason: error.reason ?? "unknown",
    message: error.message ?? "",
    ...(location === undefined ? {} : { location }),
  };
}

function toLoadJobState(state: string | undefined): LoadJobState {
  if (state === "PENDING" || state === "RUNNING" || state === "DONE") return state;
  throw new Error(`BigQuery returned a job in an unknown state ${JSON.stringify(state)}`);
}

export function toLoadJobStatus(job: JobResource, jobId: string): LoadJobStatus {
  const state = toLoadJobState(job.status?.state);
  const errors = (job.status?.errors ?? []).map(toLoadJobError);
  const status: LoadJobStatus = {
    jobId: job.jobReference?.jobId ?? jobId,
    state,
    errors,
    sourceUris: [...(job.configuration?.load?.sourceUris ?? [])],
  };
  const errorResult = job.status?.errorResult;
  if (errorResult !== undefined) {
    const mapped = toLoadJobError(errorResult);
    // A failed load's errorResult is usually the summary ("too many errors, giving up") and only errors[]
    // names the file. When they all name one file, that file is what failed the job.
    const named = new Set(errors.flatMap((e) => (e.location === undefined ? [] : [e.location])));
    if (mapped.location === undefined && named.size === 1) mapped.location = [...named][0];
    status.errorResult = mapped;
  } else if (state === "DONE") {
    const outputRows = job.statistics?.load?.outputRows;
    if (outputRows !== undefined) status.outputRows = Number(outputRows);
  }
  return status;
}
