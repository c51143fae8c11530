// The local pipeline's freshness probe, which a live run calls every 10 s for as long as it
// runs: it reads each (immutable) done marker once, not every marker on every call, and its
// percentiles, computed in DuckDB, are those of every loaded row's load time minus its time.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createLogger } from "../lib/log.ts";
import { parsePolicy } from "../lib/policy/policy.ts";
import { LocalPipeline } from "./pipeline.ts";
import { writeSampleBacklog } from "./sample-workload.ts";

const policy = parsePolicy(`
archive: { prefix: logs }
analytics: { include: ["*"], exclude: ["kube-system"] }
`);

describe("local pipeline freshness", () => {
  let dir: string;
  let pipeline: LocalPipeline;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logarchive-freshness-"));
    const root = join(dir, "logs");
    await writeSampleBacklog({ root, lines: 1500, seed: 5 });
    pipeline = await LocalPipeline.start({
      dataDir: join(dir, "data"),
      policy,
      logs: [`${root}/*/*/*.log*`],
      once: true,
      logger: createLogger("test", "fatal"),
      version: "test",
    });
    const shipper = await pipeline.openShipper();
    await shipper.run();
    await shipper.close();
    const report = await pipeline.settle(120_000);
    assert.ok(report.ok, JSON.stringify(report.counts));
  });

  after(async () => {
    await pipeline?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("reads each done marker once across calls and gives the rows' load-time percentiles", async () => {
    const state = pipeline.parts.loader.state;
    const read = state.read.bind(state);
    const reads: string[] = [];
    state.read = (async (path: string) => {
      reads.push(path);
      return read(path);
    }) as typeof state.read;
    try {
      const first = await pipeline.freshness();
      const done = (await state.list("done/")).map((d) => d.path);
      assert.ok(done.length > 0);
      assert.deepEqual(reads.filter((p) => p.startsWith("done/")).sort(), done.sort());
      reads.length = 0;
      const second = await pipeline.freshness();
      // Only done/ markers: the pipeline's own flush, every 2 s, reads its table head and
      // pause marker whenever it runs, and may run during this call.
      assert.deepEqual(
        reads.filter((p) => p.startsWith("done/")),
        [],
        "no done marker is read again",
      );
      assert.deepEqual(second, first);

      // The reference: every row of every loaded batch, in JavaScript.
      const loadedAt = new Map<string, number>();
      for (const path of done) {
        const marker = await read<{ batchId: string; loadedAt: string }>(path);
        loadedAt.set(marker!.batchId, Date.parse(marker!.loadedAt));
      }
      const connection = await pipeline.parts.cloud.warehouse.connect();
      let rows: [string, number][];
      try {
        rows = (
          await connection.runAndReadAll("SELECT batch_id, epoch_ms(timestamp)::DOUBLE FROM container_logs")
        ).getRows() as [string, number][];
      } finally {
        connection.closeSync();
      }
      const ages = rows.map(([batch, ts]) => loadedAt.get(batch)! - ts).sort((a, b) => a - b);
      assert.ok(first !== null);
      assert.equal(first.rows, ages.length);
      assert.equal(first.maxMs, ages.at(-1));
      // percentile_disc: the first value whose cumulative share reaches p.
      const at = (p: number) => ages[Math.ceil(p * ages.length) - 1];
      assert.equal(first.p50Ms, at(0.5));
      assert.equal(first.p95Ms, at(0.95));

      // Only rows of loads from `sinceMs` on.
      assert.equal(await pipeline.freshness(Date.now() + 60_000), null);
    } finally {
      state.read = read;
    }
  });
});

describe("local pipeline restart", () => {
  it("delivers at start the finalize events a stopped run never delivered", async () => {
    const dir = await mkdtemp(join(tmpdir(), "logarchive-redeliver-"));
    try {
      const root = join(dir, "logs");
      await writeSampleBacklog({ root, lines: 600, seed: 9 });
      const options = {
        dataDir: join(dir, "data"),
        policy,
        logs: [`${root}/*/*/*.log*`],
        once: true,
        logger: createLogger("test", "fatal"),
        version: "test",
      };
      const first = await LocalPipeline.start(options);
      try {
        // Stopped as a run stopping drops its queued events: whatever lands now is never delivered.
        await first.parts.eventarc.stop();
        const shipper = await first.openShipper();
        await shipper.run();
        await shipper.close();
        for (const until = Date.now() + 120_000; ; ) {
          const report = await first.reconcile();
          const landed = report.objects.filter((o) => o.verdict === "not-queued").length;
          if (report.objects.length > 0 && landed === report.objects.length) break;
          assert.ok(Date.now() < until, `not all transferred: ${JSON.stringify(report.counts)}`);
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      } finally {
        await first.stop();
      }
      const second = await LocalPipeline.start(options);
      try {
        const report = await second.settle(120_000);
        assert.ok(report.objects.length > 0);
        assert.deepEqual(
          report.objects.filter((o) => o.verdict !== "loaded").map((o) => `${o.key} ${o.verdict}`),
          [],
        );
        assert.ok(report.ok);
      } finally {
        await second.stop();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
