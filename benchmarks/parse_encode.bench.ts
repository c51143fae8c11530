// Hot path of the shipper without I/O or gzip: split → parse → merge → encode.
//
// The input (--workload):
// - `realistic` (default): ~200 MB of a node's container logs from createRealisticWorkload
//   (shipper/test_support/realistic_workload.ts: generated JSON service logs, ingress access
//   lines, klog, Java and Python traces, batch and training output, every id and number
//   varying; 32 containers, each file encoded with its own pod's metadata);
// - `corpora`: ~200 MB of containerd/CRI-O lines built in memory from the real samples in
//   test/fixtures/corpora (JSON app logs, ingress access lines, stack traces), plus plain
//   text, 40 KiB lines the runtime split into 16 KiB P chunks, interleaved stderr and a few
//   malformed lines.
// It runs through FileDecoder and RecordEncoder in 256 KiB reads, as a file tailer would.
// Prints input MB/s, MB per CPU-second, lines/s and memory. The multiline rows run the same
// input with stack-trace merging on (`auto`, every rule tried on every line), as a container
// under a `multiline` rule would be decoded.
//
//   node_modules/.bin/node benchmarks/parse_encode.bench.ts [--mb 200] [--workload realistic|corpora]

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { type DecodedLine, FileDecoder } from "../shipper/sources/kubernetes_logs/file_decoder.ts";
import { type LogFileMeta, parseLogPath } from "../shipper/sources/kubernetes_logs/paths.ts";
import { corpusLines } from "../shipper/test_support/corpora.ts";
import { createRealisticWorkload } from "../shipper/test_support/realistic_workload.ts";
import { MULTILINE_DEFAULTS, type MultilineSettings } from "../shipper/transforms/multiline/merger.ts";
import {
  appendBatchFields,
  batchFieldsFragment,
  OutputBuffer,
  RecordEncoder,
} from "../shipper/transforms/record_encoder.ts";
import { benchArgs, oneOf, positiveNumber } from "./args.ts";

const { workload, mb } = benchArgs(
  {
    mb: { type: "string", default: "200" },
    workload: { type: "string", default: "realistic" },
  },
  (values) => ({
    workload: oneOf("workload", values.workload, ["realistic", "corpora"]),
    mb: positiveNumber("mb", values.mb),
  }),
);
const TARGET_BYTES = mb * 1e6;
const FILES = 8;
const READ_SIZE = 256 * 1024;
const BATCH_BYTES = 8 * 1024 * 1024;

const json = [
  ...corpusLines("json/beats_elasticsearch_test_json.log"),
  ...corpusLines("json/fluentbit_utf8_surrogate_bench_2k.ndjson"),
  ...corpusLines("json/beats_kibana_log_test.log"),
  ...corpusLines("json/beats_elasticsearch_json_800.log"),
];
const access = corpusLines("k8s_access/beats_nginx_ingress_controller_test.log");
const traces = [
  ...corpusLines("multiline/fluentbit_filter_multiline_example.log"),
  ...corpusLines("multiline/fluentbit_regex001_example.log"),
];
const plain = [
  "GET /healthz 200",
  "connection reset by peer; retrying in 250ms",
  "cache warm: 1532 keys, 12.5 MiB",
].map((s) => Buffer.from(s));

/** Deterministic PRNG (mulberry32), so runs are comparable. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

/** One file's content: `bytes` long, containerd (Z, trimmed) or CRI-O (9 digits, offset) timestamps. */
function makeFile(seed: number, bytes: number, crio: boolean): { data: Buffer; lines: number } {
  const r = rng(seed);
  const parts: Buffer[] = [];
  let size = 0;
  let lines = 0;
  let ms = Date.UTC(2026, 10, 21, 11, 0, 0);
  let nanos = 0;
  const stamp = (): string => {
    const iso = new Date(ms).toISOString().slice(0, 19);
    if (crio) return `${iso.replace("T11", "T12")}.${String(nanos).padStart(9, "0")}+01:00`;
    const frac = String(nanos).padStart(9, "0").replace(/0+$/, "");
    return frac === "" ? `${iso}Z` : `${iso}.${frac}Z`;
  };
  const push = (stream: string, tag: string, msg: Buffer) => {
    const head = Buffer.from(`${stamp()} ${stream} ${tag} `);
    parts.push(head, msg, NL);
    size += head.length + msg.length + 1;
    lines++;
  };
  while (size < bytes) {
    nanos += Math.floor(r() * 2_000_000);
    if (nanos >= 1e9) {
      ms += 1000;
      nanos -= 1e9;
    }
    const x = r();
    if (x < 0.55) push("stdout", "F", pick(r, json));
    else if (x < 0.8) push("stdout", "F", pick(r, access));
    else if (x < 0.93) push("stderr", "F", pick(r, traces));
    else if (x < 0.997) push(r() < 0.5 ? "stdout" : "stderr", "F", pick(r, plain));
    else if (x < 0.9985) {
      const long = Buffer.alloc(40_000, 0x61 + Math.floor(r() * 26));
      push("stdout", "P", long.subarray(0, 16_384));
      if (r() < 0.5) push("stderr", "F", pick(r, traces)); // interleaved other stream
      push("stdout", "P", long.subarray(16_384, 32_768));
      push("stdout", "F", long.subarray(32_768));
    } else {
      parts.push(Buffer.from("garbage without a timestamp\n"));
      size += 28;
      lines++;
    }
  }
  return { data: Buffer.concat(parts), lines };
}
const NL = Buffer.from("\n");

const mib = (n: number) => (n / 1024 / 1024).toFixed(0);

/** The pod each corpora file is encoded as (they have no kubelet path). */
function corporaMeta(i: number): LogFileMeta {
  return {
    namespace: "payments",
    pod: `api-7c9f-${i}`,
    podUid: "8d3f0a6e-2b1c-4e2f-9a57-0c1d2e3f4a5b",
    container: "api",
    restartCount: 0,
    rotated: false,
    compressed: false,
  };
}

function runOnce(
  files: Buffer[],
  metas: LogFileMeta[],
  encode: boolean,
  multiline: MultilineSettings | null = null,
): { wallMs: number; cpuMs: number; records: number; outBytes: number } {
  const out = new OutputBuffer(BATCH_BYTES + 2 * 1024 * 1024);
  const fragment = batchFieldsFragment("node-a_0123abcd_000000000007");
  let records = 0;
  let outBytes = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (const [i, data] of files.entries()) {
    const encoder = new RecordEncoder({ ...metas[i]!, node: "node-a" });
    const decoder = new FileDecoder({ fallbackTime: { epochSeconds: 0, nanos: 0 }, multiline });
    const sink = encode
      ? (l: DecodedLine) => {
          encoder.encodeLine(out, l);
          appendBatchFields(out, fragment, records++);
          if (out.length >= BATCH_BYTES) {
            outBytes += out.length;
            out.reset();
          }
        }
      : () => {
          records++;
        };
    for (let at = 0; at < data.length; at += READ_SIZE) decoder.push(data.subarray(at, at + READ_SIZE), sink);
    decoder.end(sink);
  }
  outBytes += out.length;
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { wallMs, cpuMs: (cpu.user + cpu.system) / 1000, records, outBytes };
}

const g0 = performance.now();
const files: Buffer[] = [];
const metas: LogFileMeta[] = [];
let physicalLines = 0;
if (workload === "realistic") {
  const root = mkdtempSync(join(tmpdir(), "logarchive-bench-parse-"));
  try {
    const w = createRealisticWorkload({ root, seed: 42, startMs: Date.UTC(2026, 10, 21, 11, 0, 0) });
    while (w.bytes() < TARGET_BYTES) w.writeBytes(8 * 2 ** 20);
    w.close();
    for (const writer of w.writers) {
      const data = readFileSync(writer.path);
      const parsed = parseLogPath(writer.path);
      if (!parsed.ok) throw new Error(`${writer.path}: ${parsed.error.message}`);
      files.push(data);
      metas.push(parsed.meta);
      for (let nl = data.indexOf(10); nl >= 0; nl = data.indexOf(10, nl + 1)) physicalLines++;
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
} else {
  for (let i = 0; i < FILES; i++) {
    const f = makeFile(i + 1, TARGET_BYTES / FILES, i % 4 === 3);
    files.push(f.data);
    metas.push(corporaMeta(i));
    physicalLines += f.lines;
  }
}
const inputBytes = files.reduce((n, f) => n + f.length, 0);
const generateMs = performance.now() - g0;
globalThis.gc?.();
const before = process.memoryUsage();

console.log(
  `parse_encode: ${new Date().toISOString()}, node ${process.version}, ${availableParallelism()} CPUs`,
);
console.log(
  `input: ${workload}, ${(inputBytes / 1e6).toFixed(1)} MB in ${files.length} files, ${physicalLines} physical lines (generated in ${(generateMs / 1000).toFixed(1)} s)`,
);
// A warm-up pass lets V8 optimise the hot functions before timing.
runOnce(files.slice(0, 1), metas, true);
const auto: MultilineSettings = { mode: "auto", ...MULTILINE_DEFAULTS };
for (const [label, encode, multiline] of [
  ["split+parse+merge", false, null],
  ["split+parse+merge+encode", true, null],
  ["… +multiline auto", false, auto],
  ["… +multiline auto +encode", true, auto],
] as const) {
  const r = runOnce(files, metas, encode, multiline);
  const mb = inputBytes / 1e6;
  console.log(
    `${label.padEnd(26)} ${(mb / (r.wallMs / 1000)).toFixed(0).padStart(5)} MB/s wall, ` +
      `${(mb / (r.cpuMs / 1000)).toFixed(0).padStart(5)} MB per CPU-s, ` +
      `${(((r.records / r.wallMs) * 1000) / 1e6).toFixed(2)} M records/s, ${r.records} records` +
      (encode
        ? `, ${(r.outBytes / 1e6).toFixed(0)} MB NDJSON (${(r.outBytes / inputBytes).toFixed(2)}x input)`
        : ""),
  );
}
const after = process.memoryUsage();
console.log(
  `memory: heap used ${mib(after.heapUsed)} MiB (${mib(before.heapUsed)} before the runs), ` +
    `RSS ${mib(after.rss)} MiB, peak RSS ${mib(process.resourceUsage().maxRSS * 1024)} MiB, ` +
    `of which the in-memory input is ${mib(inputBytes)} MiB`,
);
