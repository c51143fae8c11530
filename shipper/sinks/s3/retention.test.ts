// Object Lock retention of the shipper's PUTs (docs/shipper.md#object-lock-retention), through
// the sink and the uploader against the local S3 archive front, whose bucket has Object Lock
// with a 365-day default retention as the stack's archive bucket does: stream objects end
// stream_expiration_days after their hour, archive objects keep the default unless
// landing_days is set, hour indexes and loss records always keep it, a replay after a crash
// sends the same headers, and object_lock_mode off sends none. Exactly the archive objects PUT
// with the landing retention carry the landing tag (lib/object/landing.ts), which the tier
// prefixes' expiry rule filters on.

import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { formatIndexKey, formatLossKey, formatObjectKey, formatStreamKey } from "../../../lib/keys/layout.ts";
import { LANDING_TAG, LANDING_TAGGING } from "../../../lib/object/landing.ts";
import { parsePolicy, streamDelivery } from "../../../lib/policy/policy.ts";
import { localS3Client } from "../../../local/s3.ts";
import {
  type LocalArchive,
  objectLockBucket,
  startLocalArchive,
} from "../../../local/s3-archive/test_support.ts";
import { ShipperMetrics } from "../../metrics.ts";
import { CheckpointStore } from "../../state/checkpoint.ts";
import { objectRetention, type RetentionSettings } from "./retention.ts";
import { ArchiveSink } from "./sink.ts";
import { type SealedBatch, Uploader } from "./uploader.ts";

const POLICY = parsePolicy(`
analytics:
  include: ["reports"]
  delivery: stream
  stream_expiration_days: 5
`);
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** 2026-11-21T10:00:00Z: the records' hour. */
const H10 = Date.UTC(2026, 10, 21, 10);
/** The end of the records' hour, from which explicit retention counts. */
const H10_END = H10 + HOUR;
const DEFAULT_DAYS = 365;
const TABLE = { dataset: "logarchive", table: "container_logs" };

/** What one PutObject sent, as the server received it. */
interface SentPut {
  key: string;
  mode: string | undefined;
  until: string | undefined;
  checksum: string | undefined;
  tagging: string | undefined;
}

describe("object lock retention of the shipper's PUTs", () => {
  let dir = "";
  let archive: LocalArchive;
  let client: S3Client;
  /** The front's clock (its default retention counts from it) and the sink's and uploader's. */
  const clock = { now: H10 + 30 * 60_000 };
  let puts: SentPut[] = [];
  let n = 0;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logarchive-retention-"));
    archive = await startLocalArchive(
      dir,
      [objectLockBucket("archive", DEFAULT_DAYS), "unlocked"],
      () => clock.now,
    );
    client = localS3Client(archive.front.endpoint, "us-east-1");
    // The headers of every PutObject as they leave the client, after the SDK's checksum step.
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === "PutObjectCommand") {
          const headers = (args.request as { headers: Record<string, string> }).headers;
          puts.push({
            key: (args.input as { Key: string }).Key,
            mode: headers["x-amz-object-lock-mode"],
            until: headers["x-amz-object-lock-retain-until-date"],
            checksum: headers["x-amz-checksum-sha256"],
            tagging: headers["x-amz-tagging"],
          });
        }
        return next(args);
      },
      { step: "finalizeRequest", name: "recordPutHeaders" },
    );
  });

  after(async () => {
    client.destroy();
    await archive.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** A shipper life on `state`: the sink restored from its checkpoint. */
  async function life(state: string): Promise<ArchiveSink> {
    const spoolDir = join(state, "spool");
    await mkdir(spoolDir, { recursive: true });
    const store = new CheckpointStore(state);
    return ArchiveSink.restore(
      {
        spoolDir,
        prefix: `logs${n++}`,
        gzipLevel: 1,
        node: "node-a",
        batchMaxBytes: 8 * 2 ** 20,
        batchMaxAgeMs: HOUR,
        streamDelivery: streamDelivery(POLICY),
        shipperVersion: "test",
        metrics: new ShipperMetrics({ defaultMetrics: false }),
        clock: () => clock.now,
      },
      store,
      await store.load(),
    );
  }

  function uploader(settings: Partial<RetentionSettings>, bucket = "archive"): Uploader {
    return new Uploader({
      s3: client,
      bucket,
      concurrency: 4,
      timeoutMs: 10_000,
      retryInitialMs: 10,
      retryMaxMs: 100,
      metrics: new ShipperMetrics({ defaultMetrics: false }),
      log: () => undefined,
      retention: {
        mode: "GOVERNANCE",
        streamExpirationDays: POLICY.analytics.stream_expiration_days,
        landingDays: 0,
        ...settings,
      },
      now: () => clock.now,
      onUploaded: () => undefined,
    });
  }

  /** One record at `ms` in each tier's batch of the hour and in the stream's, and a loss record. */
  function write(sink: ArchiveSink, ms: number): void {
    for (const batch of [
      sink.batchFor("archive", "web", ms / 1000),
      sink.batchFor("analytics", "reports", ms / 1000),
      sink.streamBatchFor(TABLE, ms / 1000),
    ]) {
      const line = Buffer.from(`{"at":${ms}}\n`);
      batch.staging.append(line);
      batch.noteRecord(Math.floor(ms / 1000), (ms % 1000) * 1e6, line.length);
    }
    sink.recordLoss({
      reason: "rotation",
      namespace: "web",
      pod: "api-1",
      podUid: null,
      container: "app",
      file: { path: "/var/log/pods/x/app/0.log", dev: 1, ino: 2, fingerprint: "f", compressed: false },
      bytes: 10,
      range: { start: 0, end: 10 },
      detectedAt: new Date(ms).toISOString(),
      window: { lastLineBefore: new Date(ms - 1000).toISOString(), firstLineAfter: null },
      note: "",
    });
  }

  async function upload(to: Uploader, batches: readonly SealedBatch[]): Promise<void> {
    for (const b of batches) to.enqueue(b);
    assert.ok(await to.idle(30_000), "every upload acknowledged");
  }

  /**
   * Writes an hour of every kind of object and uploads it with `settings`: the batches, the
   * loss record and, once the sink's clock passed the hour, its hour index. By kind.
   */
  async function shipAnHour(settings: Partial<RetentionSettings>, bucket = "archive") {
    clock.now = H10 + 30 * 60_000;
    const sink = await life(join(dir, `state-${n}`));
    const to = uploader(settings, bucket);
    write(sink, H10 + 20 * 60_000);
    const sealed = await sink.commit([], true);
    await upload(to, sealed);
    for (const s of sealed) sink.uploaded(s);
    clock.now = H10 + HOUR + 60_000;
    const indexes = await sink.commit([]);
    await upload(to, indexes);
    await sink.close();
    const all = [...sealed, ...indexes];
    const byKind = (test: (s: SealedBatch) => boolean) => {
      const found = all.filter(test);
      assert.equal(found.length, 1);
      return found[0]!;
    };
    return {
      stream: byKind((s) => s.kind === undefined && s.key.includes("/stream/")),
      archive: byKind((s) => s.kind === undefined && s.key.includes("/archive/")),
      analytics: byKind((s) => s.kind === undefined && s.key.includes("/analytics/")),
      loss: byKind((s) => s.kind === "loss"),
      index: byKind((s) => s.kind === "index"),
    };
  }

  async function lockOf(key: string, bucket = "archive"): Promise<{ mode?: string; until?: number }> {
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return {
      ...(head.ObjectLockMode === undefined ? {} : { mode: head.ObjectLockMode }),
      ...(head.ObjectLockRetainUntilDate === undefined
        ? {}
        : { until: head.ObjectLockRetainUntilDate.getTime() }),
    };
  }

  const sentFor = (key: string) => puts.filter((p) => p.key === key);

  async function tagsOf(key: string, bucket = "archive", versionId?: string) {
    const output = await client.send(
      new GetObjectTaggingCommand({ Bucket: bucket, Key: key, VersionId: versionId }),
    );
    return output.TagSet?.map((tag) => [tag.Key, tag.Value]);
  }
  const LANDING = [[LANDING_TAG.key, LANDING_TAG.value]];

  /** The landing tag went with exactly the PUTs of archive-tier objects that carried a lock of their own. */
  function assertTaggedExactlyWithLandingRetention(): void {
    for (const p of puts) {
      const landing = p.mode !== undefined && /\/(archive|analytics)\//.test(p.key);
      assert.equal(p.tagging, landing ? LANDING_TAGGING : undefined, p.key);
    }
  }

  it("stream objects end stream_expiration_days after their hour; archive objects, indexes and loss records keep the bucket default", async () => {
    puts = [];
    const objects = await shipAnHour({ landingDays: 0 });
    const defaultUntil = H10 + 30 * 60_000 + DEFAULT_DAYS * DAY;
    assert.deepEqual(await lockOf(objects.stream.key), { mode: "GOVERNANCE", until: H10_END + 5 * DAY });
    assert.deepEqual(
      sentFor(objects.stream.key).map((p) => [p.mode, p.until]),
      [["GOVERNANCE", new Date(H10_END + 5 * DAY).toISOString().replace(".000Z", "Z")]],
    );
    for (const kind of ["archive", "analytics", "loss"] as const) {
      const key = objects[kind].key;
      assert.deepEqual(await lockOf(key), { mode: "GOVERNANCE", until: defaultUntil }, kind);
      assert.deepEqual(
        sentFor(key).map((p) => [p.mode, p.until]),
        [[undefined, undefined]],
        kind,
      );
    }
    // The index is PUT after the hour, when the front's clock has moved on with the sink's.
    assert.deepEqual(await lockOf(objects.index.key), {
      mode: "GOVERNANCE",
      until: H10 + HOUR + 60_000 + DEFAULT_DAYS * DAY,
    });
    assert.deepEqual(sentFor(objects.index.key)[0]?.mode, undefined);
    // S3 refuses a PUT locking its version without a checksum: every one carries the batch's SHA-256.
    assert.equal(puts.length, 5);
    for (const p of puts) assert.ok(p.checksum, `${p.key} has x-amz-checksum-sha256`);
    // No landing retention, so no landing tag: the expiry rule must never match these originals.
    for (const p of puts) assert.equal(p.tagging, undefined, p.key);
    for (const kind of ["stream", "archive", "analytics", "loss", "index"] as const) {
      assert.deepEqual(await tagsOf(objects[kind].key), [], kind);
    }
  });

  it("with landing_days, archive objects of both long-lived tiers end landing_days after their hour; indexes and loss records still keep the default", async () => {
    puts = [];
    const objects = await shipAnHour({ landingDays: 3, mode: "COMPLIANCE" });
    assert.deepEqual(await lockOf(objects.stream.key), { mode: "COMPLIANCE", until: H10_END + 5 * DAY });
    for (const kind of ["archive", "analytics"] as const) {
      assert.deepEqual(
        await lockOf(objects[kind].key),
        { mode: "COMPLIANCE", until: H10_END + 3 * DAY },
        kind,
      );
    }
    assert.deepEqual(await lockOf(objects.loss.key), {
      mode: "GOVERNANCE",
      until: H10 + 30 * 60_000 + DEFAULT_DAYS * DAY,
    });
    assert.deepEqual(await lockOf(objects.index.key), {
      mode: "GOVERNANCE",
      until: H10 + HOUR + 60_000 + DEFAULT_DAYS * DAY,
    });
    for (const kind of ["loss", "index"] as const) {
      assert.deepEqual(
        sentFor(objects[kind].key).map((p) => p.mode),
        [undefined],
        kind,
      );
    }
    // The landing originals, and only they, are tagged for the tier prefixes' expiry rule.
    for (const kind of ["archive", "analytics"] as const) {
      assert.deepEqual(
        sentFor(objects[kind].key).map((p) => p.tagging),
        [LANDING_TAGGING],
        kind,
      );
      assert.deepEqual(await tagsOf(objects[kind].key), LANDING, kind);
    }
    for (const kind of ["stream", "loss", "index"] as const) {
      assert.deepEqual(
        sentFor(objects[kind].key).map((p) => p.tagging),
        [undefined],
        kind,
      );
      assert.deepEqual(await tagsOf(objects[kind].key), [], kind);
    }
    assert.equal(puts.length, 5);
    assertTaggedExactlyWithLandingRetention();
  });

  it("a replay after a crash sends the same retention as the first upload, a day later", async () => {
    puts = [];
    clock.now = H10 + 30 * 60_000;
    const state = join(dir, "crash");
    const first = await life(state);
    write(first, H10 + 20 * 60_000);
    const sealed = await first.commit([], true);
    // Uploaded, and the process dies before a commit records the acknowledgements.
    await upload(uploader({ landingDays: 3 }), sealed);
    await first.close();

    clock.now = H10 + 30 * 60_000 + DAY;
    const second = await life(state);
    const pending = [...second.sealed.values()];
    assert.deepEqual(pending.map((s) => s.key).sort(), sealed.map((s) => s.key).sort(), "all replayed");
    await upload(uploader({ landingDays: 3 }), pending);
    await second.close();
    for (const s of sealed) {
      const sent = sentFor(s.key);
      assert.ok(sent.length >= 2, `${s.key} PUT again`);
      assert.deepEqual(
        sent.map((p) => [p.mode, p.until, p.checksum, p.tagging]),
        sent.map(() => [sent[0]!.mode, sent[0]!.until, sent[0]!.checksum, sent[0]!.tagging]),
        s.key,
      );
      if (s.kind === "loss") continue;
      const versions = await client.send(new ListObjectVersionsCommand({ Bucket: "archive", Prefix: s.key }));
      assert.ok((versions.Versions ?? []).length >= 1, s.key);
      for (const v of versions.Versions ?? []) {
        const head = await client.send(
          new HeadObjectCommand({ Bucket: "archive", Key: s.key, VersionId: v.VersionId }),
        );
        assert.equal(
          head.ObjectLockRetainUntilDate?.getTime(),
          H10_END + (s.key.includes("/stream/") ? 5 : 3) * DAY,
        );
        assert.deepEqual(
          await tagsOf(s.key, "archive", v.VersionId),
          s.key.includes("/stream/") ? [] : LANDING,
          `${s.key} ${v.VersionId}`,
        );
      }
    }
    assertTaggedExactlyWithLandingRetention();
  });

  it("object_lock_mode off sends no lock headers, so a bucket without Object Lock takes every PUT", async () => {
    puts = [];
    const objects = await shipAnHour({ mode: "off", landingDays: 0 }, "unlocked");
    assert.equal(puts.length, 5);
    for (const p of puts)
      assert.deepEqual([p.mode, p.until, p.tagging], [undefined, undefined, undefined], p.key);
    assert.deepEqual(await lockOf(objects.stream.key, "unlocked"), {});
  });

  it("computes retention from the key's hour alone, and locks a late upload until a day after the hour it is uploaded in", () => {
    const settings: RetentionSettings = { mode: "COMPLIANCE", streamExpirationDays: 3, landingDays: 2 };
    const identity = { prefix: "logs", dt: "2026-11-21", hour: "23", node: "node-a", epoch: "0a1b2c3d" };
    const stream = formatStreamKey({ ...identity, ...TABLE, seq: 7 });
    const archive = formatObjectKey({ ...identity, tier: "archive", namespace: "web", seq: 8 });
    const midnight = Date.UTC(2026, 10, 22);
    for (const now of [midnight - HOUR, midnight + DAY]) {
      assert.deepEqual(objectRetention(settings, { key: stream }, now), {
        mode: "COMPLIANCE",
        retainUntil: new Date(midnight + 3 * DAY),
        landing: false,
      });
      assert.deepEqual(objectRetention(settings, { key: archive }, now), {
        mode: "COMPLIANCE",
        retainUntil: new Date(midnight + 2 * DAY),
        landing: true,
      });
      const analytics = formatObjectKey({ ...identity, tier: "analytics", namespace: "reports", seq: 10 });
      assert.equal(objectRetention(settings, { key: analytics }, now)?.landing, true);
    }
    assert.equal(objectRetention({ ...settings, landingDays: 0 }, { key: archive }, midnight), undefined);
    assert.equal(objectRetention({ ...settings, mode: "off" }, { key: stream }, midnight), undefined);
    const loss = formatLossKey({ ...identity, namespace: "web", seq: 9 });
    const index = formatIndexKey(identity);
    assert.equal(objectRetention(settings, { key: loss, kind: "loss" }, midnight), undefined);
    assert.equal(objectRetention(settings, { key: index, kind: "index" }, midnight), undefined);
    // Uploaded 2026-11-25T05:10Z, after the stream object's 3 days had ended: a day past 06:00.
    const late = Date.UTC(2026, 10, 25, 5, 10);
    assert.deepEqual(
      objectRetention(settings, { key: stream }, late)?.retainUntil,
      new Date(Date.UTC(2026, 10, 26, 6)),
    );
    // A late archive object is still a landing original, locked a day: tagged all the same.
    const lateArchive = Date.UTC(2026, 10, 24, 5, 10);
    assert.deepEqual(objectRetention(settings, { key: archive }, lateArchive), {
      mode: "COMPLIANCE",
      retainUntil: new Date(Date.UTC(2026, 10, 25, 6)),
      landing: true,
    });
    assert.equal(LANDING_TAGGING, "logarchive-landing=1");
  });
});
