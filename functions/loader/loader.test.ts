// The loader against real parts: our local GCS server (JSON API) as the landing and state
// bucket, and DuckDB behind the warehouse port. Many Loader instances share them, as
// concurrently running function instances share GCS and BigQuery.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { DuckDBInstance } from "@duckdb/node-api";
import { Storage } from "@google-cloud/storage";
import fc from "fast-check";
import type { StageLog } from "../../lib/log.ts";
import { type NamespacePolicy, parsePolicy } from "../../lib/policy/policy.ts";
import { encodeRecord } from "../../lib/record/codec.ts";
import { MAX_RECORD_LINE_BYTES, MAX_RECORD_MESSAGE_BYTES } from "../../lib/record/limits.ts";
import type { LogRecord } from "../../lib/record/schema.ts";
import { type LocalGcs, startLocalGcs } from "../../local/gcs/server.ts";
import { BigQueryWarehouse } from "../warehouse/bigquery.ts";
import { DuckDbWarehouse } from "../warehouse/duckdb.ts";
import type { WarehousePort } from "../warehouse/port.ts";
import { resolveLoaderConfig } from "./config.ts";
import { enqueueObject, type FinalizedObject } from "./enqueue.ts";
import { resumeTable } from "./flush.ts";
import { checkRecordBytes, duplicateField, inspectObject, LineSplitter } from "./inspect.ts";
import { Loader } from "./loader.ts";
import { markerPaths, objectId } from "./markers.ts";
import { type ArchiveObject, archiveObject, streamObject } from "./test_support/objects.ts";

const POLICY = parsePolicy(`
analytics:
  include: ["*"]
  exclude: ["kube-system"]
warehouse:
  dataset: logs
  table: container_logs
  routes:
    - namespaces: ["team-a-*"]
      table: team_a
`);

const LANDING = "landing";
const STATE = "loader-state";
let gcs: LocalGcs;
let dir: string;
let storage: Storage;
let warehouse: DuckDbWarehouse;
let instance: DuckDBInstance;
let testNo = 0;
const events: { level: string; event: string; fields: Record<string, unknown> }[] = [];
const log: StageLog = (level, event, fields) => {
  events.push({ level, event, fields });
};

function newLoader(
  overrides: Record<string, string> = {},
  wh: WarehousePort = warehouse,
  policy: NamespacePolicy = POLICY,
): Loader {
  const config = resolveLoaderConfig(
    {},
    {
      landing_bucket: LANDING,
      state_bucket: STATE,
      warehouse: "duckdb",
      state_prefix: `_logarchive/loader-${testNo}/`,
      flush_interval: "1s",
      job_poll_interval: "20ms",
      ...overrides,
    },
  );
  return new Loader({ config, policy, storage, warehouse: wh, log });
}

async function upload(o: {
  name: string;
  body: Buffer;
  metadata?: Record<string, string>;
}): Promise<FinalizedObject> {
  const file = storage.bucket(LANDING).file(o.name);
  await file.save(o.body, {
    resumable: false,
    metadata: { contentType: "application/gzip", metadata: o.metadata ?? {} },
  });
  const [meta] = await file.getMetadata();
  return {
    bucket: LANDING,
    name: o.name,
    generation: String(meta.generation),
    metadata: (meta.metadata ?? {}) as Record<string, string>,
  };
}

async function rowsByBatch(table: string, objects: ArchiveObject[]): Promise<Map<string, number>> {
  return warehouse.rowCountsByBatch(
    { dataset: "logs", table },
    objects.map((o) => o.batchId),
  );
}

// Each test gets its own namespaces' seq range so batch ids never collide across tests.
let seqBase = 0;
function objects(namespace: string, count: number, records = 5): ArchiveObject[] {
  seqBase += 1000;
  return Array.from({ length: count }, (_, i) => archiveObject({ namespace, seq: seqBase + i, records }));
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "loader-test-"));
  gcs = await startLocalGcs({ dataDir: join(dir, "gcs"), host: "127.0.0.1", port: 0 });
  storage = new Storage({ apiEndpoint: gcs.url, projectId: "test" });
  await storage.createBucket(LANDING);
  await storage.createBucket(STATE);
  instance = await DuckDBInstance.create(join(dir, "warehouse.duckdb"));
  warehouse = await DuckDbWarehouse.open({ database: instance, storage, defaultDataset: "logs" });
});

after(async () => {
  await warehouse.close();
  instance.closeSync();
  await gcs.stop();
  await rm(dir, { recursive: true, force: true });
});

beforeEach(() => {
  testNo++;
  events.length = 0;
});

describe("loader: enqueue and flush", () => {
  it("queues objects, loads each table with one job per window, and routes per namespace", async () => {
    const loader = newLoader({ flush_interval: "1h" });
    const shared = objects("payments", 3);
    const routed = objects("team-a-api", 2);
    for (const o of [...shared, ...routed]) {
      assert.equal((await loader.handleFinalize(await upload(o))).outcome, "queued");
    }
    // First flush of a table: no earlier batch, so it loads at once.
    const first = await loader.flush();
    const byTable = Object.fromEntries(first.map((r) => [r.table, r]));
    assert.equal(byTable["logs.container_logs"]?.status, "loaded");
    assert.equal(byTable["logs.container_logs"]?.objects, 3);
    assert.equal(byTable["logs.team_a"]?.status, "loaded");
    assert.equal(byTable["logs.team_a"]?.rows, 10);
    for (const [id, n] of await rowsByBatch("container_logs", shared)) assert.equal(n, 5, id);
    assert.equal((await rowsByBatch("container_logs", shared)).size, 3);
    assert.equal((await rowsByBatch("team_a", routed)).size, 2);
    assert.equal(
      (await rowsByBatch("container_logs", routed)).size,
      0,
      "routed namespaces stay out of the shared table",
    );

    // A late object inside the window waits for the next window instead of a second job.
    const late = objects("payments", 1);
    await loader.handleFinalize(await upload(late[0]!));
    const second = await loader.flush();
    const sharedResult = second.find((r) => r.table === "logs.container_logs");
    assert.equal(sharedResult?.status, "waiting");
    assert.equal(sharedResult?.pending, 1);
    // …and a forced flush (a backfill, or `--once`) takes it now.
    const forced = await loader.flush({ force: true });
    assert.equal(forced.find((r) => r.table === "logs.container_logs")?.status, "loaded");
    assert.equal((await rowsByBatch("container_logs", late)).get(late[0]!.batchId), 5);
  });

  it("makes a table per namespace from a {namespace} route, creating each table on its first batch", async () => {
    const perNamespace = parsePolicy(`
analytics:
  include: ["*"]
warehouse:
  dataset: logs
  routes:
    - namespaces: ["squad-*"]
      table: "ns_{namespace}"
`);
    const loader = newLoader({}, warehouse, perNamespace);
    const x = objects("squad-x", 2);
    const y = objects("squad-y", 1);
    for (const o of [...x, ...y])
      assert.equal((await loader.handleFinalize(await upload(o))).outcome, "queued");
    const results = await loader.flush({ force: true });
    assert.equal(results.find((r) => r.table === "logs.ns_squad_x")?.rows, 10);
    assert.equal(results.find((r) => r.table === "logs.ns_squad_y")?.rows, 5);
    assert.equal((await rowsByBatch("ns_squad_x", x)).size, 2);
    assert.equal((await rowsByBatch("ns_squad_y", y)).size, 1);
    // With BigQuery's quotas, the window grows with the tables the state has seen, above the
    // default floor (min_window 3m) and, with the floor off, from the quota budget alone.
    const bigQueryLoader = (minWindow?: string) =>
      new Loader({
        config: resolveLoaderConfig(
          {},
          {
            landing_bucket: LANDING,
            state_bucket: STATE,
            warehouse: "bigquery",
            bigquery_project: "p",
            ...(minWindow === undefined ? {} : { min_window: minWindow }),
          },
        ),
        policy: perNamespace,
        storage,
        // Never called here: only its kind (and so BigQuery's quotas) matters to the plan.
        warehouse: new BigQueryWarehouse({ projectId: "p", location: "US" }),
        log,
      });
    assert.equal(bigQueryLoader("0s").planFor(1).windowSeconds, 120);
    assert.equal(bigQueryLoader("0s").planFor(300).windowSeconds, 540);
    assert.equal(bigQueryLoader().planFor(1).windowSeconds, 180);
    assert.equal(bigQueryLoader().planFor(300).windowSeconds, 540);
  });

  it("loads a stream object of several namespaces into the table its key names, checking each record's namespace", async () => {
    const loader = newLoader({ validate_objects: "false" });
    seqBase += 1000;
    const shared = streamObject({
      namespaces: ["payments", "web"],
      dataset: "logs",
      table: "container_logs",
      seq: seqBase,
      records: 6,
    });
    const routed = streamObject({
      namespaces: ["team-a-api", "team-a-db"],
      dataset: "logs",
      table: "team_a",
      seq: seqBase + 1,
      records: 4,
    });
    // A stale shipper's objects: a namespace routed elsewhere, and one not loaded at all.
    const misrouted = streamObject({
      namespaces: ["web", "team-a-api"],
      dataset: "logs",
      table: "container_logs",
      seq: seqBase + 2,
      records: 4,
    });
    const excluded = streamObject({
      namespaces: ["payments", "kube-system"],
      dataset: "logs",
      table: "container_logs",
      seq: seqBase + 3,
      records: 4,
    });
    for (const o of [shared, routed]) {
      assert.equal((await loader.handleFinalize(await upload(o))).outcome, "queued", o.name);
    }
    // Inspected although validate_objects is off: only the body says which namespaces it holds.
    const bad = await loader.handleFinalize(await upload(misrouted));
    assert.equal(bad.outcome, "quarantined");
    assert.match(
      bad.detail ?? "",
      /namespace "team-a-api" routes to logs\.team_a, not to the stream's logs\.container_logs/,
    );
    const notLoaded = await loader.handleFinalize(await upload(excluded));
    assert.equal(notLoaded.outcome, "quarantined");
    assert.match(notLoaded.detail ?? "", /namespace "kube-system" is not an analytics namespace/);
    const claim = await loader.state.read<{ namespace: string; namespaces?: string[] }>(
      markerPaths.claim(objectId(shared.name)),
    );
    assert.deepEqual(claim?.namespaces, ["payments", "web"]);
    // A duplicate event is a duplicate, as for per-namespace objects.
    assert.equal((await loader.handleFinalize(await upload(shared))).outcome, "duplicate");
    await loader.flush({ force: true });
    assert.deepEqual(
      [...(await rowsByBatch("container_logs", [shared, misrouted, excluded]))],
      [[shared.batchId, 6]],
    );
    assert.deepEqual([...(await rowsByBatch("team_a", [routed]))], [[routed.batchId, 4]]);
  });

  it("drops a queued stream object whose namespace the policy no longer routes to its table", async () => {
    const loader = newLoader();
    seqBase += 1000;
    const o = streamObject({
      namespaces: ["payments", "web"],
      dataset: "logs",
      table: "container_logs",
      seq: seqBase,
      records: 4,
    });
    assert.equal((await loader.handleFinalize(await upload(o))).outcome, "queued");
    const changed = parsePolicy(`
analytics:
  include: ["*"]
  exclude: ["web"]
warehouse:
  dataset: logs
`);
    await newLoader({}, warehouse, changed).flush({ force: true });
    assert.equal((await rowsByBatch("container_logs", [o])).size, 0);
    const dropped = events.find((e) => e.event === "object_excluded");
    assert.match(
      String(dropped?.fields.reason),
      /policy changed after it was queued: namespace web is not an analytics namespace/,
    );
  });

  it("acknowledges an excluded namespace without loading it, and ignores its own state objects", async () => {
    const loader = newLoader();
    const [excluded] = objects("kube-system", 1);
    const result = await loader.handleFinalize(await upload(excluded!));
    assert.equal(result.outcome, "excluded");
    assert.equal(await loader.state.exists(markerPaths.claim(objectId(excluded!.name))), false);
    const own = await loader.handleFinalize({
      bucket: LANDING,
      name: `${loader.config.statePrefix}install.json`,
      generation: "1",
    });
    assert.equal(own.outcome, "ignored");
    await loader.flush({ force: true });
    assert.equal((await rowsByBatch("container_logs", [excluded!])).size, 0);
    assert.equal(loader.stats().events.excluded, 1);
  });

  it("loads every object exactly once when many instances get overlapping, duplicated events at once", async () => {
    const instances = Array.from({ length: 8 }, () => newLoader());
    const batch = objects("checkout", 40, 3);
    const finalized = await Promise.all(batch.map(upload));
    // Every event delivered 3 times, to random instances, all at once, with flushes racing in.
    let x = 7;
    const rand = () => {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      return x / 2 ** 31;
    };
    const work: Promise<unknown>[] = [];
    for (let round = 0; round < 3; round++) {
      for (const f of finalized) {
        work.push(instances[Math.floor(rand() * instances.length)]!.handleFinalize(f));
      }
      work.push(instances[round]!.flush({ force: true }));
    }
    await Promise.all(work);
    await Promise.all(instances.map((l) => l.flush({ force: true })));
    // Late duplicates after everything loaded are still duplicates.
    const again = await Promise.all(finalized.map((f, i) => instances[i % 8]!.handleFinalize(f)));
    assert.ok(
      again.every((r) => r.outcome === "duplicate"),
      JSON.stringify(again.filter((r) => r.outcome !== "duplicate")),
    );
    await Promise.all(instances.map((l) => l.flush({ force: true })));

    const rows = await rowsByBatch("container_logs", batch);
    assert.equal(rows.size, 40);
    for (const o of batch) assert.equal(rows.get(o.batchId), 3, o.name);
    const queued = instances.reduce((n, l) => n + l.stats().events.queued, 0);
    assert.equal(queued, 40, "each object is queued by exactly one event");
    assert.equal((await instances[0]!.state.list("pending/")).length, 0);
  });

  it("quarantines a corrupt object when it is queued, and the rest of the batch loads", async () => {
    const loader = newLoader();
    const good = objects("search", 2);
    const bad = objects("search", 4);
    const corrupt = {
      ...bad[0]!,
      body: Buffer.concat([bad[0]!.body.subarray(0, 20), Buffer.from("garbage")]),
    };
    const notJson = archiveObject({ namespace: "search", seq: seqBase + 500, records: 1 });
    const notJsonBody = gzipSync("this is not json\n");
    const unknownField = gzipSync(
      `{"timestamp":"2026-11-21 10:00:00.000000","timestamp_nanos":0,"namespace":"search","pod":"p","container":"c","node":"n","stream":"stdout","message":"m","batch_id":"${bad[2]!.batchId}","seq":0,"color":"red"}\n`,
    );
    const outcomes = [];
    for (const o of good) outcomes.push((await loader.handleFinalize(await upload(o))).outcome);
    outcomes.push((await loader.handleFinalize(await upload(corrupt))).outcome);
    outcomes.push(
      (await loader.handleFinalize(await upload({ name: notJson.name, body: notJsonBody }))).outcome,
    );
    outcomes.push(
      (await loader.handleFinalize(await upload({ ...bad[2]!, body: unknownField, metadata: {} }))).outcome,
    );
    outcomes.push(
      (
        await loader.handleFinalize(
          await upload({ name: "logs/analytics/somewhere/else.gz", body: good[0]!.body }),
        )
      ).outcome,
    );
    assert.deepEqual(outcomes, [
      "queued",
      "queued",
      "quarantined",
      "quarantined",
      "quarantined",
      "quarantined",
    ]);

    const quarantined = events
      .filter((e) => e.event === "object_quarantined")
      .map((e) => String(e.fields.reason));
    assert.match(quarantined[0]!, /SHA-256|gzip/);
    assert.match(quarantined[1]!, /not JSON/);
    assert.match(quarantined[2]!, /unknown field color/);
    assert.match(quarantined[3]!, /not a logarchive object key/);
    // The copy is kept, with the reason in its metadata.
    const [meta] = await storage.bucket(LANDING).file(`_logarchive/quarantine/${corrupt.name}`).getMetadata();
    assert.match(String(meta.metadata?.["logarchive-quarantine-reason"]), /SHA-256|gzip/);

    await loader.flush({ force: true });
    const rows = await rowsByBatch("container_logs", [...good, ...bad]);
    assert.deepEqual([...rows.values()], [5, 5]);
    // A duplicate event of the quarantined object is recognised, not re-quarantined.
    assert.equal((await loader.handleFinalize(await upload(corrupt))).outcome, "duplicate");
  });

  it("a job failing on one source quarantines that source and loads the rest under a new job ID", async () => {
    // Checks at enqueue are off, so the load job is what finds the bad object.
    const loader = newLoader({ validate_objects: "false" });
    const batch = objects("billing", 3);
    const broken = { ...batch[1]!, body: Buffer.from("definitely not gzip") };
    await loader.handleFinalize(await upload(batch[0]!));
    await loader.handleFinalize(await upload(broken));
    await loader.handleFinalize(await upload(batch[2]!));
    const [result] = (await loader.flush({ force: true })).filter((r) => r.table === "logs.container_logs");
    assert.equal(result?.status, "loaded");
    assert.equal(result?.objects, 2);
    assert.equal(result?.quarantined, 1);
    // Counted where the local status line reads it (finalize-time quarantines are separate).
    assert.equal(loader.stats().quarantinedAtLoad, 1);
    assert.equal(loader.stats().events.quarantined, 0);
    assert.match(String(result?.jobId), /_a2$/, "the retry runs under the next attempt's job ID");
    const rows = await rowsByBatch("container_logs", batch);
    assert.equal(rows.get(batch[0]!.batchId), 5);
    assert.equal(rows.get(batch[1]!.batchId), undefined);
    assert.equal(rows.get(batch[2]!.batchId), 5);
    const failed = events.find((e) => e.event === "load_job_failed");
    assert.deepEqual(failed?.fields.bad_sources, [`gs://${LANDING}/${broken.name}`]);
  });

  it("reports a changed object under a loaded name as a conflict and never loads it twice", async () => {
    const loader = newLoader();
    const [original] = objects("orders", 1);
    await loader.handleFinalize(await upload(original!));
    await loader.flush({ force: true });
    const changed = archiveObject({
      namespace: "orders",
      seq: Number(original!.name.match(/_(\d{12})\./)![1]),
      records: 5,
      variant: "changed",
    });
    assert.equal(changed.name, original!.name);
    const result = await loader.handleFinalize(await upload(changed));
    assert.equal(result.outcome, "conflict");
    assert.match(String(result.detail), /changed/);
    await loader.flush({ force: true });
    assert.equal((await rowsByBatch("container_logs", [original!])).get(original!.batchId), 5);
    assert.equal((await loader.state.list("conflicts/")).length, 1);
  });

  it("finishes the work of an enqueue that crashed after its claim", async () => {
    const loader = newLoader();
    const [o] = objects("crash-claim", 1);
    const finalized = await upload(o!);
    const id = objectId(o!.name);
    // What a crash between the claim and the pending marker leaves behind.
    await loader.state.createIfAbsent(markerPaths.claim(id), {
      name: o!.name,
      sha256: o!.metadata["logarchive-sha256"],
      generation: finalized.generation,
      table: { dataset: "logs", table: "container_logs" },
      namespace: "crash-claim",
      claimedAt: new Date().toISOString(),
    });
    const retry = await loader.handleFinalize(finalized);
    assert.equal(retry.outcome, "queued", "the retry finds its own claim and queues the object");
    assert.ok(
      await loader.state.exists(markerPaths.pending({ dataset: "logs", table: "container_logs" }, id)),
      "the pending marker exists",
    );
    assert.equal((await loader.handleFinalize(finalized)).outcome, "duplicate");
    await loader.flush({ force: true });
    assert.equal((await rowsByBatch("container_logs", [o!])).get(o!.batchId), 5);
  });

  it("a flush that died after jobs.insert finds its job instead of loading again", async () => {
    const loader = newLoader();
    const batch = objects("crash-flush", 2);
    for (const o of batch) await loader.handleFinalize(await upload(o));
    // A flush that only got as far as the job: make the batch and run its job by hand.
    const table = { dataset: "logs", table: "container_logs" };
    const install = await loader.installId();
    const { loadJobId } = await import("./flush.ts");
    const uris = batch.map((o) => `gs://${LANDING}/${o.name}`).sort();
    await loader.state.createIfAbsent(markerPaths.manifest(table, 1), {
      table,
      seq: 1,
      createdAt: new Date().toISOString(),
      objects: batch
        .map((o) => ({
          id: objectId(o.name),
          name: o.name,
          uri: `gs://${LANDING}/${o.name}`,
          generation: "0",
          sha256: o.metadata["logarchive-sha256"],
          records: 5,
          batchId: o.batchId,
        }))
        .sort((a, b) => a.name.localeCompare(b.name)),
    });
    const [manifestMeta] = await loader.state.file(markerPaths.manifest(table, 1)).getMetadata();
    const jobId = loadJobId(install, table, 1, String(manifestMeta.generation), 1);
    await loader.state.createIfAbsent(markerPaths.attempt(table, 1, 1), {
      jobId,
      attempt: 1,
      uris,
      createdAt: new Date().toISOString(),
    });
    await warehouse.insertLoadJob({ jobId, destination: table, sourceUris: uris, labels: {} });
    // The next flush resumes batch 1: same job ID, so no second load.
    const [result] = (await loader.flush()).filter((r) => r.table === "logs.container_logs");
    assert.equal(result?.status, "loaded");
    assert.equal(result?.jobId, jobId);
    const rows = await rowsByBatch("container_logs", batch);
    assert.deepEqual([...rows.values()], [5, 5]);
    assert.equal((await loader.state.list("pending/")).length, 0);
    assert.equal(events.filter((e) => e.event === "load_job_inserted").length, 0, "no new job was inserted");
  });

  it("never reuses an old job's outcome when batch numbers start over after the state's batch files expired", async () => {
    const loader = newLoader();
    const [first, second, third] = objects("expiring", 3);
    await loader.handleFinalize(await upload(first!));
    await loader.flush({ force: true });
    // A lifecycle rule removed the batch files; the table's head keeps the numbering going.
    const removeAll = async (prefix: string) => {
      for (const f of await loader.state.list(prefix)) await loader.state.remove(f.path);
    };
    await removeAll("batches/");
    await loader.handleFinalize(await upload(second!));
    const [next] = (await loader.flush({ force: true })).filter((r) => r.table === "logs.container_logs");
    assert.equal(next?.batch, 2);
    // Even with the head gone too, batch 1 again gets a new job ID (its manifest is a new generation).
    await removeAll("batches/");
    await removeAll("tables/");
    await loader.handleFinalize(await upload(third!));
    const [again] = (await loader.flush({ force: true })).filter((r) => r.table === "logs.container_logs");
    assert.equal(again?.batch, 1);
    assert.equal(again?.status, "loaded");
    const rows = await rowsByBatch("container_logs", [first!, second!, third!]);
    assert.deepEqual([...rows.values()], [5, 5, 5], "each object loaded once, the last one too");
  });

  it("a same-body re-transfer (new generation) loads once instead of being taken for a changed object", async () => {
    const loader = newLoader();
    const [o] = objects("retransfer", 1);
    const v1 = await upload(o!);
    assert.equal((await loader.handleFinalize(v1)).outcome, "queued");
    const v2 = await upload(o!);
    assert.notEqual(v2.generation, v1.generation);
    // The flush runs before the new generation's event: it leaves the object queued (its batch,
    // checked under the attempt's lease, starts no job without it)…
    const [early] = (await loader.flush({ force: true })).filter((r) => r.table === "logs.container_logs");
    assert.equal(early?.objects ?? 0, 0);
    assert.equal(early?.quarantined ?? 0, 0, "waiting for its new generation's event, not quarantined");
    assert.equal(early?.jobId, undefined, "no load job");
    assert.equal((await rowsByBatch("container_logs", [o!])).get(o!.batchId), undefined);
    assert.equal(await loader.state.exists(markerPaths.quarantined(objectId(o!.name))), false);
    // …and the event moves the queued marker to the live generation.
    assert.equal((await loader.handleFinalize(v2)).outcome, "duplicate");
    const [later] = (await loader.flush({ force: true })).filter((r) => r.table === "logs.container_logs");
    assert.equal(later?.status, "loaded");
    assert.equal((await rowsByBatch("container_logs", [o!])).get(o!.batchId), 5);
  });

  it("a quarantined object fixed and uploaded again under the same name loads", async () => {
    const loader = newLoader({ validate_objects: "false" });
    const [good, broken] = objects("fixme", 2);
    await loader.handleFinalize(await upload(good!));
    await loader.handleFinalize(await upload({ ...broken!, body: Buffer.from("not gzip at all") }));
    const [first] = (await loader.flush({ force: true })).filter((r) => r.table === "logs.container_logs");
    assert.equal(first?.quarantined, 1);
    assert.deepEqual(
      await loader.state.list("pending/"),
      [],
      "the bad object left the queue: no failed job every window",
    );
    const fixed = await loader.handleFinalize(await upload(broken!));
    assert.equal(fixed.outcome, "queued");
    const [second] = (await loader.flush({ force: true })).filter((r) => r.table === "logs.container_logs");
    assert.equal(second?.status, "loaded");
    const rows = await rowsByBatch("container_logs", [good!, broken!]);
    assert.deepEqual([...rows.values()], [5, 5]);
  });

  it("a read that fails (GCS unreachable) is retried, not taken for a bad object", async () => {
    const [o] = objects("flaky-read", 1);
    const finalized = await upload(o!);
    const unreachable = new Storage({
      apiEndpoint: "http://127.0.0.1:9",
      projectId: "x",
      retryOptions: { autoRetry: false },
    });
    const loader = newLoader();
    await assert.rejects(
      enqueueObject(
        {
          landing: unreachable.bucket(LANDING),
          state: loader.state,
          policy: POLICY,
          statePrefix: loader.config.statePrefix,
          quarantinePrefix: loader.config.quarantinePrefix,
          validateObjects: true,
          log,
        },
        finalized,
      ),
    );
    assert.equal(await loader.state.exists(markerPaths.quarantined(objectId(o!.name))), false);
    assert.equal((await loader.handleFinalize(finalized)).outcome, "queued", "the retry queues it");
  });

  it("pauses a table whose jobs fail without naming a source, keeps its queue, and resumes", async () => {
    const loader = newLoader();
    const [first, o] = objects("team-a-web", 2);
    await loader.handleFinalize(await upload(first!));
    await loader.flush({ force: true }); // the loader has made sure the table exists
    // Then someone drops it: every load into it fails as a whole, naming no source.
    const conn = await instance.connect();
    await conn.run("DROP TABLE main.team_a");
    await loader.handleFinalize(await upload(o!));
    const [failed] = (await loader.flush({ force: true })).filter((r) => r.table === "logs.team_a");
    assert.equal(failed?.status, "failed");
    const [paused] = (await loader.flush({ force: true })).filter((r) => r.table === "logs.team_a");
    assert.equal(paused?.status, "paused");
    assert.equal(paused?.pending, 1, "the object is still queued");
    // The other tables go on loading meanwhile.
    const [other] = objects("orders-during-pause", 1);
    await loader.handleFinalize(await upload(other!));
    const during = await loader.flush({ force: true });
    assert.equal(during.find((r) => r.table === "logs.container_logs")?.status, "loaded");
    assert.equal(during.find((r) => r.table === "logs.team_a")?.status, "paused");
    assert.equal((await rowsByBatch("container_logs", [other!])).get(other!.batchId), 5);
    conn.closeSync();
    await warehouse.ensureTable({ dataset: "logs", table: "team_a" });
    assert.equal(await resumeTable(loader.state, { dataset: "logs", table: "team_a" }), true);
    const [loaded] = (await loader.flush({ force: true })).filter((r) => r.table === "logs.team_a");
    assert.equal(loaded?.status, "loaded");
    assert.equal((await rowsByBatch("team_a", [o!])).get(o!.batchId), 5);
  });
});

describe("loader: the object check agrees with the warehouse and stays linear", () => {
  /** A name and batch identity from the shipper's layout, for objects of hand-made lines. */
  function shape(namespace = "checks"): ArchiveObject {
    return objects(namespace, 1)[0]!;
  }

  /** `o` with a gzip NDJSON body of these lines, and metadata that matches it. */
  function withLines(o: ArchiveObject, lines: (string | Buffer)[]): ArchiveObject {
    const raw = Buffer.concat(lines.flatMap((l) => [Buffer.from(l), Buffer.from("\n")]));
    const body = gzipSync(raw);
    const metadata = {
      ...o.metadata,
      "logarchive-records": String(lines.length),
      "logarchive-sha256": createHash("sha256").update(body).digest("hex"),
      "logarchive-raw-bytes": String(raw.length),
    };
    return { ...o, body, metadata, records: lines.length };
  }

  function recordLine(o: ArchiveObject, seq: number, fields: Partial<LogRecord> = {}): string {
    return encodeRecord({
      timestamp: "2026-11-21 10:00:00.000000",
      timestamp_nanos: 0,
      namespace: "checks",
      pod: "api-7c9f",
      container: "api",
      node: "node-a",
      stream: "stdout",
      message: "m",
      batch_id: o.batchId,
      seq,
      ...fields,
    });
  }

  it("refuses a line longer than the shipper ever writes after inflating little more than the bound", async () => {
    const loader = newLoader();
    const o = shape();
    // 32 MiB of one valid record: a 32 KB gzip, which the check used to accept after 34 s.
    const huge = withLines(o, [recordLine(o, 0, { message: "a".repeat(32 * 2 ** 20) })]);
    assert.ok(huge.body.length < 256 * 1024, `${huge.body.length} compressed bytes`);
    const finalized = await upload(huge);
    const inspection = await inspectObject(
      storage.bucket(LANDING).file(huge.name, { generation: finalized.generation }),
      { namespace: "checks", sha256: huge.metadata["logarchive-sha256"]!, records: 1 },
    );
    assert.equal(inspection.ok, false);
    assert.match(String((inspection as { reason: string }).reason), /line 1 is longer than \d+ bytes/);
    // Refused before the whole line was read: the work is bounded by the limit, not the input.
    assert.ok(
      inspection.rawBytes <= MAX_RECORD_LINE_BYTES + 2 ** 20,
      `${inspection.rawBytes} bytes inflated before the refusal`,
    );
    assert.equal(inspection.sha256, huge.metadata["logarchive-sha256"], "the whole body is still hashed");

    const result = await loader.handleFinalize(finalized);
    assert.equal(result.outcome, "quarantined");
    assert.match(String(result.detail), /line 1 is longer than/);
    assert.equal(await loader.state.exists(markerPaths.quarantined(objectId(huge.name))), true);
    assert.equal((await loader.handleFinalize(finalized)).outcome, "duplicate", "recognised by its hash");
  });

  it("accepts the longest line the shipper can write: a 1 MiB message of control bytes, not UTF-8", async () => {
    const loader = newLoader();
    const o = shape();
    const bytes = Buffer.alloc(MAX_RECORD_MESSAGE_BYTES, 0x01);
    bytes[bytes.length - 1] = 0xff;
    // What the shipper's encoder writes for it: U+FFFD in `message`, the exact bytes in base64.
    const line = recordLine(o, 0, {
      message: bytes.toString("utf8"),
      message_base64: bytes.toString("base64"),
    });
    const lineBytes = Buffer.byteLength(line);
    assert.ok(lineBytes > 7 * MAX_RECORD_MESSAGE_BYTES, `${lineBytes}`);
    assert.ok(lineBytes <= MAX_RECORD_LINE_BYTES, `${lineBytes} > ${MAX_RECORD_LINE_BYTES}`);
    assert.equal((await loader.handleFinalize(await upload(withLines(o, [line])))).outcome, "queued");
  });

  it("splits lines across chunks copying each byte at most once", () => {
    const splitter = new LineSplitter(MAX_RECORD_LINE_BYTES);
    const lines: Buffer[] = [];
    const long = Buffer.alloc(4 * 2 ** 20, 0x61);
    const chunk = 16 * 1024;
    let pushed = 0;
    for (let at = 0; at < long.length; at += chunk) {
      assert.equal(
        splitter.push(long.subarray(at, at + chunk), (l) => lines.push(Buffer.from(l))),
        null,
      );
      pushed += chunk;
    }
    assert.equal(
      splitter.push(Buffer.from("\nb\nc"), (l) => lines.push(Buffer.from(l))),
      null,
    );
    assert.deepEqual(
      lines.map((l) => l.length),
      [long.length, 1],
    );
    assert.equal(splitter.pendingBytes, 1, "the unterminated `c`");
    assert.ok(splitter.copiedBytes <= pushed, `${splitter.copiedBytes} bytes copied for ${pushed} pushed`);

    const bounded = new LineSplitter(1000);
    assert.equal(
      bounded.push(Buffer.alloc(600, 0x61), () => {}),
      null,
    );
    assert.match(String(bounded.push(Buffer.alloc(600, 0x61), () => {})), /line 1 is longer than 1000 bytes/);
  });

  it("finds a repeated field exactly when there is one, whatever JSON text the values hold", () => {
    const unit = fc.constantFrom("a", '"', "\\", "{", "}", "[", ",", ":", "\n", "\u00e9", "\u0001");
    // Short and long strings: the scan takes another path past 64 bytes.
    const text = fc.oneof(fc.string({ unit }), fc.string({ unit, minLength: 50, maxLength: 300 }));
    const record = fc.record({
      timestamp: fc.constant("2026-11-21 10:00:00.000000"),
      timestamp_nanos: fc.nat({ max: 999_999_999 }),
      namespace: text,
      pod: text,
      container: text,
      node: text,
      stream: fc.constantFrom("stdout", "stderr"),
      message: text,
      parse_error: fc.option(text, { nil: undefined }),
      batch_id: text,
      seq: fc.nat(),
    });
    fc.assert(
      fc.property(record, fc.nat(), text, (r, pick, again) => {
        const line = encodeRecord(r as LogRecord);
        assert.equal(checkRecordBytes(Buffer.from(line)), null);
        const names = Object.keys(r).filter((k) => (r as Record<string, unknown>)[k] !== undefined);
        const name = names[pick % names.length]!;
        const doubled = `${line.slice(0, -1)},${JSON.stringify(name)}:${JSON.stringify(again)}}`;
        assert.equal(duplicateField(Buffer.from(doubled)), name);
      }),
    );
    // Any value JSON.stringify writes, nested ones too, has no repeated name at the top.
    fc.assert(
      fc.property(fc.dictionary(text, fc.jsonValue()), (o) => {
        assert.equal(duplicateField(Buffer.from(JSON.stringify(o))), null);
      }),
    );
  });

  it("quarantines a line with a duplicate field, which the warehouse rejects, even when a key is escaped", async () => {
    const loader = newLoader();
    for (const extra of [',"message":"again"', ',"mess\\u0061ge":"again"', ',"seq":1']) {
      const o = shape();
      const second = recordLine(o, 1);
      const lines = [recordLine(o, 0), `${second.slice(0, -1)}${extra}}`];
      const result = await loader.handleFinalize(await upload(withLines(o, lines)));
      assert.equal(result.outcome, "quarantined", extra);
      assert.match(String(result.detail), /^line 2: duplicate field (message|seq)$/);
    }
  });

  it("quarantines a line whose bytes are not UTF-8", async () => {
    const loader = newLoader();
    const o = shape();
    const [before, after] = recordLine(o, 0, { message: "caf\u00e9!" }).split("\u00e9");
    // Latin-1 é: JSON.parse would read it as U+FFFD; BigQuery and DuckDB refuse the line.
    const latin1 = Buffer.concat([Buffer.from(before!), Buffer.from([0xe9]), Buffer.from(after!)]);
    const result = await loader.handleFinalize(await upload(withLines(o, [latin1])));
    assert.equal(result.outcome, "quarantined");
    assert.match(String(result.detail), /line 1: not valid UTF-8/);
  });

  it("accepts and loads a record whose message is JSON text, with quotes, escapes and nested keys", async () => {
    const loader = newLoader();
    const o = shape();
    const messages = [
      JSON.stringify({ level: "info", message: "inner", seq: 3, nested: { message: "x", batch_id: "y" } }),
      '{"a":"b\\\\","message":"\\"quoted\\"","a":"dup inside the text is fine"}',
      "ends with a backslash \\",
      '","message":"injected',
    ];
    const loaded = withLines(
      o,
      messages.map((message, seq) => recordLine(o, seq, { message })),
    );
    assert.equal((await loader.handleFinalize(await upload(loaded))).outcome, "queued");
    await loader.flush({ force: true });
    assert.equal((await rowsByBatch("container_logs", [loaded])).get(loaded.batchId), messages.length);
  });
});
