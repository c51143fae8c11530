// The BigQuery adapter against a local fake of the REST API, through the real @google-cloud/bigquery client:
// what goes over the wire (the load configuration above all) and how BigQuery's answers map to the port.

import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import { BIGQUERY_CLUSTERING, BIGQUERY_TIME_PARTITIONING, bigQuerySchema } from "../../lib/record/ddl.ts";
import { BigQueryWarehouse } from "./bigquery.ts";
import { type LoadJobSpec, WarehouseQuotaError } from "./port.ts";
import { type DryRunFront, type DryRunRequest, startDryRunFront } from "./test_support/dry-run.ts";
import {
  type FakeBigQuery,
  fakeBigQueryClient,
  type RecordedRequest,
  startFakeBigQuery,
} from "./test_support/fake-bigquery.ts";

const PROJECT = "logarchive-test";
const LOCATION = "EU";
const JOBS_PATH = `/bigquery/v2/projects/${PROJECT}/jobs`;

let counter = 0;
function spec(overrides: Partial<LoadJobSpec> = {}): LoadJobSpec {
  counter += 1;
  return {
    jobId: `ld_payments_${String(counter).padStart(6, "0")}_a1`,
    destination: { dataset: "logs", table: "container_logs" },
    sourceUris: [
      "gs://landing/logs/analytics/namespace=payments/dt=2026-11-21/hour=09/node-a_0123abcd_000000000001.ndjson.gz",
      "gs://landing/logs/analytics/namespace=payments/dt=2026-11-21/hour=09/node-a_0123abcd_000000000002.ndjson.gz",
    ],
    labels: { logarchive: "loader", namespace: "payments", batch: `seq-${counter}` },
    ...overrides,
  };
}

describe("BigQueryWarehouse", () => {
  let fake: FakeBigQuery;
  let warehouse: BigQueryWarehouse;

  before(async () => {
    fake = await startFakeBigQuery();
    warehouse = new BigQueryWarehouse({
      projectId: PROJECT,
      location: LOCATION,
      bigquery: fakeBigQueryClient(fake, PROJECT),
    });
  });
  after(async () => {
    await warehouse.close();
    await fake.stop();
  });
  beforeEach(() => {
    fake.requests.length = 0;
    fake.onRequest(undefined);
  });

  describe("insertLoadJob", () => {
    it("sends the exact load configuration, with the job ID, location and labels", async () => {
      const job = spec();
      fake.scriptJob(job.jobId, { outputRows: 1234 });
      const { status, existed } = await warehouse.insertLoadJob(job);

      const inserts = fake.requestsTo("POST", JOBS_PATH);
      assert.equal(inserts.length, 1);
      assert.deepEqual(inserts[0]!.body, {
        jobReference: { projectId: PROJECT, jobId: job.jobId, location: LOCATION },
        configuration: {
          load: {
            sourceUris: job.sourceUris,
            sourceFormat: "NEWLINE_DELIMITED_JSON",
            destinationTable: { projectId: PROJECT, datasetId: "logs", tableId: "container_logs" },
            writeDisposition: "WRITE_APPEND",
            // The table exists (ensureTable made it): its own schema, partitioning and clustering apply, so
            // a column added to it first does not fail the load.
            createDisposition: "CREATE_NEVER",
            maxBadRecords: 0,
            ignoreUnknownValues: false,
          },
          labels: job.labels,
        },
      });
      const body = inserts[0]!.body as { configuration: { load: Record<string, unknown> } };
      assert.ok(!("compression" in body.configuration.load), "gzip NDJSON needs no compression flag");
      for (const key of ["schema", "schemaUpdateOptions", "timePartitioning", "clustering"])
        assert.ok(!(key in body.configuration.load), `no ${key}: the existing table's applies`);
      for (const uri of job.sourceUris) assert.ok(!uri.includes("#"), "no #generation in source URIs");

      assert.equal(existed, false);
      assert.deepEqual(status, {
        jobId: job.jobId,
        state: "DONE",
        errors: [],
        outputRows: 1234,
        sourceUris: job.sourceUris,
      });
    });

    it("answers a duplicate job ID (409) with the existing job and existed=true, starting nothing", async () => {
      const job = spec();
      fake.scriptJob(job.jobId, { outputRows: 42 });
      const first = await warehouse.insertLoadJob(job);
      const second = await warehouse.insertLoadJob(job);

      assert.equal(first.existed, false);
      assert.equal(second.existed, true);
      assert.deepEqual(second.status, first.status);
      assert.equal(second.status.outputRows, 42);
      const jobIds = fake
        .requestsTo("POST", JOBS_PATH)
        .map((r) => (r.body as LoadJobBody).jobReference.jobId);
      assert.deepEqual(jobIds, [job.jobId, job.jobId], "the second insert was answered 409");
      const gets = fake.requestsTo("GET", `${JOBS_PATH}/${job.jobId}`);
      assert.equal(gets.length, 1);
      assert.equal(gets[0]!.query.location, LOCATION, "jobs are looked up in their location");
    });

    it("returns a failed job found on 409 as failed, so the caller retries under a new ID", async () => {
      const job = spec();
      const bad = job.sourceUris[1]!;
      fake.scriptJob(job.jobId, {
        errorResult: { reason: "invalid", message: "JSON table encountered too many errors, giving up." },
        errors: [{ reason: "invalid", location: bad, message: `No such field: extra. File: ${bad}` }],
      });
      await warehouse.insertLoadJob(job);
      const again = await warehouse.insertLoadJob(job);
      assert.equal(again.existed, true);
      assert.equal(again.status.state, "DONE");
      assert.equal(again.status.errorResult?.location, bad);
      assert.equal(again.status.outputRows, undefined);
    });

    for (const reason of ["quotaExceeded", "rateLimitExceeded"] as const) {
      it(`throws WarehouseQuotaError on 403 ${reason}, and the same ID can be inserted later`, async () => {
        const job = spec();
        fake.failNextInserts(1, reason);
        await assert.rejects(warehouse.insertLoadJob(job), (error: unknown) => {
          assert.ok(error instanceof WarehouseQuotaError, String(error));
          assert.equal(error.reason, reason);
          assert.match(
            error.message,
            reason === "quotaExceeded" ? /^Quota exceeded/ : /^Exceeded rate limits/,
          );
          return true;
        });
        assert.equal(fake.job(job.jobId), undefined, "nothing ran");
        const retried = await warehouse.insertLoadJob(job);
        assert.equal(retried.existed, false);
        assert.equal(retried.status.state, "DONE");
      });
    }

    it("passes other API errors through unchanged (here an invalid job ID: 400)", async () => {
      await assert.rejects(warehouse.insertLoadJob(spec({ jobId: "not valid!" })), (error: unknown) => {
        assert.ok(!(error instanceof WarehouseQuotaError));
        assert.equal((error as { code?: number }).code, 400);
        assert.match((error as Error).message, /Invalid job ID/);
        return true;
      });
    });

    it("rejects a dataset name that cannot be spliced into a table reference, before any request", async () => {
      await assert.rejects(
        warehouse.insertLoadJob(spec({ destination: { dataset: "logs`; DROP", table: "container_logs" } })),
        /invalid BigQuery dataset ID/,
      );
      assert.equal(fake.requests.length, 0);
    });
  });

  describe("job status mapping", () => {
    it("names the failing source from errors[].location when errorResult is only the summary", async () => {
      const job = spec();
      const bad = job.sourceUris[0]!;
      const summary =
        "Error while reading data, error message: JSON table encountered too many errors, giving up. Rows: 1; errors: 1. Please look into the errors[] collection for more details.";
      const detail = `Error while reading data, error message: JSON parsing error in row starting at position 0: No such field: extra. File: ${bad}`;
      fake.scriptJob(job.jobId, {
        errorResult: { reason: "invalid", message: summary },
        errors: [
          { reason: "invalid", location: bad, message: detail },
          { reason: "invalid", message: summary },
        ],
      });
      const { status } = await warehouse.insertLoadJob(job);
      assert.equal(status.state, "DONE");
      assert.deepEqual(status.errorResult, { reason: "invalid", message: summary, location: bad });
      assert.deepEqual(status.errors, [
        { reason: "invalid", message: detail, location: bad },
        { reason: "invalid", message: summary },
      ]);
      assert.equal(status.outputRows, undefined, "a failed job loaded nothing");
    });

    it("takes the URI of a missing object from BigQuery's 'Not found: URI' message", async () => {
      const job = spec();
      const missing = job.sourceUris[1]!;
      const notFound = { reason: "notFound", message: `Not found: URI ${missing}` };
      fake.scriptJob(job.jobId, { errorResult: notFound, errors: [notFound] });
      const { status } = await warehouse.insertLoadJob(job);
      assert.equal(status.errorResult?.reason, "notFound");
      assert.equal(status.errorResult?.location, missing);
      assert.equal(status.errors[0]?.location, missing);
    });

    it("drops a location that is not a source URI (quota errors put the quota's name there)", async () => {
      const job = spec();
      const quota = {
        reason: "quotaExceeded",
        location: "partition_modifications_per_column_partitioned_table.long",
        message: "Quota exceeded: Your table exceeded quota for Number of partition modifications",
      };
      fake.scriptJob(job.jobId, { errorResult: quota, errors: [quota] });
      const { status } = await warehouse.insertLoadJob(job);
      assert.deepEqual(status.errorResult, { reason: "quotaExceeded", message: quota.message });
    });

    it("leaves errorResult without a location when errors[] name several files", async () => {
      const job = spec();
      const [a, b] = job.sourceUris as [string, string];
      fake.scriptJob(job.jobId, {
        errorResult: { reason: "invalid", message: "too many errors" },
        errors: [
          { reason: "invalid", location: a, message: `bad row. File: ${a}` },
          { reason: "invalid", location: b, message: `bad row. File: ${b}` },
        ],
      });
      const { status } = await warehouse.insertLoadJob(job);
      assert.equal(status.errorResult?.location, undefined);
      assert.deepEqual(
        status.errors.map((e) => e.location),
        [a, b],
      );
    });
  });

  describe("getLoadJob", () => {
    it("follows a job from PENDING through RUNNING to DONE", async () => {
      const job = spec();
      fake.scriptJob(job.jobId, { pendingPolls: 2, runningPolls: 1, outputRows: 9 });
      const inserted = await warehouse.insertLoadJob(job);
      assert.equal(inserted.status.state, "PENDING");
      assert.equal(inserted.status.outputRows, undefined);
      const states = [];
      for (let i = 0; i < 3; i++) states.push((await warehouse.getLoadJob(job.jobId))?.state);
      assert.deepEqual(states, ["PENDING", "RUNNING", "DONE"]);
      const done = await warehouse.getLoadJob(job.jobId);
      assert.equal(done?.outputRows, 9);
      assert.deepEqual(done?.sourceUris, job.sourceUris);
    });

    it("returns null for an unknown job ID", async () => {
      assert.equal(await warehouse.getLoadJob("ld_never_inserted"), null);
    });

    it("does not find a job that exists only in another location", async () => {
      const job = spec();
      await warehouse.insertLoadJob(job);
      const elsewhere = new BigQueryWarehouse({
        projectId: PROJECT,
        location: "US",
        bigquery: fakeBigQueryClient(fake, PROJECT),
      });
      assert.equal(await elsewhere.getLoadJob(job.jobId), null);
      await assert.rejects(elsewhere.insertLoadJob(job), /another location/);
    });
  });

  describe("schema changes (upgrade order: table, then loader, then shipper)", () => {
    const extraColumn = { name: "trace_id", type: "STRING", mode: "NULLABLE", description: "added first" };

    it("a table altered first, with one extra column, still loads", async () => {
      fake.addTable(PROJECT, "altered", "container_logs", {
        schema: { fields: [...bigQuerySchema(), extraColumn] },
      });
      await warehouse.ensureTable({ dataset: "altered", table: "container_logs" });
      const job = spec({ destination: { dataset: "altered", table: "container_logs" } });
      fake.scriptJob(job.jobId, { outputRows: 7 });
      const { status } = await warehouse.insertLoadJob(job);
      assert.equal(status.errorResult, undefined, status.errorResult?.message);
      assert.equal(status.state, "DONE");
      assert.equal(status.outputRows, 7);
      assert.equal(fake.requestsTo("POST", "/datasets/altered/tables").length, 0, "the table is left alone");
    });

    it("a table that lacks a field the loader's contract has still loads (the loader upgraded first)", async () => {
      const older = bigQuerySchema().filter((f) => f.name !== "parse_error");
      assert.equal(older.length, bigQuerySchema().length - 1);
      fake.addTable(PROJECT, "older", "container_logs", { schema: { fields: older } });
      const job = spec({ destination: { dataset: "older", table: "container_logs" } });
      const { status } = await warehouse.insertLoadJob(job);
      assert.equal(status.errorResult, undefined, status.errorResult?.message);
    });

    it("the fake fails a load that sends a schema differing from the table, as BigQuery does", async () => {
      fake.addTable(PROJECT, "strict", "container_logs", {
        schema: { fields: [...bigQuerySchema(), extraColumn] },
      });
      // createJob rejects a job that comes back with errors, but the job exists: read it by its ID.
      await fakeBigQueryClient(fake, PROJECT)
        .createJob({
          jobId: "with_schema",
          location: LOCATION,
          configuration: {
            load: {
              sourceUris: ["gs://landing/a.ndjson.gz"],
              schema: { fields: bigQuerySchema() },
              destinationTable: { projectId: PROJECT, datasetId: "strict", tableId: "container_logs" },
              writeDisposition: "WRITE_APPEND",
            },
          },
        })
        .catch(() => undefined);
      const status = await warehouse.getLoadJob("with_schema");
      assert.equal(status?.state, "DONE");
      assert.equal(status?.errorResult?.reason, "invalid");
      assert.equal(
        status?.errorResult?.message,
        `Provided Schema does not match Table ${PROJECT}:strict.container_logs. Field trace_id is missing in new schema`,
      );
    });
  });

  describe("datasetLocation", () => {
    it("reads the dataset's location with datasets.get", async () => {
      fake.addDataset(PROJECT, "located", "europe-west1");
      assert.equal(await warehouse.datasetLocation("located"), "europe-west1");
      assert.equal(fake.requestsTo("GET", `/projects/${PROJECT}/datasets/located`).length, 1);
    });

    it("answers null for a dataset that does not exist", async () => {
      assert.equal(await warehouse.datasetLocation("absent"), null);
    });
  });

  describe("ensureTable", () => {
    it("creates a missing table with the contract's schema, day partitions and clustering", async () => {
      await warehouse.ensureTable({ dataset: "fresh", table: "container_logs" });
      const inserts = fake.requestsTo("POST", `/projects/${PROJECT}/datasets/fresh/tables`);
      assert.equal(inserts.length, 1);
      assert.deepEqual(inserts[0]!.body, {
        tableReference: { projectId: PROJECT, datasetId: "fresh", tableId: "container_logs" },
        schema: { fields: bigQuerySchema() },
        timePartitioning: { type: "DAY", field: "timestamp" },
        clustering: { fields: ["namespace", "pod", "container"] },
        requirePartitionFilter: false,
      });
      // The literals above are what BigQuery must receive; the contract's constants must still say so.
      assert.deepEqual(BIGQUERY_TIME_PARTITIONING, { type: "DAY", field: "timestamp" });
      assert.deepEqual(BIGQUERY_CLUSTERING, { fields: ["namespace", "pod", "container"] });
      assert.ok(fake.table(PROJECT, "fresh", "container_logs"));
    });

    it("leaves an existing table alone", async () => {
      fake.addTable(PROJECT, "existing", "container_logs");
      await warehouse.ensureTable({ dataset: "existing", table: "container_logs" });
      assert.equal(fake.requestsTo("GET", "/datasets/existing/tables/container_logs").length, 1);
      assert.equal(fake.requestsTo("POST", "/datasets/existing/tables").length, 0);
    });

    it("tolerates a table created by someone else between its get and its insert (409)", async () => {
      fake.onRequest((request) => {
        if (request.method === "POST" && request.path.endsWith("/datasets/racy/tables")) {
          fake.addTable(PROJECT, "racy", "container_logs");
        }
      });
      await warehouse.ensureTable({ dataset: "racy", table: "container_logs" });
      assert.equal(fake.requestsTo("POST", "/datasets/racy/tables").length, 1, "the insert was answered 409");
    });
  });

  describe("rowCountsByBatch", () => {
    it("sends one parameterized query and reads every page once the job completes", async () => {
      fake.queueQueryResult({
        fields: [
          { name: "batch_id", type: "STRING" },
          { name: "row_count", type: "INTEGER" },
        ],
        rows: [
          ["node-a_0123abcd_000000000001", "3"],
          ["node-a_0123abcd_000000000002", "250000"],
        ],
        incompletePolls: 1,
        pageSize: 1,
      });
      const ids = [
        "node-a_0123abcd_000000000001",
        "node-a_0123abcd_000000000002",
        "node-b_ffff0000_000000000009",
      ];
      const counts = await warehouse.rowCountsByBatch({ dataset: "logs", table: "container_logs" }, ids);
      assert.deepEqual(
        counts,
        new Map([
          ["node-a_0123abcd_000000000001", 3],
          ["node-a_0123abcd_000000000002", 250_000],
        ]),
      );

      const [query, ...others] = fake.requestsTo("POST", `/projects/${PROJECT}/queries`);
      assert.equal(others.length, 0);
      const body = query!.body as Record<string, unknown>;
      assert.equal(
        body.query,
        `SELECT batch_id, COUNT(*) AS row_count FROM \`${PROJECT}.logs.container_logs\` WHERE batch_id IN UNNEST(@batch_ids) GROUP BY batch_id`,
      );
      assert.equal(body.useLegacySql, false);
      assert.equal(body.parameterMode, "NAMED");
      assert.equal(body.location, LOCATION);
      assert.deepEqual(body.queryParameters, [
        {
          name: "batch_ids",
          parameterType: { type: "ARRAY", arrayType: { type: "STRING" } },
          parameterValue: { arrayValues: ids.map((value) => ({ value })) },
        },
      ]);
      const polls = fake
        .requestsTo("GET", "")
        .filter((r) => r.path.includes(`/projects/${PROJECT}/queries/`));
      assert.deepEqual(
        polls.map((r) => r.query.pageToken),
        [undefined, "1"],
        "one poll until complete, then the second page",
      );
      assert.ok(polls.every((r) => r.query.location === LOCATION));
    });

    it("asks nothing for no batch ids", async () => {
      assert.deepEqual(
        await warehouse.rowCountsByBatch({ dataset: "logs", table: "container_logs" }, []),
        new Map(),
      );
      assert.equal(fake.requests.length, 0);
    });
  });

  describe("rowCountsByBatchBetween and its dry run", () => {
    const TABLE = { dataset: "logs", table: "container_logs" };
    const range = { from: new Date("2026-11-21T16:30:00Z"), to: new Date("2026-11-21T20:30:00Z") };
    const boundedSql = `SELECT batch_id, COUNT(*) AS row_count FROM \`${PROJECT}.logs.container_logs\` WHERE timestamp >= @from AND timestamp < @to AND batch_id IN UNNEST(@batch_ids) GROUP BY batch_id`;
    const timestampParameters = [
      {
        name: "from",
        parameterType: { type: "TIMESTAMP" },
        parameterValue: { value: "2026-11-21T16:30:00.000Z" },
      },
      {
        name: "to",
        parameterType: { type: "TIMESTAMP" },
        parameterValue: { value: "2026-11-21T20:30:00.000Z" },
      },
    ];
    const expectedRequest = (ids: readonly string[]) => ({
      query: boundedSql,
      queryParameters: [batchIdsParameter(ids), ...timestampParameters],
      location: LOCATION,
      parameterMode: "NAMED",
      useLegacySql: false,
    });
    const countFields = [
      { name: "batch_id", type: "STRING" },
      { name: "row_count", type: "INTEGER" },
    ];
    // 10,001 distinct ids (one given twice): two queries, 10,000 ids and then 1.
    const manyIds = Array.from(
      { length: 10_001 },
      (_, i) => `node-a_0123abcd_${String(i).padStart(12, "0")}`,
    );

    let front: DryRunFront;
    let priced: BigQueryWarehouse;
    let bytesFor: (request: DryRunRequest) => number | null = () => 0;
    before(async () => {
      front = await startDryRunFront(fake, (request) => bytesFor(request));
      priced = new BigQueryWarehouse({
        projectId: PROJECT,
        location: LOCATION,
        bigquery: fakeBigQueryClient({ ...fake, url: front.url }, PROJECT),
      });
    });
    after(async () => {
      await priced.close();
      await front.stop();
    });
    beforeEach(() => {
      front.dryRuns.length = 0;
    });
    const queries = (): RecordedRequest[] => fake.requestsTo("POST", `/projects/${PROJECT}/queries`);

    it("filters on the partition column with TIMESTAMP parameters, chunked like the unbounded count", async () => {
      fake.queueQueryResult({
        fields: countFields,
        rows: [
          [manyIds[0]!, "3"],
          [manyIds[9_999]!, "7"],
        ],
      });
      fake.queueQueryResult({ fields: countFields, rows: [[manyIds[10_000]!, "2"]] });
      const counts = await warehouse.rowCountsByBatchBetween(TABLE, [...manyIds, manyIds[5]!], range);
      assert.deepEqual(
        counts,
        new Map([
          [manyIds[0], 3],
          [manyIds[9_999], 7],
          [manyIds[10_000], 2],
        ]),
      );
      assert.deepEqual(
        queries().map((r) => rowCountRequest(r.body)),
        [expectedRequest(manyIds.slice(0, 10_000)), expectedRequest(manyIds.slice(10_000))],
      );
    });

    it("counts only the rows inside the range, where the fake evaluates the query over a table's rows", async () => {
      const table = { dataset: "logs", table: "evaluated" };
      const [a, b] = ["node-e_00000001_000000000001", "node-e_00000001_000000000002"];
      fake.addRows(PROJECT, table.dataset, table.table, [
        { batch_id: a, timestamp: "2026-11-21 16:29:59.999000" },
        { batch_id: a, timestamp: "2026-11-21 16:30:00.000000" },
        { batch_id: a, timestamp: "2026-11-21 20:29:59.999000" },
        { batch_id: a, timestamp: "2026-11-21 20:30:00.000000" },
        { batch_id: b, timestamp: "2026-11-22 18:00:00.000000" },
        { batch_id: "node-e_00000001_000000000003", timestamp: "2026-11-21 18:00:00.000000" },
      ]);
      assert.deepEqual(await warehouse.rowCountsByBatchBetween(table, [a, b], range), new Map([[a, 2]]));
      assert.deepEqual(
        await warehouse.rowCountsByBatch(table, [a, b]),
        new Map([
          [a, 4],
          [b, 1],
        ]),
        "the unbounded count reads every row of those batches",
      );
      // A table that does not exist: BigQuery's 404 for the query, which counts as no rows.
      assert.deepEqual(
        await warehouse.rowCountsByBatchBetween({ dataset: "logs", table: "nosuch" }, [a], range),
        new Map(),
      );
    });

    it("answers an empty map for a table that does not exist (404), and asks nothing for no batch ids", async () => {
      fake.queueQueryResult({ fields: [], rows: [], notFound: `Table ${PROJECT}:logs.container_logs` });
      assert.deepEqual(await warehouse.rowCountsByBatchBetween(TABLE, ["x"], range), new Map());
      assert.equal(queries().length, 1);
      assert.deepEqual(await warehouse.rowCountsByBatchBetween(TABLE, [], range), new Map());
      assert.equal(queries().length, 1);
    });

    it("prices the same requests as a dry run, summing totalBytesProcessed over the chunks, running nothing", async () => {
      // A chunk scans 1 kB per batch id here: the sum says both chunks were priced.
      bytesFor = ({ queryParameters }) =>
        1_000 *
        ((queryParameters ?? [])[0] as ReturnType<typeof batchIdsParameter>).parameterValue.arrayValues
          .length;
      const bytes = await priced.dryRunRowCountsByBatchBetween(TABLE, manyIds, range);
      assert.equal(bytes, 10_000_000 + 1_000);
      assert.deepEqual(
        front.dryRuns.map((r) => ({ ...rowCountRequest(r), dryRun: (r as { dryRun?: unknown }).dryRun })),
        [
          { ...expectedRequest(manyIds.slice(0, 10_000)), dryRun: true },
          { ...expectedRequest(manyIds.slice(10_000)), dryRun: true },
        ],
      );
      assert.equal(queries().length, 0, "a dry run never reaches the fake, so no job ran");
    });

    it("prices a table that does not exist (404) at 0 bytes, and no batch ids without asking", async () => {
      bytesFor = () => null;
      assert.equal(await priced.dryRunRowCountsByBatchBetween(TABLE, ["x"], range), 0);
      assert.equal(front.dryRuns.length, 1);
      assert.equal(await priced.dryRunRowCountsByBatchBetween(TABLE, [], range), 0);
      assert.equal(front.dryRuns.length, 1);
    });
  });
});

/** The row count's query and parameters, as jobs.query receives them. */
function rowCountRequest(body: unknown) {
  const { query, queryParameters, location, parameterMode, useLegacySql } = body as Record<string, unknown>;
  return { query, queryParameters, location, parameterMode, useLegacySql };
}

const batchIdsParameter = (ids: readonly string[]) => ({
  name: "batch_ids",
  parameterType: { type: "ARRAY", arrayType: { type: "STRING" } },
  parameterValue: { arrayValues: ids.map((value) => ({ value })) },
});

interface LoadJobBody {
  jobReference: { jobId: string };
}
