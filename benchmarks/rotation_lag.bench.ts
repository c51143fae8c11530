// Rotation lag after a restart: 12 containers write CRI logs at a steady rate and kubelet
// rotates each log every 256 KiB (rename to `<n>.log.<ts>`, gzip the older ones), so a
// container's log rotates every few seconds. `logarchive ship` runs live as a child process
// against a local S3, is stopped (SIGTERM, with its drain) for a few seconds while the
// containers write on, and started again: its chains now hold a backlog of rotated files.
// The writers stop a little later. The figure is the time from the writers stopping to the
// checkpoint showing every line read: every rotated file done and each live file read to
// its end (committed every 100 ms). Target: within 2 × the finish grace (2 s at the default
// 1 s scan interval).
//
//   node_modules/.bin/node benchmarks/rotation_lag.bench.ts [--rate 8000] [--runs 2]

import { statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { startLocalS3 } from "../local/s3.ts";
import { CheckpointStore } from "../shipper/state/checkpoint.ts";
import { startShipper } from "../shipper/test_support/archive.ts";
import { ContainerLogWriter } from "../shipper/test_support/workload.ts";
import { benchArgs, positiveNumber, wholeNumber } from "./args.ts";

const { rate, runs, rotateBytes } = benchArgs(
  {
    rate: { type: "string", default: "8000" },
    runs: { type: "string", default: "2" },
    "rotate-kib": { type: "string", default: "256" },
  },
  (values) => ({
    rate: positiveNumber("rate", values.rate),
    runs: wholeNumber("runs", values.runs, 1),
    rotateBytes: positiveNumber("rotate-kib", values["rotate-kib"]) * 1024,
  }),
);
const CONTAINERS = 12;
const FINISH_GRACE_MS = 2000;
const ROUND_MS = 20;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface RunResult {
  lagMs: number;
  lines: number;
  rotations: number;
  backlogFiles: number;
}

async function run(dir: string, s3Endpoint: string, bucket: string): Promise<RunResult> {
  const root = join(dir, `${bucket}-pods`);
  const state = join(dir, `${bucket}-state`);
  const writers = Array.from(
    { length: CONTAINERS },
    (_, id) =>
      new ContainerLogWriter({
        root,
        namespace: ["web", "auth", "search", "payments"][id % 4]!,
        pod: `api-${id}-6b7d9`,
        container: "app",
        id,
        seed: 4000 + id,
        startMs: Date.UTC(2026, 10, 21, 13, 5),
      }),
  );
  let rotations = 0;
  const perRound = Math.max(1, Math.round((rate * ROUND_MS) / 1000 / CONTAINERS));
  /** Writes for `ms` at the rate, rotating each log as kubelet would. */
  const write = async (ms: number) => {
    for (const until = Date.now() + ms; Date.now() < until; await sleep(ROUND_MS)) {
      for (const w of writers) {
        w.writeLines(perRound);
        if (statSync(w.path).size >= rotateBytes) {
          w.rotateRename();
          rotations++;
        }
      }
    }
  };
  const args = [
    "--logs",
    `${root}/*/*/*.log*`,
    "--state-dir",
    state,
    "--bucket",
    bucket,
    "--node",
    `node-${bucket}`,
    "--commit-interval",
    "100ms",
  ];
  for (const w of writers) w.writeLines(perRound);
  let shipper = startShipper(args, s3Endpoint);
  await write(6000);
  shipper.child.kill("SIGTERM");
  if ((await shipper.exited) !== 0) throw new Error(`the shipper failed:\n${shipper.log().slice(-2000)}`);
  // Down for a while: each container rotates a few times meanwhile.
  await write(5000);
  shipper = startShipper(args, s3Endpoint);
  await write(2000);
  for (const w of writers) w.close();
  const stoppedAt = Date.now();
  const sizes = new Map(writers.map((w) => [w.path, statSync(w.path).size]));
  const store = new CheckpointStore(state);
  let backlogFiles = -1;
  for (;;) {
    const cp = await store.load();
    const open = cp.files.filter((f) => !f.done);
    if (backlogFiles < 0) backlogFiles = open.length - writers.length;
    if (
      open.length === writers.length &&
      open.every((f) => sizes.get(f.path) !== undefined && f.reader.offset === sizes.get(f.path))
    )
      break;
    if (Date.now() - stoppedAt > 120_000)
      throw new Error("not every line was read 120 s after the writers stopped");
    await sleep(20);
  }
  const lagMs = Date.now() - stoppedAt;
  shipper.child.kill("SIGTERM");
  await shipper.exited;
  return { lagMs, lines: writers.reduce((n, w) => n + w.lids.length, 0), rotations, backlogFiles };
}

const dir = await mkdtemp(join(tmpdir(), "logarchive-bench-rotation-"));
const buckets = Array.from({ length: runs }, (_, i) => `run-${i}`);
const s3 = await startLocalS3({ host: "127.0.0.1", port: 0, dataDir: join(dir, "s3"), buckets });
const results: RunResult[] = [];
try {
  for (const bucket of buckets) {
    const load = loadavg()[0]!.toFixed(2);
    const r = await run(dir, s3.endpoint, bucket);
    results.push(r);
    process.stdout.write(
      `${bucket}: every line read ${(r.lagMs / 1000).toFixed(2)} s after the writers stopped (${(r.lagMs / FINISH_GRACE_MS).toFixed(2)} × the grace); ${r.lines} lines, ${r.rotations} rotations, ${r.backlogFiles} rotated files still open when the writers stopped; load ${load}\n`,
    );
  }
} finally {
  await s3.stop();
  await rm(dir, { recursive: true, force: true });
}
const worst = Math.max(...results.map((r) => r.lagMs));
process.stdout.write(
  `machine: ${availableParallelism()} CPUs, Node ${process.version}; workload: ${CONTAINERS} containers, ${rate} lines/s, rotation every ${rotateBytes / 1024} KiB, a 5 s restart\n` +
    `worst: ${(worst / 1000).toFixed(2)} s; target ≤ ${(2 * FINISH_GRACE_MS) / 1000} s (2 × the finish grace): ${worst <= 2 * FINISH_GRACE_MS ? "met" : "MISSED"}\n`,
);
if (worst > 2 * FINISH_GRACE_MS) process.exitCode = 1;
