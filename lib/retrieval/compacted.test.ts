// Retrieval over compacted hours (docs/design/compaction.md#readers-no-line-twice-none-missed),
// against the local stack's versioned bucket with Object Lock: real archive objects with the
// shippers' hour indexes, one hour compacted by compactNamespaceHour and the next left as
// originals. Every line comes back exactly once while the originals are still there and after
// they are gone; a member whose bytes were altered is named; a cold part is restored once.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { localS3Client } from "../../local/s3.ts";
import { type LocalCloud, startLocalCloud } from "../../local/stack.ts";
import { compactNamespaceHour } from "../compaction/compact.ts";
import { DEFAULT_PRICES } from "../economics/prices.ts";
import { formatCompactedPartKey, parseCompactedKey } from "../keys/layout.ts";
import {
  type CompactionManifest,
  encodeCompactionManifest,
  parseCompactionManifest,
  partPlanDigest,
} from "../object/compaction-manifest.ts";
import { parsePolicy } from "../policy/policy.ts";
import { buildBundle, writeBundle } from "./bundle.ts";
import { type RetrieveInput, retrieve } from "./retrieve.ts";
import {
  at,
  countCommands,
  putTestObject,
  type TestObject,
  testHourIndex,
  testObject,
} from "./test_support.ts";
import { verifyBundle } from "./verify.ts";

const policy = parsePolicy("archive: { prefix: logs }\n", "test");
const EA = "0a0a0a0a";
const EB = "0b0b0b0b";
const EC = "0c0c0c0c";

function batch(
  namespace: string,
  node: string,
  epoch: string,
  seq: number,
  hour: "10" | "11",
  n: number,
  tier: "archive" | "analytics" = "archive",
): TestObject {
  return testObject({
    namespace,
    node,
    epoch,
    seq,
    tier,
    lines: Array.from({ length: n }, (_, i) => ({
      at: `2026-03-03T${hour}:${String(i * 7).padStart(2, "0")}:00.${String(seq).padStart(9, "0")}Z`,
      message: `${namespace} ${node} batch ${seq} line ${i}`,
    })),
  });
}

// Hour 10 is compacted, hour 11 stays as originals. node-a numbers across namespaces.
const a0 = batch("payments", "node-a", EA, 0, "10", 4);
const a1web = batch("web", "node-a", EA, 1, "10", 2);
const a2 = batch("payments", "node-a", EA, 2, "10", 3, "analytics");
const a3 = batch("payments", "node-a", EA, 3, "11", 5);
const b0 = batch("payments", "node-b", EB, 0, "10", 6);
const b1 = batch("payments", "node-b", EB, 1, "11", 2);
const c0 = batch("audit", "node-c", EC, 0, "10", 3);
const c1 = batch("audit", "node-c", EC, 1, "10", 4);
// node-d writes no hour index (a shipper from before indexes): its continuity is decided by
// listing every namespace's hours, where its batch 1 (another namespace) is only a member.
const ED = "0d0d0d0d";
const d0 = batch("ledger", "node-d", ED, 0, "10", 2);
const d1 = batch("books", "node-d", ED, 1, "10", 2);
const d2 = batch("ledger", "node-d", ED, 2, "10", 2);
const payments = [a0, a2, a3, b0, b1];
const hour10 = [a0, a2, b0];

const indexes = [
  testHourIndex({
    node: "node-a",
    epoch: EA,
    hour: "2026-03-03T10",
    batches: [a0, a1web, a2],
    previous: null,
  }),
  testHourIndex({
    node: "node-a",
    epoch: EA,
    hour: "2026-03-03T11",
    batches: [a3],
    previous: { hour: "2026-03-03T10", last: 2 },
  }),
  testHourIndex({ node: "node-b", epoch: EB, hour: "2026-03-03T10", batches: [b0], previous: null }),
  testHourIndex({
    node: "node-b",
    epoch: EB,
    hour: "2026-03-03T11",
    batches: [b1],
    previous: { hour: "2026-03-03T10", last: 0 },
  }),
  testHourIndex({ node: "node-c", epoch: EC, hour: "2026-03-03T10", batches: [c0, c1], previous: null }),
];

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const linesOf = (objects: readonly TestObject[]) => objects.flatMap((o) => o.lines).sort();

describe("retrieve over compacted hours (local stack, versioned bucket with Object Lock)", () => {
  let dir: string;
  let cloud: LocalCloud;
  let s3: S3Client;
  let commands: Map<string, number>;
  let bucket: string;
  let paymentsManifest: CompactionManifest;
  let auditManifest: CompactionManifest;

  const input = (namespace: string, extra: Partial<RetrieveInput> = {}): RetrieveInput => ({
    s3,
    bucket,
    prefix: "logs",
    query: {
      namespace,
      from: at("2026-03-03T10:00:00Z"),
      to: at(namespace === "payments" ? "2026-03-03T12:00:00Z" : "2026-03-03T11:00:00Z"),
      pods: [],
      containers: [],
    },
    restoreTier: "Bulk",
    restoreDays: 1,
    prices: DEFAULT_PRICES,
    pollIntervalMs: 1,
    sleep: async () => {
      cloud.s3Archive.completeRestores();
    },
    ...extra,
  });

  async function bytesOf(key: string): Promise<Buffer> {
    const response = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await response.Body!.transformToByteArray());
  }

  /** Every version of `key` removed, as the landing lifecycle's expiry ends an original. */
  async function expire(key: string): Promise<void> {
    const listed = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: key }));
    for (const v of [...(listed.Versions ?? []), ...(listed.DeleteMarkers ?? [])]) {
      if (v.Key !== key) continue;
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key, VersionId: v.VersionId }));
    }
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "retrieve-compacted-"));
    cloud = await startLocalCloud({ dataDir: dir, policy, archiveBucket: { objectLock: true } });
    bucket = cloud.endpoints.s3.bucket;
    s3 = localS3Client(cloud.endpoints.s3.endpoint, cloud.endpoints.region);
    commands = countCommands(s3);
    for (const o of [a0, a1web, a2, a3, b0, b1, c0, c1, d0, d1, d2, ...indexes])
      await putTestObject(s3, bucket, o);
    const compact = async (namespace: string) => {
      const outcome = await compactNamespaceHour({
        s3,
        bucket,
        prefix: "logs",
        namespace,
        dt: "2026-03-03",
        hour: "10",
        now: () => new Date("2026-03-03T14:00:00Z"),
      });
      assert.equal(outcome.status, "committed", JSON.stringify(outcome.notReady));
      return outcome.manifest!;
    };
    paymentsManifest = await compact("payments");
    auditManifest = await compact("audit");
    await compact("ledger");
    await compact("books");
  });

  after(async () => {
    s3?.destroy();
    await cloud?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("with the originals still there, reads the compacted hour from its parts and the other from originals: every line exactly once, a complete proof", async () => {
    const outcome = await retrieve(input("payments"));
    assert.equal(outcome.status, "done");
    assert.deepEqual(outcome.problems, []);
    const lines = outcome.records.map((r) => r.line);
    assert.deepEqual([...lines].sort(), linesOf(payments), "every line of both hours, none twice");
    assert.deepEqual(
      outcome.hours.map((h) => [h.hour, h.source, h.manifests.length, h.originalsNotRead]),
      [
        ["2026-03-03T10", "compacted", 1, 3],
        ["2026-03-03T11", "originals", 0, 0],
      ],
    );
    const h10 = outcome.hours[0]!;
    assert.deepEqual(h10.batchesFromParts, hour10.map((o) => o.key).sort());
    assert.deepEqual(h10.batchesFromOriginals, []);
    assert.deepEqual(outcome.hours[1]?.batchesFromOriginals, [a3.key, b1.key].sort());
    assert.deepEqual(
      h10.parts.map((p) => [p.key, p.checksum]),
      paymentsManifest.parts.map((p) => [p.key, "verified"]),
    );
    const read = outcome.objects.filter((o) => o.role === "records");
    assert.deepEqual(
      read.map((o) => [o.key, o.compacted === null ? "original" : "member", o.checksum]).sort(),
      [
        ...hour10.map((o) => [o.key, "member", "verified"]),
        [a3.key, "original", "verified"],
        [b1.key, "original", "verified"],
      ].sort(),
    );
    assert.deepEqual(
      outcome.objects
        .filter((o) => o.role === "compacted-original")
        .map((o) => o.key)
        .sort(),
      hour10.map((o) => o.key).sort(),
    );
    for (const node of outcome.continuity!.nodes) {
      assert.equal(node.verdict, "continuous", `${node.node}: ${JSON.stringify(node.indexProblems)}`);
      assert.equal(node.source, "index");
    }
    const now = new Date();
    const { manifest, files } = buildBundle(outcome, {
      toolVersion: "test",
      bucket,
      prefix: "logs",
      tiers: ["analytics", "archive"],
      query: input("payments").query,
      now,
    });
    assert.equal(manifest.verdict.complete, true);
    assert.equal(manifest.hours[0]?.manifests[0]?.key, h10.manifests[0]?.key);
    // `logarchive verify` accepts a bundle whose records came from compacted members.
    const out = join(dir, "bundle");
    await writeBundle(out, files, now);
    const verified = await verifyBundle(out);
    assert.equal(verified.intact, true, JSON.stringify(verified.checks.filter((c) => !c.ok)));
  });

  it("after the originals expire, still returns every line once, proved complete by the manifest's members and the hour indexes", async () => {
    for (const o of hour10) await expire(o.key);
    const outcome = await retrieve(input("payments"));
    assert.deepEqual(outcome.problems, []);
    assert.deepEqual(outcome.records.map((r) => r.line).sort(), linesOf(payments));
    assert.equal(outcome.hours[0]?.source, "compacted");
    assert.equal(outcome.hours[0]?.originalsNotRead, 0);
    assert.ok(outcome.continuity!.nodes.every((n) => n.verdict === "continuous" && n.source === "index"));
    assert.deepEqual(
      outcome.continuity!.nodes.map((n) => [n.node, n.batches]),
      [
        ["node-a", [0, 2, 3]],
        ["node-b", [0, 1]],
      ],
    );
  });

  it("a node without hour indexes is decided by listing, which counts other namespaces' compacted members: no gap after their originals expire", async () => {
    for (const o of [d0, d1, d2]) await expire(o.key);
    const outcome = await retrieve(input("ledger"));
    assert.deepEqual(outcome.problems, []);
    assert.deepEqual(outcome.records.map((r) => r.line).sort(), linesOf([d0, d2]));
    const node = outcome.continuity!.nodes.find((n) => n.node === "node-d")!;
    assert.equal(node.source, "listing");
    assert.deepEqual(node.batches, [0, 2]);
    assert.equal(node.verdict, "continuous");
    assert.deepEqual(
      node.problems.filter((p) => p.kind !== "unknown"),
      [],
    );
  });

  it("a cold part is restored once, not once per member, then read", async () => {
    const part = paymentsManifest.parts[0]!;
    assert.ok(paymentsManifest.members.filter((m) => m.part === 0).length > 1);
    await cloud.s3Archive.setStorageClass(bucket, part.key, "GLACIER");
    const before = commands.get("RestoreObjectCommand") ?? 0;
    const waiting = await retrieve(input("payments", { wait: false }));
    assert.equal(waiting.status, "waiting");
    assert.deepEqual(
      waiting.plan.objects.filter((o) => o.action === "restore").map((o) => o.key),
      [part.key],
    );
    assert.deepEqual(
      waiting.restoresRequested.map((r) => [r.key, r.result]),
      [[part.key, "started"]],
    );
    const done = await retrieve(input("payments"));
    assert.equal(commands.get("RestoreObjectCommand"), before + 1, "one restore for the whole part");
    assert.equal(done.status, "done");
    assert.deepEqual(done.problems, []);
    assert.deepEqual(done.records.map((r) => r.line).sort(), linesOf(payments));
    assert.deepEqual(
      done.objects
        .filter((o) => o.compacted?.part === part.key)
        .map((o) => [o.key, o.storageClass, o.restore?.state])
        .sort(),
      hour10.map((o) => [o.key, "GLACIER", "restored"]).sort(),
    );
  });

  it("a member whose bytes were altered in its part fails verification, naming the member, against the manifest and against the hour index", async () => {
    const part = auditManifest.parts[0]!;
    const victim = auditManifest.members[1]!;
    const original = await bytesOf(part.key);
    const tampered = Buffer.from(original);
    // A byte inside the member's deflate data.
    tampered[victim.offset + Math.floor(victim.length / 2)]! ^= 0xff;

    // 1. The part's bytes changed, the manifest's member checksum not (its part checksum made to match).
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: part.key, Body: tampered }));
    const manifestKey = (await retrieve(input("audit"))).hours[0]!.manifests[0]!.key;
    const sameMembers: CompactionManifest = {
      ...auditManifest,
      parts: [{ ...part, sha256: sha(tampered) }],
    };
    await s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: manifestKey, Body: encodeCompactionManifest(sameMembers) }),
    );
    const first = await retrieve(input("audit"));
    const named = first.problems.filter((p) => p.startsWith(`${victim.key} (member of part ${part.key}`));
    assert.equal(named.length, 1, first.problems.join("\n"));
    assert.match(named[0]!, /SHA-256 mismatch: the body is [0-9a-f]{64}, manifest .* says/);
    assert.deepEqual(
      first.records.map((r) => r.line).sort(),
      linesOf([c0, c1].filter((o) => o.key !== victim.key)),
      "the altered member's records are left out",
    );

    // 2. A manifest rewritten to match the altered bytes: the hour index still names the original.
    const members = auditManifest.members.map((m) =>
      m === victim ? { ...m, sha256: sha(tampered.subarray(m.offset, m.offset + m.length)) } : m,
    );
    const k = parseCompactedKey(part.key);
    const forgedKey = formatCompactedPartKey({ ...k, plan: partPlanDigest(members) } as Parameters<
      typeof formatCompactedPartKey
    >[0]);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: forgedKey, Body: tampered }));
    const forged: CompactionManifest = {
      ...auditManifest,
      parts: [{ ...part, key: forgedKey, sha256: sha(tampered) }],
      members,
    };
    parseCompactionManifest(encodeCompactionManifest(forged));
    await s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: manifestKey, Body: encodeCompactionManifest(forged) }),
    );
    const second = await retrieve(input("audit"));
    const node = second.continuity!.nodes.find((n) => n.node === "node-c")!;
    assert.equal(node.verdict, "tampered");
    assert.ok(
      second.problems.some((p) => p.includes(victim.key) && /the shipper's index says/.test(p)),
      second.problems.join("\n"),
    );
  });
});
