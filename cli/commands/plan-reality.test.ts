// The model against reality: the real shipper runs for 2.5 minutes on a generated workload of
// eight namespaces at Zipf-skewed rates (65 lines/s down to 1 line/s) with 5 s batches, and
// the number and sizes of the objects it wrote must match what `logarchive plan` predicts
// for the same inputs (the rates written, and the compression and line size the shipper's
// own metrics report), within 10%.
//
// The slow namespaces are the test: at 1 line/s a 5 s batch is followed by a wait for the
// next line, so it makes one object per ~6 s, not per 5 s; a model that ignored the gap
// would be 20% off there. The median of the sizes is printed but not held (see below).
//
// Batches are cut by wall-clock age, so the shipper's own scheduling delay on a loaded machine
// lengthens every batch a little (a third of a second was seen at load 15 on 2 cores). With 2 s
// batches that alone was 10% fewer objects; 5 s batches keep it near 5%, inside the bound.

import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { zipfWeights } from "../../lib/economics/math.ts";
import type { LocalS3 } from "../../local/s3.ts";
import { s3Client } from "../../shipper/test_support/archive.ts";
import { pace, shipArgs, startShipper, startTestS3 } from "../../shipper/test_support/harness.ts";
import { ContainerLogWriter, random } from "../../shipper/test_support/workload.ts";
import { planCommand } from "./plan.ts";
import { runCommand } from "./plan_test_support.ts";

const NAMESPACES = ["payments", "checkout", "web", "search", "batch-jobs", "ml-training", "auth", "audit"];
const SKEW = 2;
const LINES_PER_SECOND = 100;
const RUN_MS = 150_000;
const BATCH_AGE = "5s";
const TICK_MS = 20;

/** Poisson(mean) by inversion; means here are small (≤ 1.3 per tick). */
function poisson(mean: number, rand: () => number): number {
  let k = 0;
  let p = Math.exp(-mean);
  let cumulative = p;
  const u = rand();
  while (u > cumulative && k < 1000) {
    k++;
    p *= mean / k;
    cumulative += p;
  }
  return k;
}

describe("plan against a real shipper run", { timeout: 480_000 }, () => {
  let dir: string;
  let s3: LocalS3;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logarchive-plan-reality-"));
    s3 = await startTestS3(join(dir, "s3"), ["reality"]);
  });
  after(async () => {
    await s3?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("predicts the number and sizes of the objects within 10%", async () => {
    const logs = join(dir, "pods");
    const weights = zipfWeights(NAMESPACES.length, SKEW);
    const writers = NAMESPACES.map(
      (namespace, i) =>
        new ContainerLogWriter({
          root: logs,
          namespace,
          pod: `${namespace}-0`,
          container: "app",
          id: i + 1,
          seed: 1000 + i,
          startMs: Date.now(),
        }),
    );
    const shipper = startShipper(
      shipArgs(
        { logs: `${logs}/*/*/*.log`, stateDir: join(dir, "state"), bucket: "reality", node: "node-a" },
        { "batch-max-age": BATCH_AGE, "scan-interval": "100ms" },
      ),
      s3.endpoint,
    );
    try {
      await shipper.waitForEvent("http_listening");
      // Each namespace's lines arrive as a Poisson process, as the model assumes.
      const rand = random(42);
      const started = Date.now();
      let last = started;
      while (Date.now() - started < RUN_MS) {
        await pace(TICK_MS);
        const now = Date.now();
        const dt = (now - last) / 1000;
        last = now;
        writers.forEach((w, i) => {
          const n = poisson(LINES_PER_SECOND * weights[i]! * dt, rand);
          if (n > 0) w.writeLines(n);
        });
      }
      const elapsedSeconds = (last - started) / 1000;
      const written = writers.reduce((s, w) => s + w.bytes, 0);
      // Every line read, every batch cut by its age and acknowledged by S3.
      const metrics = await shipper.waitForMetrics(
        "every byte read and every batch uploaded",
        (m) =>
          m.sum("read_bytes_total") >= written &&
          m.sum("open_batches") === 0 &&
          m.sum("batches_uploaded_total") === m.sum("batches_sealed_total"),
      );
      const metricsFile = join(dir, "metrics.txt");
      await writeFile(metricsFile, metrics.text);

      const sizes: number[] = [];
      const client = s3Client(s3.endpoint);
      let token: string | undefined;
      do {
        const page = await client.send(
          new ListObjectsV2Command({ Bucket: "reality", ContinuationToken: token }),
        );
        for (const o of page.Contents ?? []) sizes.push(o.Size ?? 0);
        token = page.NextContinuationToken;
      } while (token);
      sizes.sort((a, b) => a - b);
      assert.equal(sizes.length, metrics.sum("batches_uploaded_total"));

      const gbPerDay = ((written / elapsedSeconds) * 86_400) / 1e9;
      const shipperConfig = join(dir, "shipper.yaml");
      await writeFile(shipperConfig, `batch_max_age: ${BATCH_AGE}\n`);
      // The shipper ran without a policy (archive all, load none, per-namespace delivery):
      // the plan models that, not the repository's namespaces.yaml.
      const policy = join(dir, "namespaces.yaml");
      await writeFile(policy, 'archive:\n  include: ["*"]\n');
      const { out } = await runCommand(planCommand, [
        "plan",
        "--nodes",
        "1",
        "--gb-per-node-day",
        String(gbPerDay),
        "--namespaces",
        String(NAMESPACES.length),
        "--active-per-node",
        String(NAMESPACES.length),
        "--skew",
        `zipf:${SKEW}`,
        "--measured",
        metricsFile,
        "--shipper-config",
        shipperConfig,
        "--policy",
        policy,
        "--format",
        "json",
      ]);
      const plan = JSON.parse(out);
      const predicted = (plan.sizes.all.objectsPerDay * elapsedSeconds) / 86_400;
      const actualMean = sizes.reduce((a, b) => a + b, 0) / sizes.length;
      const actualMedian = sizes[Math.floor((sizes.length - 1) / 2)]!;
      const report = `objects ${sizes.length} vs predicted ${predicted.toFixed(1)}; mean ${actualMean.toFixed(0)} B vs ${plan.sizes.all.meanBytes.toFixed(0)} B; median ${actualMedian} B vs ${plan.sizes.all.medianBytes.toFixed(0)} B (${elapsedSeconds.toFixed(1)} s, ${(written / elapsedSeconds).toFixed(0)} B/s)`;
      process.stderr.write(`plan reality check: ${report}\n`);
      const within = (actual: number, expected: number) => Math.abs(actual - expected) <= 0.1 * expected;
      assert.ok(within(sizes.length, predicted), `object count: ${report}`);
      assert.ok(within(actualMean, plan.sizes.all.meanBytes), `mean size: ${report}`);
      // The median is reported, not asserted: the model gives every namespace rate one object
      // size, so with eight namespaces its median is one of eight points while the real sizes
      // spread around each; the real median landed 3% off at 2 s batches and 16-23% off at 5 s.
      // Count and mean (so total bytes) are what the bill is made of, and are held to 10%.
    } finally {
      await shipper.kill("SIGTERM");
    }
  });
});
