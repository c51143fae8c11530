// The whole shipper, end to end: `logarchive ship --once` as a child process reads a ≥ 1 GB
// backlog of CRI container logs from disk, gzips it into batches and uploads them to a local
// S3 (s3rver, in this process). Reports raw MB per CPU-second of the shipper's whole process
// tree (bash's `time`, which counts the waited-for child with its zlib threads), wall MB/s,
// peak RSS (VmHWM of the node process), stored/raw bytes, objects and lines, and two floors
// on this machine, each timed the same way:
// - single-core `gzip -6` over the raw log bytes (and one `gzip -1` run);
// - the floor of today's record format: single-core `gzip -6` over the records the shipper
//   itself framed (the NDJSON inside its objects, read back from this run's archive: the
//   `logarchive parse` output plus batch_id and seq), in raw log bytes per CPU-second. The
//   shipper cannot do less than deflate its own records; its ratio to this floor is what its
//   own work (reading, decoding, encoding, batching, uploading) costs on top.
// Every line is read back from the bucket and counted: the run fails if one is missing or
// doubled.
//
// Two ways to run the shipper:
// - `deployed`: as the image runs it: the compiled JavaScript (`npm run build`, dist/) with
//   the node flags of the Dockerfile's ENTRYPOINT and the environment its final stage sets
//   (read from shipper/deploy/Dockerfile, so the two cannot drift apart);
// - `source`: the .ts sources through Node's type stripping, with Node's defaults, as in
//   development.
// Each runs --runs times, and each run is paired with a `gzip -6` run over the raw bytes just
// before it and a `gzip -6` run over the records just after it: this machine is shared, so a
// ratio is taken between runs made under the same load, and the load average is printed with
// every run. After the first deployed run, the shipper runs live for --idle-seconds over the
// same, fully shipped files (its steady cost when nothing is written), and once more is
// started over no files (its startup cost).
//
// The workload (--workload):
// - `realistic` (default): createRealisticWorkload, a node's logs generated from a seed (JSON
//   service logs, ingress access lines, klog, Java and Python traces, batch and training
//   output; every id, latency and address varies, gzip -6 of the files ≈ 0.19): 8 namespaces,
//   32 containers;
// - `corpora`: createWorkload, real corpus lines repeated (8 namespaces × 4 pods, long P/F
//   lines 81% of the bytes); it compresses to 0.09 and flatters CPU per byte, kept to compare
//   with the figures measured on it before.
// It is cached in $TMPDIR/logarchive-bench-shipper-<workload>-<MB>mb/ and reused by later runs.
//
//   node_modules/.bin/node benchmarks/shipper.bench.ts [--mb 1024] [--runs 2]
//     [--workload realistic|corpora] [--only deployed,source] [--gzip-level 6]
//     [--policy FILE] [--idle-seconds 30] [--no-parse-floor] [--cpu-prof DIR] [--no-build]
//     [--no-verify]

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
import { appendFile, mkdtemp, rm } from "node:fs/promises";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { GetObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { isStreamKey } from "../lib/keys/layout.ts";
import { startLocalS3 } from "../local/s3.ts";
import { deliveryProblems, readArchive, s3Client } from "../shipper/test_support/archive.ts";
import { createRealisticWorkload } from "../shipper/test_support/realistic_workload.ts";
import { createWorkload } from "../shipper/test_support/workload.ts";
import { benchArgs, oneOf, positiveNumber, wholeNumber } from "./args.ts";

const WORKLOADS = ["realistic", "corpora"];
const { values, TARGET_BYTES, IDLE_SECONDS, RUNS } = benchArgs(
  {
    mb: { type: "string", default: "1024" },
    runs: { type: "string", default: "2" },
    workload: { type: "string", default: "realistic" },
    only: { type: "string", default: "deployed,source" },
    "gzip-level": { type: "string" },
    policy: { type: "string" },
    "idle-seconds": { type: "string", default: "30" },
    "no-parse-floor": { type: "boolean", default: false },
    "cpu-prof": { type: "string" },
    "no-build": { type: "boolean", default: false },
    "no-verify": { type: "boolean", default: false },
  },
  (values) => {
    oneOf("workload", values.workload, WORKLOADS);
    return {
      values,
      TARGET_BYTES: positiveNumber("mb", values.mb) * 2 ** 20,
      IDLE_SECONDS: positiveNumber("idle-seconds", values["idle-seconds"]),
      RUNS: wholeNumber("runs", values.runs, 1),
    };
  },
);
/** The corpora workload's namespaces (the realistic one has its own, DEFAULT_NODE). */
const CORPORA_NAMESPACES = [
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
const REALISTIC_BYTES_PER_ROUND = 16 * 2 ** 20;
const CACHE_VERSION = 2;
const ROOT = new URL("..", import.meta.url).pathname;

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
  workload: string;
  targetBytes: number;
  /** Namespaces and containers (files), for the report. */
  namespaces: number;
  /** Size of `gzip -6` of the concatenated files. */
  gzip6Bytes: number;
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
  const dir = join(tmpdir(), `logarchive-bench-shipper-${values.workload}-${values.mb}mb`);
  const pods = join(dir, "pods");
  const concat = join(dir, "all.log");
  const manifestPath = join(dir, "manifest.json");
  if (existsSync(manifestPath)) {
    const m = JSON.parse(readFileSync(manifestPath, "utf8")) as Manifest;
    const ok =
      m.version === CACHE_VERSION &&
      m.workload === values.workload &&
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
  const startMs = Date.UTC(2026, 10, 21, 11, 0, 0);
  let written: { bytes: number; namespaces: number; lines: { id: number; count: number }[] };
  if (values.workload === "realistic") {
    const w = createRealisticWorkload({ root: pods, seed: 42, startMs });
    while (w.bytes() < TARGET_BYTES) w.writeBytes(REALISTIC_BYTES_PER_ROUND);
    w.close();
    written = {
      bytes: w.bytes(),
      namespaces: w.namespaces.length,
      lines: w.writers.map((x) => ({ id: x.id, count: x.count })),
    };
  } else {
    const w = createWorkload({
      root: pods,
      namespaces: CORPORA_NAMESPACES,
      podsPerNamespace: PODS_PER_NAMESPACE,
      seed: 42,
      startMs,
    });
    while (w.bytes() < TARGET_BYTES) for (const writer of w.writers) writer.writeLines(LINES_PER_ROUND);
    w.close();
    written = {
      bytes: w.bytes(),
      namespaces: CORPORA_NAMESPACES.length,
      lines: w.writers.map((x) => ({ id: x.id, count: x.lids.length })),
    };
  }
  const files = listFiles(pods);
  // One concatenated copy, so gzip's own CPU can be timed without a `cat` in front of it.
  const out = openSync(concat, "w");
  for (const f of files) writeSync(out, readFileSync(f));
  closeSync(out);
  const gzip6Bytes = Number(
    spawnSync("bash", ["-c", 'gzip -6 -c < "$1" | wc -c', "bash", concat], {
      encoding: "utf8",
    }).stdout.trim(),
  );
  const manifest: Manifest = {
    version: CACHE_VERSION,
    workload: values.workload,
    targetBytes: TARGET_BYTES,
    namespaces: written.namespaces,
    gzip6Bytes,
    bytes: written.bytes,
    lines: written.lines,
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
  /**
   * CPU seconds (user+sys) by thread name (MainThread, libuv-worker: zlib and fs, V8Worker:
   * GC and compilation, …), from /proc/<pid>/task/<tid>/stat polled every 50 ms: a thread's
   * last 50 ms before it exits can be missing.
   */
  threads: Map<string, number>;
  stderr: string;
}

/** Clock ticks per second of /proc's utime and stime (USER_HZ, 100 on Linux). */
const USER_HZ = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

/**
 * Runs `command` under bash's `time` keyword, which reports the user and system CPU of every
 * child bash waited for, so the whole child process (all its threads) is counted. The command
 * runs as a background job of the timed group so its pid is known and /proc/<pid>/status can
 * be polled for VmHWM.
 */
function timed(
  command: readonly string[],
  o: {
    env?: NodeJS.ProcessEnv;
    stdin?: string;
    stdoutTo?: string;
    stderrTo?: string;
    /** Send SIGTERM this long after the start (a live shipper runs until told to stop). */
    stopAfterMs?: number;
  },
) {
  const script =
    'TIMEFORMAT="BENCH_TIME %R %U %S"; ' +
    'time { "$@" <"$BENCH_STDIN" >"$BENCH_STDOUT" 2>"$BENCH_STDERR" & echo "BENCH_PID $!"; wait $!; }';
  const loadBefore = loadavg()[0]!;
  const child = spawn("bash", ["-c", script, "bash", ...command], {
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...(o.env ?? process.env),
      BENCH_STDIN: o.stdin ?? "/dev/null",
      BENCH_STDOUT: o.stdoutTo ?? "/dev/null",
      BENCH_STDERR: o.stderrTo ?? "/dev/null",
    },
  });
  let out = "";
  let err = "";
  let pid = 0;
  let peak = 0;
  let stopTimer: NodeJS.Timeout | undefined;
  /** tid → [thread name, CPU ticks] at the last poll. */
  const threadTicks = new Map<string, [string, number]>();
  const sample = () => {
    if (pid === 0) return;
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      if (m) peak = Math.max(peak, Number(m[1]) * 1024);
      for (const tid of readdirSync(`/proc/${pid}/task`)) {
        const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
        const close = stat.lastIndexOf(")");
        const name = stat.slice(stat.indexOf("(") + 1, close);
        // Fields after the name: state is field 3, utime 14 and stime 15 (man 5 proc).
        const fields = stat.slice(close + 2).split(" ");
        threadTicks.set(tid, [name, Number(fields[11]) + Number(fields[12])]);
      }
    } catch {
      // Gone, or a thread ended between the listing and the read.
    }
  };
  child.stdout.on("data", (c: Buffer) => {
    out += c.toString();
    const m = /BENCH_PID (\d+)/.exec(out);
    if (m && pid === 0) {
      pid = Number(m[1]);
      sample();
      if (o.stopAfterMs !== undefined) {
        const target = pid;
        stopTimer = setTimeout(() => process.kill(target, "SIGTERM"), o.stopAfterMs);
      }
    }
  });
  child.stderr.on("data", (c: Buffer) => {
    err += c.toString();
  });
  const poll = setInterval(sample, 50);
  return new Promise<Timed>((resolve) =>
    child.once("close", (code) => {
      clearInterval(poll);
      clearTimeout(stopTimer);
      const m = /BENCH_TIME ([\d.]+) ([\d.]+) ([\d.]+)/.exec(err);
      if (!m) throw new Error(`bash time printed no figures: ${err.slice(-2000)}`);
      resolve({
        code,
        load: [loadBefore, loadavg()[0]!],
        wallS: Number(m[1]),
        userS: Number(m[2]),
        sysS: Number(m[3]),
        peakRss: peak,
        threads: [...threadTicks.values()].reduce(
          (m, [name, ticks]) => m.set(name, (m.get(name) ?? 0) + ticks / USER_HZ),
          new Map<string, number>(),
        ),
        stderr: o.stderrTo && existsSync(o.stderrTo) ? readFileSync(o.stderrTo, "utf8") : "",
      });
    }),
  );
}

// ---------------------------------------------------------------- the runs

interface ShipperRun {
  label: string;
  timed: Timed;
  /** The live shipper over the same files, all shipped, for --idle-seconds; when asked for. */
  idle: Timed | null;
  /** Objects kept (the per-namespace tiers: archive, analytics), their bytes and median size. */
  objects: number;
  storedBytes: number;
  medianObject: number;
  /** Stream delivery's short-lived per-table objects (none without a stream policy). */
  streamObjects: number;
  streamBytes: number;
  records: number | null;
  problems: string[];
}

async function shipperRun(
  setup: ShipperSetup,
  label: string,
  pods: string,
  expectedLids: () => string[],
  o: { saveRecordsTo?: string; idleSeconds?: number } = {},
): Promise<ShipperRun> {
  const dir = await mkdtemp(join(tmpdir(), "logarchive-bench-run-"));
  const bucket = "bench";
  const s3 = await startLocalS3({ host: "127.0.0.1", port: 0, dataDir: join(dir, "s3"), buckets: [bucket] });
  const ship = (mode: string[], profile: boolean, stderrTo: string, stopAfterMs?: number) =>
    timed(
      [
        process.execPath,
        ...setup.nodeArgs,
        ...(profile && values["cpu-prof"] ? ["--cpu-prof", `--cpu-prof-dir=${values["cpu-prof"]}`] : []),
        setup.cli,
        "ship",
        ...mode,
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
        ...(values.policy ? ["--policy", values.policy] : []),
      ],
      {
        env: {
          ...process.env,
          ...setup.env,
          AWS_ACCESS_KEY_ID: "S3RVER",
          AWS_SECRET_ACCESS_KEY: "S3RVER",
          AWS_REGION: "us-east-1",
        },
        stderrTo,
        ...(stopAfterMs !== undefined ? { stopAfterMs } : {}),
      },
    );
  try {
    log(`${label}: shipping…`);
    const t = await ship(["--once"], true, join(dir, "shipper.log"));
    const problems: string[] = [];
    if (t.code !== 0) problems.push(`shipper exited ${t.code}: ${t.stderr.slice(-2000)}`);
    if (/log_bytes_lost|lost_bytes/.test(t.stderr)) problems.push("the shipper logged lost bytes");

    // Object sizes from a listing.
    const sizes: number[] = [];
    const streamSizes: number[] = [];
    const client = s3Client(s3.endpoint);
    try {
      let token: string | undefined;
      do {
        const page = await client.send(
          new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }),
        );
        for (const o of page.Contents ?? []) {
          if (isStreamKey(o.Key!)) streamSizes.push(o.Size ?? 0);
          else sizes.push(o.Size ?? 0);
        }
        token = page.NextContinuationToken;
      } while (token !== undefined);
    } finally {
      client.destroy();
    }
    sizes.sort((a, b) => a - b);
    if (o.saveRecordsTo !== undefined && t.code === 0) {
      log(`${label}: saving the archive's records for the floor run…`);
      await saveRecords(s3.endpoint, bucket, o.saveRecordsTo);
    }
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
    let idle: Timed | null = null;
    if (o.idleSeconds !== undefined && o.idleSeconds > 0 && t.code === 0) {
      log(`${label}: running live for ${o.idleSeconds} s over the shipped files…`);
      idle = await ship([], false, join(dir, "idle.log"), o.idleSeconds * 1000);
      if (idle.code !== 0)
        problems.push(`the live shipper exited ${idle.code} on SIGTERM: ${idle.stderr.slice(-2000)}`);
    }
    return {
      label,
      timed: t,
      idle,
      objects: sizes.length,
      storedBytes: sizes.reduce((a, b) => a + b, 0),
      medianObject: median,
      streamObjects: streamSizes.length,
      streamBytes: streamSizes.reduce((a, b) => a + b, 0),
      records,
      problems,
    };
  } finally {
    await s3.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The records inside the bucket's objects, gunzipped, one object after another in key order:
 * the NDJSON the shipper deflated, for the floor's gzip run.
 */
async function saveRecords(endpoint: string, bucket: string, path: string): Promise<void> {
  const client = s3Client(endpoint);
  try {
    rmSync(path, { force: true });
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
      for (const o of page.Contents ?? []) keys.push(o.Key!);
      token = page.NextContinuationToken;
    } while (token !== undefined);
    for (const key of keys.sort()) {
      const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      await appendFile(path, gunzipSync(await got.Body!.transformToByteArray()));
    }
  } finally {
    client.destroy();
  }
}

/** Node's zlib over `path` at `level` (benchmarks/deflate_floor.ts), timed like gzip. */
async function deflateRun(level: number, path: string): Promise<Timed> {
  log(`Node zlib -${level} (records): compressing…`);
  const t = await timed([process.execPath, join(ROOT, "benchmarks/deflate_floor.ts"), path, String(level)], {
    env: { ...process.env, NODE_OPTIONS: "" },
  });
  if (t.code !== 0) throw new Error(`deflate_floor.ts exited ${t.code}`);
  return t;
}

async function gzipRun(level: number, concat: string): Promise<Timed> {
  log(`gzip -${level} ${concat.endsWith(".ndjson") ? "(records)" : "(raw)"}: compressing…`);
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
const commit =
  spawnSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).stdout.trim() ||
  "unknown (not a git work tree)";
/** Uncommitted changes to the code the build compiles: the figures are then not the commit's. */
const dirty = spawnSync("git", ["status", "--porcelain", "--", "cli", "lib", "shipper"], {
  cwd: ROOT,
  encoding: "utf8",
})
  .stdout.split("\n")
  .filter((l) => l !== "" && !l.includes("test_support/") && !l.endsWith(".test.ts"))
  .map((l) => l.slice(3));
const wl = workload();
const raw = wl.manifest.bytes;
const expectedLids = () =>
  wl.manifest.lines.flatMap(({ id, count }) => Array.from({ length: count }, (_, n) => `${id}:${n}`));
// Warm the page cache so the first timed run does not pay for the disk.
for (const f of [wl.concat, ...wl.manifest.files]) readFileSync(f);

const startups = [];
for (const setup of SETUPS)
  startups.push({ setup, runs: [await startupRun(setup), await startupRun(setup)] });

/**
 * The records of this invocation's first run, gunzipped: the floor's input. Written by the
 * first run and read by every floor run after it (the records differ between runs only in
 * batch ids, not in size).
 */
const recordsPath = join(wl.dir, "records.ndjson");
rmSync(recordsPath, { force: true });

interface Pair {
  setup: ShipperSetup;
  /** gzip -6 over the raw logs, just before the shipper run. */
  gzip6: Timed;
  run: ShipperRun;
  /** gzip -6 over the shipper's records, just after it: the format's floor. */
  floor: Timed | null;
  /** Node's zlib at level 6 over the same records, just after that: the floor for Node's deflate. */
  zlibFloor: Timed | null;
}
const pairs: Pair[] = [];
for (let i = 1; i <= RUNS; i++) {
  for (const setup of SETUPS) {
    const first = pairs.length === 0;
    const gzip6 = await gzipRun(6, wl.concat);
    const run = await shipperRun(setup, `${setup.label} #${i}`, wl.pods, expectedLids, {
      ...(first ? { saveRecordsTo: recordsPath, idleSeconds: IDLE_SECONDS } : {}),
    });
    const floor = existsSync(recordsPath) ? await gzipRun(6, recordsPath) : null;
    const zlibFloor = existsSync(recordsPath) ? await deflateRun(6, recordsPath) : null;
    pairs.push({ setup, gzip6, run, floor, zlibFloor });
  }
}
const gzip1 = await gzipRun(1, wl.concat);

// `logarchive parse` over the same files (the records without batch_id and seq, as issue 9
// measured its floor), and gzip -6 over its output.
let parsed: { parse: Timed; gzip: Timed; bytes: number } | null = null;
if (!values["no-parse-floor"]) {
  const setup = SETUPS[0]!;
  const parsePath = join(wl.dir, "parse.ndjson");
  log("logarchive parse: encoding…");
  const parse = await timed(
    [process.execPath, ...setup.nodeArgs, setup.cli, "parse", "--node", "bench-node", ...wl.manifest.files],
    { env: { ...process.env, ...setup.env }, stdoutTo: parsePath, stderrTo: join(wl.dir, "parse.err") },
  );
  if (parse.code !== 0)
    throw new Error(
      `logarchive parse exited ${parse.code}: ${readFileSync(join(wl.dir, "parse.err"), "utf8").slice(-2000)}`,
    );
  parsed = { parse, gzip: await gzipRun(6, parsePath), bytes: statSync(parsePath).size };
  rmSync(parsePath, { force: true });
}
const recordBytes = existsSync(recordsPath) ? statSync(recordsPath).size : 0;
rmSync(recordsPath, { force: true });

const cpuS = (t: Timed) => t.userS + t.sysS;
const perCpu = (t: Timed) => MB(raw) / cpuS(t);
const load = (t: Timed) => `${t.load[0].toFixed(1)}–${t.load[1].toFixed(1)}`;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const range = (xs: number[], digits: number) => {
  if (xs.length === 0) return "–";
  const lo = Math.min(...xs).toFixed(digits);
  const hi = Math.max(...xs).toFixed(digits);
  return lo === hi ? lo : `${lo}–${hi}`;
};
/** The shipper's speed over the floor's, from the same raw bytes: floor CPU over shipper CPU. */
const overFloor = (p: Pair) => (p.floor === null ? Number.NaN : cpuS(p.floor) / cpuS(p.run.timed));
/** The same against Node's own zlib over the records. */
const overZlib = (p: Pair) => (p.zlibFloor === null ? Number.NaN : cpuS(p.zlibFloor) / cpuS(p.run.timed));

const cpuModel =
  /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? cpus()[0]?.model ?? "?";
const nproc = spawnSync("nproc").stdout.toString().trim();
const lines: string[] = [];
lines.push(
  `Machine: ${nproc} CPUs (nproc), ${cpuModel}, ${MiB(totalmem()).toFixed(0)} MiB RAM, ` +
    `Node ${process.version}, ${started.toISOString()} to ${new Date().toISOString()}, ` +
    `commit ${commit}${dirty.length > 0 ? ` plus uncommitted changes to ${dirty.join(", ")}` : ""}`,
);
lines.push(
  `Workload: ${values.workload}, ${MB(raw).toFixed(0)} MB raw (${MiB(raw).toFixed(0)} MiB) in ${wl.manifest.files.length} CRI files, ` +
    `${wl.manifest.namespaces} namespaces, ${wl.manifest.lines.reduce((n, l) => n + l.count, 0)} logical lines; ` +
    `gzip -6 of the raw bytes ${(wl.manifest.gzip6Bytes / raw).toFixed(3)} of them; records ${(recordBytes / raw).toFixed(2)}× the raw bytes; ` +
    `batch_max_bytes 8MiB, batch_max_age 60s, gzip level ${values["gzip-level"] ?? "6 (default)"}` +
    (values.policy ? `, policy ${values.policy}` : ", no policy (archive only)"),
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
  "Each run: gzip -6 over the raw logs just before it, the shipper, then over the shipper's records gzip -6 (the floor) and Node's zlib at level 6 (the zlib floor). " +
    "× floor = the floor's CPU over the shipper's, both for the same raw bytes.",
);
lines.push("");
lines.push(
  "| run | load (1 min) | CPU s (user+sys) | wall s | raw MB per CPU-s | × gzip -6 | floor CPU s | floor raw MB per CPU-s | × floor | zlib floor CPU s | × zlib floor | peak RSS MiB | stored / raw | objects | median object | lines shipped |",
);
lines.push("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
for (const p of pairs) {
  const { gzip6, run: r, floor, zlibFloor } = p;
  const t = r.timed;
  lines.push(
    `| ${r.label} | ${load(t)} | ${cpuS(t).toFixed(1)} (${t.userS.toFixed(1)}+${t.sysS.toFixed(1)}) | ${t.wallS.toFixed(1)} | ` +
      `${perCpu(t).toFixed(1)} | ${(perCpu(t) / perCpu(gzip6)).toFixed(2)}× | ` +
      `${floor ? cpuS(floor).toFixed(1) : "–"} | ${floor ? perCpu(floor).toFixed(1) : "–"} | ${overFloor(p).toFixed(2)}× | ` +
      `${zlibFloor ? cpuS(zlibFloor).toFixed(1) : "–"} | ${overZlib(p).toFixed(2)}× | ` +
      `${MiB(t.peakRss).toFixed(0)} | ${(r.storedBytes / raw).toFixed(3)}${r.streamObjects > 0 ? ` (+${(r.streamBytes / raw).toFixed(3)} in ${r.streamObjects} stream objects)` : ""} | ${r.objects} | ` +
      `${MiB(r.medianObject).toFixed(2)} MiB | ${r.records ?? "not verified"} |`,
  );
}
const gzip6s = pairs.map((p) => p.gzip6);
const floors = pairs.flatMap((p) => (p.floor ? [p.floor] : []));
lines.push(
  `| gzip -6 -c over the raw logs (1 core), ${gzip6s.length} runs | ${range(
    gzip6s.map((t) => t.load[0]),
    1,
  )} | ${range(gzip6s.map(cpuS), 1)} | ${range(
    gzip6s.map((t) => t.wallS),
    1,
  )} | ${range(gzip6s.map(perCpu), 1)} | 1.00× | | | | | | ${range(
    gzip6s.map((t) => MiB(t.peakRss)),
    0,
  )} | | | | |`,
);
lines.push(
  `| gzip -6 -c over the records, the floor (1 core), ${floors.length} runs | ${range(
    floors.map((t) => t.load[0]),
    1,
  )} | ${range(floors.map(cpuS), 1)} | ${range(
    floors.map((t) => t.wallS),
    1,
  )} | | ${range(
    pairs.filter((p) => p.floor).map((p) => perCpu(p.floor!) / perCpu(p.gzip6)),
    2,
  )}× | | ${range(floors.map(perCpu), 1)} | 1.00× | | | | | | | |`,
);
const zlibFloors = pairs.flatMap((p) => (p.zlibFloor ? [p.zlibFloor] : []));
lines.push(
  `| Node's zlib -6 over the records, the zlib floor (1 core), ${zlibFloors.length} runs | ${range(
    zlibFloors.map((t) => t.load[0]),
    1,
  )} | ${range(zlibFloors.map(cpuS), 1)} | ${range(
    zlibFloors.map((t) => t.wallS),
    1,
  )} | ${range(zlibFloors.map(perCpu), 1)} | ${range(
    pairs.filter((p) => p.zlibFloor).map((p) => perCpu(p.zlibFloor!) / perCpu(p.gzip6)),
    2,
  )}× | | | ${range(
    pairs.filter((p) => p.zlibFloor && p.floor).map((p) => cpuS(p.floor!) / cpuS(p.zlibFloor!)),
    2,
  )}× | | 1.00× | ${range(
    zlibFloors.map((t) => MiB(t.peakRss)),
    0,
  )} | | | | |`,
);
lines.push(
  `| gzip -1 -c over the raw logs (1 core) | ${load(gzip1)} | ${cpuS(gzip1).toFixed(1)} | ${gzip1.wallS.toFixed(1)} | ${perCpu(gzip1).toFixed(1)} | ` +
    `${(perCpu(gzip1) / mean(gzip6s.map(perCpu))).toFixed(2)}× (of the mean) | | | | | | ${MiB(gzip1.peakRss).toFixed(0)} | | | | |`,
);
if (parsed) {
  lines.push(
    `| logarchive parse (decode + encode, no gzip) | ${load(parsed.parse)} | ${cpuS(parsed.parse).toFixed(1)} | ${parsed.parse.wallS.toFixed(1)} | ` +
      `${perCpu(parsed.parse).toFixed(1)} | | | | | | | ${MiB(parsed.parse.peakRss).toFixed(0)} | | | | |`,
  );
  lines.push(
    `| gzip -6 -c over the parse output (no batch_id, seq; ${(parsed.bytes / raw).toFixed(2)}× raw) | ${load(parsed.gzip)} | ${cpuS(parsed.gzip).toFixed(1)} | ` +
      `${parsed.gzip.wallS.toFixed(1)} | | ${(perCpu(parsed.gzip) / mean(gzip6s.map(perCpu))).toFixed(2)}× (of the mean) | | ${perCpu(parsed.gzip).toFixed(1)} | | | | | | | | |`,
  );
}
lines.push("");
lines.push(
  "CPU seconds by thread (MainThread: JavaScript, decoding, encoding, I/O callbacks; libuv-worker: zlib and fs; V8Worker: GC, compiling):",
);
lines.push("");
const threadLine = (label: string, t: Timed) => {
  const byName = [...t.threads.entries()].sort((a, b) => b[1] - a[1]);
  const polled = byName.reduce((n, [, s]) => n + s, 0);
  return `- ${label}: ${byName.map(([name, s]) => `${name} ${s.toFixed(1)}`).join(", ")} (sum ${polled.toFixed(1)} of ${cpuS(t).toFixed(1)} by \`time\`)`;
};
for (const p of pairs) lines.push(threadLine(p.run.label, p.run.timed));
if (parsed) lines.push(threadLine("logarchive parse", parsed.parse));
lines.push("");
lines.push(
  "Summary (ranges over the runs; × gzip -6 against the run just before, × floor against the run just after; mean = mean CPU over mean CPU):",
);
lines.push("");
lines.push(
  "| shipper | runs | raw MB per CPU-s | × gzip -6 | × floor | × floor, means | × zlib floor | peak RSS MiB | stored / raw | startup CPU s | startup peak RSS MiB |",
);
lines.push("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
for (const { setup, runs: starts } of startups) {
  const mine = pairs.filter((p) => p.setup === setup);
  const withFloor = mine.filter((p) => p.floor !== null);
  lines.push(
    `| ${setup.label} | ${mine.length} | ${range(
      mine.map((p) => perCpu(p.run.timed)),
      1,
    )} | ${range(
      mine.map((p) => perCpu(p.run.timed) / perCpu(p.gzip6)),
      2,
    )}× | ${range(withFloor.map(overFloor), 2)}× | ${(
      mean(withFloor.map((p) => cpuS(p.floor!))) / mean(withFloor.map((p) => cpuS(p.run.timed)))
    ).toFixed(2)}× | ${range(mine.filter((p) => p.zlibFloor).map(overZlib), 2)}× | ${range(
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

// Targets (issue 9) and the DaemonSet's requests, from the first setup (as deployed).
const deployed = pairs.filter((p) => p.setup === SETUPS[0]);
const idle = pairs[0]?.run.idle ?? null;
if (deployed.length > 0) {
  const floorMean =
    mean(deployed.filter((p) => p.floor).map((p) => cpuS(p.floor!))) /
    mean(deployed.map((p) => cpuS(p.run.timed)));
  const peak = Math.max(...deployed.map((p) => MiB(p.run.timed.peakRss)));
  const perMb = mean(deployed.map((p) => cpuS(p.run.timed))) / MB(raw);
  lines.push("");
  lines.push(`Targets (${SETUPS[0]!.label}):`);
  lines.push(
    `- CPU, at least 0.9 of the floor: ${range(deployed.filter((p) => p.floor).map(overFloor), 2)}× per run, ` +
      `${floorMean.toFixed(2)}× of the means: ${floorMean >= 0.9 ? "met" : "MISSED"}; ` +
      `against Node's zlib over the same records ${range(deployed.filter((p) => p.zlibFloor).map(overZlib), 2)}×`,
  );
  lines.push(
    `- peak RSS at most 128 MiB: ${range(
      deployed.map((p) => MiB(p.run.timed.peakRss)),
      0,
    )} MiB: ${peak <= 128 ? "met" : "MISSED"}`,
  );
  lines.push("");
  lines.push("For the DaemonSet's requests:");
  lines.push(
    `- CPU per MB/s of node log rate (a backlog, read as fast as it goes): ${(perMb * 1000).toFixed(0)} millicores ` +
      `(${perMb.toFixed(4)} CPU-s per raw MB, the mean of ${deployed.length} run(s))`,
  );
  if (idle) {
    const startup = mean(startups.find((x) => x.setup === SETUPS[0])!.runs.map(cpuS));
    const idleMc = ((cpuS(idle) - startup) / IDLE_SECONDS) * 1000;
    lines.push(
      `- live and idle over ${wl.manifest.files.length} shipped files for ${IDLE_SECONDS} s: ${cpuS(idle).toFixed(2)} CPU-s, ` +
        `${idleMc.toFixed(1)} millicores once the startup's ${startup.toFixed(2)} CPU-s are taken off; peak RSS ${MiB(idle.peakRss).toFixed(0)} MiB`,
    );
  }
  lines.push(`- memory: peak RSS ${peak.toFixed(0)} MiB over the backlog`);
}
const problems = pairs.flatMap(({ run: r }) => r.problems.map((p) => `${r.label}: ${p}`));
if (pairs.some((p) => p.floor === null)) problems.push("no floor: the first run saved no records");
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
