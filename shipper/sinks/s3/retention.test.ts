// Object Lock retention of the shipper's PUTs (docs/shipper.md#object-lock-retention), through
// the sink and the uploader against the local S3 archive front, whose bucket has Object Lock
// with a 365-day default retention as the stack's archive bucket does: stream objects end
// stream_expiration_days after their hour, archive objects keep the default unless
// landing_days is set, hour indexes and loss records always keep it, a replay after a crash
// sends the same headers, object_lock_mode off sends none, and a key whose hour lies ahead of
// the upload asks for no more than the shipper's IAM grant allows. No PUT carries tags.

import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { HeadObjectCommand, ListObjectVersionsCommand, type S3Client } from "@aws-sdk/client-s3";
import { RETENTION_CAP_SLACK_DAYS } from "../../../infra/iam.ts";
import { formatIndexKey, formatLossKey, formatObjectKey, formatStreamKey } from "../../../lib/keys/layout.ts";
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

  /** Nothing is tagged: originals are removed by the compactor, not by a tag-filtered expiry. */
  function assertNoTags(): void {
    for (const p of puts) assert.equal(p.tagging, undefined, p.key);
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
    assertNoTags();
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
    assert.equal(puts.length, 5);
    assertNoTags();
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
        sent.map((p) => [p.mode, p.until, p.checksum]),
        sent.map(() => [sent[0]!.mode, sent[0]!.until, sent[0]!.checksum]),
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
      }
    }
    assertNoTags();
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
      });
      assert.deepEqual(objectRetention(settings, { key: archive }, now), {
        mode: "COMPLIANCE",
        retainUntil: new Date(midnight + 2 * DAY),
      });
      const analytics = formatObjectKey({ ...identity, tier: "analytics", namespace: "reports", seq: 10 });
      assert.deepEqual(
        objectRetention(settings, { key: analytics }, now)?.retainUntil,
        new Date(midnight + 2 * DAY),
      );
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
    // A late archive object, likewise.
    const lateArchive = Date.UTC(2026, 10, 24, 5, 10);
    assert.deepEqual(objectRetention(settings, { key: archive }, lateArchive), {
      mode: "COMPLIANCE",
      retainUntil: new Date(Date.UTC(2026, 10, 25, 6)),
    });
  });

  /**
   * Whether a PUT at `now` asking for `retention` passes the shipper's IAM grant, which caps
   * s3:object-lock-remaining-retention-days at the longest days + RETENTION_CAP_SLACK_DAYS
   * (infra/iam.ts); counted in whole days rounded up, the strictest reading.
   */
  function withinCap(settings: RetentionSettings, retention: { retainUntil: Date } | undefined, now: number) {
    assert.ok(retention, "a retention");
    const cap = Math.max(settings.streamExpirationDays, settings.landingDays) + RETENTION_CAP_SLACK_DAYS;
    return Math.ceil((retention.retainUntil.getTime() - now) / DAY) <= cap;
  }

  it("bounds a key whose hour lies ahead of the upload to the IAM cap, the same date for every retry within the hour", () => {
    const settings: RetentionSettings = { mode: "COMPLIANCE", streamExpirationDays: 3, landingDays: 2 };
    const uploadHour = Date.UTC(2026, 11, 7, 21);
    const at = (ms: number) => ({
      prefix: "logs",
      dt: new Date(ms).toISOString().slice(0, 10),
      hour: new Date(ms).toISOString().slice(11, 13),
      node: "node-a",
      epoch: "0a1b2c3d",
    });
    const keys = (ms: number) => ({
      stream: { key: formatStreamKey({ ...at(ms), ...TABLE, seq: 1 }), days: 3 },
      archive: { key: formatObjectKey({ ...at(ms), tier: "archive", namespace: "web", seq: 2 }), days: 2 },
      analytics: {
        key: formatObjectKey({ ...at(ms), tier: "analytics", namespace: "reports", seq: 3 }),
        days: 2,
      },
    });
    const retries = [uploadHour, uploadHour + 30 * 60_000, uploadHour + HOUR - 1];
    // A node clock (or CRI timestamps) 5 days fast: the key's own date would be 7 and 8 days away,
    // over the cap of 5; bounded to the end of the upload's hour + the days + an hour.
    for (const [kind, { key, days }] of Object.entries(keys(uploadHour + 5 * DAY))) {
      const naive = uploadHour + 5 * DAY + HOUR + days * DAY;
      assert.ok(
        !withinCap(settings, { retainUntil: new Date(naive) }, uploadHour),
        `${kind}: the key's own date`,
      );
      for (const now of retries) {
        const retention = objectRetention(settings, { key }, now);
        assert.deepEqual(retention?.retainUntil, new Date(uploadHour + HOUR + days * DAY + HOUR), kind);
        assert.ok(withinCap(settings, retention, now), `${kind} at ${new Date(now).toISOString()}`);
      }
      // An hour later the bound moves with the upload's hour.
      assert.deepEqual(
        objectRetention(settings, { key }, uploadHour + HOUR)?.retainUntil,
        new Date(uploadHour + 2 * HOUR + days * DAY + HOUR),
        kind,
      );
    }
    // The next hour's batch (a clock a little fast at the turn of the hour) keeps its key's date;
    // the one after that is bounded by an hour.
    for (const [kind, { key, days }] of Object.entries(keys(uploadHour + HOUR))) {
      for (const now of retries) {
        assert.deepEqual(
          objectRetention(settings, { key }, now)?.retainUntil,
          new Date(uploadHour + 2 * HOUR + days * DAY),
          kind,
        );
      }
    }
    for (const [kind, { key, days }] of Object.entries(keys(uploadHour + 2 * HOUR))) {
      assert.deepEqual(
        objectRetention(settings, { key }, uploadHour)?.retainUntil,
        new Date(uploadHour + 2 * HOUR + days * DAY),
        kind,
      );
    }
  });

  it("a batch of records 5 days ahead is PUT with a retention within the cap, which the locked bucket takes", async () => {
    puts = [];
    clock.now = H10 + 30 * 60_000;
    const sink = await life(join(dir, "future"));
    write(sink, H10 + 5 * DAY + 20 * 60_000);
    const sealed = await sink.commit([], true);
    const settings: RetentionSettings = {
      mode: "GOVERNANCE",
      streamExpirationDays: POLICY.analytics.stream_expiration_days,
      landingDays: 3,
    };
    await upload(uploader(settings), sealed);
    for (const s of sealed) sink.uploaded(s);
    await sink.close();
    const batches = sealed.filter((s) => s.kind === undefined);
    assert.equal(batches.length, 3);
    for (const s of batches) {
      assert.ok(s.key.includes("/dt=2026-11-26/hour=10/"), `${s.key} is the records' hour`);
      const days = s.key.includes("/stream/") ? 5 : 3;
      const expected = H10_END + days * DAY + HOUR;
      assert.deepEqual(await lockOf(s.key), { mode: "GOVERNANCE", until: expected }, s.key);
      for (const p of sentFor(s.key)) {
        assert.ok(
          withinCap(settings, { retainUntil: new Date(p.until!) }, clock.now),
          `${s.key} asks ${p.until}`,
        );
      }
    }
    assertNoTags();
  });
});
