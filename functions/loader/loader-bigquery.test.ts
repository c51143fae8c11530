// The loader over the BigQuery adapter, against the local BigQuery REST fake: what a flush
// sends, and how it behaves on quota refusals, transient job failures, long-running jobs
// and a job that names a bad source.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import { Storage } from "@google-cloud/storage";
import { parsePolicy } from "../../lib/policy/policy.ts";
import { bigQuerySchema } from "../../lib/record/ddl.ts";
import { type LocalGcs, startLocalGcs } from "../../local/gcs/server.ts";
import { BigQueryWarehouse } from "../warehouse/bigquery.ts";
import {
  type FakeBigQuery,
  fakeBigQueryClient,
  type JobScript,
  startFakeBigQuery,
} from "../warehouse/test_support/fake-bigquery.ts";
import { resolveLoaderConfig } from "./config.ts";
import type { TableFlushResult } from "./flush.ts";
import { Loader } from "./loader.ts";
import { markerPaths, objectId } from "./markers.ts";
import { type ArchiveObject, archiveObject } from "./test_support/objects.ts";

const POLICY = parsePolicy(
  "analytics:\n  include: ['*']\nwarehouse:\n  dataset: logs\n  table: container_logs\n",
);
let dir: string;
let gcs: LocalGcs;
let fake: FakeBigQuery;
let storage: Storage;
let clock = Date.parse("2026-11-21T12:00:00Z");
let testNo = 0;
let seq = 0;

function newLoader(overrides: Record<string, string> = {}): Loader {
  return new Loader({
    config: resolveLoaderConfig(
      {},
      {
        landing_bucket: "landing",
        state_bucket: "state",
        warehouse: "bigquery",
        bigquery_project: "proj",
        state_prefix: `_logarchive/bq-${testNo}/`,
        job_poll_interval: "10ms",
        ...overrides,
      },
    ),
    policy: POLICY,
    storage,
    warehouse: new BigQueryWarehouse({
      projectId: "proj",
      location: "US",
      bigquery: fakeBigQueryClient(fake, "proj", "US"),
    }),
    log: () => {},
    now: () => clock,
  });
}

async function queue(loader: Loader, count: number): Promise<ArchiveObject[]> {
  const out: ArchiveObject[] = [];
  for (let i = 0; i < count; i++) {
    const o = archiveObject({ namespace: "payments", seq: ++seq, records: 3 });
    const file = storage.bucket("landing").file(o.name);
    await file.save(o.body, {
      resumable: false,
      metadata: { contentType: "application/gzip", metadata: o.metadata },
    });
    const [meta] = await file.getMetadata();
    const r = await loader.handleFinalize({
      bucket: "landing",
      name: o.name,
      generation: String(meta.generation),
      metadata: o.metadata,
    });
    assert.equal(r.outcome, "queued");
    out.push(o);
  }
  return out;
}

const inserts = () =>
  fake.requestsTo("POST", "/jobs").map(
    (r) =>
      r.body as {
        jobReference: { jobId: string };
        configuration: { load: Record<string, unknown>; labels: Record<string, string> };
      },
  );

/** Scripts the next inserted job whose ID ends with `suffix`; IDs carry the manifest's generation, known only then. */
function scriptInsert(suffix: string, script: JobScript): void {
  fake.onRequest((r) => {
    const id = (r.body as { jobReference?: { jobId?: string } } | undefined)?.jobReference?.jobId;
    if (r.method === "POST" && r.path.endsWith("/jobs") && id?.endsWith(suffix)) {
      fake.scriptJob(id, script);
      fake.onRequest(undefined);
    }
  });
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "loader-bq-"));
  gcs = await startLocalGcs({ dataDir: join(dir, "gcs"), host: "127.0.0.1", port: 0 });
  storage = new Storage({ apiEndpoint: gcs.url, projectId: "proj" });
  await storage.createBucket("landing");
  await storage.createBucket("state");
  fake = await startFakeBigQuery();
});

after(async () => {
  await fake.stop();
  await gcs.stop();
  await rm(dir, { recursive: true, force: true });
});

beforeEach(() => {
  testNo++;
  fake.requests.length = 0;
});

describe("loader over BigQuery (REST fake)", () => {
  it("sends one load job per batch with the contract's configuration and a deterministic ID", async () => {
    const loader = newLoader();
    const objects = await queue(loader, 3);
    const [result] = await loader.flush({ force: true });
    assert.equal(result?.status, "loaded");
    const [insert] = inserts();
    const install = await loader.installId();
    // install, table (with a hash, so `a_b.c` and `a.b_c` differ), batch, the manifest's
    // generation (a batch number reused after state loss is a new ID), attempt.
    assert.match(
      insert?.jobReference.jobId ?? "",
      new RegExp(`^logarchive_${install}_logs_container_logs_[0-9a-f]{8}_000000000001_\\d+_a1$`),
    );
    const load = insert?.configuration.load as Record<string, unknown>;
    assert.deepEqual(load.sourceUris, objects.map((o) => `gs://landing/${o.name}`).sort());
    assert.equal(load.sourceFormat, "NEWLINE_DELIMITED_JSON");
    // The table made by ensureTable carries schema, partitioning and clustering; the load sends none.
    assert.equal(load.schema, undefined);
    assert.equal(load.createDisposition, "CREATE_NEVER");
    assert.deepEqual(load.destinationTable, {
      projectId: "proj",
      datasetId: "logs",
      tableId: "container_logs",
    });
    assert.equal(load.writeDisposition, "WRITE_APPEND");
    assert.equal(load.timePartitioning, undefined);
    const table = fake.table("proj", "logs", "container_logs") as Record<string, unknown> | undefined;
    assert.deepEqual(table?.timePartitioning, { type: "DAY", field: "timestamp" });
    assert.deepEqual(table?.clustering, { fields: ["namespace", "pod", "container"] });
    assert.deepEqual((table?.schema as { fields: unknown } | undefined)?.fields, bigQuerySchema());
    assert.deepEqual(insert?.configuration.labels, {
      logarchive_table: "logs_container_logs",
      logarchive_batch: "1",
      logarchive_attempt: "1",
      logarchive_install: install,
    });
    assert.ok(fake.table("proj", "logs", "container_logs"), "the table was created before the load");
    for (const o of objects) assert.ok(await loader.state.exists(markerPaths.done(objectId(o.name))));
  });

  it("a refused insert (403 quotaExceeded) burns no job ID: the next flush inserts the same one", async () => {
    const loader = newLoader();
    await queue(loader, 2);
    fake.failNextInserts(1, "quotaExceeded");
    const [first] = await loader.flush({ force: true });
    assert.equal(first?.status, "deferred");
    const [second] = await loader.flush({ force: true });
    assert.equal(second?.status, "loaded");
    const ids = inserts().map((i) => i.jobReference.jobId);
    assert.equal(ids.length, 2);
    assert.equal(ids[0], ids[1]);
    assert.match(ids[1] ?? "", /_a1$/);
  });

  it("a job that fails with rateLimitExceeded is retried under the next ID after a back-off", async () => {
    const loader = newLoader();
    await queue(loader, 2);
    scriptInsert("_a1", {
      errorResult: {
        reason: "rateLimitExceeded",
        message: "Exceeded rate limits: too many table update operations",
      },
    });
    const [first] = await loader.flush({ force: true });
    assert.equal(first?.status, "deferred");
    assert.match(first?.detail ?? "", /retry after/);
    const [early] = await loader.flush({ force: true });
    assert.equal(early?.status, "deferred", "still inside the back-off");
    clock += 20_000;
    const [later] = await loader.flush({ force: true });
    assert.equal(later?.status, "loaded");
    assert.deepEqual(
      inserts().map((i) => i.jobReference.jobId.slice(-3)),
      ["_a1", "_a2"],
    );
  });

  it("a job failing on the table's daily quota waits 30 minutes, does not count as a failure, and never pauses the table", async () => {
    const loader = newLoader({ max_attempts: "1" });
    await queue(loader, 1);
    scriptInsert("_a1", {
      errorResult: {
        reason: "quotaExceeded",
        message: "Quota exceeded: Your table exceeded quota for imports or query appends per table",
        location: "load_job_per_table.long",
      },
    });
    const [first] = await loader.flush({ force: true });
    assert.equal(
      first?.status,
      "deferred",
      "with max_attempts 1, a counted failure would have paused the table",
    );
    clock += 29 * 60_000;
    const [waiting] = await loader.flush({ force: true });
    assert.equal(waiting?.status, "deferred");
    clock += 2 * 60_000;
    const [later] = await loader.flush({ force: true });
    assert.equal(later?.status, "loaded");
    assert.equal(inserts().length, 2);
  });

  it("stops starting jobs for a table at the daily guard, and resumes the next UTC day", async () => {
    const loader = newLoader({ table_job_guard: "1" });
    await queue(loader, 1);
    assert.equal((await loader.flush({ force: true }))[0]?.status, "loaded");
    await queue(loader, 1);
    const [guarded] = await loader.flush({ force: true });
    assert.equal(guarded?.status, "deferred");
    assert.match(guarded?.detail ?? "", /daily load-job guard \(1\)/);
    assert.equal(inserts().length, 1);
    clock += 86_400_000;
    assert.equal((await loader.flush({ force: true }))[0]?.status, "loaded");
    assert.equal(inserts().length, 2);
  });

  it("an insert refused for good (403 accessDenied) pauses the table instead of retrying every minute", async () => {
    const loader = newLoader();
    await queue(loader, 1);
    fake.failNextInserts(1, "accessDenied");
    const [refused] = await loader.flush({ force: true });
    assert.equal(refused?.status, "failed");
    assert.match(refused?.detail ?? "", /jobs\.insert refused \(403\)/);
    const [paused] = await loader.flush({ force: true });
    assert.equal(paused?.status, "paused");
    assert.equal(paused?.pending, 1, "the object stays queued for after the fix");
    assert.equal(inserts().length, 1);
  });

  it("a job still running at the deadline is followed by ID on the next flush, not inserted again", async () => {
    const loader = newLoader({ flush_deadline: "1s" });
    await queue(loader, 1);
    // Each jobs.get of the job moves the loader's clock 400 ms, so a flush gives up after a few polls.
    let jobId = "";
    fake.onRequest((r) => {
      const inserted = (r.body as { jobReference?: { jobId?: string } } | undefined)?.jobReference?.jobId;
      if (r.method === "POST" && r.path.endsWith("/jobs") && inserted) {
        jobId = inserted;
        fake.scriptJob(jobId, { runningPolls: 6, outputRows: 3 });
      }
      if (r.method === "GET" && jobId !== "" && r.path.endsWith(`/jobs/${jobId}`)) clock += 400;
    });
    try {
      const [first] = await loader.flush({ force: true });
      assert.equal(first?.status, "running");
      let last: TableFlushResult | undefined = first;
      for (let i = 0; i < 5 && last?.status === "running"; i++) [last] = await loader.flush({ force: true });
      assert.equal(last?.status, "loaded");
      assert.equal(last?.rows, 3);
    } finally {
      fake.onRequest(undefined);
    }
    assert.equal(inserts().length, 1, "one insert in all");
  });

  it("a failed job naming one source quarantines it and loads the rest as attempt 2", async () => {
    const loader = newLoader();
    const objects = await queue(loader, 3);
    const bad = `gs://landing/${objects[1]?.name}`;
    scriptInsert("_a1", {
      errorResult: {
        reason: "invalid",
        message: "Error while reading data, error message: JSON table encountered too many errors",
      },
      errors: [
        { reason: "invalid", message: "JSON parsing error in row starting at position 0", location: bad },
      ],
    });
    const [result] = await loader.flush({ force: true });
    assert.equal(result?.status, "loaded");
    assert.equal(result?.quarantined, 1);
    const [, retry] = inserts();
    assert.deepEqual(
      (retry?.configuration.load as { sourceUris: string[] } | undefined)?.sourceUris,
      [objects[0], objects[2]].map((o) => `gs://landing/${o?.name}`).sort(),
    );
    assert.ok(await loader.state.exists(markerPaths.quarantined(objectId(objects[1]!.name))));
    const [copy] = await storage
      .bucket("landing")
      .file(`_logarchive/quarantine/${objects[1]?.name}`)
      .exists();
    assert.ok(copy, "the bad object is copied to the quarantine prefix");
  });

  it("a backlog of full jobs starts them in one window up to the table's daily guard, then waits for the next day", async () => {
    const loader = newLoader({ max_uris_per_job: "2", table_job_guard: "3", flush_interval: "1h" });
    await queue(loader, 9);
    const [run] = await loader.flush();
    assert.equal(run?.batches, 3, "three full jobs in one window");
    assert.equal(run?.objects, 6);
    assert.equal(inserts().length, 3);
    assert.match(run?.detail ?? "", /daily load-job guard \(3\)/, "the fourth waits for the guard");
    const [next] = await loader.flush();
    assert.equal(next?.status, "deferred");
    assert.match(next?.detail ?? "", /daily load-job guard \(3\)/);
    assert.equal(inserts().length, 3, "no fourth job that day");
  });
});
