// Loss records are written exactly once across crashes: a loss the source counts is numbered
// from the archive batch sequence and enters the checkpoint in the same save as the file
// state without the lost bytes. A crash before that save re-detects the loss (the previous
// file state still holds the file); a crash after it finds the record in the checkpoint and
// the spool, and does not detect the loss again.

import assert from "node:assert/strict";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { parseLossKey } from "../../../lib/keys/layout.ts";
import { parseLossRecord } from "../../../lib/object/loss.ts";
import { DEFAULT_POLICY } from "../../../lib/policy/policy.ts";
import { ShipperMetrics } from "../../metrics.ts";
import { KubernetesLogsSource } from "../../sources/kubernetes_logs/source.ts";
import { CheckpointStore } from "../../state/checkpoint.ts";
import { ArchiveSink } from "./sink.ts";

function criLines(count: number): string {
  let text = "";
  for (let i = 0; i < count; i++)
    text += `2026-11-21T08:15:${String(i % 60).padStart(2, "0")}.000000001Z stdout F line ${i}\n`;
  return text;
}

interface Life {
  sink: ArchiveSink;
  source: KubernetesLogsSource;
  losses: number;
}

describe("loss records: exactly once across a crash", () => {
  let dir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logarchive-loss-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  /** A pod log directory of its own and a state directory for one scenario. */
  function scenario(name: string): { state: string; podDir: string; globs: string[] } {
    const root = join(dir, name);
    const podDir = join(root, "pods", "payments_api-7c9f_uid-1", "app");
    mkdirSync(podDir, { recursive: true });
    return { state: join(root, "state"), podDir, globs: [`${root}/pods/*/*/*.log*`] };
  }

  /** A shipper life: sink and source restored from the committed checkpoint, losses to the sink. */
  async function startLife(state: string, globs: string[]): Promise<Life> {
    const spoolDir = join(state, "spool");
    await mkdir(spoolDir, { recursive: true });
    const store = new CheckpointStore(state);
    const checkpoint = await store.load();
    const metrics = new ShipperMetrics({ defaultMetrics: false });
    const sink = await ArchiveSink.restore(
      {
        spoolDir,
        prefix: "logs",
        gzipLevel: 1,
        node: "node-a",
        batchMaxBytes: 8 * 2 ** 20,
        batchMaxAgeMs: 60_000,
        streamDelivery: null,
        shipperVersion: "test",
        metrics,
      },
      store,
      checkpoint,
    );
    const life: Life = { sink, source: undefined as unknown as KubernetesLogsSource, losses: 0 };
    life.source = new KubernetesLogsSource(
      {
        globs,
        node: "node-a",
        maxLineBytes: 1024 * 1024,
        multiline: [],
        policy: DEFAULT_POLICY,
        finishGraceMs: 0,
        once: false,
        metrics,
        log: () => undefined,
        // As the shipper's line sink does: the file remembers its last line's time.
        lineSink: (tf) => (line) => {
          tf.lastLineSeconds = line.epochSeconds;
          tf.lastLineNanos = line.nanos;
        },
        onLoss: (facts) => {
          life.losses++;
          sink.recordLoss(facts);
        },
      },
      checkpoint.files,
    );
    return life;
  }

  it("writes one loss record when the shipper dies between detecting the loss and committing it", async () => {
    const { state, podDir, globs } = scenario("rotation");
    const logFile = join(podDir, "0.log");
    writeFileSync(logFile, criLines(50));
    const start = () => startLife(state, globs);
    // Life 1: part of the file is read and committed, then the shipper stops.
    const first = await start();
    await first.source.scan();
    await first.source.scan();
    const read = await first.source.readStep(Buffer.allocUnsafe(200));
    assert.equal(read, 200);
    await first.sink.commit(first.source.checkpoints());
    await first.source.close();
    await first.sink.close();
    const size = readFileSync(logFile).length;
    const offset = (await new CheckpointStore(state).load()).files[0]!.reader.offset;
    assert.ok(offset > 0 && offset < size, `offset ${offset} of ${size}`);

    // While it is down, the file is rotated away unread.
    rmSync(logFile);

    // Life 2 counts the loss and is killed before its commit.
    const second = await start();
    for (let i = 0; i < 3; i++) await second.source.scan();
    assert.equal(second.losses, 1, "the loss is detected");
    assert.deepEqual(
      (await new CheckpointStore(state).load()).sealed.filter((s) => s.kind === "loss"),
      [],
      "nothing committed",
    );

    // Life 3 detects it again from the same committed state, and commits it.
    const third = await start();
    for (let i = 0; i < 3; i++) await third.source.scan();
    assert.equal(third.losses, 1, "the loss is detected again after the crash");
    await third.sink.commit(third.source.checkpoints());
    const committed = (await new CheckpointStore(state).load()).sealed.filter((s) => s.kind === "loss");
    assert.equal(committed.length, 1);
    const entry = committed[0]!;
    const key = parseLossKey(entry.key);
    assert.deepEqual(
      { namespace: key.namespace, dt: key.dt, hour: key.hour, node: key.node, seq: key.seq },
      // The first life's numbers: no batch was made, so the record takes 0; filed under the
      // hour of the last line read before the loss.
      { namespace: "payments", dt: "2026-11-21", hour: "08", node: "node-a", seq: 0 },
    );
    const record = parseLossRecord(readFileSync(entry.file));
    assert.equal(record.reason, "rotation");
    assert.equal(record.bytes, size - offset);
    assert.deepEqual(record.range, { start: offset, end: size });
    assert.equal(record.file.path, logFile);
    assert.equal(record.batchId, entry.metadata.batchId);
    assert.match(record.window.lastLineBefore ?? "", /^2026-11-21T08:15:/);
    // The sequence goes on after the record: the next batch is not numbered 0 again.
    assert.equal((await new CheckpointStore(state).load()).nextSeq, 1);
    await third.source.close();
    await third.sink.close();

    // Life 4 (a crash after the commit): the record waits in the spool for upload, once.
    const fourth = await start();
    for (let i = 0; i < 3; i++) await fourth.source.scan();
    assert.equal(fourth.losses, 0, "a committed loss is not detected again");
    const sealed = [...fourth.sink.sealed.values()].filter((s) => s.kind === "loss");
    assert.deepEqual(
      sealed.map((s) => s.key),
      [entry.key],
    );
    assert.equal(readFileSync(sealed[0]!.file).length, sealed[0]!.bytes);
    await fourth.sink.commit(fourth.source.checkpoints());
    assert.equal((await new CheckpointStore(state).load()).sealed.filter((s) => s.kind === "loss").length, 1);
    await fourth.source.close();
    await fourth.sink.close();
  });

  it("a damaged .gz committed with its loss record is not counted again when a restart reads it on", async () => {
    const { state, podDir, globs } = scenario("gzip");
    const sound = gzipSync(Buffer.from(criLines(3000)));
    writeFileSync(
      join(podDir, "0.log.20261121-081500.gz"),
      sound.subarray(0, Math.floor(sound.length * 0.6)),
    );
    const first = await startLife(state, globs);
    await first.source.scan();
    await first.source.scan();
    const buf = Buffer.allocUnsafe(4096);
    for (let i = 0; i < 1000 && first.losses === 0; i++) await first.source.readStep(buf);
    assert.equal(first.losses, 1, "the damage is counted");
    await first.sink.commit(first.source.checkpoints());
    await first.source.close();
    await first.sink.close();
    // A .gz is usually finished in the read that finds its damage, but not while the next file
    // of its chain waits for a second listing: a commit in between leaves it unfinished, and
    // a restart reads it on to the damage again. That checkpoint, made here:
    const store = new CheckpointStore(state);
    const committed = await store.load();
    assert.equal(committed.files.length, 1);
    committed.files[0]!.done = false;
    await store.save(committed);
    const losses = committed.sealed.filter((s) => s.kind === "loss");
    assert.equal(losses.length, 1);
    assert.equal(parseLossRecord(readFileSync(losses[0]!.file)).reason, "corrupt_gzip");

    const second = await startLife(state, globs);
    await second.source.scan();
    await second.source.scan();
    for (let i = 0; i < 20; i++) {
      await second.source.readStep(buf);
      await second.source.scan();
    }
    assert.equal(second.losses, 0, "not counted again");
    await second.sink.commit(second.source.checkpoints());
    assert.deepEqual(
      (await new CheckpointStore(state).load()).sealed.filter((s) => s.kind === "loss").map((s) => s.key),
      [losses[0]!.key],
    );
    await second.source.close();
    await second.sink.close();
  });
});
