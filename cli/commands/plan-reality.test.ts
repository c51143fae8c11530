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
//
// The same check runs in stream delivery (`analytics.delivery: stream`, what namespaces.yaml
// ships): per-namespace archive objects at archive.batch_max_age and one stream object per
// table at analytics.stream_batch_max_age, each kind counted and sized against its own
// prediction. The shipper's metrics count the analytics bytes twice there (both objects), which
// `plan --measured` has to undo to get the compression right.

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
/**
 * Stream delivery's archive batches: twice the stream's, and short enough to cut many in the
 * run. Each namespace's last batch is a partial one the steady-state model does not see (about
 * half a batch each, 8 in all): at 20 s that edge alone was +8% objects (64 against 59.1).
 */
const STREAM_ARCHIVE_AGE = "10s";
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

interface ShipperRun {
  /** Object sizes by the key's tier segment (archive, analytics, stream), sorted. */
  sizesByTier: Map<string, number[]>;
  objects: number;
  elapsedSeconds: number;
  written: number;
  metricsFile: string;
}

/**
 * Runs the real shipper for RUN_MS on the eight namespaces' Poisson lines into `bucket`, waits
 * until every line is read and every batch uploaded, and lists what it wrote.
 */
async function runShipper(
  dir: string,
  s3: LocalS3,
  bucket: string,
  o: { flags: Record<string, string>; policy?: string },
): Promise<ShipperRun> {
  const logs = join(dir, bucket, "pods");
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
      { logs: `${logs}/*/*/*.log`, stateDir: join(dir, bucket, "state"), bucket, node: "node-a" },
      { "scan-interval": "100ms", ...o.flags, ...(o.policy === undefined ? {} : { policy: o.policy }) },
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
    const metricsFile = join(dir, bucket, "metrics.txt");
    await writeFile(metricsFile, metrics.text);

    const sizesByTier = new Map<string, number[]>();
    let objects = 0;
    const client = s3Client(s3.endpoint);
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
      for (const object of page.Contents ?? []) {
        // <prefix>/<tier>/…: the tier segment says which kind of object it is.
        const tier = (object.Key ?? "").split("/")[1] ?? "";
        sizesByTier.set(tier, [...(sizesByTier.get(tier) ?? []), object.Size ?? 0]);
        objects++;
      }
      token = page.NextContinuationToken;
    } while (token);
    for (const sizes of sizesByTier.values()) sizes.sort((a, b) => a - b);
    assert.equal(objects, metrics.sum("batches_uploaded_total"));
    return { sizesByTier, objects, elapsedSeconds, written, metricsFile };
  } finally {
    await shipper.kill("SIGTERM");
  }
}

/** `logarchive plan` for one node with the run's rates, measured metrics and configuration. */
async function planFor(run: ShipperRun, extra: string[]): Promise<PlanJson> {
  const gbPerDay = ((run.written / run.elapsedSeconds) * 86_400) / 1e9;
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
    run.metricsFile,
    "--format",
    "json",
    ...extra,
  ]);
  return JSON.parse(out) as PlanJson;
}

interface SizeSummaryJson {
  objectsPerDay: number;
  meanBytes: number;
  medianBytes: number;
}
interface PlanJson {
  sizes: { all: SizeSummaryJson; byTier: Record<string, SizeSummaryJson | undefined> };
}

/** Count and mean of the objects of one kind against the plan's, within 10%. */
function compare(what: string, sizes: readonly number[], predicted: SizeSummaryJson, elapsedSeconds: number) {
  const count = (predicted.objectsPerDay * elapsedSeconds) / 86_400;
  const mean = sizes.reduce((a, b) => a + b, 0) / sizes.length;
  const median = sizes[Math.floor((sizes.length - 1) / 2)]!;
  const report = `${what}: objects ${sizes.length} vs predicted ${count.toFixed(1)}; mean ${mean.toFixed(0)} B vs ${predicted.meanBytes.toFixed(0)} B; median ${median} B vs ${predicted.medianBytes.toFixed(0)} B (${elapsedSeconds.toFixed(1)} s)`;
  process.stderr.write(`plan reality check: ${report}\n`);
  const within = (actual: number, expected: number) => Math.abs(actual - expected) <= 0.1 * expected;
  assert.ok(within(sizes.length, count), `object count: ${report}`);
  assert.ok(within(mean, predicted.meanBytes), `mean size: ${report}`);
  // The median is reported, not asserted: the model gives every namespace rate one object
  // size, so with eight namespaces its median is one of eight points while the real sizes
  // spread around each; the real median landed 3% off at 2 s batches and 16-23% off at 5 s.
  // Count and mean (so total bytes) are what the bill is made of, and are held to 10%.
}

describe("plan against a real shipper run", { timeout: 900_000 }, () => {
  let dir: string;
  let s3: LocalS3;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logarchive-plan-reality-"));
    s3 = await startTestS3(join(dir, "s3"), ["reality", "reality-stream"]);
  });
  after(async () => {
    await s3?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("predicts the number and sizes of the objects within 10%", async () => {
    const run = await runShipper(dir, s3, "reality", { flags: { "batch-max-age": BATCH_AGE } });
    const shipperConfig = join(dir, "shipper.yaml");
    await writeFile(shipperConfig, `batch_max_age: ${BATCH_AGE}\n`);
    // The shipper ran without a policy (archive all, load none, per-namespace delivery):
    // the plan models that, not the repository's namespaces.yaml.
    const policy = join(dir, "namespaces.yaml");
    await writeFile(policy, 'archive:\n  include: ["*"]\n');
    const plan = await planFor(run, ["--shipper-config", shipperConfig, "--policy", policy]);
    compare(
      "per-namespace, all objects",
      [...run.sizesByTier.values()].flat().sort((a, b) => a - b),
      plan.sizes.all,
      run.elapsedSeconds,
    );
  });

  it("predicts the archive and stream objects of stream delivery within 10%", async () => {
    // Every namespace archived in 10 s batches and loaded into one table, whose stream
    // objects are cut every 5 s: the plan reads both ages and the delivery from this policy,
    // the file the shipper ran with.
    const policy = join(dir, "namespaces-stream.yaml");
    await writeFile(
      policy,
      [
        "archive:",
        '  include: ["*"]',
        `  batch_max_age: ${STREAM_ARCHIVE_AGE}`,
        "analytics:",
        '  include: ["*"]',
        "  delivery: stream",
        `  stream_batch_max_age: ${BATCH_AGE}`,
        "",
      ].join("\n"),
    );
    const run = await runShipper(dir, s3, "reality-stream", { flags: {}, policy });
    assert.deepEqual([...run.sizesByTier.keys()].sort(), ["archive", "stream"]);
    const plan = await planFor(run, ["--policy", policy]);
    compare(
      "stream delivery, archive objects",
      run.sizesByTier.get("archive")!,
      plan.sizes.byTier.archive!,
      run.elapsedSeconds,
    );
    compare(
      "stream delivery, stream objects",
      run.sizesByTier.get("stream")!,
      plan.sizes.byTier.stream!,
      run.elapsedSeconds,
    );
  });
});
