// The loader's throughput and GCS cost against the local GCS and the BigQuery REST fake (jobs
// finish at once, so this measures the loader's own work, not BigQuery's). Three phases over N
// objects of one table, as the shipper writes them:
//   finalize  every object's event handled (gunzip, SHA-256, schema check, claim, queue), 16 at once
//   sweep     the sweeper walking their hour (every object has a claim: the steady-state cost)
//   flush     one flush run turning the queue into 10,000-object load jobs
// GCS operations are counted by pricing class in a proxy in front of the local GCS.
// --latency-ms holds every GCS request that long in the proxy, as a round trip to GCS would, so
// the phases wait on latency (as on GCS) more than on this machine's CPU; --flush-concurrency
// sets LOGARCHIVE_FLUSH_CONCURRENCY (default 16).
//
//   node_modules/.bin/node benchmarks/loader.bench.ts [--objects 10000] [--records 20] [--latency-ms 0] [--flush-concurrency 16]

import { mkdtemp, rm } from "node:fs/promises";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { Storage } from "@google-cloud/storage";
import { resolveLoaderConfig } from "../functions/loader/config.ts";
import type { FinalizedObject } from "../functions/loader/enqueue.ts";
import { Loader } from "../functions/loader/loader.ts";
import { forEachLimited } from "../functions/loader/state.ts";
import { type GcsProxy, startGcsProxy } from "../functions/loader/test_support/gcs-proxy.ts";
import { archiveObject } from "../functions/loader/test_support/objects.ts";
import { BigQueryWarehouse } from "../functions/warehouse/bigquery.ts";
import { fakeBigQueryClient, startFakeBigQuery } from "../functions/warehouse/test_support/fake-bigquery.ts";
import { ConfigError } from "../lib/config/errors.ts";
import { parsePolicy } from "../lib/policy/policy.ts";
import { startLocalGcs } from "../local/gcs/server.ts";
import { benchArgs, wholeNumber } from "./args.ts";

const { count, records, latencyMs, flushConcurrency } = benchArgs(
  {
    objects: { type: "string", default: "10000" },
    records: { type: "string", default: "20" },
    "latency-ms": { type: "string", default: "0" },
    "flush-concurrency": { type: "string", default: "16" },
  },
  (values) => ({
    count: wholeNumber("objects", values.objects, 1),
    records: wholeNumber("records", values.records, 1),
    latencyMs: wholeNumber("latency-ms", values["latency-ms"], 0),
    // Checked below by the loader's own config parsing, as LOGARCHIVE_FLUSH_CONCURRENCY would be.
    flushConcurrency: values["flush-concurrency"],
  }),
);
let config: ReturnType<typeof resolveLoaderConfig>;
try {
  config = resolveLoaderConfig(
    {},
    {
      landing_bucket: "landing",
      state_bucket: "loader-state",
      warehouse: "bigquery",
      bigquery_project: "bench",
      job_poll_interval: "10ms",
      table_job_guard: "100000",
      flush_concurrency: flushConcurrency,
    },
  );
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`--flush-concurrency: ${error.message.split("\n").slice(1).join(" ").trim()}\n`);
  process.exit(2);
}

const dir = await mkdtemp(join(tmpdir(), "logarchive-bench-loader-"));
const gcs = await startLocalGcs({ dataDir: join(dir, "gcs"), host: "127.0.0.1", port: 0 });
const proxy: GcsProxy = await startGcsProxy(gcs.url, { latencyMs });
const fake = await startFakeBigQuery();
// The test's uploads bypass the proxy; the loader's calls go through it and are counted.
const direct = new Storage({ apiEndpoint: gcs.url, projectId: "bench" });
const storage = new Storage({ apiEndpoint: proxy.url, projectId: "bench" });
await direct.createBucket("landing");
await direct.createBucket("loader-state");

// The objects' hour (2026-11-21T10) has settled by this clock, so the sweeper walks it.
const clock = Date.parse("2026-11-21T12:00:00Z");
const loader = new Loader({
  config,
  policy: parsePolicy("analytics:\n  include: ['*']\nwarehouse:\n  dataset: logs\n  table: container_logs\n"),
  storage,
  warehouse: new BigQueryWarehouse({
    projectId: "bench",
    location: "US",
    bigquery: fakeBigQueryClient(fake, "bench", "US"),
  }),
  log: () => {},
  now: () => clock,
  sweep: { maxObjectsPerRun: count, maxListsPerRun: 10_000 },
});

type Phase = { name: string; seconds: number; objects: number; a: number; b: number };
const phases: Phase[] = [];
async function phase(name: string, objects: number, run: () => Promise<void>): Promise<void> {
  proxy.resetCounts();
  const start = performance.now();
  await run();
  const seconds = (performance.now() - start) / 1000;
  phases.push({ name, seconds, objects, a: proxy.counts.A, b: proxy.counts.B });
}

const finalized: FinalizedObject[] = [];
const uploadStart = performance.now();
await forEachLimited(
  Array.from({ length: count }, (_, i) => i),
  16,
  async (i) => {
    const o = archiveObject({ namespace: `ns-${i % 8}`, seq: i + 1, records });
    const file = direct.bucket("landing").file(o.name);
    await file.save(o.body, {
      resumable: false,
      metadata: { contentType: "application/gzip", metadata: o.metadata },
    });
    finalized.push({
      bucket: "landing",
      name: o.name,
      generation: String(file.metadata.generation),
      metadata: o.metadata,
    });
  },
);
const uploadSeconds = (performance.now() - uploadStart) / 1000;
await loader.installId();

await phase("finalize", count, async () => {
  await forEachLimited(finalized, 16, async (o) => {
    const r = await loader.handleFinalize(o);
    if (r.outcome !== "queued") throw new Error(`${o.name}: ${r.outcome} ${r.detail ?? ""}`);
  });
});
let swept = 0;
await phase("sweep", count, async () => {
  const r = await loader.sweep();
  swept = r.examined;
  if (r.enqueued !== 0) throw new Error(`the sweeper queued ${r.enqueued} objects that had events`);
});
const results: { batches: number; objects: number; status: string }[] = [];
await phase("flush", count, async () => {
  const [r] = await loader.flush();
  results.push({
    batches: r?.batches ?? (r?.status === "loaded" ? 1 : 0),
    objects: r?.objects ?? 0,
    status: r?.status ?? "none",
  });
});
const inserts = fake.requestsTo("POST", "/jobs").length;

await proxy.stop();
await fake.stop();
await gcs.stop();
await rm(dir, { recursive: true, force: true });

const flushRun = results[0];
const f = (n: number, d = 1) => n.toFixed(d);
const lines = [
  `machine: ${availableParallelism()} CPUs, Node ${process.version}, load average ${loadavg()
    .map((l) => f(l, 2))
    .join(" ")} (at the end)`,
  `objects: ${count} of ${records} records in 8 namespaces, one table; uploaded in ${f(uploadSeconds)} s (not counted); GCS latency added ${latencyMs} ms per request; flush_concurrency ${flushConcurrency}`,
  "| phase | objects | wall time | objects/s | class A ops/object | class B ops/object |",
  "|---|---:|---:|---:|---:|---:|",
  ...phases.map(
    (p) =>
      `| ${p.name} | ${p.name === "sweep" ? swept : p.objects} | ${f(p.seconds)} s | ${f(p.objects / p.seconds, 0)} | ${f(p.a / p.objects, 2)} | ${f(p.b / p.objects, 2)} |`,
  ),
  `flush run: ${flushRun?.status}, ${flushRun?.objects} objects in ${flushRun?.batches} load jobs (${inserts} jobs.insert); ${f((phases.at(-1)?.seconds ?? 0) / Math.max(1, flushRun?.batches ?? 1))} s per load job's batch (a job takes at most max_uris_per_job objects, 10,000 by default)`,
];
process.stdout.write(`${lines.join("\n")}\n`);
if (flushRun?.objects !== count) process.exitCode = 1;
