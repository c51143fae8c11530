import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { gunzipSync, constants as zlibConstants } from "node:zlib";
import { appendRecordEnd, OutputBuffer, RecordEncoder } from "../../transforms/record_encoder.ts";
import {
  FEED_BYTES,
  heldStagingBuffers,
  MAX_HELD_STAGING,
  OpenBatch,
  takeFedEarly,
  targetOf,
} from "./batch.ts";

const TARGET = { tier: "archive", namespace: "ns", dt: "2026-11-21", hour: "11" } as const;

/** Appends `bytes` to the batch as the shipper does: stage, feed at FEED_BYTES, wait when gzip is behind. */
async function stage(batch: OpenBatch, bytes: Buffer): Promise<void> {
  const s = batch.staging;
  s.reserve(bytes.length).set(bytes, s.length);
  s.length += bytes.length;
  if (s.length >= FEED_BYTES) batch.feed();
  if (batch.backlogged) await batch.drained();
}

/** Lines of mixed size, some far longer than a staging buffer. */
function ndjson(n: number): Buffer[] {
  return Array.from({ length: n }, (_, i) =>
    Buffer.from(`{"i":${i},"m":"${randomBytes(i % 97 === 0 ? 300_000 : (i % 300) + 1).toString("hex")}"}\n`),
  );
}

describe("open batch", () => {
  let dir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logarchive-batch-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));
  const settings = () => ({ spoolDir: dir, prefix: "logs", gzipLevel: 6 });

  it("gzips what is staged into its spool file: a sync-flushed prefix inflates alone, the sealed file whole", async () => {
    const batch = new OpenBatch(settings(), { node: "n", epoch: "0123abcd", seq: 1 }, TARGET);
    const lines = ndjson(2000);
    for (const l of lines.slice(0, 1000)) await stage(batch, l);
    await batch.syncFlush();
    const prefix = (await readFile(batch.file)).subarray(0, batch.spoolBytes);
    assert.ok(
      gunzipSync(prefix, { finishFlush: zlibConstants.Z_SYNC_FLUSH }).equals(
        Buffer.concat(lines.slice(0, 1000)),
      ),
    );
    for (const l of lines.slice(1000)) await stage(batch, l);
    const { bytes, sha256 } = await batch.seal();
    const file = await readFile(batch.file);
    assert.equal(file.length, bytes);
    assert.equal(createHash("sha256").update(file).digest("hex"), sha256);
    assert.ok(gunzipSync(file).equals(Buffer.concat(lines)));
  });

  it("does not grow its staging for a record longer than a staging buffer: the record goes to gzip in pieces", async () => {
    const batch = new OpenBatch(settings(), { node: "n", epoch: "0123abcd", seq: 2 }, TARGET);
    let largest = 0;
    const feed = batch.feed.bind(batch);
    batch.feed = () => {
      largest = Math.max(largest, batch.staging.bytes.length);
      return feed();
    };
    const meta = { namespace: "ns", pod: "p", container: "c", node: "n" };
    const encoder = new RecordEncoder(meta);
    // Worst case for the encoder: every byte escaped as \u00XX, 6 MiB for 1 MiB.
    const message = Buffer.alloc(1024 * 1024, 0x01);
    encoder.encode(batch.staging, 0, 0, "stdout", message, 0, message.length, false, null);
    appendRecordEnd(batch.staging);
    const plain = new OutputBuffer();
    encoder.encode(plain, 0, 0, "stdout", message, 0, message.length, false, null);
    appendRecordEnd(plain);
    assert.equal(batch.staging.handedOff + batch.staging.length, plain.length);
    await batch.seal();
    assert.ok(largest > 0 && largest <= FEED_BYTES + 64 * 1024, `staging grew to ${largest} bytes`);
    assert.ok(gunzipSync(await readFile(batch.file)).equals(plain.view()));
  });

  it("lets at most MAX_HELD_STAGING batches hold a staging buffer: past it the oldest holder is fed early, in order", async () => {
    const count = MAX_HELD_STAGING * 3;
    const batches = Array.from(
      { length: count },
      (_, i) =>
        new OpenBatch(
          settings(),
          { node: "n", epoch: "0123abcd", seq: 100 + i },
          { ...TARGET, namespace: `ns${i}` },
        ),
    );
    const written: Buffer[][] = batches.map(() => []);
    const lines = ndjson(600);
    let mostHeld = 0;
    // Round-robin, a line at a time: every batch is written to, none reaches FEED_BYTES soon.
    for (let i = 0; i < lines.length; i++) {
      const b = i % count;
      await stage(batches[b]!, lines[i]!);
      written[b]!.push(lines[i]!);
      mostHeld = Math.max(mostHeld, heldStagingBuffers());
      // As the shipper's reader does: wait for the batches fed for another's sake.
      await Promise.all(takeFedEarly().map((x) => x.drained()));
    }
    assert.equal(mostHeld, MAX_HELD_STAGING);
    for (let b = 0; b < count; b++) {
      await batches[b]!.seal();
      assert.ok(
        gunzipSync(await readFile(batches[b]!.file)).equals(Buffer.concat(written[b]!)),
        `batch ${b}`,
      );
    }
    assert.equal(heldStagingBuffers(), 0);
  });

  it("recovers an open batch from its committed prefix, into the next generation's file", async () => {
    const batch = new OpenBatch(settings(), { node: "n", epoch: "0123abcd", seq: 3 }, TARGET);
    const lines = ndjson(1500);
    for (const l of lines) await stage(batch, l);
    await batch.syncFlush();
    const raw = Buffer.concat(lines);
    batch.records = lines.length;
    batch.rawBytes = raw.length;
    const cp = batch.checkpoint();
    // Written after the commit and lost in the crash: not in the committed prefix.
    await stage(batch, Buffer.from('{"lost":true}\n'));
    await batch.abandon();
    const recovered = await OpenBatch.recover(settings(), "0123abcd", cp);
    assert.equal(recovered.generation, 1);
    assert.notEqual(recovered.file, batch.file);
    assert.deepEqual([recovered.records, recovered.rawBytes], [lines.length, raw.length]);
    await recovered.seal();
    assert.ok(gunzipSync(await readFile(recovered.file)).equals(raw));
  });

  it("names a stream batch by its table, and recovers it from a checkpoint as a stream batch", async () => {
    const target = {
      tier: "stream",
      dataset: "logarchive",
      table: "container_logs",
      dt: "2026-11-21",
      hour: "11",
    } as const;
    const batch = new OpenBatch(settings(), { node: "n", epoch: "0123abcd", seq: 4 }, target);
    assert.equal(
      batch.key,
      "logs/stream/table=logarchive.container_logs/dt=2026-11-21/hour=11/n_0123abcd_000000000004.ndjson.gz",
    );
    const lines = ndjson(50);
    for (const l of lines) await stage(batch, l);
    await batch.syncFlush();
    batch.records = lines.length;
    batch.rawBytes = Buffer.concat(lines).length;
    const cp = batch.checkpoint();
    assert.deepEqual(targetOf(cp), target);
    // Through JSON, as the checkpoint file stores it.
    const recovered = await OpenBatch.recover(settings(), "0123abcd", JSON.parse(JSON.stringify(cp)));
    assert.equal(recovered.key, batch.key);
    await batch.abandon();
    await recovered.seal();
    assert.ok(gunzipSync(await readFile(recovered.file)).equals(Buffer.concat(lines)));
    // A per-namespace batch's checkpoint (as version-1 checkpoints before stream delivery) reads unchanged.
    const plain = new OpenBatch(settings(), { node: "n", epoch: "0123abcd", seq: 5 }, TARGET);
    assert.deepEqual(targetOf(plain.checkpoint()), TARGET);
    await plain.abandon();
  });
});
