// Local freshness of the whole pipeline with default settings: a live sample workload
// writes container logs at a steady rate; the shipper, S3, SQS, the transfer worker, GCS,
// Eventarc delivery, the loader functions and DuckDB run as `logarchive local` runs them.
// Freshness is, per row, the time its load finished (the loader's done marker) minus the
// line's own timestamp, which is when the workload wrote it.
//
//   node_modules/.bin/node benchmarks/e2e.bench.ts [--seconds 90] [--rate 200]

import { mkdtemp, rm } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../lib/log.ts";
import { classifyNamespace, loadPolicy } from "../lib/policy/policy.ts";
import { waitUntilShipped } from "../local/drain.ts";
import { LocalPipeline } from "../local/pipeline.ts";
import { startLiveSampleWorkload } from "../local/sample-workload.ts";
import { benchArgs, positiveNumber } from "./args.ts";

const { seconds, rate } = benchArgs(
  { seconds: { type: "string", default: "90" }, rate: { type: "string", default: "200" } },
  (values) => ({
    seconds: positiveNumber("seconds", values.seconds),
    rate: positiveNumber("rate", values.rate),
  }),
);

const dir = await mkdtemp(join(tmpdir(), "logarchive-bench-e2e-"));
const root = join(dir, "logs");
const policy = await loadPolicy(new URL("../namespaces.yaml", import.meta.url).pathname);
const pipeline = await LocalPipeline.start({
  dataDir: join(dir, "data"),
  policy,
  logs: [`${root}/*/*/*.log*`],
  once: false,
  logger: createLogger("bench", process.env.LOGARCHIVE_LOG_LEVEL ?? "fatal"),
  version: "bench",
});
const cpuStart = process.cpuUsage();
const workload = startLiveSampleWorkload({ root, linesPerSecond: rate, seed: 1 });
const shipper = await pipeline.openShipper();
const shipping = shipper.run();
await new Promise((r) => setTimeout(r, seconds * 1000));
const written = await workload.stop();
// stop() makes the shipper stop reading: let it read the last lines first, or they would
// stay on disk for a next run and the rows check below would miss them.
const caught = await waitUntilShipped(shipper, written.linesByNamespace, policy, { timeoutMs: 60_000 });
if (!caught.caughtUp) process.stderr.write(`the shipper had not read ${caught.unshipped} lines after 60 s\n`);
shipper.stop();
await shipping;
await shipper.close();
const report = await pipeline.settle(120_000);
const freshness = await pipeline.freshness();
const cpu = process.cpuUsage(cpuStart);
const stats = pipeline.parts.loader.stats();
await pipeline.stop();
await rm(dir, { recursive: true, force: true });

const notLoaded = Object.entries(written.linesByNamespace).filter(([ns]) => {
  const c = classifyNamespace(policy, ns);
  return !c.archived || c.destination === null;
});
const notLoadedLines = notLoaded.reduce((n, [, lines]) => n + lines, 0);
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const lines = [
  `machine: ${availableParallelism()} CPUs, Node ${process.version}`,
  `workload: ${rate} lines/s for ${seconds} s, ${written.lines} lines in ${Object.keys(written.linesByNamespace).length} namespaces (defaults: shipper batch age 5 s, flush every 2 s)`,
  `loaded: ${stats.rowsLoaded} rows in ${stats.batchesLoaded} load jobs from ${stats.objectsLoaded} objects; reconcile ${report.ok ? "OK" : "NOT OK"}`,
  `not loaded by the policy: ${notLoaded.map(([ns, n]) => `${ns} ${n} lines`).join(", ") || "none"}; written − not loaded = ${written.lines - notLoadedLines} = rows loaded: ${written.lines - notLoadedLines === stats.rowsLoaded}`,
  freshness === null
    ? "freshness: no rows loaded"
    : `freshness (line written → row queryable): p50 ${s(freshness.p50Ms)}  p95 ${s(freshness.p95Ms)}  max ${s(freshness.maxMs)}  over ${freshness.rows} rows`,
  `cpu (whole pipeline, one process): ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s for ${seconds} s of wall time`,
];
process.stdout.write(`${lines.join("\n")}\n`);
if (!report.ok || written.lines - notLoadedLines !== stats.rowsLoaded) process.exitCode = 1;
