import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parsePolicy, streamDelivery } from "../../../lib/policy/policy.ts";
import { ShipperMetrics } from "../../metrics.ts";
import { CheckpointStore } from "../../state/checkpoint.ts";
import { ArchiveSink } from "./sink.ts";

const STREAM_POLICY = parsePolicy(`
archive:
  batch_max_age: 1h
  batch_age_overrides:
    - namespaces: ["audit"]
      batch_max_age: 5m
analytics:
  include: ["*"]
  delivery: stream
  stream_batch_max_age: 3m
`);
const MINUTE = 60_000;
/** 2026-11-21T10:00:00Z, in seconds: the records' time; batch ages count wall-clock time. */
const T = Date.UTC(2026, 10, 21, 10) / 1000;

describe("archive sink: batch ages", () => {
  let dir = "";
  let n = 0;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logarchive-sink-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  async function sink(policyText: typeof STREAM_POLICY | null): Promise<ArchiveSink> {
    const state = join(dir, `state-${n++}`);
    const spoolDir = join(state, "spool");
    await mkdir(spoolDir, { recursive: true });
    const store = new CheckpointStore(state);
    return ArchiveSink.restore(
      {
        spoolDir,
        prefix: "logs",
        gzipLevel: 1,
        node: "n",
        batchMaxBytes: 8 * 2 ** 20,
        batchMaxAgeMs: MINUTE,
        streamDelivery: policyText === null ? null : streamDelivery(policyText),
        shipperVersion: "test",
        metrics: new ShipperMetrics({ defaultMetrics: false }),
      },
      store,
      await store.load(),
    );
  }

  /** Whether a sink holding only the batch `open` makes is due `ms` after it opened. */
  async function dueAfter(
    policy: typeof STREAM_POLICY | null,
    open: (s: ArchiveSink) => { openedAt: number },
    ms: number,
  ): Promise<boolean> {
    const s = await sink(policy);
    const batch = open(s);
    const due = s.due(batch.openedAt + ms);
    await s.close();
    return due;
  }

  it("cuts stream batches at the stream age, archive batches at the archive age or their override", async () => {
    const stream = (s: ArchiveSink) =>
      s.streamBatchFor({ dataset: "logarchive", table: "container_logs" }, T);
    assert.equal(await dueAfter(STREAM_POLICY, stream, 3 * MINUTE - 1), false);
    assert.equal(await dueAfter(STREAM_POLICY, stream, 3 * MINUTE), true);
    const web = (s: ArchiveSink) => s.batchFor("archive", "web", T);
    assert.equal(await dueAfter(STREAM_POLICY, web, 59 * MINUTE), false);
    assert.equal(await dueAfter(STREAM_POLICY, web, 60 * MINUTE), true);
    const audit = (s: ArchiveSink) => s.batchFor("archive", "audit", T);
    assert.equal(await dueAfter(STREAM_POLICY, audit, 5 * MINUTE - 1), false);
    assert.equal(await dueAfter(STREAM_POLICY, audit, 5 * MINUTE), true);
    // An analytics-tier batch (a checkpoint from before a switch to stream) keeps batch_max_age.
    const analytics = (s: ArchiveSink) => s.batchFor("analytics", "web", T);
    assert.equal(await dueAfter(STREAM_POLICY, analytics, MINUTE), true);
    // Per-namespace delivery: batch_max_age for every batch.
    assert.equal(await dueAfter(null, web, MINUTE - 1), false);
    assert.equal(await dueAfter(null, web, MINUTE), true);
  });

  it("numbers stream batches in their own sequence, under an epoch of their own", async () => {
    const s = await sink(STREAM_POLICY);
    const a = s.batchFor("archive", "web", T);
    const x = s.streamBatchFor({ dataset: "logarchive", table: "container_logs" }, T);
    const b = s.batchFor("archive", "auth", T);
    const y = s.streamBatchFor({ dataset: "logarchive", table: "other" }, T);
    assert.deepEqual(
      [a, b].map((o) => [o.identity.epoch, o.identity.seq]),
      [
        [s.epoch, 0],
        [s.epoch, 1],
      ],
    );
    assert.ok(s.stream !== undefined && s.stream.epoch !== s.epoch);
    assert.deepEqual(
      [x, y].map((o) => [o.identity.epoch, o.identity.seq]),
      [
        [s.stream.epoch, 0],
        [s.stream.epoch, 1],
      ],
    );
    // The same table and hour is the same open batch.
    assert.equal(s.streamBatchFor({ dataset: "logarchive", table: "container_logs" }, T + 59), x);
    await s.close();
  });
});
