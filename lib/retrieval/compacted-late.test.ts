// Retrieval's per-batch rule (docs/retrieval.md#compacted-hours) against the local stack's
// versioned bucket with Object Lock and data the compactor itself committed
// (compactNamespaceHour): an hour with a committed manifest and a late original no manifest
// names yet is read from both, every line once; after the compactor's delete markers hide the
// compacted originals, still every line once; and a part no manifest names (a supplement whose
// compactor crashed before its commit, holding the late batch's bytes) is never read.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { localS3Client } from "../../local/s3.ts";
import { type LocalCloud, startLocalCloud } from "../../local/stack.ts";
import { compactNamespaceHour } from "../compaction/compact.ts";
import { DEFAULT_PRICES } from "../economics/prices.ts";
import { formatCompactedPartKey } from "../keys/layout.ts";
import type { CompactionManifest } from "../object/compaction-manifest.ts";
import { parsePolicy } from "../policy/policy.ts";
import { buildBundle } from "./bundle.ts";
import { type RetrieveInput, retrieve } from "./retrieve.ts";
import { at, putTestObject, type TestObject, testHourIndex, testObject } from "./test_support.ts";

const policy = parsePolicy("archive: { prefix: logs }\n", "test");
const EE = "0e0e0e0e";
const EF = "0f0f0f0f";
const EG = "01010101";

function batch(
  node: string,
  epoch: string,
  seq: number,
  n: number,
  tier: "archive" | "analytics",
): TestObject {
  return testObject({
    namespace: "orders",
    node,
    epoch,
    seq,
    tier,
    lines: Array.from({ length: n }, (_, i) => ({
      at: `2026-03-03T10:${String(i * 5).padStart(2, "0")}:00.${String(seq).padStart(9, "0")}Z`,
      message: `orders ${node} batch ${seq} line ${i}`,
    })),
  });
}

const e0 = batch("node-e", EE, 0, 4, "archive");
const e1 = batch("node-e", EE, 1, 3, "analytics");
const f0 = batch("node-f", EF, 0, 5, "archive");
/** Arrives after the hour was compacted: no manifest names it. */
const late = batch("node-g", EG, 0, 6, "archive");
const compacted = [e0, e1, f0];
const all = [...compacted, late];
const linesOf = (objects: readonly TestObject[]) => objects.flatMap((o) => o.lines).sort();
const keysOf = (objects: readonly TestObject[]) => objects.map((o) => o.key).sort();

describe("retrieve per batch: a compacted hour with a late original (local stack, Object Lock)", () => {
  let dir: string;
  let cloud: LocalCloud;
  let s3: S3Client;
  let bucket: string;
  let manifest: CompactionManifest;
  let orphanPart: string;
  /** Every key a command was sent for, so a read of the orphan part would show. */
  const touched = new Set<string>();

  const input = (extra: Partial<RetrieveInput> = {}): RetrieveInput => ({
    s3,
    bucket,
    prefix: "logs",
    query: {
      namespace: "orders",
      from: at("2026-03-03T10:00:00Z"),
      to: at("2026-03-03T11:00:00Z"),
      pods: [],
      containers: [],
    },
    restoreTier: "Bulk",
    restoreDays: 1,
    prices: DEFAULT_PRICES,
    pollIntervalMs: 1,
    ...extra,
  });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "retrieve-compacted-late-"));
    cloud = await startLocalCloud({ dataDir: dir, policy, archiveBucket: { objectLock: true } });
    bucket = cloud.endpoints.s3.bucket;
    s3 = localS3Client(cloud.endpoints.s3.endpoint, cloud.endpoints.region);
    s3.middlewareStack.add(
      (next) => async (args) => {
        const key = (args.input as { Key?: string }).Key;
        if (key !== undefined) touched.add(key);
        return next(args);
      },
      { step: "initialize", name: "recordKeys" },
    );
    for (const o of compacted) await putTestObject(s3, bucket, o);
    for (const index of [
      testHourIndex({ node: "node-e", epoch: EE, hour: "2026-03-03T10", batches: [e0, e1], previous: null }),
      testHourIndex({ node: "node-f", epoch: EF, hour: "2026-03-03T10", batches: [f0], previous: null }),
    ]) {
      await putTestObject(s3, bucket, index);
    }
    const outcome = await compactNamespaceHour({
      s3,
      bucket,
      prefix: "logs",
      namespace: "orders",
      dt: "2026-03-03",
      hour: "10",
      now: () => new Date("2026-03-03T14:00:00Z"),
    });
    assert.equal(outcome.status, "committed", JSON.stringify(outcome));
    manifest = outcome.manifest!;
    assert.deepEqual(manifest.members.map((m) => m.key).sort(), keysOf(compacted));

    // The late batch and its node's index arrive after the commit; a supplement's compactor
    // crashed after storing a part of it (generation 1) and before its manifest.
    await putTestObject(s3, bucket, late);
    await putTestObject(
      s3,
      bucket,
      testHourIndex({ node: "node-g", epoch: EG, hour: "2026-03-03T10", batches: [late], previous: null }),
    );
    orphanPart = formatCompactedPartKey({
      prefix: "logs",
      namespace: "orders",
      dt: "2026-03-03",
      hour: "10",
      generation: 1,
      part: 0,
      plan: "00000000deadbeef",
    });
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: orphanPart, Body: late.body }));
  });

  after(async () => {
    s3?.destroy();
    await cloud?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** The checks both states share: every line once, which batch came from where, the orphan never read. */
  async function assertEveryLineOnce(): Promise<Awaited<ReturnType<typeof retrieve>>> {
    touched.clear();
    const outcome = await retrieve(input());
    assert.equal(outcome.status, "done");
    assert.deepEqual(outcome.problems, []);
    assert.deepEqual(outcome.records.map((r) => r.line).sort(), linesOf(all), "every line, none twice");
    const [hour] = outcome.hours;
    assert.equal(hour?.source, "mixed");
    assert.deepEqual(hour.batchesFromParts, keysOf(compacted));
    assert.deepEqual(hour.batchesFromOriginals, [late.key]);
    assert.deepEqual(
      hour.parts.map((p) => [p.key, p.checksum]),
      manifest.parts.map((p) => [p.key, "verified"]),
    );
    assert.deepEqual(
      outcome.objects
        .filter((o) => o.role === "records")
        .map((o) => [o.key, o.compacted === null ? "original" : "member", o.checksum])
        .sort(),
      [...compacted.map((o) => [o.key, "member", "verified"]), [late.key, "original", "verified"]].sort(),
    );
    assert.ok(
      outcome.warnings.includes(
        "hour 2026-03-03T10: 1 batch(es) not yet compacted (named by no committed manifest), read from their originals; 3 from compacted parts",
      ),
      outcome.warnings.join("\n"),
    );
    for (const node of outcome.continuity!.nodes) {
      assert.equal(node.verdict, "continuous", `${node.node}: ${JSON.stringify(node.problems)}`);
      assert.equal(node.source, "index");
    }
    assert.equal(touched.has(orphanPart), false, "the part no manifest names is never read");
    const { manifest: bundle } = buildBundle(outcome, {
      toolVersion: "test",
      bucket,
      prefix: "logs",
      tiers: ["analytics", "archive"],
      query: input().query,
      now: new Date(),
    });
    assert.equal(bundle.verdict.complete, true, JSON.stringify(bundle.verdict));
    return outcome;
  }

  it("reads the named batches from their part and the late original as an original: every line once", async () => {
    const outcome = await assertEveryLineOnce();
    assert.equal(outcome.hours[0]?.originalsNotRead, compacted.length);
    assert.deepEqual(
      outcome.objects
        .filter((o) => o.role === "compacted-original")
        .map((o) => o.key)
        .sort(),
      keysOf(compacted),
    );
  });

  it("after the compactor's delete markers hide the compacted originals: still every line once", async () => {
    // DeleteObject without a version id, as the compactor removes what it compacted: a delete
    // marker over the locked version.
    for (const o of compacted) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.key }));
    const outcome = await assertEveryLineOnce();
    const superseded = outcome.objects.filter((o) => o.role === "compacted-original");
    assert.deepEqual(
      superseded.filter((o) => o.isLatest).map((o) => o.key),
      keysOf(compacted),
      "each compacted original's current version is its delete marker",
    );
    assert.equal(
      outcome.hours[0]?.originalsNotRead,
      2 * compacted.length,
      "a version and a delete marker each",
    );
    assert.deepEqual(
      outcome.warnings.filter((w) => w.includes("was deleted")),
      [],
      "a named original's delete marker is not a deleted batch",
    );
  });

  it("a key written again after compaction: the member is read from its part and the new version reported as a problem", async () => {
    // Same batch name, other bytes: a version the compacted part does not hold.
    const rewrite = batch("node-e", EE, 0, 2, "archive");
    assert.equal(rewrite.key, e0.key);
    await putTestObject(s3, bucket, rewrite);
    const outcome = await retrieve(input());
    assert.equal(outcome.status, "done");
    assert.deepEqual(
      outcome.records.map((r) => r.line).sort(),
      linesOf(all),
      "the compacted member's lines, once",
    );
    const compactedVersion = manifest.members.find((m) => m.key === e0.key)!.versionId;
    const current = outcome.objects.find((o) => o.key === e0.key && o.compacted === null && o.isLatest)!;
    assert.equal(current.role, "conflicting-version");
    assert.notEqual(current.versionId, compactedVersion);
    assert.deepEqual(outcome.problems, [
      `${e0.key}: key written again after compaction: version ${current.versionId} differs from the compacted version ${compactedVersion}; the compacted version was read from its part, version ${current.versionId} was not read`,
    ]);
    const { manifest: bundle } = buildBundle(outcome, {
      toolVersion: "test",
      bucket,
      prefix: "logs",
      tiers: ["analytics", "archive"],
      query: input().query,
      now: new Date(),
    });
    assert.equal(bundle.verdict.complete, false, "the rewritten key makes the verdict a failure");
  });
});
