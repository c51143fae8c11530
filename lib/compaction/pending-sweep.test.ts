// compactPending's sweep of the originals after compacting (pending.ts sweepOriginals), against
// the local S3 archive front (versions, Object Lock retention, delete markers) over s3rver, in a
// bucket with Object Lock whose originals carry an explicit landing retention as the shipper
// PUTs them: a committed hour's originals get a delete marker only once the hour ended
// --delete-after ago, and their locked versions remain; an hour with a refused original is not
// committed, so all its originals stay current and, near the end of their landing retention,
// get the full lock (never shortened) and are reported as kept whole.
//
// The front judges retention against the real clock and stamps LastModified with it, so the
// hours here are placed relative to the real clock.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  DeleteObjectCommand,
  GetObjectRetentionCommand,
  HeadObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { type LocalS3, localS3Client, startLocalS3 } from "../../local/s3.ts";
import { type S3ArchiveFront, startS3ArchiveFront } from "../../local/s3-archive/server.ts";
import { partitionPrefix } from "../keys/layout.ts";
import { listObjectPages, listPrefixVersions } from "../retrieval/find.ts";
import { putTestObject, type TestObject, testObject } from "../retrieval/test_support.ts";
import { compactPending, KEPT_WHOLE_AFTER_MS } from "./pending.ts";

const E = "0e0e0e0e";
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const LANDING_DAYS = 3;
const LOCK_DAYS = 365;
const LOOKBACK_MS = 48 * HOUR_MS;
const DELETE_AFTER_MS = 6 * HOUR_MS;
const BUCKET = "locked";
/** One bucket per scenario below, so each run sees only its own originals. */
const CONFLICT_BUCKET = "conflict";
const CHAIN_BUCKET = "chain";
const OUTAGE_BUCKET = "outage";
const UNLOCKED_BUCKET = "unlocked";
const LOCKED_BUCKETS = [BUCKET, CONFLICT_BUCKET, CHAIN_BUCKET, OUTAGE_BUCKET];

/** `YYYY-MM-DDTHH` of an hour start. */
const hourText = (start: number) => new Date(start).toISOString().slice(0, 13);

function batch(namespace: string, node: string, seq: number, start: number): TestObject {
  const hour = hourText(start);
  return testObject({
    namespace,
    node,
    epoch: E,
    seq,
    tier: "archive",
    lines: [
      { at: `${hour}:10:00Z`, message: `${namespace} ${node} ${seq} a` },
      { at: `${hour}:20:00Z`, message: `${namespace} ${node} ${seq} b` },
    ],
  });
}

describe("compactPending: the originals' sweep", () => {
  let dir: string;
  let local: LocalS3;
  let front: S3ArchiveFront;
  let s3: S3Client;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "compact-sweep-"));
    local = await startLocalS3({
      host: "127.0.0.1",
      port: 0,
      dataDir: join(dir, "s3"),
      buckets: [...LOCKED_BUCKETS, UNLOCKED_BUCKET],
    });
    front = await startS3ArchiveFront({
      host: "127.0.0.1",
      port: 0,
      upstream: local.endpoint,
      region: "us-east-1",
      dataDir: join(dir, "front"),
      buckets: [
        ...LOCKED_BUCKETS.map((name) => ({
          name,
          objectLock: true,
          defaultRetention: { mode: "GOVERNANCE" as const, days: LOCK_DAYS },
        })),
        { name: UNLOCKED_BUCKET, versioning: true },
      ],
    });
    s3 = localS3Client(front.endpoint, "us-east-1");
  });

  after(async () => {
    s3?.destroy();
    await front?.stop();
    await local?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** PUT as the shipper does with landing_days: retain-until = end of its hour + landing days. */
  async function land(o: TestObject, start: number, body?: Buffer, bucket = BUCKET): Promise<void> {
    await putTestObject(s3, bucket, body === undefined ? o : { ...o, body }, {
      ObjectLockMode: "GOVERNANCE",
      ObjectLockRetainUntilDate: new Date(start + HOUR_MS + LANDING_DAYS * DAY_MS),
    });
  }

  async function currentKeys(namespace: string, start: number, bucket = BUCKET): Promise<string[]> {
    const hour = hourText(start);
    const keys: string[] = [];
    const prefix = partitionPrefix("logs", "archive", namespace, hour.slice(0, 10), hour.slice(11, 13));
    for await (const page of listObjectPages(s3, bucket, prefix)) {
      for (const o of page) if (o.Key !== undefined) keys.push(o.Key);
    }
    return keys.sort();
  }

  async function versionsOf(key: string, bucket = BUCKET) {
    const versions = [];
    for await (const v of listPrefixVersions(s3, bucket, key)) if (v.key === key) versions.push(v);
    return versions;
  }

  const run = (now: Date, extra: { dryRun?: boolean; bucket?: string; noSweep?: boolean } = {}) =>
    compactPending({
      s3,
      bucket: extra.bucket ?? BUCKET,
      prefix: "logs",
      now: () => now,
      lookbackMs: LOOKBACK_MS,
      indexCheck: false,
      ...(extra.noSweep === true
        ? {}
        : { deleteAfterMs: DELETE_AFTER_MS, landingDays: LANDING_DAYS, lockDays: LOCK_DAYS }),
      ...(extra.dryRun === undefined ? {} : { dryRun: extra.dryRun }),
    });

  it("deletes (by marker) only what a committed manifest names once the hour ended --delete-after ago; keeps a refused hour whole at the full lock, near its landing end", async () => {
    const realNow = Date.now();
    const current = Math.floor(realNow / HOUR_MS) * HOUR_MS;
    const now = new Date(realNow);
    // Ended 9 h ago: committed and deleted in the same run.
    const old = current - 10 * HOUR_MS;
    // Ended 5 h ago (and a part of this hour): settled and committed, not yet deleted.
    const recent = current - 6 * HOUR_MS;
    // Ended over a day ago, inside the lookback: its uncompacted originals are kept whole.
    const refusedHour = current - 46 * HOUR_MS;
    assert.ok(refusedHour + HOUR_MS + KEPT_WHOLE_AFTER_MS <= realNow);

    const oldBatches = [batch("payments", "node-a", 0, old), batch("payments", "node-b", 0, old)];
    const recentBatches = [batch("payments", "node-a", 1, recent)];
    const good = batch("audit", "node-a", 2, refusedHour);
    const tampered = batch("audit", "node-b", 1, refusedHour);
    for (const o of oldBatches) await land(o, old);
    for (const o of recentBatches) await land(o, recent);
    await land(good, refusedHour);
    await land(tampered, refusedHour, batch("audit", "node-b", 9, refusedHour).body);

    // A dry run sends no delete and no retention change, and says what it would do.
    const dry = await run(now, { dryRun: true });
    assert.equal(dry.sweep.deleted, 0, "nothing is committed yet, so nothing is deletable");
    assert.deepEqual(
      dry.sweep.keptWhole.map((k) => [k.key, k.action]),
      [
        [good.key, "extended"],
        [tampered.key, "extended"],
      ].sort(),
    );
    assert.equal(dry.requests.retentionPuts, 0);
    assert.equal(dry.requests.deletes, 0);
    const untouched = await s3.send(new GetObjectRetentionCommand({ Bucket: BUCKET, Key: good.key }));
    assert.equal(
      untouched.Retention?.RetainUntilDate?.getTime(),
      refusedHour + HOUR_MS + LANDING_DAYS * DAY_MS,
    );

    const first = await run(now);
    const status = new Map(first.results.map((r) => [`${r.namespace} ${r.dt}T${r.hour}`, r.outcome?.status]));
    assert.equal(status.get(`payments ${hourText(old)}`), "committed");
    assert.equal(status.get(`payments ${hourText(recent)}`), "committed");
    assert.equal(status.get(`audit ${hourText(refusedHour)}`), "refused");
    assert.deepEqual(first.sweep.errors, []);
    assert.deepEqual(first.sweep.conflicts, []);

    // (a) The old hour's originals: a delete marker each, not current, their locked versions kept.
    assert.equal(first.sweep.deleted, 2);
    assert.equal(first.requests.deletes, 2);
    assert.deepEqual(await currentKeys("payments", old), []);
    for (const o of oldBatches) {
      const versions = await versionsOf(o.key);
      assert.equal(versions.length, 2, `${o.key}: the original's version and a delete marker`);
      const marker = versions.find((v) => v.isDeleteMarker)!;
      const kept = versions.find((v) => !v.isDeleteMarker)!;
      assert.equal(marker.isLatest, true);
      const head = await s3.send(
        new HeadObjectCommand({ Bucket: BUCKET, Key: o.key, VersionId: kept.versionId }),
      );
      assert.equal(head.ObjectLockMode, "GOVERNANCE");
      // Locked: the version cannot be deleted (no bypass).
      await assert.rejects(
        s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: o.key, VersionId: kept.versionId })),
      );
    }
    // The recent hour is committed but ended under --delete-after ago: its original stays current.
    assert.deepEqual(await currentKeys("payments", recent), recentBatches.map((b) => b.key).sort());

    // (b) The refused hour: not committed, both originals current, extended to LastModified + lock days.
    assert.deepEqual(await currentKeys("audit", refusedHour), [good.key, tampered.key].sort());
    assert.deepEqual(
      first.sweep.keptWhole.map((k) => [k.key, k.action, k.mode]),
      [
        [good.key, "extended", "GOVERNANCE"],
        [tampered.key, "extended", "GOVERNANCE"],
      ].sort(),
    );
    for (const key of [good.key, tampered.key]) {
      const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
      const until = head.ObjectLockRetainUntilDate!.getTime();
      // S3 keeps the retain-until to the second.
      assert.ok(
        Math.abs(until - (head.LastModified!.getTime() + LOCK_DAYS * DAY_MS)) < 1_000,
        `${key}: ${until}`,
      );
      assert.equal(
        first.sweep.keptWhole.find((k) => k.key === key)!.retainUntil?.slice(0, 19),
        new Date(until).toISOString().slice(0, 19),
      );
    }
    assert.equal(first.requests.retentionPuts, 2);

    // An hour later: the recent hour ended over --delete-after ago; the kept-whole originals
    // are already at the full lock (reported, not shortened, no PUT).
    const second = await run(new Date(realNow + HOUR_MS));
    assert.deepEqual(second.sweep.errors, []);
    assert.equal(second.sweep.deleted, 1);
    assert.deepEqual(await currentKeys("payments", recent), []);
    assert.deepEqual(
      second.sweep.keptWhole.map((k) => [k.key, k.action]),
      [
        [good.key, "already"],
        [tampered.key, "already"],
      ].sort(),
    );
    assert.equal(second.requests.retentionPuts, 0);
    assert.equal(second.requests.deletes, 1);
  });

  it("never deletes a key written again after its compaction (other bytes, a current version no manifest names): a conflict, kept whole", async () => {
    const realNow = Date.now();
    const hour = Math.floor(realNow / HOUR_MS) * HOUR_MS - 10 * HOUR_MS;
    const now = new Date(realNow);
    const original = batch("billing", "node-a", 0, hour);
    await land(original, hour, undefined, CONFLICT_BUCKET);
    const first = await run(now, { bucket: CONFLICT_BUCKET });
    assert.equal(first.results[0]?.outcome?.status, "committed");
    assert.equal(first.sweep.deleted, 1);
    assert.deepEqual(await currentKeys("billing", hour, CONFLICT_BUCKET), []);

    // Another shipper with the same state epoch (or a node restored from a snapshot) PUTs the
    // same key with other lines: If-None-Match sees only the delete marker, so it lands.
    const again = testObject({
      namespace: "billing",
      node: "node-a",
      epoch: E,
      seq: 0,
      tier: "archive",
      lines: [{ at: `${hourText(hour)}:30:00Z`, message: "billing node-a 0 written again" }],
    });
    assert.equal(again.key, original.key);
    await land(again, hour, undefined, CONFLICT_BUCKET);

    const second = await run(now, { bucket: CONFLICT_BUCKET });
    assert.equal(second.sweep.deleted, 0, "the new bytes are not given a delete marker");
    assert.equal(second.requests.deletes, 0);
    assert.deepEqual(await currentKeys("billing", hour, CONFLICT_BUCKET), [original.key]);
    const versions = await versionsOf(original.key, CONFLICT_BUCKET);
    const latest = versions.find((v) => v.isLatest)!;
    assert.equal(latest.isDeleteMarker, false);
    assert.deepEqual(
      second.sweep.conflicts.map((c) => [c.key, c.currentVersionId]),
      [[original.key, latest.versionId]],
    );
    assert.notEqual(second.sweep.conflicts[0]!.manifestVersionId, latest.versionId);
    // The only copy of its bytes: kept whole at the full lock.
    assert.deepEqual(
      second.sweep.keptWhole.map((k) => [k.key, k.action]),
      [[original.key, "extended"]],
    );
    const head = await s3.send(new HeadObjectCommand({ Bucket: CONFLICT_BUCKET, Key: original.key }));
    assert.equal(head.VersionId, latest.versionId);
    assert.ok(
      head.ObjectLockRetainUntilDate!.getTime() > head.LastModified!.getTime() + (LOCK_DAYS - 1) * DAY_MS,
    );
  });

  it("a key written again between the version listing and the delete: If-Match fails (412), nothing is hidden, a conflict kept whole", async () => {
    const realNow = Date.now();
    const hour = Math.floor(realNow / HOUR_MS) * HOUR_MS - 10 * HOUR_MS;
    const original = batch("invoices", "node-a", 0, hour);
    const rewritten = batch("invoices", "node-a", 7, hour).body;
    await land(original, hour, undefined, CONFLICT_BUCKET);
    // The run's client: right after the sweep lists the hour's versions (the first version
    // listing once the hour is compacted), another writer PUTs the key again (the race the
    // conditional delete closes).
    const racing = localS3Client(front.endpoint, "us-east-1");
    let compacted = false;
    let raced = false;
    racing.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        const command = (context as { commandName?: string }).commandName;
        const prefix = (args.input as { Prefix?: string }).Prefix ?? "";
        if (command === "ListObjectVersionsCommand" && prefix.includes("invoices") && compacted && !raced) {
          raced = true;
          await land(original, hour, rewritten, CONFLICT_BUCKET);
        }
        return result;
      },
      { step: "initialize" },
    );
    try {
      const swept = await compactPending({
        s3: racing,
        bucket: CONFLICT_BUCKET,
        prefix: "logs",
        now: () => new Date(realNow),
        lookbackMs: LOOKBACK_MS,
        indexCheck: false,
        deleteAfterMs: DELETE_AFTER_MS,
        landingDays: LANDING_DAYS,
        lockDays: LOCK_DAYS,
        onResult: () => {
          compacted = true;
        },
      });
      assert.ok(raced);
      assert.equal(swept.results.find((r) => r.namespace === "invoices")?.outcome?.status, "committed");
      // (The billing key of the test above is reported again: still a conflict, still kept whole.)
      assert.equal(swept.requests.deletes, 1, "the conditional delete was sent");
      assert.equal(swept.sweep.deleted, 0);
      assert.deepEqual(
        swept.sweep.conflicts
          .filter((c) => c.key.includes("invoices"))
          .map((c) => [c.key, c.currentVersionId]),
        [[original.key, null]],
      );
      assert.ok(swept.sweep.keptWhole.some((k) => k.key === original.key && k.action === "extended"));
      assert.deepEqual(await currentKeys("invoices", hour, CONFLICT_BUCKET), [original.key]);
      const versions = await versionsOf(original.key, CONFLICT_BUCKET);
      assert.equal(versions.length, 2);
      assert.ok(versions.every((v) => !v.isDeleteMarker));
    } finally {
      racing.destroy();
    }
  });

  it("an hour whose manifests are each parseable but do not chain (a generation missing) keeps every original whole, deleting none", async () => {
    const realNow = Date.now();
    const hour = Math.floor(realNow / HOUR_MS) * HOUR_MS - 30 * HOUR_MS;
    const now = new Date(realNow);
    const a = batch("ledger", "node-a", 0, hour);
    const b = batch("ledger", "node-b", 0, hour);
    await land(a, hour, undefined, CHAIN_BUCKET);
    assert.equal(
      (await run(now, { bucket: CHAIN_BUCKET, noSweep: true })).results[0]?.outcome?.status,
      "committed",
    );
    await land(b, hour, undefined, CHAIN_BUCKET);
    assert.equal(
      (await run(now, { bucket: CHAIN_BUCKET, noSweep: true })).results[0]?.outcome?.status,
      "committed",
    );
    // Generation 0 hidden by a delete marker: generation 1 alone parses, but the chain has a gap.
    const manifests: string[] = [];
    for await (const page of listObjectPages(s3, CHAIN_BUCKET, "logs/compacted/")) {
      for (const o of page) if (o.Key?.includes("/manifest-") === true) manifests.push(o.Key);
    }
    manifests.sort();
    assert.equal(manifests.length, 2);
    await s3.send(new DeleteObjectCommand({ Bucket: CHAIN_BUCKET, Key: manifests[0]! }));

    const swept = await run(now, { bucket: CHAIN_BUCKET });
    assert.equal(swept.sweep.deleted, 0);
    assert.equal(swept.requests.deletes, 0);
    assert.deepEqual(await currentKeys("ledger", hour, CHAIN_BUCKET), [a.key, b.key].sort());
    assert.deepEqual(
      swept.sweep.keptWhole.map((k) => [k.key, k.action]),
      [
        [a.key, "extended"],
        [b.key, "extended"],
      ].sort(),
    );
  });

  it("keeps whole every uncompacted original whose hour ended a day ago, run after run, not only near its landing end", async () => {
    const realNow = Date.now();
    const current = Math.floor(realNow / HOUR_MS) * HOUR_MS;
    const dayOld = current - 30 * HOUR_MS; // landing retention ends in about 43 h
    const fresh = current - 20 * HOUR_MS; // ended under a day ago
    const refusedOld = batch("orders", "node-a", 1, dayOld);
    const refusedFresh = batch("orders", "node-a", 2, fresh);
    await land(refusedOld, dayOld, batch("orders", "node-a", 9, dayOld).body, OUTAGE_BUCKET);
    await land(refusedFresh, fresh, batch("orders", "node-a", 8, fresh).body, OUTAGE_BUCKET);

    const first = await run(new Date(realNow), { bucket: OUTAGE_BUCKET });
    assert.deepEqual(first.sweep.errors, []);
    assert.deepEqual(
      first.sweep.keptWhole.map((k) => [k.key, k.action]),
      [[refusedOld.key, "extended"]],
    );
    // The next run HEADs it again and finds the full lock.
    const next = await run(new Date(realNow + HOUR_MS), { bucket: OUTAGE_BUCKET });
    assert.deepEqual(
      next.sweep.keptWhole.map((k) => [k.key, k.action]),
      [[refusedOld.key, "already"]],
    );
    assert.equal(next.requests.retentionPuts, 0);
  });

  it("an original kept whole whose HEAD shows no Object Lock retention is a sweep error (--lock-days expects Object Lock)", async () => {
    const realNow = Date.now();
    const hour = Math.floor(realNow / HOUR_MS) * HOUR_MS - 30 * HOUR_MS;
    const refused = batch("returns", "node-a", 1, hour);
    await putTestObject(s3, UNLOCKED_BUCKET, { ...refused, body: batch("returns", "node-a", 9, hour).body });
    const swept = await run(new Date(realNow), { bucket: UNLOCKED_BUCKET });
    assert.deepEqual(
      swept.sweep.keptWhole.map((k) => [k.key, k.action]),
      [[refused.key, "no-retention"]],
    );
    assert.deepEqual(
      swept.sweep.errors.map((e) => e.key),
      [refused.key],
    );
    assert.match(swept.sweep.errors[0]!.message, /no Object Lock retention/);
  });
});
