// A local BigQuery REST endpoint for tests: the few v2 methods the BigQuery adapter calls, on the real
// wire format (paths, int64 as strings, the `{error:{code,message,errors,status}}` body), so the official
// client talks to it unchanged. It loads no data: jobs finish the way a test scripts them, queries answer
// with canned rows. Every request is recorded so tests can assert exactly what the adapter sent.
// One query is evaluated rather than canned, when no canned answer is queued: the adapter's row count by
// batch_id, optionally bounded by timestamp, over rows a test puts in a table with addRows.
// Two checks of the real service are modelled because the loader depends on them: a load job that sends a
// schema differing from its existing destination table fails with "Provided Schema does not match Table"
// (reason invalid), and datasets have a location (datasets.get).
//
//   const fake = await startFakeBigQuery();
//   const bigquery = fakeBigQueryClient(fake, "my-project");

import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { BigQuery } from "@google-cloud/bigquery";
// A transitive dependency of @google-cloud/bigquery (through @google-cloud/common), used only here: the
// pass-through client sends no Authorization header and never looks for Application Default Credentials,
// which would otherwise probe the GCE metadata server.
import { PassThroughClient } from "google-auth-library";

export interface RecordedRequest {
  method: string;
  /** Path without the query string, e.g. /bigquery/v2/projects/p/jobs. */
  path: string;
  query: Record<string, string>;
  /** The parsed JSON body, or undefined when there was none. */
  body: unknown;
}

export interface ErrorProto {
  reason: string;
  message: string;
  location?: string;
}

/** How one job (by ID) behaves once inserted. Jobs without a script finish DONE at once with 0 rows. */
export interface JobScript {
  /** jobs.get calls answered PENDING before the job runs (the insert response counts as one). */
  pendingPolls?: number;
  /** Then jobs.get calls answered RUNNING. */
  runningPolls?: number;
  /** statistics.load.outputRows once DONE and successful. */
  outputRows?: number;
  /** A failed job: BigQuery's errorResult and errors[] (errors defaults to [errorResult]). */
  errorResult?: ErrorProto;
  errors?: ErrorProto[];
}

/** One canned answer to jobs.query, consumed in order. */
export interface QueryScript {
  fields: { name: string; type: string }[];
  /** Cell values as BigQuery sends them: strings (int64 too) or null. */
  rows: (string | null)[][];
  /** getQueryResults calls answered jobComplete:false before the rows come (jobs.query counts as one). */
  incompletePolls?: number;
  /** Rows per page; the rest come through pageToken. Default: all at once. */
  pageSize?: number;
  /** Fail the jobs.query call instead, 404 notFound, as BigQuery does for a table that does not exist. */
  notFound?: string;
}

/** A row of a table, the columns the evaluated row-count query reads. */
export interface TableRow {
  batch_id: string;
  timestamp: string;
}

interface StoredJob {
  resource: Record<string, unknown>;
  script: JobScript;
  polls: number;
}

interface StoredQuery {
  projectId: string;
  jobId: string;
  location: string;
  script: QueryScript;
  polls: number;
}

export interface FakeBigQuery {
  url: string;
  readonly requests: RecordedRequest[];
  /** Requests whose method and path match, e.g. requestsTo("POST", "/jobs"). Paths match by suffix. */
  requestsTo(method: string, pathSuffix: string): RecordedRequest[];
  /** The next `count` jobs.insert calls fail with 403 and this reason (a quota, or access denied); no job is created. */
  failNextInserts(count: number, reason: "quotaExceeded" | "rateLimitExceeded" | "accessDenied"): void;
  scriptJob(jobId: string, script: JobScript): void;
  queueQueryResult(script: QueryScript): void;
  /** A table that already exists, as tables.get returns it; give `schema: { fields }` to have load jobs check it. */
  addTable(projectId: string, datasetId: string, tableId: string, resource?: Record<string, unknown>): void;
  /**
   * Rows for the evaluated row-count query (the table is created if missing). `timestamp` as BigQuery prints
   * a TIMESTAMP in UTC, "2026-11-21 09:15:00.123456"; milliseconds are what the fake compares.
   */
  addRows(projectId: string, datasetId: string, tableId: string, rows: readonly TableRow[]): void;
  /** A dataset in a location ("US", "EU", "europe-west1"…), as datasets.get returns it. */
  addDataset(projectId: string, datasetId: string, location: string): void;
  /** Called with each request after it is recorded and before it is answered, e.g. to stage a race. */
  onRequest(hook: ((request: RecordedRequest) => void) | undefined): void;
  /** The stored job resource, as jobs.get would return it now (without counting a poll). */
  job(jobId: string): Record<string, unknown> | undefined;
  table(projectId: string, datasetId: string, tableId: string): Record<string, unknown> | undefined;
  stop(): Promise<void>;
}

/** A BigQuery client pointed at the fake, without credentials and without automatic retries. */
export function fakeBigQueryClient(fake: FakeBigQuery, projectId: string, location?: string): BigQuery {
  return new BigQuery({
    projectId,
    apiEndpoint: fake.url,
    authClient: new PassThroughClient(),
    retryOptions: { autoRetry: false },
    ...(location === undefined ? {} : { location }),
  });
}

class HttpError extends Error {
  readonly code: number;
  readonly status: string;
  readonly reason: string;
  constructor(code: number, status: string, reason: string, message: string) {
    super(message);
    this.code = code;
    this.status = status;
    this.reason = reason;
  }
  toJSON() {
    return {
      error: {
        code: this.code,
        message: this.message,
        errors: [{ message: this.message, domain: "global", reason: this.reason }],
        status: this.status,
      },
    };
  }
}

const notFound = (what: string) => new HttpError(404, "NOT_FOUND", "notFound", `Not found: ${what}`);
const alreadyExists = (what: string) =>
  new HttpError(409, "ALREADY_EXISTS", "duplicate", `Already Exists: ${what}`);
const invalid = (message: string) => new HttpError(400, "INVALID_ARGUMENT", "invalid", message);

const QUOTA_MESSAGES = {
  quotaExceeded:
    "Quota exceeded: Your table exceeded quota for imports or query appends per table. For more information, see https://cloud.google.com/bigquery/docs/troubleshoot-quotas",
  rateLimitExceeded:
    "Exceeded rate limits: too many api requests per user per method for this user_method. For more information, see https://cloud.google.com/bigquery/docs/troubleshoot-quotas",
};

const JOB_ID = /^[A-Za-z0-9_-]{1,1024}$/;

interface FieldSchema {
  name: string;
  type: string;
  mode?: string;
}

interface LoadConfiguration {
  schema?: { fields?: FieldSchema[] };
  destinationTable?: { projectId?: string; datasetId: string; tableId: string };
}

const invalidError = (message: string): ErrorProto => ({ reason: "invalid", message });

// The BigQuery adapter's row count (bigquery.ts rowCountSql), with and without the timestamp bounds.
const ROW_COUNT_QUERY =
  /^SELECT batch_id, COUNT\(\*\) AS row_count FROM `([^`.]+)\.([^`.]+)\.([^`.]+)` WHERE (timestamp >= @from AND timestamp < @to AND )?batch_id IN UNNEST\(@batch_ids\) GROUP BY batch_id$/;

interface QueryParameter {
  name?: string;
  parameterType?: { type?: string; arrayType?: { type?: string } };
  parameterValue?: { value?: string; arrayValues?: { value?: string }[] };
}

/** A TIMESTAMP as BigQuery prints it in UTC, or an RFC 3339 parameter value, in epoch milliseconds. */
function timestampMillis(text: string): number {
  const millis = Date.parse(/[zZ]|[+-]\d\d:\d\d$/.test(text) ? text : `${text.replace(" ", "T")}Z`);
  if (Number.isNaN(millis)) throw invalid(`Invalid timestamp: '${text}'`);
  return millis;
}

export async function startFakeBigQuery(): Promise<FakeBigQuery> {
  const requests: RecordedRequest[] = [];
  const jobs = new Map<string, StoredJob>();
  const scripts = new Map<string, JobScript>();
  const tables = new Map<string, Record<string, unknown>>();
  const datasets = new Map<string, Record<string, unknown>>();
  const queryScripts: QueryScript[] = [];
  const tableRows = new Map<string, TableRow[]>();
  const queries = new Map<string, StoredQuery>();
  const failures: ("quotaExceeded" | "rateLimitExceeded" | "accessDenied")[] = [];
  let url = "";
  let hook: ((request: RecordedRequest) => void) | undefined;

  const tableKey = (p: string, d: string, t: string) => `${p}:${d}.${t}`;

  function jobState(job: StoredJob): "PENDING" | "RUNNING" | "DONE" {
    const pending = job.script.pendingPolls ?? 0;
    const running = job.script.runningPolls ?? 0;
    if (job.polls < pending) return "PENDING";
    if (job.polls < pending + running) return "RUNNING";
    return "DONE";
  }

  /** The job resource as it looks now; each call is one poll. */
  function pollJob(job: StoredJob): Record<string, unknown> {
    const resource = renderJob(job);
    job.polls += 1;
    return resource;
  }

  function renderJob(job: StoredJob): Record<string, unknown> {
    const state = jobState(job);
    const resource = structuredClone(job.resource);
    const statistics = resource.statistics as Record<string, unknown>;
    const status: Record<string, unknown> = { state };
    if (state !== "PENDING") statistics.startTime = statistics.creationTime;
    if (state === "DONE") {
      statistics.endTime = String(Date.now());
      const { errorResult, errors, outputRows } = job.script;
      if (errorResult !== undefined) {
        status.errorResult = errorResult;
        status.errors = errors ?? [errorResult];
      } else {
        const uris = ((resource.configuration as { load?: { sourceUris?: string[] } }).load?.sourceUris ??
          []) as string[];
        statistics.load = {
          inputFiles: String(uris.length),
          inputFileBytes: "0",
          outputRows: String(outputRows ?? 0),
          outputBytes: "0",
          badRecords: "0",
        };
      }
    }
    resource.status = status;
    return resource;
  }

  function insertJob(projectId: string, body: Record<string, unknown>): Record<string, unknown> {
    const failure = failures.shift();
    if (failure === "accessDenied") {
      throw new HttpError(
        403,
        "PERMISSION_DENIED",
        failure,
        `Access Denied: Project ${projectId}: User does not have bigquery.jobs.create permission in project ${projectId}.`,
      );
    }
    if (failure !== undefined) {
      throw new HttpError(403, "PERMISSION_DENIED", failure, QUOTA_MESSAGES[failure]);
    }
    const reference = (body.jobReference ?? {}) as Record<string, unknown>;
    const jobId = typeof reference.jobId === "string" ? reference.jobId : `job_${randomUUID()}`;
    if (!JOB_ID.test(jobId)) {
      throw invalid(
        `Invalid job ID "${jobId}". Job IDs must be alphanumeric (plus underscores and dashes) and must be at most 1024 characters long.`,
      );
    }
    const location = typeof reference.location === "string" ? reference.location : "US";
    if (jobs.has(jobId)) throw alreadyExists(`Job ${projectId}:${location}.${jobId}`);
    const configuration = (body.configuration ?? {}) as Record<string, unknown>;
    const load = configuration.load as { sourceUris?: unknown } | undefined;
    if (load !== undefined && (!Array.isArray(load.sourceUris) || load.sourceUris.length === 0)) {
      throw invalid("Load configuration must specify at least one source URI");
    }
    const resource: Record<string, unknown> = {
      kind: "bigquery#job",
      etag: randomUUID(),
      id: `${projectId}:${location}.${jobId}`,
      selfLink: `${url}/bigquery/v2/projects/${projectId}/jobs/${jobId}?location=${location}`,
      user_email: "fake@example.com",
      configuration: { ...configuration, jobType: load !== undefined ? "LOAD" : "QUERY" },
      jobReference: { projectId, jobId, location },
      statistics: { creationTime: String(Date.now()) },
      principal_subject: "user:fake@example.com",
      jobCreationReason: { code: "REQUESTED" },
    };
    const script = scripts.get(jobId) ?? {};
    const mismatch = load === undefined ? undefined : schemaMismatch(projectId, load as LoadConfiguration);
    const job: StoredJob = {
      resource,
      // BigQuery accepts the job and fails it when it runs: the ID is taken, the job is DONE with errors.
      script:
        mismatch === undefined
          ? script
          : { ...script, errorResult: invalidError(mismatch), errors: [invalidError(mismatch)] },
      polls: 0,
    };
    jobs.set(jobId, job);
    return pollJob(job);
  }

  /**
   * Why a load's schema does not fit its existing destination table, in BigQuery's words, or undefined. A
   * load without a schema uses the table's own; one with a schema must match it (no schemaUpdateOptions
   * here), whichever side has the extra field.
   */
  function schemaMismatch(projectId: string, load: LoadConfiguration): string | undefined {
    const given = load.schema?.fields;
    const destination = load.destinationTable;
    if (given === undefined || destination === undefined) return undefined;
    const key = tableKey(destination.projectId ?? projectId, destination.datasetId, destination.tableId);
    const existing = (tables.get(key)?.schema as { fields?: FieldSchema[] } | undefined)?.fields;
    if (existing === undefined) return undefined;
    const prefix = `Provided Schema does not match Table ${key}.`;
    const byName = new Map(existing.map((f) => [f.name.toLowerCase(), f]));
    for (const field of given) {
      const current = byName.get(field.name.toLowerCase());
      if (current === undefined) return `${prefix} Cannot add fields (field: ${field.name})`;
      if (current.type !== field.type)
        return `${prefix} Field ${field.name} has changed type from ${current.type} to ${field.type}`;
      if ((current.mode ?? "NULLABLE") !== (field.mode ?? "NULLABLE"))
        return `${prefix} Field ${field.name} has changed mode from ${current.mode ?? "NULLABLE"} to ${field.mode ?? "NULLABLE"}`;
    }
    const givenNames = new Set(given.map((f) => f.name.toLowerCase()));
    const missing = existing.find((f) => !givenNames.has(f.name.toLowerCase()));
    if (missing !== undefined) return `${prefix} Field ${missing.name} is missing in new schema`;
    return undefined;
  }

  function getDataset(projectId: string, datasetId: string) {
    const dataset = datasets.get(`${projectId}:${datasetId}`);
    if (dataset === undefined) throw notFound(`Dataset ${projectId}:${datasetId}`);
    return dataset;
  }

  function getJob(projectId: string, jobId: string, location: string | undefined) {
    const job = jobs.get(jobId);
    const reference = job?.resource.jobReference as { location: string } | undefined;
    // Job lookups are per location: the real API does not find a job asked for in another one.
    if (job === undefined || (location !== undefined && location !== reference?.location)) {
      throw notFound(`Job ${projectId}:${location ?? "US"}.${jobId}`);
    }
    return pollJob(job);
  }

  function insertTable(projectId: string, datasetId: string, body: Record<string, unknown>) {
    const reference = (body.tableReference ?? {}) as Record<string, unknown>;
    const tableId = reference.tableId;
    if (typeof tableId !== "string") throw invalid("Required parameter is missing: tableReference.tableId");
    const key = tableKey(projectId, datasetId, tableId);
    if (tables.has(key)) throw alreadyExists(`Table ${key}`);
    const resource = {
      ...body,
      kind: "bigquery#table",
      id: key,
      tableReference: { projectId, datasetId, tableId },
      type: "TABLE",
      creationTime: String(Date.now()),
      numRows: "0",
    };
    tables.set(key, resource);
    return resource;
  }

  function queryPage(query: StoredQuery, pageToken: string | undefined) {
    const reference = { projectId: query.projectId, jobId: query.jobId, location: query.location };
    if (query.polls++ < (query.script.incompletePolls ?? 0)) {
      return { jobReference: reference, jobComplete: false };
    }
    const start = pageToken === undefined ? 0 : Number(pageToken);
    const size = query.script.pageSize ?? query.script.rows.length;
    const end = Math.min(start + size, query.script.rows.length);
    const page: Record<string, unknown> = {
      jobReference: reference,
      jobComplete: true,
      schema: { fields: query.script.fields.map((f) => ({ ...f, mode: "NULLABLE" })) },
      totalRows: String(query.script.rows.length),
      rows: query.script.rows.slice(start, end).map((row) => ({ f: row.map((v) => ({ v })) })),
    };
    if (end < query.script.rows.length) page.pageToken = String(end);
    return page;
  }

  /** The answer to the adapter's row-count query, computed from the table's rows; undefined for another query. */
  function evaluateRowCount(body: Record<string, unknown>): QueryScript | undefined {
    const match = ROW_COUNT_QUERY.exec(body.query as string);
    if (match === null) return undefined;
    const [, project, dataset, table, bounded] = match as unknown as [
      string,
      string,
      string,
      string,
      string?,
    ];
    const key = tableKey(project, dataset, table);
    const location = typeof body.location === "string" ? body.location : "US";
    if (!tables.has(key)) throw notFound(`Table ${key} was not found in location ${location}`);
    const parameters = (Array.isArray(body.queryParameters) ? body.queryParameters : []) as QueryParameter[];
    const parameter = (name: string, type: string) => {
      const found = parameters.find((p) => p.name === name);
      if (found === undefined) throw invalid(`Query parameter '${name}' not found`);
      if (found.parameterType?.type !== type) {
        throw invalid(
          `Query parameter '${name}' has type ${found.parameterType?.type}, the query needs ${type}`,
        );
      }
      return found;
    };
    const ids = new Set(
      (parameter("batch_ids", "ARRAY").parameterValue?.arrayValues ?? []).map((v) => String(v.value)),
    );
    const from = bounded
      ? timestampMillis(String(parameter("from", "TIMESTAMP").parameterValue?.value))
      : -Infinity;
    const to = bounded
      ? timestampMillis(String(parameter("to", "TIMESTAMP").parameterValue?.value))
      : Infinity;
    const counts = new Map<string, number>();
    for (const row of tableRows.get(key) ?? []) {
      const at = timestampMillis(row.timestamp);
      if (!ids.has(row.batch_id) || at < from || at >= to) continue;
      counts.set(row.batch_id, (counts.get(row.batch_id) ?? 0) + 1);
    }
    return {
      fields: [
        { name: "batch_id", type: "STRING" },
        { name: "row_count", type: "INTEGER" },
      ],
      rows: [...counts].map(([id, count]) => [id, String(count)]),
    };
  }

  function startQuery(projectId: string, body: Record<string, unknown>) {
    if (typeof body.query !== "string") throw invalid("Required parameter is missing: query");
    const script = queryScripts.shift() ?? evaluateRowCount(body);
    if (script === undefined) {
      throw new HttpError(500, "INTERNAL", "backendError", "fake BigQuery: no canned query result queued");
    }
    if (script.notFound !== undefined) throw notFound(script.notFound);
    const location = typeof body.location === "string" ? body.location : "US";
    const query: StoredQuery = { projectId, jobId: `job_${randomUUID()}`, location, script, polls: 0 };
    queries.set(query.jobId, query);
    return { kind: "bigquery#queryResponse", ...queryPage(query, undefined) };
  }

  function getQueryResults(projectId: string, jobId: string, params: Record<string, string>) {
    const query = queries.get(jobId);
    if (query === undefined || (params.location !== undefined && params.location !== query.location)) {
      throw notFound(`Job ${projectId}:${params.location ?? "US"}.${jobId}`);
    }
    return { kind: "bigquery#getQueryResultsResponse", ...queryPage(query, params.pageToken) };
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const parsed = new URL(req.url ?? "/", "http://fake");
    const method = req.method ?? "GET";
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    let body: unknown;
    if (text.trim() !== "") {
      try {
        body = JSON.parse(text);
      } catch {
        throw invalid("Invalid JSON payload received.");
      }
    }
    const query = Object.fromEntries(parsed.searchParams);
    const recorded: RecordedRequest = { method, path: parsed.pathname, query, body };
    requests.push(recorded);
    hook?.(recorded);
    const object = (body ?? {}) as Record<string, unknown>;
    const parts = parsed.pathname.split("/").filter(Boolean).map(decodeURIComponent);
    // ["bigquery", "v2", "projects", p, ...rest]
    if (parts[0] !== "bigquery" || parts[1] !== "v2" || parts[2] !== "projects" || parts[3] === undefined) {
      throw notFound(`URL ${parsed.pathname}`);
    }
    const project = parts[3];
    const rest = parts.slice(4);
    const send = (value: unknown) => sendJson(res, 200, value);
    if (rest[0] === "jobs" && rest.length === 1 && method === "POST") return send(insertJob(project, object));
    if (rest[0] === "jobs" && rest.length === 2 && method === "GET") {
      return send(getJob(project, rest[1]!, query.location));
    }
    if (rest[0] === "queries" && rest.length === 1 && method === "POST")
      return send(startQuery(project, object));
    if (rest[0] === "queries" && rest.length === 2 && method === "GET") {
      return send(getQueryResults(project, rest[1]!, query));
    }
    if (rest[0] === "datasets" && rest.length === 2 && method === "GET")
      return send(getDataset(project, rest[1]!));
    if (rest[0] === "datasets" && rest[2] === "tables" && rest[1] !== undefined) {
      const dataset = rest[1];
      if (rest.length === 3 && method === "POST") return send(insertTable(project, dataset, object));
      if (rest.length === 4 && method === "GET") {
        const key = tableKey(project, dataset, rest[3]!);
        const table = tables.get(key);
        if (table === undefined) throw notFound(`Table ${key}`);
        return send(table);
      }
    }
    throw notFound(`URL ${method} ${parsed.pathname} (not implemented by the fake)`);
  }

  const server = createServer((req, res) => {
    route(req, res).catch((error: unknown) => {
      const httpError =
        error instanceof HttpError
          ? error
          : new HttpError(500, "INTERNAL", "backendError", `fake BigQuery: ${(error as Error).message}`);
      sendJson(res, httpError.code, httpError.toJSON());
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    requests,
    requestsTo: (method, suffix) => requests.filter((r) => r.method === method && r.path.endsWith(suffix)),
    failNextInserts(count, reason) {
      for (let i = 0; i < count; i++) failures.push(reason);
    },
    scriptJob: (jobId, script) => void scripts.set(jobId, script),
    queueQueryResult: (script) => void queryScripts.push(script),
    onRequest(next) {
      hook = next;
    },
    addTable(projectId, datasetId, tableId, resource = {}) {
      insertTable(projectId, datasetId, { ...resource, tableReference: { tableId } });
    },
    addRows(projectId, datasetId, tableId, rows) {
      const key = tableKey(projectId, datasetId, tableId);
      if (!tables.has(key)) insertTable(projectId, datasetId, { tableReference: { tableId } });
      const stored = tableRows.get(key) ?? [];
      stored.push(...rows);
      tableRows.set(key, stored);
    },
    addDataset(projectId, datasetId, location) {
      datasets.set(`${projectId}:${datasetId}`, {
        kind: "bigquery#dataset",
        id: `${projectId}:${datasetId}`,
        datasetReference: { projectId, datasetId },
        location,
        creationTime: String(Date.now()),
      });
    },
    job(jobId) {
      const job = jobs.get(jobId);
      return job === undefined ? undefined : renderJob(job);
    },
    table: (projectId, datasetId, tableId) => tables.get(tableKey(projectId, datasetId, tableId)),
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const data = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { "Content-Type": "application/json; charset=UTF-8", "Content-Length": data.length });
  res.end(data);
}
