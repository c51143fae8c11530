// `logarchive hold` against the local stack's S3 archive front: a bucket with Object Lock
// (every version of the namespace's hours held, other namespaces and hours untouched, a held
// version refused deletion, a re-run changing nothing, --off clearing), and a plain bucket
// (refused in one line, exit 2, nothing changed).

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  DeleteObjectCommand,
  GetObjectLegalHoldCommand,
  ListObjectVersionsCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { compactNamespaceHour } from "../../lib/compaction/compact.ts";
import { parsePolicy } from "../../lib/policy/policy.ts";
import type { HoldManifest } from "../../lib/retrieval/hold.ts";
import {
  putTestObject,
  testHourIndex,
  testLossRecord,
  testObject,
} from "../../lib/retrieval/test_support.ts";
import { localS3Client } from "../../local/s3.ts";
import { type LocalCloud, startLocalCloud } from "../../local/stack.ts";
import { localCliEnv, runCli } from "../test_support.ts";

const env = localCliEnv();

/** `logarchive hold ...args` (or another command) against the local S3 the test serves. */
const run = (args: string[], command = "hold") => runCli([command, ...args], { env });

const E = "0e0e0e0e";
const line = (at: string) => [{ at, message: `at ${at}` }];
const inRange = testObject({
  namespace: "payments",
  node: "node-a",
  epoch: E,
  seq: 0,
  tier: "archive",
  lines: line("2026-03-03T23:10:00Z"),
});
const inRangeAnalytics = testObject({
  namespace: "payments",
  node: "node-a",
  epoch: E,
  seq: 2,
  tier: "analytics",
  lines: line("2026-03-04T00:20:00Z"),
});
const otherNamespace = testObject({
  namespace: "web",
  node: "node-a",
  epoch: E,
  seq: 1,
  tier: "archive",
  lines: line("2026-03-03T23:30:00Z"),
});
const laterHour = testObject({
  namespace: "payments",
  node: "node-a",
  epoch: E,
  seq: 3,
  tier: "archive",
  lines: line("2026-03-04T01:05:00Z"),
});
// The evidence a later retrieval of the range reads: the namespace's loss record in the range,
// and the node's hour index (filed under the hour after the lines' last hour, as a late-numbered
// batch's is). Another namespace's loss record is not held.
const lossInRange = testLossRecord({
  namespace: "payments",
  node: "node-a",
  epoch: E,
  seq: 4,
  bytes: 120,
  lastLineBefore: "2026-03-03T23:40:00Z",
  detectedAt: "2026-03-03T23:41:00Z",
});
const otherLoss = testLossRecord({
  namespace: "web",
  node: "node-a",
  epoch: E,
  seq: 5,
  bytes: 80,
  lastLineBefore: "2026-03-03T23:45:00Z",
  detectedAt: "2026-03-03T23:46:00Z",
});
const indexAfterRange = testHourIndex({
  node: "node-a",
  epoch: E,
  hour: "2026-03-04T01",
  batches: [inRange, otherNamespace, inRangeAnalytics, laterHour],
  previous: null,
});
const range = ["--namespace", "payments", "--from", "2026-03-03T23:00:00Z", "--to", "2026-03-04T01:00:00Z"];
// A compacted hour of its own (another day, so the ranges above see none of it).
const EC = "0c0c0c0c";
const audit = [0, 1].map((seq) =>
  testObject({
    namespace: "audit",
    node: "node-c",
    epoch: EC,
    seq,
    tier: "archive",
    lines: line(`2026-03-05T10:1${seq}:00Z`),
  }),
);
const auditIndex = testHourIndex({
  node: "node-c",
  epoch: EC,
  hour: "2026-03-05T10",
  batches: audit,
  previous: null,
});

describe("logarchive hold", () => {
  let dir: string;
  let locked: LocalCloud;
  let plain: LocalCloud;
  let s3: S3Client;
  let bucket: string;
  let location: string[];

  async function holdOf(key: string, versionId: string): Promise<string | null> {
    try {
      const r = await s3.send(
        new GetObjectLegalHoldCommand({ Bucket: bucket, Key: key, VersionId: versionId }),
      );
      return r.LegalHold?.Status ?? null;
    } catch (error) {
      if ((error as Error).name === "NoSuchObjectLockConfiguration") return null;
      throw error;
    }
  }

  async function versionsOf(key: string): Promise<string[]> {
    const listed = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: key }));
    return (listed.Versions ?? []).map((v) => v.VersionId as string);
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "hold-"));
    locked = await startLocalCloud({
      dataDir: join(dir, "locked"),
      policy: parsePolicy("{}\n", "test"),
      archiveBucket: { objectLock: true },
    });
    bucket = locked.endpoints.s3.bucket;
    s3 = localS3Client(locked.endpoints.s3.endpoint, locked.endpoints.region);
    // inRange is written twice (a retried upload): both versions are held.
    for (const o of [inRange, inRange, inRangeAnalytics, otherNamespace, laterHour])
      await putTestObject(s3, bucket, o);
    for (const o of [lossInRange, otherLoss, indexAfterRange])
      await putTestObject(s3, bucket, o, { ContentType: "application/json" });
    location = ["--s3-endpoint", locked.endpoints.s3.endpoint, "--bucket", bucket, "--prefix", "logs"];
  });

  after(async () => {
    s3?.destroy();
    await locked?.stop();
    await plain?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("--on holds every version of the namespace's hours in both tiers, and the loss records and hour indexes retrieval reads, and nothing else, and writes what changed", async () => {
    const out = join(dir, "on.json");
    const r = await run([...location, ...range, "--on", "--out", out]);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(
      r.stdout,
      /legal hold ON on 5 object version\(s\) of payments \(hours 2026-03-03T23 to 2026-03-04T00\): 5 changed, 0 already ON, 0 failed/,
    );
    const data = await readFile(out);
    const manifest = JSON.parse(data.toString("utf8")) as HoldManifest;
    assert.equal(
      (await readFile(`${out}.sha256`, "utf8")).trim(),
      `${createHash("sha256").update(data).digest("hex")}  on.json`,
    );
    assert.equal(manifest.format, "logarchive-hold-manifest/1");
    assert.equal(manifest.request.legalHold, "ON");
    assert.equal(manifest.complete, true);
    const inRangeVersions = await versionsOf(inRange.key);
    assert.equal(inRangeVersions.length, 2);
    assert.deepEqual(
      manifest.versions.map((v) => [v.key, v.versionId, v.before, v.after, v.result]).sort(),
      [
        ...inRangeVersions.map((id) => [inRange.key, id, null, "ON", "changed"]),
        [inRangeAnalytics.key, (await versionsOf(inRangeAnalytics.key))[0], null, "ON", "changed"],
        [lossInRange.key, (await versionsOf(lossInRange.key))[0], null, "ON", "changed"],
        [indexAfterRange.key, (await versionsOf(indexAfterRange.key))[0], null, "ON", "changed"],
      ].sort(),
    );
    assert.deepEqual(
      manifest.versions
        .filter((v) => v.kind !== "records")
        .map((v) => [v.kind, v.key])
        .sort(),
      [
        ["index", indexAfterRange.key],
        ["loss", lossInRange.key],
      ],
    );
    assert.deepEqual(manifest.listed.evidencePrefixes.map((p) => [p.kind, p.versions]).sort(), [
      ["index", 1],
      ["loss", 1],
    ]);
    assert.equal(await holdOf(otherLoss.key, (await versionsOf(otherLoss.key))[0] as string), null);
    for (const id of inRangeVersions) assert.equal(await holdOf(inRange.key, id), "ON");
    assert.equal(await holdOf(otherNamespace.key, (await versionsOf(otherNamespace.key))[0] as string), null);
    assert.equal(await holdOf(laterHour.key, (await versionsOf(laterHour.key))[0] as string), null);
    // What the hold is for: a held version cannot be deleted.
    await assert.rejects(
      s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: inRange.key, VersionId: inRangeVersions[1] })),
      (error: Error) => error.name === "AccessDenied",
    );
  });

  it("verify accepts the hold manifest, and rejects it edited, with or without its .sha256 redone", async () => {
    const out = join(dir, "on.json");
    const accepted = await run([out], "verify");
    assert.equal(accepted.status, 0, accepted.stdout + accepted.stderr);
    assert.match(accepted.stdout, /is intact and records a COMPLETE legal hold/);
    const manifest = JSON.parse(await readFile(out, "utf8")) as HoldManifest;
    (manifest.versions[0] as HoldManifest["versions"][number]).after = "OFF";
    const edited = join(dir, "on-edited.json");
    await writeFile(edited, `${JSON.stringify(manifest, null, 2)}\n`);
    await writeFile(`${edited}.sha256`, await readFile(`${out}.sha256`));
    const stale = await run([edited], "verify");
    assert.equal(stale.status, 1);
    assert.match(stale.stdout, /^FAIL manifest checksum: on-edited\.json has SHA-256/m);
    await writeFile(
      `${edited}.sha256`,
      `${createHash("sha256")
        .update(await readFile(edited))
        .digest("hex")}  on-edited.json\n`,
    );
    const rehashed = await run([edited], "verify");
    assert.equal(rehashed.status, 1);
    assert.match(
      rehashed.stdout,
      /^FAIL manifest consistency: .*is marked changed from null to OFF, the hold asked ON/m,
    );
  });

  it("a second --on changes nothing and says so (exit 0)", async () => {
    const out = join(dir, "again.json");
    const r = await run([...location, ...range, "--on", "--out", out]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /5 object version\(s\).*: 0 changed, 5 already ON, 0 failed/);
    const manifest = JSON.parse(await readFile(out, "utf8")) as HoldManifest;
    assert.ok(
      manifest.versions.every((v) => v.before === "ON" && v.after === "ON" && v.result === "unchanged"),
    );
  });

  it("--off clears the holds it finds; the versions can be deleted again", async () => {
    const out = join(dir, "off.json");
    const r = await run([...location, ...range, "--off", "--out", out]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /legal hold OFF on 5 object version\(s\).*: 5 changed/);
    const manifest = JSON.parse(await readFile(out, "utf8")) as HoldManifest;
    assert.ok(manifest.versions.every((v) => v.before === "ON" && v.after === "OFF"));
    const [, older] = await versionsOf(inRange.key);
    assert.equal(await holdOf(inRange.key, older as string), "OFF");
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: inRange.key, VersionId: older }));
  });

  it("nothing in the range exits 1 and says so", async () => {
    const r = await run([
      ...location,
      "--namespace",
      "payments",
      "--from",
      "2026-01-01",
      "--to",
      "2026-01-02",
      "--on",
      "--out",
      join(dir, "none.json"),
    ]);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /no object of namespace payments in .*; nothing was held/);
  });

  it("refuses a bucket without Object Lock in one line (exit 2) and changes nothing", async () => {
    plain = await startLocalCloud({ dataDir: join(dir, "plain"), policy: parsePolicy("{}\n", "test") });
    const plainS3 = localS3Client(plain.endpoints.s3.endpoint, plain.endpoints.region);
    try {
      await putTestObject(plainS3, plain.endpoints.s3.bucket, inRange);
    } finally {
      plainS3.destroy();
    }
    const out = join(dir, "plain.json");
    const r = await run([
      "--s3-endpoint",
      plain.endpoints.s3.endpoint,
      "--bucket",
      plain.endpoints.s3.bucket,
      "--prefix",
      "logs",
      ...range,
      "--on",
      "--out",
      out,
    ]);
    assert.equal(r.status, 2, r.stdout);
    assert.match(
      r.stderr,
      /^logarchive: --bucket: bucket \S+ has no Object Lock configuration, so no legal hold can be set .*nothing was changed\n$/,
    );
    await assert.rejects(readFile(out), /ENOENT/);
  });

  it("holds a compacted hour's parts and manifest with its originals still there, and the evidence; a held part cannot be deleted", async () => {
    for (const o of [...audit, auditIndex]) await putTestObject(s3, bucket, o);
    const compacted = await compactNamespaceHour({
      s3,
      bucket,
      prefix: "logs",
      namespace: "audit",
      dt: "2026-03-05",
      hour: "10",
      now: () => new Date("2026-03-05T14:00:00Z"),
    });
    assert.equal(compacted.status, "committed");
    const part = compacted.manifest!.parts[0]!.key;
    // One original has expired (the landing days), the other not yet.
    for (const id of await versionsOf(audit[1]!.key))
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: audit[1]!.key, VersionId: id }));
    const out = join(dir, "compacted.json");
    const r = await run([
      ...location,
      "--namespace",
      "audit",
      "--from",
      "2026-03-05T10",
      "--to",
      "2026-03-05T11",
      "--on",
      "--out",
      out,
    ]);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    const manifest = JSON.parse(await readFile(out, "utf8")) as HoldManifest;
    assert.deepEqual(
      manifest.versions.map((v) => [v.kind, v.key, v.after]).sort(),
      [
        ["records", audit[0]!.key, "ON"],
        ["compacted-part", part, "ON"],
        ["compacted-manifest", compacted.manifestKey!, "ON"],
        ["index", auditIndex.key, "ON"],
      ].sort(),
    );
    assert.deepEqual(
      manifest.listed.compactedPrefixes.map((p) => p.versions),
      [2],
    );
    const [partVersion] = await versionsOf(part);
    assert.equal(await holdOf(part, partVersion as string), "ON");
    await assert.rejects(
      s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: part, VersionId: partVersion })),
      (error: Error) => error.name === "AccessDenied",
    );
  });

  it("usage: exactly one of --on and --off", async () => {
    for (const flags of [[], ["--on", "--off"]]) {
      const r = await run([...location, ...range, ...flags, "--out", join(dir, "x.json")]);
      assert.equal(r.status, 2);
      assert.equal(r.stderr, "logarchive: give exactly one of --on or --off.\n");
    }
  });
});
