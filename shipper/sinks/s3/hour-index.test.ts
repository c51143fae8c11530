// Hour indexes (docs/retrieval.md#hour-indexes): sealed once, after the hour of the sink's
// clock has closed and S3 has acknowledged every batch numbered in it, with the same bytes
// whatever crash comes between, and chained to the previous hour's index.

import assert from "node:assert/strict";
import { access, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { formatObjectKey, parseIndexKey } from "../../../lib/keys/layout.ts";
import { hourStartText, parseHourIndex } from "../../../lib/object/hour-index.ts";
import { parsePolicy, streamDelivery } from "../../../lib/policy/policy.ts";
import { emptyReading, readIndexHours } from "../../../lib/retrieval/hour-indexes.ts";
import { type LocalS3, localS3Client, startLocalS3 } from "../../../local/s3.ts";
import { ShipperMetrics } from "../../metrics.ts";
import { type Checkpoint, CheckpointStore } from "../../state/checkpoint.ts";
import { IndexLedger } from "./hour-index.ts";
import { ArchiveSink } from "./sink.ts";
import { type SealedBatch, Uploader } from "./uploader.ts";

const STREAM_POLICY = parsePolicy(`
analytics:
  include: ["*"]
  delivery: stream
`);
const HOUR = 3_600_000;
/** 2026-11-21T10:00:00Z. */
const H10 = Date.UTC(2026, 10, 21, 10);
const indexes = (sealed: readonly SealedBatch[]) => sealed.filter((s) => s.kind === "index");

describe("hour index: written by the sink", () => {
  let dir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logarchive-hour-index-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  /** A shipper life on `state` with a clock the test sets. */
  async function life(state: string, clock: { now: number }): Promise<ArchiveSink> {
    const spoolDir = join(state, "spool");
    await mkdir(spoolDir, { recursive: true });
    const store = new CheckpointStore(state);
    return ArchiveSink.restore(
      {
        spoolDir,
        prefix: "logs",
        gzipLevel: 1,
        node: "node-a",
        batchMaxBytes: 8 * 2 ** 20,
        batchMaxAgeMs: HOUR,
        streamDelivery: streamDelivery(STREAM_POLICY),
        shipperVersion: "test",
        metrics: new ShipperMetrics({ defaultMetrics: false }),
        clock: () => clock.now,
      },
      store,
      await store.load(),
    );
  }

  /** One record at `ms` in `namespace`'s batch (and the stream's). */
  function write(sink: ArchiveSink, namespace: string, ms: number): void {
    for (const batch of [
      sink.batchFor("archive", namespace, ms / 1000),
      sink.streamBatchFor({ dataset: "logarchive", table: "container_logs" }, ms / 1000),
    ]) {
      const line = Buffer.from(`{"namespace":"${namespace}","at":${ms}}\n`);
      batch.staging.append(line);
      batch.noteRecord(Math.floor(ms / 1000), (ms % 1000) * 1e6, line.length);
    }
  }

  function loss(sink: ArchiveSink, ms: number): void {
    sink.recordLoss({
      reason: "rotation",
      namespace: "payments",
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

  it("seals an hour's index once, after the hour closed and every batch is acknowledged, the same bytes after a crash", async () => {
    const state = join(dir, "a");
    const clock = { now: H10 + 10 * 60_000 };
    const first = await life(state, clock);
    write(first, "web", clock.now);
    write(first, "payments", clock.now);
    loss(first, clock.now);
    const sealed = await first.commit([], true);
    // web, payments, the loss record and one stream batch: no index yet.
    assert.equal(sealed.length, 4);
    assert.deepEqual(indexes(sealed), []);
    const archive = sealed.filter((s) => !s.key.includes("/stream/"));
    assert.deepEqual(
      archive.map((s) => s.seq).sort(),
      [0, 1, 2],
      "batches and the loss record share the sequence; the stream batch has its own",
    );
    // Everything but the payments batch is acknowledged; the hour closes.
    for (const s of sealed) if (!s.key.includes("namespace=payments/")) first.uploaded(s);
    clock.now = H10 + HOUR + 5 * 60_000;
    write(first, "web", clock.now); // number 3, in hour 11
    assert.deepEqual(indexes(await first.commit([], true)), [], "a batch of hour 10 is not acknowledged");
    await first.close();

    // Restart: the payments batch is still to upload; once acknowledged, the index is sealed.
    const store = new CheckpointStore(state);
    const beforeSeal = await store.load();
    const second = await life(state, clock);
    const pending = [...second.sealed.values()];
    for (const s of pending) second.uploaded(s);
    const sealedIndexes = indexes(await second.commit([]));
    assert.equal(sealedIndexes.length, 1);
    const [index] = sealedIndexes;
    assert.deepEqual(parseIndexKey(index!.key), {
      prefix: "logs",
      dt: "2026-11-21",
      hour: "10",
      node: "node-a",
      epoch: second.epoch,
    });
    const bytes = await readFile(index!.file);
    const body = parseHourIndex(bytes);
    assert.equal(body.hour, "2026-11-21T10:00:00Z");
    assert.deepEqual([body.first, body.last, body.previous], [0, 2, null]);
    assert.deepEqual(
      body.batches.map((b) => [b.seq, b.kind, b.namespace, b.tier]),
      [
        [0, "batch", "web", "archive"],
        [1, "batch", "payments", "archive"],
        [2, "loss", "payments", null],
      ],
    );
    const bySeq = new Map(archive.map((s) => [s.seq, s]));
    for (const b of body.batches) {
      assert.equal(b.key, bySeq.get(b.seq)!.key);
      assert.equal(b.sha256, bySeq.get(b.seq)!.metadata.sha256);
      assert.equal(b.records, b.kind === "loss" ? 0 : 1);
    }
    assert.equal(
      index!.metadata.sha256,
      (await import("node:crypto")).createHash("sha256").update(bytes).digest("hex"),
    );
    assert.deepEqual(indexes(await second.commit([])), [], "sealed once");
    await second.close();

    // A crash before that commit's save: the restart seals the same bytes again.
    await store.save(beforeSeal);
    const third = await life(state, clock);
    for (const s of [...third.sealed.values()]) third.uploaded(s);
    const again = indexes(await third.commit([]));
    assert.equal(again.length, 1);
    assert.equal(again[0]!.key, index!.key);
    assert.ok((await readFile(again[0]!.file)).equals(bytes), "byte-identical");
    // Uploaded: it leaves the checkpoint and adds nothing to the ledger.
    third.uploaded(again[0]!);
    await third.commit([]);
    const saved = await store.load();
    assert.deepEqual(
      saved.sealed.map((s) => s.key),
      [],
    );
    assert.deepEqual(
      saved.index!.acked.map((e) => e.seq),
      [3],
    );

    // Hour 11 closes: its index chains to hour 10's.
    clock.now = H10 + 2 * HOUR + 60_000;
    const next = indexes(await third.commit([]));
    assert.equal(next.length, 1);
    const body11 = parseHourIndex(await readFile(next[0]!.file));
    assert.deepEqual([body11.hour, body11.first, body11.last], ["2026-11-21T11:00:00Z", 3, 3]);
    assert.deepEqual(body11.previous, { hour: "2026-11-21T10:00:00Z", last: 2 });
    await third.close();
  });

  it("never numbers into an hour whose index is sealed, even when the clock steps back", async () => {
    const state = join(dir, "b");
    const clock = { now: H10 + 59 * 60_000 };
    const sink = await life(state, clock);
    write(sink, "web", clock.now);
    for (const s of await sink.commit([], true)) sink.uploaded(s);
    clock.now = H10 + HOUR + 1000;
    assert.equal(indexes(await sink.commit([])).length, 1);
    clock.now = H10 + HOUR - 1000; // NTP stepped back into hour 10
    write(sink, "web", clock.now);
    for (const s of await sink.commit([], true)) sink.uploaded(s);
    clock.now = H10 + 2 * HOUR;
    const [later] = indexes(await sink.commit([]));
    const body = parseHourIndex(await readFile(later!.file));
    assert.equal(body.hour, "2026-11-21T11:00:00Z");
    assert.deepEqual(body.previous, { hour: "2026-11-21T10:00:00Z", last: 0 });
    await sink.close();
  });

  it("an upload acknowledged while a commit saves: the saved checkpoint's pending batches keep their spool files, and the ledger has each number once", async () => {
    const state = join(dir, "race");
    const spoolDir = join(state, "spool");
    await mkdir(spoolDir, { recursive: true });
    /** Runs `during` right after save is called, while the write awaits the file system. */
    class RacingStore extends CheckpointStore {
      during: (() => void) | null = null;
      override save(checkpoint: Checkpoint): Promise<void> {
        const saving = super.save(checkpoint);
        const during = this.during;
        this.during = null;
        during?.();
        return saving;
      }
    }
    const store = new RacingStore(state);
    const clock = { now: H10 + 10 * 60_000 };
    const sink = await ArchiveSink.restore(
      {
        spoolDir,
        prefix: "logs",
        gzipLevel: 1,
        node: "node-a",
        batchMaxBytes: 8 * 2 ** 20,
        batchMaxAgeMs: HOUR,
        streamDelivery: null,
        shipperVersion: "test",
        metrics: new ShipperMetrics({ defaultMetrics: false }),
        clock: () => clock.now,
      },
      store,
      await store.load(),
    );
    const line = Buffer.from('{"namespace":"web"}\n');
    const open = sink.batchFor("archive", "web", clock.now / 1000);
    open.staging.append(line);
    open.noteRecord(Math.floor(clock.now / 1000), 0, line.length);
    const [batch] = await sink.commit([], true);
    assert.ok(batch !== undefined && batch.kind === undefined);
    // The next commit's save runs while S3 acknowledges the batch.
    store.during = () => sink.uploaded(batch);
    await sink.commit([]);
    const saved = await store.load();
    assert.deepEqual(
      saved.sealed.map((s) => s.key),
      [batch.key],
      "saved before the acknowledgement",
    );
    assert.deepEqual(saved.index!.acked, [], "so not yet in the ledger");
    // A crash now re-uploads it from the spool after the restart.
    await access(batch.file);
    // The commit after deletes it: its checkpoint no longer names the batch.
    await sink.commit([]);
    assert.deepEqual(
      (await store.load()).index!.acked.map((e) => e.seq),
      [batch.seq],
    );
    await assert.rejects(access(batch.file), { code: "ENOENT" });
    await sink.close();
  });

  it("a checkpoint from before hour indexes starts indexing at its next number, with no chain link", async () => {
    const state = join(dir, "c");
    const store = new CheckpointStore(state);
    const old = await store.load();
    old.nextSeq = 7;
    await store.save(old);
    const clock = { now: H10 };
    const sink = await life(state, clock);
    write(sink, "web", clock.now);
    for (const s of await sink.commit([], true)) sink.uploaded(s);
    clock.now += HOUR;
    const [index] = indexes(await sink.commit([]));
    const body = parseHourIndex(await readFile(index!.file));
    assert.deepEqual([body.first, body.last, body.previous], [7, 7, null]);
    await sink.close();
  });
});

describe("hour index: uploaded and read back", () => {
  let dir = "";
  let s3: LocalS3;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logarchive-hour-index-s3-"));
    s3 = await startLocalS3({ host: "127.0.0.1", port: 0, dataDir: join(dir, "s3"), buckets: ["archive"] });
  });
  after(async () => {
    await s3?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("is uploaded like a batch, a second upload of the same bytes counts as done, and retrieval reads it back", async () => {
    const state = join(dir, "state");
    const spoolDir = join(state, "spool");
    await mkdir(spoolDir, { recursive: true });
    const store = new CheckpointStore(state);
    const clock = { now: H10 + 30 * 60_000 };
    const metrics = new ShipperMetrics({ defaultMetrics: false });
    const sink = await ArchiveSink.restore(
      {
        spoolDir,
        prefix: "logs",
        gzipLevel: 1,
        node: "node-a",
        batchMaxBytes: 8 * 2 ** 20,
        batchMaxAgeMs: HOUR,
        streamDelivery: null,
        shipperVersion: "test",
        metrics,
        clock: () => clock.now,
      },
      store,
      await store.load(),
    );
    const client = localS3Client(s3.endpoint, "us-east-1");
    const acknowledged: SealedBatch[] = [];
    const uploader = new Uploader({
      s3: client,
      bucket: "archive",
      concurrency: 2,
      timeoutMs: 10_000,
      retryInitialMs: 10,
      retryMaxMs: 100,
      metrics,
      log: () => undefined,
      retention: { mode: "off", streamExpirationDays: 3, landingDays: 0 },
      onUploaded: (batch) => {
        acknowledged.push(batch);
        sink.uploaded(batch);
      },
    });
    try {
      const batch = sink.batchFor("archive", "web", clock.now / 1000);
      const line = Buffer.from('{"m":"x"}\n');
      batch.staging.append(line);
      batch.noteRecord(Math.floor(clock.now / 1000), 0, line.length);
      for (const s of await sink.commit([], true)) uploader.enqueue(s);
      assert.ok(await uploader.idle(10_000));
      clock.now = H10 + HOUR + 1000;
      const [index] = indexes(await sink.commit([]));
      assert.ok(index !== undefined);
      uploader.enqueue(index);
      assert.ok(await uploader.idle(10_000));
      // A restart that lost the acknowledgement uploads the same bytes again: done, not a conflict.
      uploader.enqueue({ ...index });
      assert.ok(await uploader.idle(10_000));
      assert.equal(acknowledged.filter((b) => b.key === index.key).length, 2);

      const reading = emptyReading(H10);
      await readIndexHours(client, "archive", "logs", reading, H10 + HOUR);
      assert.deepEqual(reading.unusable, []);
      assert.equal(reading.indexes.length, 1);
      assert.equal(reading.indexes[0]!.key, index.key);
      assert.deepEqual(
        reading.indexes[0]!.index.batches.map((b) => b.key),
        [batch.key],
      );
      assert.equal([reading.listCalls, reading.getCalls].join(), "1,1");
    } finally {
      uploader.stop();
      await sink.close();
      client.destroy();
    }
  });
});

describe("hour index: the ledger", () => {
  const EPOCH = "0a0b0c0d";
  /** A batch of `web`, numbered `seq`, as the uploader hands it back acknowledged. */
  const batch = (seq: number): SealedBatch => ({
    seq,
    key: formatObjectKey({
      prefix: "logs",
      tier: "archive",
      namespace: "web",
      dt: "2026-11-21",
      hour: "10",
      node: "node-a",
      epoch: EPOCH,
      seq,
    }),
    file: `/spool/${seq}`,
    bytes: 10,
    metadata: {
      schemaVersion: 1,
      records: 1,
      firstTimestamp: "2026-11-21T10:00:00Z",
      lastTimestamp: "2026-11-21T10:00:00Z",
      sha256: "0".repeat(64),
      rawBytes: 10,
      batchId: `node-a_${EPOCH}_${seq}`,
      shipperVersion: "test",
    },
  });
  const hourAt = (ms: number) => Math.floor(ms / HOUR);

  it("after the clock was stepped forward and back, closes the future hour by number and numbers on in the clock's hour", () => {
    const events: { event: string; fields: Record<string, unknown> }[] = [];
    const ledger = new IndexLedger("node-a", EPOCH, "logs", IndexLedger.fresh(0), (_level, event, fields) =>
      events.push({ event, fields }),
    );
    ledger.numbered(0, H10 + 10 * 60_000); // hour 10
    ledger.numbered(1, H10 + 5 * HOUR + 60_000); // the clock jumps to 15:01
    ledger.numbered(2, H10 + 20 * 60_000); // and back to 10:20
    ledger.numbered(3, H10 + 30 * 60_000);
    ledger.numbered(4, H10 + HOUR + 60_000); // real time reaches 11:01
    assert.deepEqual(
      ledger.state.hours.map((h) => [h.hour - hourAt(H10), h.first]),
      [
        [0, 0],
        [5, 1],
        [1, 2], // hour 10 is taken: the first free hour after it
        // 11:01 is still hour 11, where numbers now go
      ],
    );
    assert.deepEqual(
      events.map((e) => [e.event, e.fields.closedHour, e.fields.newHour]),
      [["index_clock_stepped_back", "2026-11-21T15:00:00Z", "2026-11-21T11:00:00Z"]],
    );
    for (const seq of [0, 1, 2, 3, 4]) ledger.acknowledged(batch(seq));
    // At 12:01: hour 10 and hour 15 (closed by number) are sealed; hour 11 (numbers 2-4) too.
    const sealed = ledger.seal(H10 + 2 * HOUR + 60_000, 5);
    assert.deepEqual(
      sealed.map((s) => [hourStartText(s.hour), s.first, s.last]),
      [
        ["2026-11-21T10:00:00Z", 0, 0],
        ["2026-11-21T15:00:00Z", 1, 1],
        ["2026-11-21T11:00:00Z", 2, 4],
      ],
    );
    const chain = sealed.map((s) => parseHourIndex(s.body).previous);
    assert.deepEqual(chain, [
      null,
      { hour: "2026-11-21T10:00:00Z", last: 0 },
      { hour: "2026-11-21T15:00:00Z", last: 1 },
    ]);
    assert.deepEqual(ledger.state.acked, [], "nothing acknowledged waits for hour 15");
    // Real time reaches 15:00: hour 15 has its index, so numbers go to 16.
    ledger.numbered(5, H10 + 5 * HOUR + 60_000);
    assert.equal(ledger.state.hours.at(-1)!.hour - hourAt(H10), 6);
    assert.deepEqual(
      ledger.state.reserved,
      [hourAt(H10) + 5],
      "hour 15, behind the numbering now, bounds a later step back",
    );
  });

  it("prunes indexed hours anywhere: one hour that never completes keeps a few entries, not one a hour", () => {
    const ledger = new IndexLedger("node-a", EPOCH, "logs", IndexLedger.fresh(0));
    // Number 0 (hour 10) is never acknowledged; one batch an hour after it is.
    ledger.numbered(0, H10);
    for (let h = 1; h <= 48; h++) {
      ledger.numbered(h, H10 + h * HOUR);
      ledger.acknowledged(batch(h));
      ledger.seal(H10 + h * HOUR + 60_000, h + 1);
    }
    assert.deepEqual(
      ledger.state.hours.map((h) => [h.hour - hourAt(H10), h.first, h.sealed ?? false]),
      [
        [0, 0, false], // waiting for number 0
        [1, 1, true], // ends hour 10's numbers
        [47, 47, true], // the open hour's chain link
        [48, 48, false], // the open hour
      ],
    );
    assert.deepEqual(
      ledger.state.acked.map((e) => e.seq),
      [48],
      "only the open hour's",
    );
    // Number 0 arrives: hour 10 is sealed with its numbers and the ledger shrinks to the open hour.
    ledger.acknowledged(batch(0));
    const [late] = ledger.seal(H10 + 48 * HOUR + 60_000, 49);
    assert.deepEqual([late!.hour - hourAt(H10), late!.first, late!.last], [0, 0, 0]);
    assert.deepEqual(
      ledger.state.hours.map((h) => h.hour - hourAt(H10)),
      [48],
    );
    assert.deepEqual(ledger.state.previous, { hour: hourAt(H10) + 47, last: 47 });
    // Hour 48 chains to hour 47, whose entry is pruned now.
    const [last] = ledger.seal(H10 + 49 * HOUR, 49);
    assert.deepEqual(parseHourIndex(last!.body).previous, { hour: "2026-11-23T09:00:00Z", last: 47 });
  });

  it("ignores an acknowledgement of a number whose hour is already indexed", () => {
    const ledger = new IndexLedger("node-a", EPOCH, "logs", IndexLedger.fresh(0));
    ledger.numbered(0, H10);
    ledger.numbered(1, H10 + HOUR);
    ledger.acknowledged(batch(0));
    assert.equal(ledger.seal(H10 + HOUR + 60_000, 2).length, 1);
    // The upload of number 0 is repeated (a restart with a checkpoint saved before its
    // acknowledgement) and acknowledged again.
    ledger.acknowledged(batch(0));
    assert.deepEqual(ledger.state.acked, []);
    // Both while hour 10 is still in `hours`, and once it is pruned to `previous`.
    ledger.acknowledged(batch(1));
    ledger.seal(H10 + 2 * HOUR, 2);
    ledger.acknowledged(batch(0));
    ledger.acknowledged(batch(1));
    assert.deepEqual(ledger.state.acked, []);
  });
});
