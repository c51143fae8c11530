// Multi-line stack-trace merging end to end, against the local S3, under SIGKILLs: Java
// traces written a few lines at a time on stdout and stderr of several containers, with
// plain lines around them and rotations in between; the shipper, configured to merge
// traces in some namespaces, is killed at random moments (often with traces open in its
// checkpoint) and restarted. Every line must arrive exactly once, each trace as one record
// holding all and only its own lines, and namespaces without a rule untouched.

import assert from "node:assert/strict";
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { LocalS3 } from "../local/s3.ts";
import { assertExactlyOnce, deliveryProblems, readArchive } from "../shipper/test_support/archive.ts";
import {
  pace,
  SUITE_GUARD_MS,
  shipArgs,
  shipOnce,
  startShipper,
  startTestS3,
  waitFor,
} from "../shipper/test_support/harness.ts";
import { random } from "../shipper/test_support/workload.ts";

/** One container's log: plain lines and Java traces, each line with its own lid. */
class TraceWriter {
  readonly path: string;
  readonly namespace: string;
  readonly lids: string[] = [];
  /** Each trace's lids, in order. */
  readonly traces: string[][] = [];
  #fd: number;
  #n = 0;
  #rand: () => number;
  #rotations = 0;
  /** Per stream, the lines of a trace still to be written. */
  #pending = new Map<string, { lines: string[]; lids: string[] }>();
  readonly #id: number;

  constructor(root: string, namespace: string, id: number, seed: number) {
    this.namespace = namespace;
    this.#id = id;
    const dir = join(root, `${namespace}_app-${id}_uid-${id}`, "app");
    mkdirSync(dir, { recursive: true });
    this.path = join(dir, "0.log");
    this.#fd = openSync(this.path, "a");
    this.#rand = random(seed);
  }

  #lid(): string {
    const lid = `${this.#id}:${this.#n++}`;
    this.lids.push(lid);
    return lid;
  }

  #write(stream: string, text: string): void {
    // Wall-clock timestamps, as the runtime writes them, so the shipper's flush_timeout
    // compares like times.
    writeSync(this.#fd, `${new Date().toISOString()} ${stream} F ${text}\n`);
  }

  /** Starts a trace on `stream`; its lines are written over the next ticks. */
  #startTrace(stream: string): void {
    const lid = this.#lid();
    const lines = [`java.lang.IllegalStateException: request ${this.#n} failed lid=${lid}`];
    const lids = [lid];
    const frames = 2 + Math.floor(this.#rand() * 25);
    for (let k = 0; k < frames; k++) {
      const l = this.#lid();
      lids.push(l);
      if (k === Math.floor(frames / 2))
        lines.push(`Caused by: java.io.IOException: upstream closed lid=${l}`);
      else if (k === frames - 1) lines.push(`\t... ${k} more lid=${l}`);
      else lines.push(`\tat com.acme.Service.handle${k}(Service.java:${100 + k}) lid=${l}`);
    }
    this.traces.push(lids);
    this.#pending.set(stream, { lines, lids });
  }

  /** A few lines: the next part of each open trace, plain lines, and new traces. */
  tick(): void {
    for (const stream of ["stdout", "stderr"]) {
      const open = this.#pending.get(stream);
      if (open !== undefined) {
        const part = open.lines.splice(0, 1 + Math.floor(this.#rand() * 6));
        for (const line of part) this.#write(stream, line);
        if (open.lines.length === 0) this.#pending.delete(stream);
        continue;
      }
      const r = this.#rand();
      if (r < 0.3) this.#startTrace(stream);
      else
        for (let i = 0; i < 1 + Math.floor(r * 4); i++)
          this.#write(stream, `INFO GET /api/${i} 200 lid=${this.#lid()}`);
    }
  }

  /** kubelet's rename rotation, possibly in the middle of a trace. */
  rotate(): void {
    closeSync(this.#fd);
    const t = new Date(Date.UTC(2026, 0, 1) + 1000 * this.#rotations++).toISOString();
    const stamp = `${t.slice(0, 4)}${t.slice(5, 7)}${t.slice(8, 10)}-${t.slice(11, 13)}${t.slice(14, 16)}${t.slice(17, 19)}`;
    renameSync(this.path, `${this.path}.${stamp}`);
    this.#fd = openSync(this.path, "a");
  }

  close(): void {
    for (const [stream, open] of this.#pending) for (const line of open.lines) this.#write(stream, line);
    this.#pending.clear();
    closeSync(this.#fd);
  }
}

describe("shipper multiline end to end", { timeout: SUITE_GUARD_MS }, () => {
  let dir: string;
  let s3: LocalS3;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logarchive-multiline-e2e-"));
    s3 = await startTestS3(join(dir, "s3"), ["multiline", "multiline-drain"]);
  });
  after(async () => {
    await s3?.stop();
    if (!process.env.LOGARCHIVE_DEBUG) await rm(dir, { recursive: true, force: true });
  });

  it("merges each trace into one record and ships every line exactly once across SIGKILLs", async () => {
    const root = join(dir, "pods");
    const state = join(dir, "state");
    const rand = random(11);
    const writers = [
      ...[0, 1, 2].map((i) => new TraceWriter(root, "payments", i, 100 + i)),
      ...[3, 4].map((i) => new TraceWriter(root, "web", i, 100 + i)),
      new TraceWriter(root, "batch", 5, 105),
    ];
    const config = join(dir, "shipper.yaml");
    // A long flush_timeout keeps traces open across commits and kills; the timestamp rule
    // still ends none, since the writers' lines are a few ms apart.
    writeFileSync(
      config,
      [
        "bucket: multiline",
        "multiline:",
        "  - namespaces: [payments, web]",
        "    mode: java",
        "    flush_timeout: 10s",
        "",
      ].join("\n"),
    );
    const args = shipArgs(
      { config, logs: `${root}/*/*/*.log*`, stateDir: state, node: "node-m" },
      {
        "batch-max-bytes": "64KiB",
        "batch-max-age": "1s",
        "commit-interval": "100ms",
        "scan-interval": "200ms",
        "drain-timeout": "2s",
      },
    );
    const tick = () => {
      for (const w of writers) {
        w.tick();
        if (rand() < 0.02) w.rotate();
      }
    };
    let killedWithTracesOpen = 0;
    // Ten lives: enough kills with traces open, light enough to share the CPU with the other e2e tests.
    const checkpointFile = join(state, "checkpoint.json");
    for (let life = 0; life < 10; life++) {
      const shipper = startShipper(args, s3.endpoint);
      // Kill a running shipper, not one still starting: on a loaded machine Node's start-up
      // alone can outlast the lifetime below. Wait for its first commit, then live on.
      await shipper.waitForMetrics("the first commit", (m) => m.sum("checkpoint_commits_total") > 0, {
        whilePolling: tick,
        intervalMs: 30,
      });
      for (let ticks = 10 + Math.floor(rand() * 40); ticks > 0; ticks--) {
        tick();
        await pace(30);
      }
      if (readFileSync(checkpointFile, "utf8").includes('"multiline"')) killedWithTracesOpen++;
      await shipper.kill("SIGKILL");
    }
    for (const w of writers) w.close();
    await shipOnce(args, s3.endpoint);
    assert.ok(killedWithTracesOpen >= 3, `only ${killedWithTracesOpen} kills found traces in the checkpoint`);

    const archive = await readArchive(s3.endpoint, "multiline");
    const lids = writers.flatMap((w) => w.lids);
    // Record counts are checked below: a trace is one record of many lids.
    assertExactlyOnce(lids, archive, { records: false });

    // Each trace of a namespace with a rule is one record, with its lines in order; nothing
    // else is merged, and nothing at all in the namespace without a rule.
    const merged = new Set(archive.merged.map((g) => g.join(",")));
    const ruled = writers.filter((w) => w.namespace !== "batch");
    const traces = ruled.flatMap((w) => w.traces);
    const whole = traces.filter((t) => merged.has(t.join(",")));
    assert.equal(
      whole.length,
      traces.length,
      `${traces.length - whole.length} of ${traces.length} traces split`,
    );
    assert.equal(archive.merged.length, traces.length, "no other records were merged");
    const batch = writers.find((w) => w.namespace === "batch")!;
    assert.ok(batch.traces.length > 0);
    const batchLids = new Set(batch.lids);
    assert.ok(
      archive.merged.every((g) => !batchLids.has(g[0]!)),
      "batch has no rule: nothing merged",
    );
    assert.equal(
      archive.records,
      lids.length - traces.reduce((n, t) => n + t.length - 1, 0),
      "one record per plain line and per trace",
    );
  });

  it("emits an open trace on SIGTERM, commits no trace state, and ships the rest after a restart", async () => {
    const root = join(dir, "drain-pods");
    const state = join(dir, "drain-state");
    const config = join(dir, "drain.yaml");
    writeFileSync(
      config,
      "bucket: multiline-drain\nmultiline:\n  - namespaces: ['*']\n    mode: go\n    flush_timeout: 60s\n",
    );
    const log = join(root, "web_api-1_uid-1", "app", "0.log");
    mkdirSync(join(root, "web_api-1_uid-1", "app"), { recursive: true });
    const write = (lines: string[]) =>
      writeFileSync(log, lines.map((l) => `${new Date().toISOString()} stderr F ${l}\n`).join(""), {
        flag: "a",
      });
    write(["start lid=9:0", "panic: boom lid=9:1", "", "goroutine 1 [running]:"]);
    const args = shipArgs({ config, logs: `${root}/*/*/*.log*`, stateDir: state, node: "node-m" });
    const shipper = startShipper(
      [...args, "--commit-interval", "100ms", "--scan-interval", "100ms"],
      s3.endpoint,
    );
    const checkpoint = () => {
      try {
        return readFileSync(join(state, "checkpoint.json"), "utf8");
      } catch {
        return "";
      }
    };
    await waitFor("the open panic in the checkpoint", () => checkpoint().includes('"multiline"'), {
      detail: () => shipper.log().slice(-2000),
    });
    assert.equal(await shipper.kill("SIGTERM"), 0, shipper.log().slice(-2000));
    assert.doesNotMatch(
      checkpoint(),
      /"multiline"/,
      "the drain emitted it: nothing is held for a next start",
    );
    const first = await readArchive(s3.endpoint, "multiline-drain");
    // Two records, each with a lid: the panic's lid-less blank and goroutine lines are in its record.
    assert.equal(first.records, 2, "the plain line and the panic so far");
    assert.deepEqual(first.withoutLid, []);
    // The rest of the panic, written after the drain, is shipped by the next start as
    // records of its own: not lost, not doubled.
    write(["main.main() lid=9:2", "\t/src/main.go:3 +0x1d lid=9:3", "after lid=9:4"]);
    await shipOnce(args, s3.endpoint);
    const archive = await readArchive(s3.endpoint, "multiline-drain");
    const problems = deliveryProblems(["9:0", "9:1", "9:2", "9:3", "9:4"], archive);
    assert.deepEqual(problems, { missing: [], duplicated: [], unexpected: [] });
  });
});
