// Compliance retrieval against the local stack with its S3 archive front: objects in STANDARD,
// GLACIER and DEEP_ARCHIVE across both tiers, restores finished by the front's test control,
// a tampered object, a missing batch, range edges to the nanosecond, filters, and re-runs.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { gunzipSync } from "node:zlib";
import { PutObjectLegalHoldCommand, type S3Client } from "@aws-sdk/client-s3";
import { localS3Client } from "../../local/s3.ts";
import { type LocalCloud, startLocalCloud } from "../../local/stack.ts";
import { DEFAULT_PRICES } from "../economics/prices.ts";
import { parsePolicy } from "../policy/policy.ts";
import { buildBundle, type Manifest, writeBundle } from "./bundle.ts";
import { RestorePlanError } from "./plan.ts";
import type { RetrievalQuery } from "./query.ts";
import { type RetrieveInput, retrieve } from "./retrieve.ts";
import {
  at,
  countCommands,
  putTestObject,
  type TestObject,
  testLossRecord,
  testObject,
} from "./test_support.ts";

const policy = parsePolicy("archive: { prefix: logs }\n", "test");

// The range crosses midnight: [2026-03-03T23:30:00Z, 2026-03-04T00:30:00Z).
const RANGE = { from: at("2026-03-03T23:30:00Z"), to: at("2026-03-04T00:30:00Z") };
const E1 = "0a0a0a0a";
const E2 = "0b0b0b0b";

// node-a numbers batches 0-3 across payments and web; node-b 0-1, both payments.
const objects = {
  a0: testObject({
    namespace: "payments",
    node: "node-a",
    epoch: E1,
    seq: 0,
    tier: "analytics",
    lines: [
      { at: "2026-03-03T23:29:59.999999999Z", message: "just before the range" },
      { at: "2026-03-03T23:30:00Z", message: "first instant of the range" },
      { at: "2026-03-03T23:45:00.5Z", pod: "api-2", message: "payment accepted" },
    ],
  }),
  a1web: testObject({
    namespace: "web",
    node: "node-a",
    epoch: E1,
    seq: 1,
    tier: "archive",
    lines: [{ at: "2026-03-03T23:50:00Z", message: "web line, another namespace" }],
  }),
  // payments moved from analytics to archive-only at midnight: its next hour is in archive/.
  a2: testObject({
    namespace: "payments",
    node: "node-a",
    epoch: E1,
    seq: 2,
    tier: "archive",
    lines: [
      { at: "2026-03-04T00:00:00Z", message: "midnight" },
      {
        at: "2026-03-04T00:10:00Z",
        pod: "worker-1",
        container: "sidecar",
        message: "ERROR timeout talking to bank",
      },
    ],
  }),
  a3: testObject({
    namespace: "payments",
    node: "node-a",
    epoch: E1,
    seq: 3,
    tier: "archive",
    lines: [
      { at: "2026-03-04T00:29:59.999999999Z", message: "last instant of the range" },
      { at: "2026-03-04T00:30:00Z", message: "the range's end, excluded" },
    ],
  }),
  b0: testObject({
    namespace: "payments",
    node: "node-b",
    epoch: E2,
    seq: 0,
    tier: "analytics",
    lines: [{ at: "2026-03-03T23:40:00.000000001Z", pod: "api-3", message: "node b before midnight" }],
  }),
  b1: testObject({
    namespace: "payments",
    node: "node-b",
    epoch: E2,
    seq: 1,
    tier: "archive",
    lines: [{ at: "2026-03-04T00:05:00Z", pod: "api-3", message: "node b after midnight" }],
  }),
};

const messagesOf = (lines: readonly { line: string }[]) =>
  lines.map((r) => JSON.parse(r.line).message as string);

describe("logarchive retrieve over the local stack (versioned bucket with Object Lock)", () => {
  let dir: string;
  let cloud: LocalCloud;
  let s3: S3Client;
  let commands: Map<string, number>;
  let bucket: string;

  const query = (extra: Partial<RetrievalQuery> = {}): RetrievalQuery => ({
    namespace: "payments",
    ...RANGE,
    pods: [],
    containers: [],
    ...extra,
  });
  const input = (extra: Partial<RetrieveInput> = {}): RetrieveInput => ({
    s3,
    bucket,
    prefix: "logs",
    query: query(),
    restoreTier: "Bulk",
    restoreDays: 2,
    prices: DEFAULT_PRICES,
    pollIntervalMs: 1,
    // A poll that finds restores running moves the front on: every job finishes.
    sleep: async () => {
      cloud.s3Archive.completeRestores();
    },
    ...extra,
  });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "retrieve-"));
    cloud = await startLocalCloud({ dataDir: dir, policy, archiveBucket: { objectLock: true } });
    bucket = cloud.endpoints.s3.bucket;
    s3 = localS3Client(cloud.endpoints.s3.endpoint, cloud.endpoints.region);
    commands = countCommands(s3);
    for (const o of Object.values(objects)) await putTestObject(s3, bucket, o);
    // a0 is under governance retention; b0 under a legal hold.
    await putTestObject(s3, bucket, objects.a0, {
      ObjectLockMode: "GOVERNANCE",
      ObjectLockRetainUntilDate: new Date("2033-01-01T00:00:00Z"),
    });
    await s3.send(
      new PutObjectLegalHoldCommand({ Bucket: bucket, Key: objects.b0.key, LegalHold: { Status: "ON" } }),
    );
    await cloud.s3Archive.setStorageClass(bucket, objects.a2.key, "GLACIER");
    await cloud.s3Archive.setStorageClass(bucket, objects.a3.key, "DEEP_ARCHIVE");
  });

  after(async () => {
    s3?.destroy();
    await cloud?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("plans the restores of GLACIER and DEEP_ARCHIVE objects with their time and Bulk cost, and restores nothing", async () => {
    const outcome = await retrieve(input({ planOnly: true }));
    assert.equal(outcome.status, "planned");
    const plan = outcome.plan;
    assert.deepEqual(
      plan.objects.filter((o) => o.action === "restore").map((o) => [o.key, o.storageClass]),
      [
        [objects.a2.key, "GLACIER"],
        [objects.a3.key, "DEEP_ARCHIVE"],
      ],
    );
    assert.equal(plan.objects.filter((o) => o.action === "read").length, 3);
    assert.equal(plan.estimatedHours, 48, "Deep Archive Bulk: within 48 hours");
    const deep = plan.byClass.find((c) => c.storageClass === "DEEP_ARCHIVE");
    const size = objects.a3.body.length;
    assert.equal(
      deep?.costUsd,
      (size / 1024 ** 3) * DEFAULT_PRICES.s3_restore_deep_archive_bulk_gb.value +
        DEFAULT_PRICES.s3_restore_deep_archive_bulk_per_1k.value / 1000,
    );
    assert.equal(commands.get("RestoreObjectCommand") ?? 0, 0);
    assert.equal(commands.get("GetObjectCommand") ?? 0, 0);
  });

  it("refuses Expedited for Deep Archive before calling S3, and prices Standard per class", async () => {
    await assert.rejects(retrieve(input({ planOnly: true, restoreTier: "Expedited" })), (error: Error) => {
      assert.ok(error instanceof RestorePlanError);
      assert.match(error.message, /Expedited retrieval is not available for DEEP_ARCHIVE/);
      return true;
    });
    const standard = await retrieve(input({ planOnly: true, restoreTier: "Standard" }));
    assert.equal(standard.plan.estimatedHours, 12);
    const gb = (object: TestObject) => object.body.length / 1024 ** 3;
    const glacier =
      gb(objects.a2) * DEFAULT_PRICES.s3_restore_glacier_fr_standard_gb.value +
      DEFAULT_PRICES.s3_restore_glacier_fr_standard_per_1k.value / 1000;
    const deep =
      gb(objects.a3) * DEFAULT_PRICES.s3_restore_deep_archive_standard_gb.value +
      DEFAULT_PRICES.s3_restore_deep_archive_standard_per_1k.value / 1000;
    assert.deepEqual(
      standard.plan.byClass
        .filter((c) => c.toRestore > 0)
        .map((c) => [c.storageClass, c.costUsd, c.estimatedHours]),
      [
        ["DEEP_ARCHIVE", deep, 12],
        ["GLACIER", glacier, 5],
      ],
    );
    assert.equal(standard.plan.costUsd, glacier + deep);
    assert.equal(commands.get("RestoreObjectCommand") ?? 0, 0);
  });

  it("starts each restore once: a re-run finds them running and requests nothing again", async () => {
    const first = await retrieve(input({ wait: false }));
    assert.equal(first.status, "waiting");
    assert.deepEqual(
      first.restoresRequested.map((r) => [r.key, r.result]),
      [
        [objects.a2.key, "started"],
        [objects.a3.key, "started"],
      ],
    );
    assert.equal(commands.get("RestoreObjectCommand"), 2);
    const again = await retrieve(input({ wait: false }));
    assert.equal(again.status, "waiting");
    assert.deepEqual(again.restoresRequested, []);
    assert.equal(commands.get("RestoreObjectCommand"), 2, "no second RestoreObject");
    assert.equal(commands.get("GetObjectCommand") ?? 0, 0);
  });

  let complete: Awaited<ReturnType<typeof retrieve>>;

  it("resumes: waits for the running restores, then keeps every line in [from, to) exactly once, in time order", async () => {
    const progress: string[] = [];
    complete = await retrieve(
      input({
        onEvent: (e) => {
          if (e.kind === "restore-progress") progress.push(`${e.ready}/${e.total}`);
        },
      }),
    );
    assert.equal(commands.get("RestoreObjectCommand"), 2, "the resumed run requested nothing");
    assert.deepEqual(progress, ["3/5", "5/5"]);
    assert.equal(complete.status, "done");
    assert.deepEqual(complete.problems, []);
    assert.deepEqual(messagesOf(complete.records), [
      "first instant of the range",
      "node b before midnight",
      "payment accepted",
      "midnight",
      "node b after midnight",
      "ERROR timeout talking to bank",
      "last instant of the range",
    ]);
    const sources = complete.objects.filter((o) => o.role === "records");
    assert.deepEqual(
      sources.map((o) => [o.key, o.storageClass, o.checksum, o.recordsTotal, o.recordsKept]),
      [
        [objects.a0.key, "STANDARD", "verified", 3, 2],
        [objects.b0.key, "STANDARD", "verified", 1, 1],
        [objects.a2.key, "GLACIER", "verified", 2, 2],
        [objects.a3.key, "DEEP_ARCHIVE", "verified", 2, 1],
        [objects.b1.key, "STANDARD", "verified", 1, 1],
      ].sort((x, y) => String(x[0]).localeCompare(String(y[0]))),
    );
    const a0 = sources.find((o) => o.key === objects.a0.key);
    assert.deepEqual(a0?.lock, {
      mode: "GOVERNANCE",
      retainUntil: "2033-01-01T00:00:00.000Z",
      legalHold: null,
    });
    assert.equal(sources.find((o) => o.key === objects.b0.key)?.lock?.legalHold, "ON");
    assert.equal(sources.find((o) => o.key === objects.a3.key)?.restore?.state, "restored");
    // a0 was written twice (the second PUT set its lock): the older version has the same bytes.
    const older = complete.objects.filter((o) => o.key === objects.a0.key && o.role !== "records");
    assert.deepEqual(
      older.map((o) => o.role),
      ["duplicate-write"],
    );
    assert.deepEqual(
      complete.continuity?.nodes.map((n) => [n.node, n.batches, n.verdict]),
      [
        ["node-a", [0, 2, 3], "continuous"],
        ["node-b", [0, 1], "continuous"],
      ],
    );
  });

  it("writes the bundle: gzip NDJSON in time order and a manifest with its checksum, as a directory or a tar.gz", async () => {
    const now = new Date("2026-12-07T12:00:00Z");
    const context = {
      toolVersion: "9.9.9",
      bucket,
      prefix: "logs",
      tiers: ["analytics", "archive"],
      query: query(),
      now,
    };
    const { manifest, files } = buildBundle(complete, context);
    assert.equal(manifest.verdict.complete, true);
    assert.equal(manifest.tool.version, "9.9.9");
    assert.equal(manifest.query.from, "2026-03-03T23:30:00.000000000Z");
    assert.equal(manifest.totals.recordsKept, 7);
    assert.equal(manifest.totals.recordsTotal, 9);
    assert.equal(manifest.lossRecords.available, true);
    assert.deepEqual(manifest.lossRecords.records, []);
    const out = join(dir, "bundle");
    await writeBundle(out, files, now);
    const records = gunzipSync(await readFile(join(out, "records.ndjson.gz"))).toString("utf8");
    assert.equal(records.split("\n").length, 8);
    assert.ok(records.startsWith(objects.a0.lines[1] as string), "lines are the archived bytes");
    const manifestBytes = await readFile(join(out, "manifest.json"));
    const { createHash } = await import("node:crypto");
    assert.equal(
      (await readFile(join(out, "manifest.json.sha256"), "utf8")).trim(),
      `${createHash("sha256").update(manifestBytes).digest("hex")}  manifest.json`,
    );
    const onDisk = JSON.parse(manifestBytes.toString("utf8")) as Manifest;
    assert.equal(
      onDisk.records.sha256,
      createHash("sha256")
        .update(await readFile(join(out, "records.ndjson.gz")))
        .digest("hex"),
    );

    const tarball = join(dir, "bundle.tar.gz");
    await writeBundle(tarball, files, now);
    const listing = spawnSync("tar", ["-tzvf", tarball], { encoding: "utf8" });
    assert.equal(listing.status, 0, listing.stderr);
    assert.match(listing.stdout, /records\.ndjson\.gz/);
    const extracted = join(dir, "extracted");
    const { mkdir } = await import("node:fs/promises");
    await mkdir(extracted);
    assert.equal(spawnSync("tar", ["-xzf", tarball, "-C", extracted]).status, 0);
    assert.deepEqual(await readFile(join(extracted, "manifest.json")), manifestBytes);
  });

  it("keeps only the lines that pass --pod, --container and --grep", async () => {
    const byPod = await retrieve(input({ query: query({ pods: ["api-[23]"] }) }));
    assert.deepEqual(messagesOf(byPod.records), [
      "node b before midnight",
      "payment accepted",
      "node b after midnight",
    ]);
    const byContainerAndGrep = await retrieve(
      input({ query: query({ containers: ["side*"], grep: "^ERROR" }) }),
    );
    assert.deepEqual(messagesOf(byContainerAndGrep.records), ["ERROR timeout talking to bank"]);
    assert.deepEqual(byContainerAndGrep.problems, []);
    assert.equal(commands.get("RestoreObjectCommand"), 2, "restored copies are read, not requested again");
  });

  it("a tampered object fails the run and is named, with its records left out", async () => {
    const ledger: TestObject = testObject({
      namespace: "ledger",
      node: "node-c",
      epoch: E1,
      seq: 0,
      tier: "archive",
      lines: [{ at: "2026-03-03T23:35:00Z", message: "ledger entry" }],
    });
    await putTestObject(s3, bucket, ledger);
    const clean = await retrieve(input({ query: query({ namespace: "ledger" }) }));
    assert.deepEqual(clean.problems, []);
    // Same metadata (and checksum), other bytes: what an overwrite by hand looks like.
    const altered = testObject({
      namespace: "ledger",
      node: "node-c",
      epoch: E1,
      seq: 0,
      tier: "archive",
      lines: [{ at: "2026-03-03T23:35:00Z", message: "ledger entry, altered" }],
    });
    await putTestObject(s3, bucket, { ...altered, metadata: ledger.metadata });
    const tampered = await retrieve(input({ query: query({ namespace: "ledger" }) }));
    assert.deepEqual(tampered.records, []);
    const entry = tampered.objects.find((o) => o.role === "records");
    assert.equal(entry?.key, ledger.key);
    assert.equal(entry?.checksum, "mismatch");
    assert.equal(entry?.metadataSha256, ledger.metadata["logarchive-sha256"]);
    assert.match(entry?.problems[0] ?? "", /SHA-256 mismatch/);
    assert.ok(
      tampered.problems.some((p) => p.startsWith(`${ledger.key} (version `) && /SHA-256 mismatch/.test(p)),
    );
    // The bucket is versioned: the original is still there, and the overwrite shows.
    assert.ok(tampered.problems.some((p) => /holds other bytes .* the key was overwritten/.test(p)));
    const { manifest } = buildBundle(tampered, {
      toolVersion: "t",
      bucket,
      prefix: "logs",
      tiers: ["analytics", "archive"],
      query: query({ namespace: "ledger" }),
      now: new Date(),
    });
    assert.equal(manifest.verdict.complete, false);
  });

  it("a batch missing from a node's sequence fails the run; an empty hour between full ones is a warning", async () => {
    const audit = (seq: number, atTime: string) =>
      testObject({
        namespace: "audit",
        node: "node-d",
        epoch: E2,
        seq,
        tier: "archive",
        lines: [{ at: atTime, message: `audit ${seq}` }],
      });
    // Batch 1 never arrived; the hour 2026-03-04T00 has nothing.
    await putTestObject(s3, bucket, audit(0, "2026-03-03T23:10:00Z"));
    await putTestObject(s3, bucket, audit(2, "2026-03-04T01:10:00Z"));
    const range = { from: at("2026-03-03T23:00:00Z"), to: at("2026-03-04T02:00:00Z") };
    const gap = await retrieve(input({ query: query({ namespace: "audit", ...range }) }));
    assert.deepEqual(messagesOf(gap.records), ["audit 0", "audit 2"]);
    assert.deepEqual(
      gap.continuity?.nodes.map((n) => n.verdict),
      ["gap"],
    );
    assert.equal(gap.problems.length, 1);
    assert.match(gap.problems[0] ?? "", /node node-d \(epoch 0b0b0b0b\): batch 1 missing between/);
    assert.deepEqual(gap.emptyHours, ["2026-03-04T00"]);
    assert.ok(gap.warnings.some((w) => /hour 2026-03-04T00 has no object of namespace audit/.test(w)));
  });

  it("a loss record fills its batch number, is listed in the manifest with its checksum, and fails a range it overlaps", async () => {
    const E3 = "0e0e0e0e";
    const ledger = (seq: number, atTime: string) =>
      testObject({
        namespace: "ledger",
        node: "node-e",
        epoch: E3,
        seq,
        tier: "archive",
        lines: [{ at: atTime, message: `ledger ${seq}` }],
      });
    await putTestObject(s3, bucket, ledger(0, "2026-03-05T10:10:00Z"));
    // Batch 1 is another namespace's loss record, 2 this namespace's, 3 a batch again.
    const other = testLossRecord({
      namespace: "kube-system",
      node: "node-e",
      epoch: E3,
      seq: 1,
      bytes: 10,
      lastLineBefore: "2026-03-05T10:20:00Z",
      detectedAt: "2026-03-05T10:21:00Z",
    });
    const loss = testLossRecord({
      namespace: "ledger",
      node: "node-e",
      epoch: E3,
      seq: 2,
      bytes: 4321,
      lastLineBefore: "2026-03-05T10:30:00.000000001Z",
      detectedAt: "2026-03-05T11:05:00Z",
    });
    await putTestObject(s3, bucket, other, { ContentType: "application/json" });
    await putTestObject(s3, bucket, loss, { ContentType: "application/json" });
    await putTestObject(s3, bucket, ledger(3, "2026-03-05T11:10:00Z"));

    const whole = await retrieve(
      input({
        query: query({
          namespace: "ledger",
          from: at("2026-03-05T10:00:00Z"),
          to: at("2026-03-05T12:00:00Z"),
        }),
      }),
    );
    assert.deepEqual(messagesOf(whole.records), ["ledger 0", "ledger 3"]);
    assert.deepEqual(
      whole.continuity?.nodes.map((n) => [n.node, n.verdict]),
      [["node-e", "continuous"]],
      "the loss records' numbers are no gap",
    );
    assert.deepEqual(
      whole.losses.map((l) => [l.key, l.checksum, l.record?.bytes, l.record?.reason]),
      [[loss.key, "verified", 4321, "rotation"]],
    );
    assert.equal(whole.problems.length, 1);
    assert.match(whole.problems[0] ?? "", /lines lost on the node: .*ledger.* node node-e lost 4321 bytes/);
    const { manifest } = buildBundle(whole, {
      toolVersion: "9.9.9",
      bucket,
      prefix: "logs",
      tiers: ["analytics", "archive"],
      query: query({ namespace: "ledger" }),
      now: new Date(),
    });
    assert.equal(manifest.verdict.complete, false);
    assert.deepEqual(
      manifest.lossRecords.records.map((l) => l.key),
      [loss.key],
    );

    // A range that ends before the last line read before the loss: the loss is not in it.
    const before = await retrieve(
      input({
        query: query({
          namespace: "ledger",
          from: at("2026-03-05T10:00:00Z"),
          to: at("2026-03-05T10:20:00Z"),
        }),
      }),
    );
    assert.deepEqual(before.losses, []);
    assert.deepEqual(before.problems, []);

    // A loss record whose body no longer matches its checksum is named as such.
    await putTestObject(s3, bucket, {
      ...loss,
      body: Buffer.from(loss.body.toString().replace("4321", "1234")),
    });
    const tampered = await retrieve(
      input({
        query: query({
          namespace: "ledger",
          from: at("2026-03-05T10:00:00Z"),
          to: at("2026-03-05T12:00:00Z"),
        }),
      }),
    );
    assert.deepEqual(
      tampered.losses.map((l) => l.checksum),
      ["mismatch"],
    );
    assert.ok(tampered.problems.some((p) => p.includes(loss.key) && /checksum does not match/.test(p)));
  });
});

describe("logarchive retrieve over an unversioned bucket", () => {
  let dir: string;
  let cloud: LocalCloud;
  let s3: S3Client;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "retrieve-plain-"));
    cloud = await startLocalCloud({ dataDir: dir, policy });
    s3 = localS3Client(cloud.endpoints.s3.endpoint, cloud.endpoints.region);
    await putTestObject(s3, cloud.endpoints.s3.bucket, objects.a0);
    await putTestObject(s3, cloud.endpoints.s3.bucket, objects.a2);
    await cloud.s3Archive.setStorageClass(cloud.endpoints.s3.bucket, objects.a2.key, "GLACIER");
  });

  after(async () => {
    s3?.destroy();
    await cloud?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("lists each object once as version null, restores and verifies it", async () => {
    const outcome = await retrieve({
      s3,
      bucket: cloud.endpoints.s3.bucket,
      prefix: "logs",
      query: { namespace: "payments", ...RANGE, pods: [], containers: [] },
      restoreTier: "Standard",
      restoreDays: 1,
      prices: DEFAULT_PRICES,
      pollIntervalMs: 1,
      sleep: async () => {
        cloud.s3Archive.completeRestores();
      },
      gapMarginHours: 1,
    });
    assert.deepEqual(
      outcome.objects.map((o) => [o.key, o.versionId, o.storageClass, o.checksum]),
      [
        [objects.a0.key, "null", "STANDARD", "verified"],
        [objects.a2.key, "null", "GLACIER", "verified"],
      ].sort((x, y) => String(x[0]).localeCompare(String(y[0]))),
    );
    // Batch 1 (web) was never put here: node-a's sequence has a gap.
    assert.deepEqual(
      outcome.continuity?.nodes.map((n) => n.verdict),
      ["gap"],
    );
    assert.deepEqual(messagesOf(outcome.records), [
      "first instant of the range",
      "payment accepted",
      "midnight",
      "ERROR timeout talking to bank",
    ]);
  });
});
