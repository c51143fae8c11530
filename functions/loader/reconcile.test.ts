// reconcile against real parts (s3rver, our GCS server, DuckDB), with the archive, the GCS
// copy, the loader's markers and the warehouse put into each state it must tell apart.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { gunzipSync, gzipSync } from "node:zlib";
import {
  DeleteObjectCommand,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { Storage } from "@google-cloud/storage";
import { compactNamespaceHour } from "../../lib/compaction/compact.ts";
import { parsePolicy } from "../../lib/policy/policy.ts";
import { putTestObject, testLossRecord, testObject } from "../../lib/retrieval/test_support.ts";
import { type LocalGcs, startLocalGcs } from "../../local/gcs/server.ts";
import { LOCAL_S3_CREDENTIALS, type LocalS3, startLocalS3 } from "../../local/s3.ts";
import { BigQueryWarehouse } from "../warehouse/bigquery.ts";
import { DuckDbWarehouse } from "../warehouse/duckdb.ts";
import type { TableRef, WarehousePort } from "../warehouse/port.ts";
import { startDryRunFront } from "../warehouse/test_support/dry-run.ts";
import {
  fakeBigQueryClient,
  startFakeBigQuery,
  type TableRow,
} from "../warehouse/test_support/fake-bigquery.ts";
import { markerPaths, objectId } from "./markers.ts";
import {
  describeReconcile,
  type ReconcileInput,
  reconcile,
  type TimestampRange,
  type WarehouseScan,
} from "./reconcile.ts";
import { StateStore } from "./state.ts";
import { type ArchiveObject, archiveObject, streamObject } from "./test_support/objects.ts";

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

const run = (
  namespace?: string,
  from = "2026-11-21T00:00:00Z",
  to = "2026-11-22T00:00:00Z",
  policy = POLICY,
  more: Partial<ReconcileInput> = {},
) =>
  reconcile({
    s3,
    s3Bucket: "archive",
    landing: storage.bucket("landing"),
    state,
    warehouse,
    policy,
    from: new Date(from),
    to: new Date(to),
    ...(namespace ? { namespace } : {}),
    ...more,
  });

/** The same archive object filed under another day (archiveObject writes 2026-11-21 only). */
function onDay(o: ArchiveObject, dt: string): ArchiveObject {
  return { ...o, name: o.name.replace("/dt=2026-11-21/", `/dt=${dt}/`) };
}

const recordTime = (timestamp: string) => Date.parse(`${timestamp.replace(" ", "T")}Z`);

/** The warehouse rows the objects' records become, the columns a row count reads. */
function rowsOf(objects: readonly ArchiveObject[]): TableRow[] {
  return objects.flatMap((o) =>
    gunzipSync(o.body)
      .toString()
      .trimEnd()
      .split("\n")
      .map((line) => {
        const { batch_id, timestamp } = JSON.parse(line) as TableRow;
        return { batch_id, timestamp };
      }),
  );
}

/**
 * A warehouse with the time-bounded row count and a dry run, as BigQuery's adapter has: it
 * holds the rows of the objects given and counts them with the predicate reconcile asks
 * for, logging each call.
 */
function boundedWarehouse(objects: readonly ArchiveObject[], calls: string[]): WarehousePort {
  const rows = rowsOf(objects);
  const count = (batchIds: readonly string[], range: TimestampRange) => {
    const counts = new Map<string, number>();
    for (const r of rows) {
      const t = recordTime(r.timestamp);
      if (!batchIds.includes(r.batch_id) || t < range.from.getTime() || t >= range.to.getTime()) continue;
      counts.set(r.batch_id, (counts.get(r.batch_id) ?? 0) + 1);
    }
    return counts;
  };
  return {
    kind: "bigquery",
    ensureTable: async () => {},
    insertLoadJob: () => Promise.reject(new Error("not in this test")),
    getLoadJob: async () => null,
    rowCountsByBatch: async () => {
      calls.push("rowCountsByBatch");
      throw new Error("the unbounded count must not run where the bounded one exists");
    },
    rowCountsByBatchBetween: async (_table: TableRef, batchIds, range) => {
      calls.push(`count ${range.from.toISOString()} ${range.to.toISOString()}`);
      return count(batchIds, range);
    },
    dryRunRowCountsByBatchBetween: async (_table: TableRef, batchIds, range) => {
      calls.push(`dry run ${range.from.toISOString()} ${range.to.toISOString()}`);
      return 1000 * batchIds.length;
    },
    close: async () => {},
  };
}

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

    const notTransferred = archiveObject({ namespace: "bad", seq: 3, records: 2 });
    await inS3(notTransferred);
    const notQueued = archiveObject({ namespace: "bad", seq: 4, records: 2 });
    await inS3(notQueued);
    await inGcs(notQueued);
    const queued = archiveObject({ namespace: "bad", seq: 5, records: 2 });
    await inS3(queued);
    await inGcs(queued);
    await state.put(markerPaths.pending(TABLE, objectId(queued.name)), { name: queued.name });
    const duplicated = archiveObject({ namespace: "bad", seq: 6, records: 2 });
    await inS3(duplicated);
    await inGcs(duplicated);
    await load(duplicated);
    await load(duplicated);
    const quarantined = archiveObject({ namespace: "bad", seq: 7, records: 2 });
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
    const changed = archiveObject({ namespace: "bad", seq: 8, records: 2 });
    await inS3(changed);
    await inGcs(changed, { ...changed.metadata, "logarchive-sha256": "0".repeat(64) });
    const unexpected = archiveObject({ namespace: "kube-system", seq: 9, records: 2 });
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

  it("checks stream objects per object against the table their key names, and their own batch sequence", async () => {
    // 2026-11-24, node-s: apart from the other tests' objects.
    const stream = (seq: number) =>
      streamObject({
        namespaces: ["good", "web"],
        ...TABLE,
        seq,
        records: 4,
        node: "node-s",
        hour: "15",
        day: "2026-11-24",
      });
    const [first, second, third] = [stream(0), stream(1), stream(3)];
    for (const o of [first, second, third]) await inS3(o);
    await inGcs(first);
    await load(first);
    const range = ["2026-11-24T15:00:00Z", "2026-11-24T16:00:00Z"] as const;
    const report = await run(undefined, ...range);
    const verdict = (o: ArchiveObject) => report.objects.find((x) => x.key === o.name)?.verdict;
    assert.equal(verdict(first), "loaded");
    assert.equal(verdict(second), "not-transferred");
    assert.equal(report.perNamespace["stream:logarchive.container_logs"]?.objects, 3);
    assert.equal(report.namespaces["stream:logarchive.container_logs"]?.tier, "stream");
    assert.deepEqual(
      report.sequence.map((p) => [p.node, p.epoch, p.kind, p.first]),
      [["node-s", "5e5e5e5e", "missing", 2]],
      "stream batch 2 never arrived",
    );
    assert.equal(report.ok, false);
    // --namespace: the stream objects of the namespace's table; none for one not loaded.
    assert.equal((await run("web", ...range)).objects.length, 3);
    assert.equal((await run("kube-system", ...range)).objects.length, 0);
  });

  it("is not OK when it checked nothing: an empty range, or a namespace with no objects", async () => {
    const empty = await run(undefined, "2026-11-25T00:00:00Z", "2026-11-26T00:00:00Z");
    assert.equal(empty.ok, false);
    assert.equal(empty.objects.length + empty.archiveObjects.length, 0);
    assert.match(describeReconcile(empty), /^NOTHING CHECKED: no archived object in .* in either tier/m);
    const nosuch = await run("nosuch");
    assert.equal(nosuch.ok, false);
    assert.match(describeReconcile(nosuch), /NOTHING CHECKED: .* namespace nosuch/);
    const notArchived = await run(
      "scratch",
      undefined,
      undefined,
      parsePolicy("archive:\n  exclude: ['scratch']\n"),
    );
    assert.deepEqual(notArchived.notes, [
      "the policy does not archive namespace scratch (archive.exclude scratch)",
    ]);
  });

  it("in stream delivery labels an archive-tier namespace the policy loads 'loaded through the stream', the others 'archive only'", async () => {
    // Hour 13, node-l: apart from the other tests' objects. In stream delivery every
    // namespace's per-namespace objects are archive-tier; web's lines also reach the warehouse
    // through its table's stream objects, kube-system's (analytics.exclude) do not.
    const streamPolicy = parsePolicy(
      "analytics:\n  delivery: stream\n  include: ['*']\n  exclude: ['kube-system']\n",
    );
    const at = { tier: "archive", hour: "13", node: "node-l" } as const;
    await inS3(archiveObject({ ...at, namespace: "web", seq: 0, records: 2 }));
    await inS3(archiveObject({ ...at, namespace: "kube-system", seq: 1, records: 3 }));
    const report = await run(undefined, "2026-11-21T13:00:00Z", "2026-11-21T14:00:00Z", streamPolicy);
    assert.equal(report.namespaces.web?.archiveRole, "loaded-through-stream");
    assert.equal(report.namespaces["kube-system"]?.archiveRole, "archive-only");
    const text = describeReconcile(report);
    assert.match(text, /^ {2}web +objects +1 +records +2 +\(archive; loaded through the stream\) +OK$/m);
    assert.match(text, /^ {2}kube-system +objects +1 +records +3 +\(archive only\) +OK$/m);
    assert.match(text, /: 0 analytics object\(s\), 2 archive-tier object\(s\)$/m);
  });

  it("checks archive-only objects against their metadata: SHA-256, records and size of the body read back", async () => {
    // Hour 12, node-c: apart from the other tests' objects.
    const range = ["2026-11-21T12:00:00Z", "2026-11-21T13:00:00Z"] as const;
    const at = { tier: "archive", hour: "12", node: "node-c" } as const;
    const good = archiveObject({ ...at, namespace: "kube-system", seq: 0, records: 5 });
    await inS3(good);
    const clean = await run("kube-system", ...range);
    assert.equal(clean.ok, true, describeReconcile(clean));
    assert.equal(clean.objects.length, 0, "no analytics object");
    assert.deepEqual(
      clean.archiveObjects.map((o) => [o.key, o.verdict, o.records]),
      [[good.name, "verified", 5]],
    );
    assert.deepEqual(clean.namespaces["kube-system"], {
      tier: "archive",
      objects: 1,
      records: 5,
      ok: true,
      archiveRole: "archive-only",
    });
    assert.match(describeReconcile(clean), /kube-system .*\(archive only\)\s+OK\n/);

    const otherBody = archiveObject({ ...at, namespace: "kube-system", seq: 1, records: 3 });
    await s3.send(
      new PutObjectCommand({
        Bucket: "archive",
        Key: otherBody.name,
        Body: archiveObject({ ...at, namespace: "kube-system", seq: 1, records: 4 }).body,
        Metadata: otherBody.metadata,
      }),
    );
    const notGzip = archiveObject({ ...at, namespace: "kube-system", seq: 2, records: 3 });
    await s3.send(
      new PutObjectCommand({
        Bucket: "archive",
        Key: notGzip.name,
        Body: "not gzip",
        Metadata: notGzip.metadata,
      }),
    );
    const noMetadata = archiveObject({ ...at, namespace: "kube-system", seq: 3, records: 3 });
    await s3.send(new PutObjectCommand({ Bucket: "archive", Key: noMetadata.name, Body: noMetadata.body }));

    const report = await run("kube-system", ...range);
    const verdict = (o: ArchiveObject) => report.archiveObjects.find((x) => x.key === o.name);
    assert.equal(report.ok, false);
    assert.equal(verdict(good)?.verdict, "verified");
    assert.equal(verdict(otherBody)?.verdict, "corrupt");
    assert.match(
      verdict(otherBody)?.detail ?? "",
      /SHA-256 is [0-9a-f]{64}, the metadata says .*; it holds 4 records, the metadata says 3/,
    );
    assert.equal(verdict(notGzip)?.verdict, "corrupt");
    assert.match(verdict(notGzip)?.detail ?? "", /does not inflate/);
    assert.equal(verdict(noMetadata)?.verdict, "bad-metadata");
    assert.equal(report.namespaces["kube-system"]?.ok, false);
    const text = describeReconcile(report);
    assert.match(text, /kube-system .*\(archive only\)\s+NOT OK\n/);
    assert.match(text, /CORRUPT\s+\S+000000000001\.ndjson\.gz: its SHA-256/);
    assert.match(text, /NOT OK: see above$/);
  });

  it("finds batches missing from a shipper's sequence, in any tier or namespace, and numbers used twice", async () => {
    const range = ["2026-11-21T14:00:00Z", "2026-11-21T15:00:00Z"] as const;
    const at = { hour: "14", node: "node-d" } as const;
    // 0 analytics, 1 archive, 2 an hour outside the range (a late line), 3 and 4 lost, 5.
    const objects = [
      archiveObject({ ...at, namespace: "web", seq: 0, records: 1 }),
      archiveObject({ ...at, namespace: "kube-system", tier: "archive", seq: 1, records: 1 }),
      archiveObject({ ...at, hour: "09", namespace: "web", seq: 2, records: 1 }),
      archiveObject({ ...at, namespace: "web", seq: 5, records: 1 }),
    ];
    for (const o of objects) {
      await inS3(o);
      if (!o.name.includes("/archive/")) {
        await inGcs(o);
        await load(o);
      }
    }
    const report = await run(undefined, ...range);
    assert.deepEqual(
      report.sequence.map(({ node, kind, first, last }) => ({ node, kind, first, last })),
      [{ node: "node-d", kind: "missing", first: 3, last: 4 }],
    );
    assert.equal(report.ok, false, "every object is fine, but two batches never arrived");
    assert.deepEqual(report.sequence[0]?.keys, [objects[2]?.name, objects[3]?.name]);
    assert.match(
      describeReconcile(report),
      /MISSING\s+node node-d epoch 0123abcd batches 3-4: not in the hours 2026-11-20T14:00:00\.000Z → 2026-11-22T15:00:00\.000Z/,
    );
    // The gap concerns every namespace the shipper wrote: the lost batches may have held any.
    assert.equal((await run("kube-system", ...range)).sequence.length, 1);

    const reused = archiveObject({ ...at, namespace: "api", seq: 5, records: 1 });
    await inS3(reused);
    const again = await run(undefined, ...range);
    assert.deepEqual(
      again.sequence.map(({ kind, first, keys }) => ({ kind, first, keys: keys.length })),
      [
        { kind: "missing", first: 3, keys: 2 },
        { kind: "reused", first: 5, keys: 2 },
      ],
    );
  });

  it("counts a loss record's number as a batch that arrived, and lists the loss records of the range", async () => {
    const range = ["2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z"] as const;
    const batch = (seq: number) =>
      testObject({
        namespace: "kube-system",
        node: "node-l",
        epoch: "0f0f0f0f",
        seq,
        tier: "archive",
        lines: [{ at: `2026-12-01T10:0${seq}:00Z`, message: `batch ${seq}` }],
      });
    for (const o of [batch(0), batch(2)]) {
      await s3.send(
        new PutObjectCommand({ Bucket: "archive", Key: o.key, Body: o.body, Metadata: o.metadata }),
      );
    }
    const before = await run("kube-system", ...range);
    assert.deepEqual(
      before.sequence.map(({ kind, first, last }) => ({ kind, first, last })),
      [{ kind: "missing", first: 1, last: 1 }],
    );
    // Batch 1 was a loss record the shipper wrote (another namespace's: the number is the node's).
    const loss = testLossRecord({
      namespace: "web",
      node: "node-l",
      epoch: "0f0f0f0f",
      seq: 1,
      bytes: 512,
      lastLineBefore: "2026-12-01T10:01:30Z",
      detectedAt: "2026-12-01T10:02:00Z",
    });
    await s3.send(
      new PutObjectCommand({ Bucket: "archive", Key: loss.key, Body: loss.body, Metadata: loss.metadata }),
    );
    const after = await run("kube-system", ...range);
    assert.deepEqual(after.sequence, []);
    assert.equal(after.ok, true, describeReconcile(after));
    assert.deepEqual(after.lossRecords, [], "web's loss is not kube-system's");
    const all = await run(undefined, ...range);
    assert.deepEqual(all.lossRecords, [loss.key]);
    assert.match(
      describeReconcile(all),
      /LOSS RECORDED\s+logs\/losses\/namespace=web\/dt=2026-12-01\/hour=10\//,
    );
  });

  it("counts rows by the partition column too: the range widened by the skew, planned and priced before it runs", async () => {
    // Hour 18, node-f. One object keeps the rule (records in its hour); one's records lie
    // 1 h before its hour, inside a 90 min skew; one's 3 h before, outside it.
    const range = ["2026-11-21T18:00:00Z", "2026-11-21T19:00:00Z"] as const;
    const inHour = archiveObject({ namespace: "web", node: "node-f", hour: "18", seq: 0, records: 3 });
    const early = archiveObject({ namespace: "web", node: "node-f", hour: "17", seq: 1, records: 2 });
    const tooEarly = archiveObject({ namespace: "web", node: "node-f", hour: "15", seq: 2, records: 2 });
    const filedAt18 = (o: ArchiveObject) => ({
      ...o,
      name: o.name.replace("/hour=17/", "/hour=18/").replace("/hour=15/", "/hour=18/"),
    });
    const objects = [inHour, filedAt18(early), filedAt18(tooEarly)];
    for (const o of objects) {
      await inS3(o);
      await inGcs(o);
    }
    const calls: string[] = [];
    const scans: WarehouseScan[][] = [];
    const report = await run("web", ...range, POLICY, {
      warehouse: boundedWarehouse(objects, calls),
      timestampSkewMs: 90 * 60_000,
      onWarehouseScan: (s) => {
        calls.push("said");
        scans.push([...s]);
      },
    });
    const from = "2026-11-21T16:30:00.000Z";
    const to = "2026-11-21T20:30:00.000Z";
    assert.deepEqual(calls, [`dry run ${from} ${to}`, "said", `count ${from} ${to}`]);
    assert.deepEqual(scans, [
      [{ table: "logarchive.container_logs", batches: 3, timestamps: { from, to }, estimatedBytes: 3000 }],
    ]);
    assert.deepEqual(report.warehouseScans, scans[0]);
    const verdict = (o: ArchiveObject) => report.objects.find((x) => x.key === o.name);
    assert.equal(verdict(objects[0] as ArchiveObject)?.verdict, "loaded");
    assert.equal(verdict(objects[1] as ArchiveObject)?.verdict, "loaded", "within the skew: every row found");
    const outside = verdict(objects[2] as ArchiveObject);
    assert.equal(outside?.verdict, "not-queued", "its rows lie outside the skew: none counted");
    const text = describeReconcile(report);
    assert.match(
      text,
      /warehouse logarchive\.container_logs: 3 batch\(es\), rows with timestamp in 2026-11-21T16:30:00\.000Z → 2026-11-21T20:30:00\.000Z, 3000 bytes scanned \(dry run\)/,
    );

    // Without a skew, an object with one of its two records an hour early is short of a row, and says why.
    const straddling = {
      ...early,
      body: gzipSync(
        Buffer.concat([
          gunzipSync(
            archiveObject({ namespace: "web", node: "node-f", hour: "18", seq: 1, records: 1 }).body,
          ),
          gunzipSync(
            archiveObject({ namespace: "web", node: "node-f", hour: "17", seq: 1, records: 1 }).body,
          ),
        ]),
      ),
    };
    const exact = await run("web", ...range, POLICY, {
      warehouse: boundedWarehouse([inHour, straddling], []),
    });
    const short = exact.objects.find((x) => x.key === objects[1]?.name);
    assert.equal(short?.verdict, "partial");
    assert.equal(
      short?.detail,
      "1 rows for 2 records with timestamps in 2026-11-21T18:00:00.000Z → 2026-11-21T19:00:00.000Z (the range ± the timestamp skew of 0 ms)",
    );

    // The DuckDB adapter bounds its count the same way (the rows lie in its table, outside the
    // skew for one object) and has no dry run to price it with.
    for (const o of objects) await load(o);
    const local = await run("web", ...range, POLICY, { timestampSkewMs: 90 * 60_000 });
    assert.deepEqual(local.warehouseScans, [
      { table: "logarchive.container_logs", batches: 3, timestamps: { from, to }, estimatedBytes: null },
    ]);
    const localVerdict = (o: ArchiveObject) => local.objects.find((x) => x.key === o.name);
    assert.equal(localVerdict(objects[0] as ArchiveObject)?.verdict, "loaded");
    assert.equal(localVerdict(objects[1] as ArchiveObject)?.verdict, "loaded");
    assert.equal(localVerdict(objects[2] as ArchiveObject)?.rows, 0, "its loaded rows lie outside the skew");
    assert.match(
      describeReconcile(local),
      /warehouse logarchive\.container_logs: 3 batch\(es\), rows with timestamp in 2026-11-21T16:30:00\.000Z → 2026-11-21T20:30:00\.000Z\n/,
    );
  });

  it("on BigQuery's adapter: says the dry run's bytes before the count, which skips rows outside the skew", async () => {
    const range = ["2026-11-21T18:00:00Z", "2026-11-21T19:00:00Z"] as const;
    const inHour = archiveObject({ namespace: "bq", node: "node-q", hour: "18", seq: 0, records: 3 });
    const tooEarly = archiveObject({ namespace: "bq", node: "node-q", hour: "15", seq: 1, records: 2 });
    const objects = [inHour, { ...tooEarly, name: tooEarly.name.replace("/hour=15/", "/hour=18/") }];
    for (const o of objects) {
      await inS3(o);
      await inGcs(o);
    }
    const fake = await startFakeBigQuery();
    const front = await startDryRunFront(fake, ({ query }) =>
      query.includes("timestamp >= @from") ? 4096 : null,
    );
    const bigquery = new BigQueryWarehouse({
      projectId: "p",
      location: "EU",
      bigquery: fakeBigQueryClient({ ...fake, url: front.url }, "p"),
    });
    try {
      fake.addRows("p", TABLE.dataset, TABLE.table, rowsOf(objects));
      const said: WarehouseScan[][] = [];
      const report = await run("bq", ...range, POLICY, {
        warehouse: bigquery,
        timestampSkewMs: 30 * 60_000,
        onWarehouseScan: (scans) => {
          assert.equal(fake.requestsTo("POST", "/queries").length, 0, "said before the count runs");
          said.push([...scans]);
        },
      });
      const timestamps = { from: "2026-11-21T17:30:00.000Z", to: "2026-11-21T19:30:00.000Z" };
      assert.deepEqual(said, [
        [{ table: "logarchive.container_logs", batches: 2, timestamps, estimatedBytes: 4096 }],
      ]);
      assert.equal(front.dryRuns.length, 1);
      assert.equal(fake.requestsTo("POST", "/queries").length, 1);
      const verdict = (o: ArchiveObject) => report.objects.find((x) => x.key === o.name);
      assert.equal(verdict(objects[0] as ArchiveObject)?.verdict, "loaded");
      assert.equal(verdict(objects[1] as ArchiveObject)?.rows, 0, "its rows lie 3 h before its hour");
      assert.match(
        describeReconcile(report),
        /warehouse logarchive\.container_logs: 2 batch\(es\), rows with timestamp in 2026-11-21T17:30:00\.000Z → 2026-11-21T19:30:00\.000Z, 4096 bytes scanned \(dry run\)/,
      );
    } finally {
      await bigquery.close();
      await front.stop();
      await fake.stop();
    }
  });

  it("lists only the hours of the range and a margin each side, and calls a batch below them unknown", async () => {
    // Archive tier, namespace batch-gaps, node-g: batch 0 five days before the range, then
    // 40 more objects that day, none of which the listing may read; batch 1 in the range.
    const range = ["2026-11-21T20:00:00Z", "2026-11-21T21:00:00Z"] as const;
    const at = { tier: "archive", namespace: "batch-gaps", node: "node-g" } as const;
    const far = onDay(archiveObject({ ...at, hour: "20", seq: 0, records: 1 }), "2026-11-16");
    await inS3(far);
    for (let i = 0; i < 40; i++) {
      await inS3(
        onDay(archiveObject({ ...at, node: "node-h", hour: "21", seq: i, records: 1 }), "2026-11-16"),
      );
    }
    const inRange = archiveObject({ ...at, hour: "20", seq: 1, records: 1 });
    await inS3(inRange);

    const returned: string[] = [];
    s3.middlewareStack.add(
      (next) => async (args) => {
        const result = await next(args);
        const output = (result.output ?? {}) as Partial<ListObjectsV2CommandOutput>;
        for (const o of output.Contents ?? []) if (o.Key !== undefined) returned.push(o.Key);
        return result;
      },
      { step: "initialize", name: "recordListedKeys" },
    );
    let report: Awaited<ReturnType<typeof run>>;
    try {
      report = await run("batch-gaps", ...range, POLICY, { gapMarginHours: 2 });
    } finally {
      s3.middlewareStack.remove("recordListedKeys");
    }
    assert.deepEqual(report.listed, { from: "2026-11-21T18:00:00.000Z", to: "2026-11-21T23:00:00.000Z" });
    const readFarKeys = returned.filter((k) => k.includes("/dt=2026-11-16/"));
    assert.ok(
      readFarKeys.length <= 1,
      `at most the one key that finds the namespace is read outside the hours, got ${readFarKeys.length}`,
    );
    assert.deepEqual(
      report.sequence.map(({ node, kind, first, last, keys }) => ({ node, kind, first, last, keys })),
      [{ node: "node-g", kind: "unknown", first: 0, last: 0, keys: [inRange.name] }],
    );
    assert.equal(report.ok, true, "an undecided number below the hours listed is no verdict");
    const text = describeReconcile(report);
    assert.match(
      text,
      /UNKNOWN\s+node node-g epoch 0123abcd batch 0: below \S+000000000001\.ndjson\.gz, not in the hours/,
    );
    assert.match(text, /^OK: .* no batch is missing in the hours listed \(1 unknown at the edge\)$/m);

    // With the margin reaching that day, batch 0 is found and nothing is unknown.
    const wide = await run("batch-gaps", ...range, POLICY, { gapMarginHours: 6 * 24 });
    assert.deepEqual(wide.sequence, []);
  });

  it("reads the GCS copy's logarchive-sha256 whatever its key's case, as the loader does", async () => {
    // A namespace and node of their own, seq 0: no other test's sequence or namespace changes.
    const at = { namespace: "mixed-case-meta", node: "node-mc", records: 2 } as const;
    const mixedCase = (metadata: Record<string, string>) =>
      Object.fromEntries(
        Object.entries(metadata).map(([k, v]) => [k.replace("logarchive-sha256", "Logarchive-SHA256"), v]),
      );
    const changed = archiveObject({ ...at, seq: 0 });
    await inS3(changed);
    await inGcs(changed, mixedCase({ ...changed.metadata, "logarchive-sha256": "0".repeat(64) }));
    const same = archiveObject({ ...at, seq: 1 });
    await inS3(same);
    await inGcs(same, mixedCase(same.metadata));
    const report = await run("mixed-case-meta");
    const verdict = (o: ArchiveObject) => report.objects.find((x) => x.key === o.name)?.verdict;
    assert.equal(verdict(changed), "conflict", "another body in GCS, under a mixed-case key");
    assert.equal(verdict(same), "not-queued", "the same body: not a conflict");
  });

  it("a compacted hour changing under it: a batch compacted and deleted mid-check is checked from its member, one deleted unnamed is missing, a compacted key written again is a conflict", async () => {
    // kube-system is archive-only; hour 16 and node-z are this test's own.
    const range = ["2026-11-21T16:00:00Z", "2026-11-21T17:00:00Z"] as const;
    const batch = (seq: number, lines: number) =>
      testObject({
        namespace: "kube-system",
        node: "node-z",
        epoch: "7a7a7a7a",
        seq,
        tier: "archive",
        lines: Array.from({ length: lines }, (_, i) => ({ at: `2026-11-21T16:${10 + i}:00Z` })),
      });
    // The compactor and the test's deletes use their own client; the reconcile's client holds
    // its HEAD of a chosen original until they are done.
    const other = new S3Client({
      endpoint: s3server.endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: LOCAL_S3_CREDENTIALS,
    });
    const compactHour = async () => {
      const outcome = await compactNamespaceHour({
        s3: other,
        bucket: "archive",
        prefix: "logs",
        namespace: "kube-system",
        dt: "2026-11-21",
        hour: "16",
        indexCheck: false,
        now: () => new Date("2026-11-21T19:00:00Z"),
      });
      assert.equal(outcome.status, "committed", JSON.stringify(outcome));
      return outcome.manifest!;
    };
    const held = new Map<string, () => Promise<void>>();
    const watched = new S3Client({
      endpoint: s3server.endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: LOCAL_S3_CREDENTIALS,
    });
    watched.middlewareStack.add(
      (next, context) => async (args) => {
        const key = (args.input as { Key?: string }).Key;
        const run = key === undefined ? undefined : held.get(key);
        if (context.commandName === "HeadObjectCommand" && run !== undefined) {
          held.delete(key!);
          await run();
        }
        return next(args);
      },
      { step: "initialize", name: "holdHead" },
    );
    try {
      const first = batch(0, 3);
      await putTestObject(other, "archive", first);
      await compactHour();
      await other.send(new DeleteObjectCommand({ Bucket: "archive", Key: first.key }));
      const late = batch(1, 2);
      const lost = batch(2, 4);
      await putTestObject(other, "archive", late);
      await putTestObject(other, "archive", lost);
      // late: a supplement names it and it is deleted between the listing and its HEAD.
      held.set(late.key, async () => {
        const supplement = await compactHour();
        assert.deepEqual(
          supplement.members.map((m) => m.key),
          [late.key, lost.key],
        );
        await other.send(new DeleteObjectCommand({ Bucket: "archive", Key: late.key }));
      });
      const report = await run("kube-system", ...range, POLICY, { s3: watched });
      const verdict = (key: string) => report.archiveObjects.find((o) => o.key === key);
      assert.equal(verdict(late.key)?.verdict, "verified", JSON.stringify(report.archiveObjects));
      assert.match(verdict(late.key)?.detail ?? "", /^compacted: bytes \d+-\d+ of .*part-0001-/);
      assert.equal(held.size, 0, "the HEAD was held and the supplement committed");

      // lost2: deleted between the listing and its HEAD, no manifest names it.
      const lost2 = batch(3, 2);
      await putTestObject(other, "archive", lost2);
      held.set(lost2.key, async () => {
        await other.send(new DeleteObjectCommand({ Bucket: "archive", Key: lost2.key }));
      });
      // first's key written again with other bytes, after its compaction.
      const rewrite = batch(0, 5);
      assert.equal(rewrite.key, first.key);
      await putTestObject(other, "archive", rewrite);
      const changed = await run("kube-system", ...range, POLICY, { s3: watched });
      const of = (key: string) => changed.archiveObjects.filter((o) => o.key === key);
      assert.equal(changed.ok, false);
      assert.deepEqual(
        of(lost2.key).map((o) => [o.verdict, o.detail]),
        [
          [
            "missing",
            "listed, then gone before it was read (deleted), and no committed manifest of its hour names it: its batch is in no object of the archive",
          ],
        ],
      );
      const conflict = of(first.key).find((o) => o.verdict === "conflict");
      assert.match(
        conflict?.detail ?? "",
        /^key written again after compaction: version \S+ \(SHA-256 [0-9a-f]{64}\) differs from the compacted version \S+ \(SHA-256 [0-9a-f]{64}\), read from its member$/,
      );
      assert.deepEqual(
        of(first.key)
          .map((o) => o.verdict)
          .sort(),
        ["conflict", "verified"],
        "the member is still checked",
      );
      assert.match(
        describeReconcile(changed),
        /CONFLICT\s+\S+000000000000\.ndjson\.gz: key written again after compaction/,
      );
    } finally {
      other.destroy();
      watched.destroy();
    }
  });
});
