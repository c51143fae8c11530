// reconcile against real parts (s3rver, our GCS server, DuckDB), with the archive, the GCS
// copy, the loader's markers and the warehouse put into each state it must tell apart.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { Storage } from "@google-cloud/storage";
import { parsePolicy } from "../../lib/policy/policy.ts";
import { type LocalGcs, startLocalGcs } from "../../local/gcs/server.ts";
import { LOCAL_S3_CREDENTIALS, type LocalS3, startLocalS3 } from "../../local/s3.ts";
import { DuckDbWarehouse } from "../warehouse/duckdb.ts";
import { markerPaths, objectId } from "./markers.ts";
import { describeReconcile, reconcile } from "./reconcile.ts";
import { StateStore } from "./state.ts";
import { type ArchiveObject, archiveObject } from "./test_support/objects.ts";

const POLICY = parsePolicy("analytics:\n  include: ['*']\n  exclude: ['kube-system']\n");
const TABLE = { dataset: "logarchive", table: "container_logs" };
let dir: string;
let s3server: LocalS3;
let gcs: LocalGcs;
let s3: S3Client;
let storage: Storage;
let warehouse: DuckDbWarehouse;
let state: StateStore;
let jobNo = 0;

async function inS3(o: ArchiveObject): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: "archive", Key: o.name, Body: o.body, Metadata: o.metadata }));
}
async function inGcs(o: ArchiveObject, metadata = o.metadata): Promise<void> {
  await storage.bucket("landing").file(o.name).save(o.body, { resumable: false, metadata: { metadata } });
}
async function load(o: ArchiveObject): Promise<void> {
  const { status } = await warehouse.insertLoadJob({
    jobId: `test_${++jobNo}`,
    destination: TABLE,
    sourceUris: [`gs://landing/${o.name}`],
    labels: {},
  });
  assert.equal(status.errorResult, undefined);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "reconcile-test-"));
  s3server = await startLocalS3({
    host: "127.0.0.1",
    port: 0,
    dataDir: join(dir, "s3"),
    buckets: ["archive"],
  });
  s3 = new S3Client({
    endpoint: s3server.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: LOCAL_S3_CREDENTIALS,
  });
  gcs = await startLocalGcs({ dataDir: join(dir, "gcs"), host: "127.0.0.1", port: 0 });
  storage = new Storage({ apiEndpoint: gcs.url, projectId: "p" });
  await storage.createBucket("landing");
  warehouse = await DuckDbWarehouse.open({ database: ":memory:", storage, defaultDataset: "logarchive" });
  await warehouse.ensureTable(TABLE);
  state = new StateStore({ bucket: storage.bucket("landing"), prefix: "_logarchive/loader/" });
});

after(async () => {
  s3.destroy();
  await warehouse.close();
  await gcs.stop();
  await s3server.stop();
  await rm(dir, { recursive: true, force: true });
});

const run = (namespace?: string) =>
  reconcile({
    s3,
    s3Bucket: "archive",
    landing: storage.bucket("landing"),
    state,
    warehouse,
    policy: POLICY,
    from: new Date("2026-11-21T00:00:00Z"),
    to: new Date("2026-11-22T00:00:00Z"),
    ...(namespace ? { namespace } : {}),
  });

describe("reconcile", () => {
  it("tells apart every state an archived object can be in, and is OK only when all are loaded or excluded", async () => {
    const loaded = archiveObject({ namespace: "good", seq: 1, records: 4 });
    await inS3(loaded);
    await inGcs(loaded);
    await load(loaded);
    const excluded = archiveObject({ namespace: "kube-system", seq: 2, records: 4 });
    await inS3(excluded);

    const clean = await run();
    assert.equal(clean.ok, true, describeReconcile(clean));
    assert.deepEqual(clean.counts.loaded, 1);
    assert.deepEqual(clean.counts.excluded, 1);

    const notTransferred = archiveObject({ namespace: "bad", seq: 10, records: 2 });
    await inS3(notTransferred);
    const notQueued = archiveObject({ namespace: "bad", seq: 11, records: 2 });
    await inS3(notQueued);
    await inGcs(notQueued);
    const queued = archiveObject({ namespace: "bad", seq: 12, records: 2 });
    await inS3(queued);
    await inGcs(queued);
    await state.put(markerPaths.pending(TABLE, objectId(queued.name)), { name: queued.name });
    const duplicated = archiveObject({ namespace: "bad", seq: 13, records: 2 });
    await inS3(duplicated);
    await inGcs(duplicated);
    await load(duplicated);
    await load(duplicated);
    const quarantined = archiveObject({ namespace: "bad", seq: 14, records: 2 });
    await inS3(quarantined);
    await inGcs(quarantined);
    await state.put(markerPaths.quarantined(objectId(quarantined.name)), {
      name: quarantined.name,
      sha256: null,
      generation: "1",
      reason: "not a valid gzip stream",
      quarantinedAs: "x",
      at: "2026-11-21T10:00:00Z",
    });
    const changed = archiveObject({ namespace: "bad", seq: 15, records: 2 });
    await inS3(changed);
    await inGcs(changed, { ...changed.metadata, "logarchive-sha256": "0".repeat(64) });
    const unexpected = archiveObject({ namespace: "kube-system", seq: 16, records: 2 });
    await inS3(unexpected);
    await inGcs(unexpected);
    await load(unexpected);

    const report = await run();
    const verdict = (o: ArchiveObject) => report.objects.find((x) => x.key === o.name)?.verdict;
    assert.equal(report.ok, false);
    assert.equal(verdict(loaded), "loaded");
    assert.equal(verdict(excluded), "excluded");
    assert.equal(verdict(notTransferred), "not-transferred");
    assert.equal(verdict(notQueued), "not-queued");
    assert.equal(verdict(queued), "queued");
    assert.equal(verdict(duplicated), "duplicated");
    assert.equal(verdict(quarantined), "quarantined");
    assert.equal(verdict(changed), "conflict");
    assert.equal(verdict(unexpected), "unexpected-rows");
    assert.equal(report.perNamespace.bad?.rows, 4, "the duplicated object's rows, twice");
    const text = describeReconcile(report);
    assert.match(text, /DUPLICATED\s+\S+bad\S+: 4 rows for 2 records/);
    assert.match(text, /NOT OK/);

    // --namespace narrows it to one namespace.
    const good = await run("good");
    assert.equal(good.ok, true);
    assert.equal(good.objects.length, 1);
  });
});
