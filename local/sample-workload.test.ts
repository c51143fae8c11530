// The sample workload writes kubelet-style CRI files whose record counts are exactly what
// the shipper archives: checked by decoding every file with `logarchive parse`'s code (the
// shipper's own decoder and encoder) and counting records per namespace.

import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { PassThrough } from "node:stream";
import { after, before, describe, it } from "node:test";
import { checkLogPaths, writeParsedFiles } from "../cli/commands/parse.ts";
import { classifyNamespace, DEFAULT_POLICY, loadPolicy } from "../lib/policy/policy.ts";
import { DEFAULT_MAX_LINE_BYTES } from "../shipper/sources/kubernetes_logs/partial_merger.ts";
import {
  CRI_SPLIT_BYTES,
  criTimestamp,
  rotationSuffix,
  SAMPLE_NAMESPACES,
  type SampleCounts,
  startLiveSampleWorkload,
  writeSampleBacklog,
} from "./sample-workload.ts";

interface ParsedRecord {
  namespace: string;
  pod: string;
  container: string;
  restart_count: number;
  stream: string;
  timestamp: string;
  message?: string;
  message_base64?: string;
  parse_error?: string;
}

/** Every record the shipper would archive from `files`, decoded by `logarchive parse`'s code. */
async function parseRecords(files: readonly string[]): Promise<ParsedRecord[]> {
  const { metas, problems } = checkLogPaths(files);
  assert.deepEqual(problems, [], "every file has a name kubelet would give it");
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on("data", (c: Buffer) => chunks.push(c));
  const summary = await writeParsedFiles(
    files,
    metas,
    { merge: true, node: "sample-node", maxLineBytes: DEFAULT_MAX_LINE_BYTES },
    sink,
  );
  const text = Buffer.concat(chunks).toString("utf8");
  const records =
    text === ""
      ? []
      : text
          .trimEnd()
          .split("\n")
          .map((l) => JSON.parse(l) as ParsedRecord);
  assert.equal(records.length, summary.records);
  assert.equal(summary.truncated, 0);
  return records;
}

function countBy(records: readonly ParsedRecord[], pick: (r: ParsedRecord) => boolean = () => true) {
  const out: Record<string, number> = Object.fromEntries(SAMPLE_NAMESPACES.map((n) => [n, 0]));
  for (const r of records) if (pick(r)) out[r.namespace] = (out[r.namespace] ?? 0) + 1;
  return out;
}

function assertCountsMatch(counts: SampleCounts, records: readonly ParsedRecord[]): void {
  assert.deepEqual(countBy(records), counts.linesByNamespace);
  assert.deepEqual(
    countBy(records, (r) => r.parse_error !== undefined),
    counts.malformedByNamespace,
  );
  assert.equal(records.length, counts.lines);
}

describe("sample workload", () => {
  let root: string;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "logarchive-sample-"));
  });

  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  describe("backlog", () => {
    const now = Date.parse("2026-11-21T10:05:00.000Z");
    let counts: SampleCounts;
    let records: ParsedRecord[];
    let raw: Buffer;

    before(async () => {
      counts = await writeSampleBacklog({ root: join(root, "backlog"), lines: 6000, seed: 7, now });
      records = await parseRecords(counts.files);
      raw = Buffer.concat(await Promise.all(counts.files.map((f) => readFile(f))));
    });

    it("writes exactly the requested logical lines, counted per namespace as the shipper counts records", () => {
      assert.equal(counts.lines, 6000);
      assertCountsMatch(counts, records);
      for (const namespace of SAMPLE_NAMESPACES)
        assert.ok(counts.linesByNamespace[namespace]! > 0, namespace);
      assert.equal(
        Object.values(counts.malformedByNamespace).reduce((a, b) => a + b, 0),
        1,
      );
      const malformed = records.filter((r) => r.parse_error !== undefined);
      assert.equal(malformed.length, 1);
      assert.match(malformed[0]!.message ?? "", /Killed process/);
    });

    it("lays files out as kubelet does, with a restarted container's 1.log", () => {
      const dirs = counts.files.map((f) => relative(join(root, "backlog"), f));
      for (const d of dirs) assert.match(d, /^[a-z0-9-]+_[a-z0-9.-]+_[0-9a-f-]{36}\/[a-z0-9-]+\/\d+\.log$/);
      assert.ok(dirs.some((d) => d.startsWith("kube-system_coredns-")));
      assert.ok(dirs.some((d) => /^batch-jobs_nightly-report-\d+-\w+_.*\/report\/1\.log$/.test(d)));
      assert.deepEqual(
        new Set(records.filter((r) => r.namespace === "batch-jobs").map((r) => r.restart_count)),
        new Set([0, 1]),
      );
    });

    it("holds what real clusters write: JSON, access lines, stack traces, both streams, P/F chunks, invalid UTF-8", () => {
      const text = raw.toString("latin1");
      const physical = text.split("\n").filter((l) => l !== "");
      const partial = physical.filter((l) => / (stdout|stderr) P /.test(l));
      assert.ok(partial.length > 0, "some lines are split into P chunks");
      assert.ok(
        physical.some((l) => / P /.test(l) && l.length > CRI_SPLIT_BYTES),
        "a 16 KiB containerd split",
      );
      assert.ok(physical.length > records.length, "P chunks are merged: fewer records than physical lines");
      assert.ok(records.some((r) => r.stream === "stderr") && records.some((r) => r.stream === "stdout"));
      assert.ok(
        records.some((r) => r.message_base64 !== undefined),
        "invalid UTF-8 is kept byte for byte",
      );
      const messages = records.map((r) => r.message ?? "");
      assert.ok(
        messages.some((m) => m.startsWith('{"@timestamp"')),
        "Java JSON logs",
      );
      assert.ok(
        messages.some((m) => /^\d+\.\d+\.\d+\.\d+ - - \[.*\] "GET /.test(m)),
        "ingress access lines",
      );
      assert.ok(
        messages.some((m) => /^\tat com\.acme\./.test(m)),
        "Java stack frames",
      );
      assert.ok(messages.includes("Traceback (most recent call last):"), "Python tracebacks");
      assert.ok(
        messages.some((m) => m.startsWith("goroutine ")) || messages.some((m) => m.startsWith("panic:")),
        "Go",
      );
      assert.ok(
        messages.some((m) => m.length > CRI_SPLIT_BYTES),
        "a merged line longer than one chunk",
      );
    });

    it("dates lines within the span before now, in containerd's timestamp format", () => {
      const times = records.filter((r) => r.parse_error === undefined).map((r) => Date.parse(r.timestamp));
      assert.ok(Math.min(...times) >= now - 10 * 60_000);
      assert.ok(Math.max(...times) <= now + 1000);
      assert.equal(criTimestamp(Date.parse("2026-11-21T10:00:00.120Z")), "2026-11-21T10:00:00.12Z");
      assert.equal(criTimestamp(Date.parse("2026-11-21T10:00:00.000Z")), "2026-11-21T10:00:00Z");
      assert.equal(criTimestamp(Date.parse("2026-11-21T10:00:00.001Z"), 5), "2026-11-21T10:00:00.001000005Z");
      assert.match(
        raw.toString("latin1"),
        /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z (stdout|stderr) [PF] /m,
      );
    });

    it("is deterministic for a seed", async () => {
      const again = await writeSampleBacklog({ root: join(root, "again"), lines: 6000, seed: 7, now });
      const rel = (c: SampleCounts, base: string) => c.files.map((f) => relative(join(root, base), f));
      assert.deepEqual(rel(again, "again"), rel(counts, "backlog"));
      assert.deepEqual(again.linesByNamespace, counts.linesByNamespace);
      const againRaw = Buffer.concat(await Promise.all(again.files.map((f) => readFile(f))));
      assert.ok(againRaw.equals(raw));
      const other = await writeSampleBacklog({ root: join(root, "other"), lines: 6000, seed: 8, now });
      assert.notDeepEqual(rel(other, "other"), rel(counts, "backlog"));
    });

    it("puts kube-system outside analytics under the repository's policy, the rest inside", async () => {
      const policy = await loadPolicy(new URL("../namespaces.yaml", import.meta.url).pathname);
      for (const namespace of SAMPLE_NAMESPACES) {
        const c = classifyNamespace(policy, namespace);
        assert.ok(c.archived, namespace);
        // Loaded means a destination table; in stream delivery (the repository's policy) every
        // namespace's own objects are archive objects.
        assert.equal(c.destination === null, namespace === "kube-system", namespace);
      }
      assert.ok(classifyNamespace(DEFAULT_POLICY, "kube-system").archived);
    });

    it("writes other sizes exactly too, always with its one malformed line", async () => {
      for (const [lines, seed] of [
        [0, 3],
        [1, 3],
        [2, 3],
        [17, 3],
        [333, 4],
        // Sizes where a stack trace spans the midpoint, where the malformed line goes.
        [400, 2],
        [400, 16],
        [1001, 5],
        [1999, 6],
      ] as const) {
        const small = await writeSampleBacklog({ root: join(root, `size-${lines}`), lines, seed, now });
        assert.equal(small.lines, lines);
        const malformed = Object.values(small.malformedByNamespace).reduce((a, b) => a + b, 0);
        assert.equal(malformed, lines > 0 ? 1 : 0, `${lines} lines`);
        assertCountsMatch(small, await parseRecords(small.files));
      }
    });
  });

  it("live: appends current lines, rotates like kubelet, and its counts match the records", async () => {
    const dir = join(root, "live");
    const started = Date.now();
    const live = startLiveSampleWorkload({
      root: dir,
      linesPerSecond: 3000,
      seed: 11,
      rotateBytes: 64 * 1024,
      tickMs: 50,
    });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const during = live.counts();
    assert.ok(during.lines > 0);
    const counts = await live.stop();
    const stopped = Date.now();
    assert.ok(counts.lines >= during.lines);
    assert.ok(counts.lines >= 2000, `wrote ${counts.lines} lines in 1.5 s at 3000/s`);
    const rotated = counts.files.filter((f) => /\.log\.\d{8}-\d{6}$/.test(f));
    assert.ok(rotated.length > 0, "some files were rotated");
    const { metas } = checkLogPaths(rotated);
    assert.ok(metas.every((m) => m.rotated && !m.compressed));
    const records = await parseRecords(counts.files);
    assertCountsMatch(counts, records);
    assert.equal(
      Object.values(counts.malformedByNamespace).reduce((a, b) => a + b, 0),
      1,
    );
    const times = records.filter((r) => r.parse_error === undefined).map((r) => Date.parse(r.timestamp));
    assert.ok(
      Math.min(...times) >= started - 1000 && Math.max(...times) <= stopped + 1000,
      "current timestamps",
    );
    // Nothing more is written after stop().
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.deepEqual((await parseRecords(counts.files)).length, counts.lines);
    assert.match(rotationSuffix(new Date(2026, 10, 21, 9, 5, 7)), /^20261121-090507$/);
  });

  it("live: started again with the same layoutSeed, it appends to the files of the run before", async () => {
    const dir = join(root, "live-again");
    const runOnce = async (seed: number) => {
      const live = startLiveSampleWorkload({
        root: dir,
        linesPerSecond: 2000,
        seed,
        layoutSeed: 7,
        tickMs: 20,
      });
      while (live.counts().lines < 300) await new Promise((resolve) => setTimeout(resolve, 20));
      return live.stop();
    };
    const first = await runOnce(1);
    const sizesAfterFirst = new Map(
      await Promise.all(first.files.map(async (f) => [f, (await readFile(f)).length] as const)),
    );
    const second = await runOnce(2);
    const firstDirs = new Set(first.files.map((f) => join(f, "..")));
    assert.ok(
      second.files.every((f) => firstDirs.has(join(f, ".."))),
      "the second run writes into the first run's container directories",
    );
    const grown = second.files.filter((f) => sizesAfterFirst.has(f) && (sizesAfterFirst.get(f) ?? 0) > 0);
    assert.ok(grown.length > 0, "the second run appends to files the first one wrote");
    for (const f of grown) {
      const now = await readFile(f);
      assert.ok(now.length > sizesAfterFirst.get(f)!, f);
    }
    // Every record of both runs is in the files, once.
    assert.equal(
      (await parseRecords([...new Set([...first.files, ...second.files])])).length,
      first.lines + second.lines,
    );
  });
});
