// The whole shipper, end to end: `logarchive ship --once` as a child process reads a ≥ 1 GB
// backlog of CRI container logs from disk, gzips it into batches and uploads them to a local
// S3 (s3rver, in this process). Reports raw MB per CPU-second of the shipper's whole process
// tree (bash's `time`, which counts the waited-for child with its zlib threads), wall MB/s,
// peak RSS (VmHWM of the node process), stored/raw bytes, objects and lines, and the floor on
// this machine: single-core `gzip -6` and `gzip -1` over the same bytes. Every line is read
// back from the bucket and counted: the run fails if one is missing or doubled.
//
// Two ways to run the shipper:
// - `deployed`: as the image runs it: the compiled JavaScript (`npm run build`, dist/) with
//   the node flags of the Dockerfile's ENTRYPOINT and the environment its final stage sets
//   (read from shipper/deploy/Dockerfile, so the two cannot drift apart);
// - `source`: the .ts sources through Node's type stripping, with Node's defaults, as in
//   development.
// Each runs --runs times, and each run is paired with a `gzip -6` run just before it: this
// machine is shared, so a ratio is taken between two runs made under the same load, and the
// load average is printed with every run.
//
// The workload (createWorkload: 8 namespaces × 4 pods, real corpus lines, P/F splits,
// malformed lines) is cached in $TMPDIR/logarchive-bench-shipper-<MB>/ and reused by later
// runs of the same size.
//
//   node_modules/.bin/node benchmarks/shipper.bench.ts [--mb 1024] [--runs 2]
//     [--only deployed,source] [--gzip-level 6] [--cpu-prof DIR] [--no-build] [--no-verify]

import { spawn, spawnSync } from "node:child_process";
import {
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { startLocalS3 } from "../local/s3.ts";
import { deliveryProblems, readArchive, s3Client } from "../shipper/test_support/archive.ts";
import { createWorkload } from "../shipper/test_support/workload.ts";

const { values } = parseArgs({
  options: {
    mb: { type: "string", default: "1024" },
    runs: { type: "string", default: "2" },
    only: { type: "string", default: "deployed,source" },
    "gzip-level": { type: "string" },
    "cpu-prof": { type: "string" },
    "no-build": { type: "boolean", default: false },
    "no-verify": { type: "boolean", default: false },
  },
});
const TARGET_BYTES = Number(values.mb) * 2 ** 20;
const NAMESPACES = [
  "payments",
  "checkout",
  "web",
  "search",
  "batch-jobs",
  "kube-system",
  "ml-training",
  "auth",
];
const PODS_PER_NAMESPACE = 4;
const LINES_PER_ROUND = 2000;
const CACHE_VERSION = 1;
const ROOT = new URL("..", import.meta.url).pathname;
const RUNS = Number(values.runs);

interface ShipperSetup {
  name: string;
  label: string;
  /** Node's flags before the script. */
  nodeArgs: string[];
  cli: string;
  /** Environment on top of this process's (NODE_OPTIONS is replaced, not added to). */
  env: Record<string, string>;
}

/**
 * How the shipper image runs the CLI: the final stage's ENTRYPOINT (node, its flags, the
 * script, relative to dist/) and ENV settings, read from the Dockerfile.
 */
function imageSetup(): Pick<ShipperSetup, "nodeArgs" | "cli" | "env"> {
  const dockerfile = readFileSync(join(ROOT, "shipper/deploy/Dockerfile"), "utf8");
  const final = dockerfile.slice(dockerfile.lastIndexOf("\nFROM "));
  const env: Record<string, string> = { NODE_OPTIONS: "" };
  for (const [, key, value] of final.matchAll(/^ENV\s+(\w+)=("[^"]*"|\S+)\s*$/gm)) {
    env[key!] = value!.replace(/^"|"$/g, "");
  }
  const entrypoint = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(final)?.[1] ?? "[]") as string[];
  if (entrypoint[0] !== "node")
    throw new Error(`the Dockerfile's ENTRYPOINT does not run node: ${entrypoint}`);
  return { nodeArgs: entrypoint.slice(1, -1), cli: join(ROOT, "dist", entrypoint.at(-1)!), env };
}

const SETUPS: ShipperSetup[] = [
  { name: "deployed", label: "compiled, as deployed", ...imageSetup() },
  {
    name: "source",
    label: ".ts source, Node defaults",
    nodeArgs: [],
    cli: join(ROOT, "cli/logarchive.ts"),
    env: { NODE_OPTIONS: "" },
  },
].filter((setup) => values.only.split(",").includes(setup.name));

const MB = (n: number) => n / 1e6;
const MiB = (n: number) => n / 2 ** 20;
const log = (s: string) => process.stderr.write(`${s}\n`);

// ---------------------------------------------------------------- workload (cached)

interface Manifest {
  version: number;
  targetBytes: number;
  bytes: number;
  /** Logical lines per writer id: its lids are `<id>:0` … `<id>:<n-1>`. */
  lines: { id: number; count: number }[];
  files: string[];
}

function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...listFiles(p));
    else out.push(p);
  }
  return out.sort();
}

function workload(): { dir: string; pods: string; concat: string; manifest: Manifest } {
  const dir = join(tmpdir(), `logarchive-bench-shipper-${values.mb}mb`);
  const pods = join(dir, "pods");
  const concat = join(dir, "all.log");
  const manifestPath = join(dir, "manifest.json");
  if (existsSync(manifestPath)) {
    const m = JSON.parse(readFileSync(manifestPath, "utf8")) as Manifest;
    const ok =
      m.version === CACHE_VERSION &&
      m.targetBytes === TARGET_BYTES &&
      m.files.reduce((n, f) => n + statSync(f, { throwIfNoEntry: false })!.size, 0) === m.bytes &&
      statSync(concat, { throwIfNoEntry: false })?.size === m.bytes;
    if (ok) {
      log(`workload: reused the cached ${MB(m.bytes).toFixed(0)} MB in ${dir}`);
      return { dir, pods, concat, manifest: m };
    }
  }
  rmSync(dir, { recursive: true, force: true });
  const t0 = performance.now();
  const w = createWorkload({
    root: pods,
    namespaces: NAMESPACES,
    podsPerNamespace: PODS_PER_NAMESPACE,
    seed: 42,
    startMs: Date.UTC(2026, 10, 21, 11, 0, 0),
  });
  while (w.bytes() < TARGET_BYTES) for (const writer of w.writers) writer.writeLines(LINES_PER_ROUND);
  w.close();
  const files = listFiles(pods);
  // One concatenated copy, so gzip's own CPU can be timed without a `cat` in front of it.
  const out = openSync(concat, "w");
  for (const f of files) writeSync(out, readFileSync(f));
  closeSync(out);
  const manifest: Manifest = {
    version: CACHE_VERSION,
    targetBytes: TARGET_BYTES,
    bytes: w.bytes(),
    lines: w.writers.map((x) => ({ id: x.id, count: x.lids.length })),
    files,
  };
  writeFileSync(manifestPath, JSON.stringify(manifest));
  log(
    `workload: generated ${MB(manifest.bytes).toFixed(0)} MB in ${files.length} files under ${dir} ` +
      `in ${((performance.now() - t0) / 1000).toFixed(0)} s`,
  );
  return { dir, pods, concat, manifest };
}

// ---------------------------------------------------------------- timing a process tree

interface Timed {
  code: number | null;
  /** 1-minute load average when the run started and when it ended. */
  load: [number, number];
  wallS: number;
  userS: number;
  sysS: number;
  /** VmHWM of the process started (not bash), polled every 50 ms, in bytes; 0 if not polled. */
  peakRss: number;
  stderr: string;
}

/**
 * Runs `command` under bash's `time` keyword, which reports the user and system CPU of every
 * child bash waited for, so the whole child process (all its threads) is counted. The command
 * runs as a background job of the timed group so its pid is known and /proc/<pid>/status can
 * be polled for VmHWM.
 */
function timed(
  command: readonly string[],
  o: { env?: NodeJS.ProcessEnv; stdin?: string; stderrTo?: string },
) {
  const script =
    'TIMEFORMAT="BENCH_TIME %R %U %S"; ' +
    'time { "$@" <"$BENCH_STDIN" >/dev/null 2>"$BENCH_STDERR" & echo "BENCH_PID $!"; wait $!; }';
  const loadBefore = loadavg()[0]!;
  const child = spawn("bash", ["-c", script, "bash", ...command], {
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...(o.env ?? process.env),
      BENCH_STDIN: o.stdin ?? "/dev/null",
      BENCH_STDERR: o.stderrTo ?? "/dev/null",
    },
  });
  let out = "";
  let err = "";
  let pid = 0;
  let peak = 0;
  const sample = () => {
    if (pid === 0) return;
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      if (m) peak = Math.max(peak, Number(m[1]) * 1024);
    } catch {
      // Gone.
    }
  };
  child.stdout.on("data", (c: Buffer) => {
    out += c.toString();
    const m = /BENCH_PID (\d+)/.exec(out);
    if (m && pid === 0) {
      pid = Number(m[1]);
      sample();
    }
  });
  child.stderr.on("data", (c: Buffer) => {
    err += c.toString();
  });
  const poll = setInterval(sample, 50);
  return new Promise<Timed>((resolve) =>
    child.once("close", (code) => {
      clearInterval(poll);
      const m = /BENCH_TIME ([\d.]+) ([\d.]+) ([\d.]+)/.exec(err);
      if (!m) throw new Error(`bash time printed no figures: ${err.slice(-2000)}`);
      resolve({
        code,
        load: [loadBefore, loadavg()[0]!],
        wallS: Number(m[1]),
        userS: Number(m[2]),
        sysS: Number(m[3]),
        peakRss: peak,
        stderr: o.stderrTo && existsSync(o.stderrTo) ? readFileSync(o.stderrTo, "utf8") : "",
      });
    }),
  );
}

// ---------------------------------------------------------------- the runs

interface ShipperRun {
  label: string;
  timed: Timed;
  objects: number;
  storedBytes: number;
  medianObject: number;
  records: number | null;
  problems: string[];
}

async function shipperRun(
  setup: ShipperSetup,
  label: string,
  pods: string,
  expectedLids: () => string[],
): Promise<ShipperRun> {
  const dir = await mkdtemp(join(tmpdir(), "logarchive-bench-run-"));
  const bucket = "bench";
  const s3 = await startLocalS3({ host: "127.0.0.1", port: 0, dataDir: join(dir, "s3"), buckets: [bucket] });
  try {
    log(`${label}: shipping…`);
    const t = await timed(
      [
        process.execPath,
        ...setup.nodeArgs,
        ...(values["cpu-prof"] ? ["--cpu-prof", `--cpu-prof-dir=${values["cpu-prof"]}`] : []),
        setup.cli,
        "ship",
        "--once",
        "--listen",
        "",
        "--s3-endpoint",
        s3.endpoint,
        "--logs",
        `${pods}/*/*/*.log*`,
        "--state-dir",
        join(dir, "state"),
        "--bucket",
        bucket,
        "--node",
        "bench-node",
        ...(values["gzip-level"] ? ["--gzip-level", values["gzip-level"]] : []),
      ],
      {
        env: {
          ...process.env,
          ...setup.env,
          AWS_ACCESS_KEY_ID: "S3RVER",
          AWS_SECRET_ACCESS_KEY: "S3RVER",
          AWS_REGION: "us-east-1",
        },
        stderrTo: join(dir, "shipper.log"),
      },
    );
    const problems: string[] = [];
    if (t.code !== 0) problems.push(`shipper exited ${t.code}: ${t.stderr.slice(-2000)}`);
    if (/log_bytes_lost|lost_bytes/.test(t.stderr)) problems.push("the shipper logged lost bytes");

    // Object sizes from a listing.
    const sizes: number[] = [];
    const client = s3Client(s3.endpoint);
    try {
      let token: string | undefined;
      do {
        const page = await client.send(
          new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }),
        );
        for (const o of page.Contents ?? []) sizes.push(o.Size ?? 0);
        token = page.NextContinuationToken;
      } while (token !== undefined);
    } finally {
      client.destroy();
    }
    sizes.sort((a, b) => a - b);
    const median =
      sizes.length === 0
        ? 0
        : sizes.length % 2 === 1
          ? sizes[(sizes.length - 1) / 2]!
          : (sizes[sizes.length / 2 - 1]! + sizes[sizes.length / 2]!) / 2;

    let records: number | null = null;
    if (!values["no-verify"] && t.code === 0) {
      log(`${label}: reading the archive back…`);
      const v0 = performance.now();
      const archive = await readArchive(s3.endpoint, bucket);
      const lids = expectedLids();
      const p = deliveryProblems(lids, archive);
      records = archive.records;
      if (p.missing.length > 0)
        problems.push(`${p.missing.length} lines missing, e.g. ${p.missing.slice(0, 5)}`);
      if (p.duplicated.length > 0)
        problems.push(`${p.duplicated.length} lines doubled, e.g. ${p.duplicated.slice(0, 5)}`);
      if (p.unexpected.length > 0) problems.push(`${p.unexpected.length} unexpected lids`);
      if (archive.records !== lids.length)
        problems.push(`${archive.records} records for ${lids.length} logical lines`);
      if (archive.invalid.length > 0) problems.push(`${archive.invalid.length} invalid records`);
      if (archive.inconsistent.length > 0)
        problems.push(`inconsistent: ${archive.inconsistent.slice(0, 3).join("; ")}`);
      log(
        `${label}: read back ${archive.records} records in ${((performance.now() - v0) / 1000).toFixed(0)} s`,
      );
    }
    return {
      label,
      timed: t,
      objects: sizes.length,
      storedBytes: sizes.reduce((a, b) => a + b, 0),
      medianObject: median,
      records,
      problems,
    };
  } finally {
    await s3.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

async function gzipRun(level: number, concat: string): Promise<Timed> {
  log(`gzip -${level}: compressing…`);
  const t = await timed(["gzip", `-${level}`, "-c"], { stdin: concat });
  if (t.code !== 0) throw new Error(`gzip -${level} exited ${t.code}`);
  return t;
}

/**
 * `ship --once` over no log files: what starting the shipper costs (CPU, peak RSS) with all
 * its modules loaded and an S3 client made, before it reads a byte.
 */
async function startupRun(setup: ShipperSetup): Promise<Timed> {
  const dir = await mkdtemp(join(tmpdir(), "logarchive-bench-start-"));
  try {
    const t = await timed(
      [
        process.execPath,
        ...setup.nodeArgs,
        setup.cli,
        "ship",
        "--once",
        "--listen",
        "",
        "--logs",
        join(dir, "none", "*.log"),
        "--state-dir",
        join(dir, "state"),
        "--bucket",
        "bench",
        "--s3-endpoint",
        "http://127.0.0.1:9",
        "--node",
        "bench-node",
      ],
      { env: { ...process.env, ...setup.env, AWS_ACCESS_KEY_ID: "x", AWS_SECRET_ACCESS_KEY: "x" } },
    );
    if (t.code !== 0) throw new Error(`${setup.name}: ship --once over no files exited ${t.code}`);
    return t;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- main

const started = new Date();
if (SETUPS.some((s) => s.name === "deployed") && !values["no-build"]) {
  log("npm run build…");
  const built = spawnSync("npm", ["run", "--silent", "build"], { cwd: ROOT, encoding: "utf8" });
  if (built.status !== 0) throw new Error(`npm run build failed: ${built.stderr}${built.stdout}`);
}
const wl = workload();
const raw = wl.manifest.bytes;
const expectedLids = () =>
  wl.manifest.lines.flatMap(({ id, count }) => Array.from({ length: count }, (_, n) => `${id}:${n}`));
// Warm the page cache so the first timed run does not pay for the disk.
for (const f of [wl.concat, ...wl.manifest.files]) readFileSync(f);

const startups = [];
for (const setup of SETUPS)
  startups.push({ setup, runs: [await startupRun(setup), await startupRun(setup)] });

/** Each shipper run with the gzip -6 run made just before it. */
const pairs: { setup: ShipperSetup; gzip6: Timed; run: ShipperRun }[] = [];
for (let i = 1; i <= RUNS; i++) {
  for (const setup of SETUPS) {
    const gzip6 = await gzipRun(6, wl.concat);
    const run = await shipperRun(setup, `${setup.label} #${i}`, wl.pods, expectedLids);
    pairs.push({ setup, gzip6, run });
  }
}
const gzip1 = await gzipRun(1, wl.concat);

const cpuS = (t: Timed) => t.userS + t.sysS;
const perCpu = (t: Timed) => MB(raw) / cpuS(t);
const load = (t: Timed) => `${t.load[0].toFixed(1)}–${t.load[1].toFixed(1)}`;
const range = (xs: number[], digits: number) => {
  const lo = Math.min(...xs).toFixed(digits);
  const hi = Math.max(...xs).toFixed(digits);
  return lo === hi ? lo : `${lo}–${hi}`;
};

const cpuModel =
  /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? cpus()[0]?.model ?? "?";
const nproc = spawnSync("nproc").stdout.toString().trim();
const lines: string[] = [];
lines.push(
  `Machine: ${nproc} CPUs (nproc), ${cpuModel}, ${MiB(totalmem()).toFixed(0)} MiB RAM, ` +
    `Node ${process.version}, ${started.toISOString()}`,
);
lines.push(
  `Workload: ${MB(raw).toFixed(0)} MB raw (${MiB(raw).toFixed(0)} MiB) in ${wl.manifest.files.length} CRI files, ` +
    `${NAMESPACES.length} namespaces × ${PODS_PER_NAMESPACE} pods, ` +
    `${wl.manifest.lines.reduce((n, l) => n + l.count, 0)} logical lines; batch_max_bytes 8MiB, batch_max_age 60s, ` +
    `gzip level ${values["gzip-level"] ?? "6 (default)"}`,
);
for (const setup of SETUPS) {
  lines.push(
    `${setup.name}: node ${[...setup.nodeArgs, setup.cli.slice(ROOT.length)].join(" ")}, ` +
      (Object.entries(setup.env)
        .filter(([, v]) => v !== "")
        .map(([k, v]) => `${k}=${v}`)
        .join(" ") || "Node's defaults"),
  );
}
lines.push("");
lines.push(
  "| run | load (1 min) | CPU s (user+sys) | wall s | raw MB per CPU-s | gzip -6 MB per CPU-s | × gzip -6 | wall MB/s | peak RSS MiB | stored / raw | objects | median object | lines shipped |",
);
lines.push("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
for (const { gzip6, run: r } of pairs) {
  const t = r.timed;
  lines.push(
    `| ${r.label} | ${load(t)} | ${cpuS(t).toFixed(1)} (${t.userS.toFixed(1)}+${t.sysS.toFixed(1)}) | ${t.wallS.toFixed(1)} | ` +
      `${perCpu(t).toFixed(1)} | ${perCpu(gzip6).toFixed(1)} | ${(perCpu(t) / perCpu(gzip6)).toFixed(2)}× | ` +
      `${(MB(raw) / t.wallS).toFixed(1)} | ${MiB(t.peakRss).toFixed(0)} | ${(r.storedBytes / raw).toFixed(3)} | ${r.objects} | ` +
      `${MiB(r.medianObject).toFixed(2)} MiB | ${r.records ?? "not verified"} |`,
  );
}
const gzip6s = pairs.map((p) => p.gzip6);
lines.push(
  `| gzip -6 -c (1 core), ${gzip6s.length} runs | ${range(
    gzip6s.map((t) => t.load[0]),
    1,
  )} | ${range(gzip6s.map(cpuS), 1)} | ${range(
    gzip6s.map((t) => t.wallS),
    1,
  )} | ${range(gzip6s.map(perCpu), 1)} | | 1.00× | | ${range(
    gzip6s.map((t) => MiB(t.peakRss)),
    0,
  )} | | | | |`,
);
lines.push(
  `| gzip -1 -c (1 core) | ${load(gzip1)} | ${cpuS(gzip1).toFixed(1)} | ${gzip1.wallS.toFixed(1)} | ${perCpu(gzip1).toFixed(1)} | | ` +
    `${(perCpu(gzip1) / (gzip6s.reduce((a, t) => a + perCpu(t), 0) / gzip6s.length)).toFixed(2)}× (of the mean gzip -6) | | ` +
    `${MiB(gzip1.peakRss).toFixed(0)} | | | | |`,
);
lines.push("");
lines.push("Summary (ranges over the runs; each ratio against the gzip -6 run just before it):");
lines.push("");
lines.push(
  "| shipper | runs | × gzip -6 | raw MB per CPU-s | peak RSS MiB | stored / raw | startup CPU s | startup peak RSS MiB |",
);
lines.push("|---|--:|--:|--:|--:|--:|--:|--:|");
for (const { setup, runs: starts } of startups) {
  const mine = pairs.filter((p) => p.setup === setup);
  lines.push(
    `| ${setup.label} | ${mine.length} | ${range(
      mine.map((p) => perCpu(p.run.timed) / perCpu(p.gzip6)),
      2,
    )}× | ${range(
      mine.map((p) => perCpu(p.run.timed)),
      1,
    )} | ${range(
      mine.map((p) => MiB(p.run.timed.peakRss)),
      0,
    )} | ${range(
      mine.map((p) => p.run.storedBytes / raw),
      3,
    )} | ${range(starts.map(cpuS), 2)} | ${range(
      starts.map((t) => MiB(t.peakRss)),
      0,
    )} |`,
  );
}
const problems = pairs.flatMap(({ run: r }) => r.problems.map((p) => `${r.label}: ${p}`));
lines.push("");
lines.push(
  problems.length === 0
    ? values["no-verify"]
      ? "Archive not read back (--no-verify)."
      : "Exactly once: every logical line was read back from the bucket once, in every run."
    : `FAILED:\n${problems.map((p) => `- ${p}`).join("\n")}`,
);
process.stdout.write(`${lines.join("\n")}\n`);
process.exit(problems.length === 0 ? 0 : 1);
