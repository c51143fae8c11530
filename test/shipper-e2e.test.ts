// The shipper against the local S3, end to end: generated container logs in, every line
// counted back out of the archive. Nothing lost, nothing doubled.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Manifest } from "../lib/retrieval/bundle.ts";
import { LOCAL_S3_CREDENTIALS, type LocalS3 } from "../local/s3.ts";
import { startS3ArchiveFront } from "../local/s3-archive/server.ts";
import {
  assertExactlyOnce,
  assertStreamExactlyOnce,
  deliveryProblems,
  readArchive,
  sequenceGaps,
} from "../shipper/test_support/archive.ts";
import {
  committedCheckpoint,
  type MetricsSnapshot,
  pace,
  type ShipperProcess,
  SUITE_GUARD_MS,
  shipArgs,
  shipOnce,
  startShipper,
  startTestS3,
  waitFor,
} from "../shipper/test_support/harness.ts";
import { ContainerLogWriter, createWorkload, random } from "../shipper/test_support/workload.ts";

/** Runs a `logarchive` command to its end against the local S3 (without blocking the S3 it talks to). */
function runCli(
  command: readonly string[],
  args: readonly string[],
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const cli = new URL("../cli/logarchive.ts", import.meta.url).pathname;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AWS_ACCESS_KEY_ID: LOCAL_S3_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_S3_CREDENTIALS.secretAccessKey,
    AWS_REGION: "us-east-1",
  };
  for (const name of Object.keys(env)) if (name.startsWith("LOGARCHIVE_")) delete env[name];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...command, ...args], { env, cwd: tmpdir() });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

const BUCKETS = ["static", "live", "live-stream", "lost", "drain", "restart"];

/**
 * Stream delivery for the SIGKILL test: four analytics namespaces in two tables, two
 * archive-only ones; 1-second stream batches and 3-second archive batches, so both kinds
 * are cut and replayed many times over the shipper's lives.
 */
const STREAM_POLICY = `
archive:
  batch_max_age: 3s
analytics:
  include: ["payments", "web", "search", "auth"]
  delivery: stream
  stream_batch_max_age: 1s
warehouse:
  routes:
    - namespaces: ["payments"]
      table: payments_logs
`;
const STREAM_TABLES = {
  "logarchive.payments_logs": ["payments"],
  "logarchive.container_logs": ["web", "search", "auth"],
};

/**
 * Waits until the shipper shows, in its own metrics, that reading is paused with the spool
 * full: two scrapes, three commits apart, both with backpressure 1 and spool_bytes at its
 * limit, between which not one byte was read although there was (lag_bytes) to read.
 * Retried, because gzip catching up can shrink a just-full spool below its limit for a moment.
 */
async function readingPaused(
  shipper: ShipperProcess,
  whilePolling: () => void,
): Promise<{ first: MetricsSnapshot; last: MetricsSnapshot }> {
  const full = (m: MetricsSnapshot) =>
    m.sum("backpressure") === 1 && m.sum("spool_bytes") >= m.sum("spool_limit_bytes");
  return waitFor(
    "the shipper to report reading paused with the spool full",
    async () => {
      const first = await shipper.metrics();
      if (!full(first)) return undefined;
      const commits = first.sum("checkpoint_commits_total");
      const last = await shipper.waitForMetrics(
        "three more commits",
        (m) => m.sum("checkpoint_commits_total") >= commits + 3,
        { whilePolling },
      );
      const paused =
        full(last) &&
        last.sum("read_bytes_total") === first.sum("read_bytes_total") &&
        last.sum("lag_bytes") > 0;
      return paused ? { first, last } : undefined;
    },
    { whilePolling, intervalMs: 40, detail: () => shipper.log().slice(-3000) },
  );
}

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

describe("shipper end to end", { timeout: SUITE_GUARD_MS }, () => {
  let dir: string;
  let s3: LocalS3;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logarchive-ship-e2e-"));
    s3 = await startTestS3(join(dir, "s3"), BUCKETS);
  });
  after(async () => {
    await s3?.stop();
    if (!process.env.LOGARCHIVE_DEBUG) await rm(dir, { recursive: true, force: true });
  });

  it("ships a large mixed backlog exactly once, in bounded memory", async () => {
    const root = join(dir, "static-pods");
    // Starts 1 s before an hour boundary (lines advance ~0.5 ms), so batches must split by hour.
    const w = createWorkload({
      root,
      namespaces: NAMESPACES,
      podsPerNamespace: 4,
      seed: 1,
      startMs: Date.UTC(2026, 10, 21, 10, 59, 59),
    });
    // 12 rounds: about 300 MB, the "few hundred MB" backlog the issue asks for.
    for (let round = 0; round < 12; round++) {
      for (const writer of w.writers) {
        writer.writeLines(700);
        if (round === 2 || round === 8) writer.startLineAcrossRotation();
        if (round === 2 || round === 4 || round === 8) writer.rotateRename();
      }
    }
    w.close();
    const shipper = await shipOnce(
      shipArgs({
        logs: `${root}/*/*/*.log*`,
        stateDir: join(dir, "static-state"),
        bucket: "static",
        node: "node-a",
      }),
      s3.endpoint,
    );
    const archive = await readArchive(s3.endpoint, "static");
    assertExactlyOnce(w.lids(), archive);
    assert.ok(archive.parseErrors > 0, "malformed lines are archived with parse_error");
    assert.ok(archive.objects > NAMESPACES.length, `${archive.objects} objects: batches split at the hour`);
    assert.ok(w.bytes() > 280 * 1e6, `workload is ${w.bytes()} bytes`);
    assert.ok(shipper.peakRss() < 256 * 2 ** 20, `peak RSS ${shipper.peakRss()} bytes`);
    assert.doesNotMatch(shipper.log(), /log_bytes_lost/);
  });

  /** The SIGKILL test's body, per-namespace delivery or (with a policy) stream delivery. */
  async function survivesKills(o: { bucket: string; policy?: string }): Promise<void> {
    const root = join(dir, `${o.bucket}-pods`);
    const state = join(dir, `${o.bucket}-state`);
    let policyFlag: Record<string, string> = {};
    if (o.policy !== undefined) {
      const path = join(dir, `${o.bucket}-policy.yaml`);
      await writeFile(path, o.policy);
      policyFlag = { policy: path };
    }
    const rand = random(7);
    const w = createWorkload({
      root,
      namespaces: ["payments", "web", "search", "batch-jobs", "auth", "ml"],
      podsPerNamespace: 2,
      seed: 2,
      startMs: Date.UTC(2026, 10, 21, 13, 59, 50),
    });
    const args = shipArgs(
      { logs: `${root}/*/*/*.log*`, stateDir: state, bucket: o.bucket, node: "node-b" },
      {
        ...policyFlag,
        "batch-max-bytes": "64KiB",
        "batch-max-age": "1s",
        "commit-interval": "200ms",
        "scan-interval": "200ms",
        "spool-max-bytes": "256KiB",
        "retry-initial": "50ms",
        "retry-max": "500ms",
        "upload-timeout": "2s",
        "drain-timeout": "2s",
      },
    );
    const tick = () => {
      for (const writer of w.writers) {
        writer.writeLines(15);
        const r = rand();
        if (r < 0.015) {
          writer.startLineAcrossRotation();
          writer.rotateRename();
        } else if (r < 0.025) {
          writer.rotateRename();
        } else if (r < 0.032) {
          writer.rotateCopyTruncate();
        }
      }
    };
    const TICK_MS = 40;
    const writeFor = async (ticks: number) => {
      for (let i = 0; i < ticks; i++) {
        tick();
        await pace(TICK_MS);
      }
    };
    // Kill a running shipper, not one still starting: on a loaded machine Node's start-up
    // alone can outlast a life. Lives are counted in ticks, so the lines written (and the
    // rotations) are the same however slow the machine is.
    const started = (shipper: ShipperProcess) => shipper.waitForEvent("shipper_started");
    const port = Number(new URL(s3.endpoint).port);
    let kills = 0;
    const lives: ShipperProcess[] = [];
    for (let life = 0; life < 22; life++) {
      const shipper = startShipper(args, s3.endpoint);
      lives.push(shipper);
      await started(shipper);
      await writeFor(8 + Math.floor(rand() * 30));
      if (life === 8) {
        // S3 goes away; the shipper spools until the 256 KiB spool is full, then stops
        // reading; it is killed during the outage and restarted before S3 returns.
        await s3.stop();
        const { first, last } = await readingPaused(shipper, tick);
        assert.equal(
          last.sum("read_bytes_total"),
          first.sum("read_bytes_total"),
          "the spool filled during the outage and reading paused",
        );
        assert.ok(last.sum("upload_failures_total") > 0, "the shipper saw the outage");
        assert.equal(last.sum("batches_uploaded_total"), first.sum("batches_uploaded_total"));
        assert.ok(shipper.events("backpressure").length > 0, "the shipper logged the backpressure");
        await shipper.kill("SIGKILL");
        kills++;
        const during = startShipper(args, `http://127.0.0.1:${port}`);
        lives.push(during);
        await started(during);
        await writeFor(25);
        s3 = await startTestS3(join(dir, "s3"), BUCKETS, port);
        // Killed while it drains the spool it kept through the outage.
        await during.waitForEvent("batch_uploaded");
        await during.kill("SIGKILL");
        kills++;
        continue;
      }
      await shipper.kill("SIGKILL");
      kills++;
    }
    w.close();
    const final = await shipOnce(args, s3.endpoint);
    assert.ok(kills >= 20, `${kills} kills`);
    const archive = await readArchive(s3.endpoint, o.bucket);
    if (process.env.LOGARCHIVE_DEBUG) {
      const { writeFileSync } = await import("node:fs");
      writeFileSync(
        "/tmp/e2e-debug.json",
        JSON.stringify({
          problems: deliveryProblems(w.lids(), archive),
          withoutLid: archive.withoutLid,
          finalLog: final.log(),
          root,
          state,
        }),
      );
    }
    assertExactlyOnce(w.lids(), archive);
    // This workload loses nothing, so a loss reported in any life is a false report (or a
    // real loss the archive check missed): every life's log is checked, not just the last.
    for (const [i, life] of [...lives, final].entries()) {
      assert.doesNotMatch(life.log(), /log_bytes_lost/, `life ${i} reported a loss`);
    }
    if (o.policy === undefined) {
      assert.equal(archive.stream.objects, 0, "per-namespace delivery writes no stream object");
      return;
    }
    // Stream delivery: every analytics line once more in its table's stream, and the
    // archive tier holds every namespace (nothing under analytics/).
    const analytics = new Set(Object.values(STREAM_TABLES).flat());
    const analyticsLids = w.writers.filter((x) => analytics.has(x.namespace)).flatMap((x) => x.lids);
    assertStreamExactlyOnce(analyticsLids, archive, STREAM_TABLES);
    // Each kind numbers its batches in its own sequence, without a gap, so reconcile and
    // retrieval can find a lost archive batch even after the stream objects have expired.
    assert.equal(archive.sequences.stream.size, 1, "one stream sequence");
    for (const epoch of archive.sequences.stream.keys()) assert.ok(!archive.sequences.namespace.has(epoch));
    assert.deepEqual(sequenceGaps(archive.sequences.namespace), []);
    assert.deepEqual(sequenceGaps(archive.sequences.stream), []);
    assert.ok(
      archive.stream.objects > 20,
      `${archive.stream.objects} stream objects: cut and replayed over the lives`,
    );
  }

  it("survives 20+ SIGKILLs, an S3 outage with a full spool, and rotations under load, exactly once", async () => {
    await survivesKills({ bucket: "live" });
  });

  it("survives 20+ SIGKILLs, an S3 outage and rotations in stream delivery, exactly once in the archive and in the stream", async () => {
    await survivesKills({ bucket: "live-stream", policy: STREAM_POLICY });
  });

  it("counts the bytes lost when rotation removes a file the stopped shipper had not finished", async () => {
    const root = join(dir, "lost-pods");
    const state = join(dir, "lost-state");
    const w = createWorkload({
      root,
      namespaces: ["web"],
      podsPerNamespace: 1,
      seed: 3,
      startMs: Date.UTC(2026, 10, 21, 8),
    });
    const writer = w.writers[0]!;
    writer.writeLines(60_000);
    writer.close();
    const args = shipArgs({ logs: `${root}/*/*/*.log*`, stateDir: state, bucket: "lost", node: "node-c" });
    // S3 unreachable: uploads fail, the 1 MiB spool fills and reading stops part-way.
    const stuck = startShipper(
      [...args, "--spool-max-bytes", "1MiB", "--read-chunk-bytes", "64KiB"],
      "http://127.0.0.1:9",
    );
    await stuck.waitForEvent("backpressure");
    // A commit with reading paused: the checkpoint then holds the offset where reading stopped.
    const paused = await stuck.waitForMetrics("reading paused", (m) => m.sum("backpressure") === 1);
    await stuck.waitForMetrics(
      "a commit with reading paused",
      (m) =>
        m.sum("checkpoint_commits_total") > paused.sum("checkpoint_commits_total") &&
        m.sum("backpressure") === 1,
    );
    await stuck.kill("SIGKILL");
    const checkpoint = await committedCheckpoint(state);
    const entry = checkpoint.files.find((f) => f.path === writer.path);
    assert.ok(entry, "the file is in the checkpoint");
    assert.ok(
      entry.reader.offset > 0 && entry.reader.offset < writer.bytes,
      `offset ${entry.reader.offset} of ${writer.bytes}`,
    );
    // While the shipper is down, the file is rotated away and deleted (kubelet's MaxFiles).
    await rm(writer.path);
    const resumed = await shipOnce(args, s3.endpoint);
    const lost = /"event":"log_bytes_lost","reason":"rotation","path":"([^"]+)","bytes":(\d+)/.exec(
      resumed.log(),
    );
    assert.ok(lost, "the loss is logged");
    assert.equal(lost[1], writer.path);
    assert.equal(Number(lost[2]), writer.bytes - entry.reader.offset);

    // The loss is in the archive too: one loss record, with the count and the reason, whose
    // batch number fills the node's sequence (no gap for reconcile or retrieve to report).
    const archive = await readArchive(s3.endpoint, "lost");
    assert.deepEqual(archive.inconsistent, []);
    assert.equal(archive.losses.length, 1, `loss records: ${archive.losses.map((l) => l.key).join(", ")}`);
    const [loss] = archive.losses;
    assert.equal(loss!.kind, "loss");
    assert.equal(loss!.record.reason, "rotation");
    assert.equal(loss!.record.bytes, writer.bytes - entry.reader.offset);
    assert.deepEqual(loss!.record.range, { start: entry.reader.offset, end: writer.bytes });
    assert.equal(loss!.record.file.path, writer.path);
    assert.equal(loss!.record.namespace, "web");
    assert.match(
      loss!.key,
      /^logs\/losses\/namespace=web\/dt=2026-11-21\/hour=08\/node-c_[0-9a-f]+_\d{12}\.loss\.json$/,
    );
    assert.deepEqual(sequenceGaps(archive.sequences.namespace), []);

    // `logarchive retrieve` over that hour fails, naming the loss; its continuity verdict has no gap.
    const out = join(dir, "lost-bundle");
    // Retrieval lists versions (ListObjectVersions), which s3rver lacks: the local archive
    // front adds it (an unversioned bucket: each object once, as version "null").
    const front = await startS3ArchiveFront({
      host: "127.0.0.1",
      port: 0,
      upstream: s3.endpoint,
      region: "us-east-1",
      dataDir: join(dir, "lost-front"),
    });
    after(() => front.stop());
    const retrieved = await runCli(
      ["retrieve", "--namespace", "web", "--from", "2026-11-21T08:00:00Z", "--to", "2026-11-21T09:00:00Z"],
      ["--out", out, "--s3-endpoint", front.endpoint, "--bucket", "lost", "--prefix", "logs"],
    );
    assert.equal(retrieved.status, 1, retrieved.stdout + retrieved.stderr);
    const lossProblem = retrieved.stdout
      .split("\n")
      .find((l) => l.startsWith("PROBLEM lines lost on the node"));
    assert.ok(lossProblem !== undefined, retrieved.stdout);
    assert.ok(lossProblem.includes(loss!.key), lossProblem);
    assert.ok(lossProblem.includes(`lost ${loss!.record.bytes} bytes`), lossProblem);
    assert.match(lossProblem, /to rotation/);
    assert.match(retrieved.stdout, /retrieve: INCOMPLETE: 1 problem\(s\)/);
    const manifest = JSON.parse(await readFile(join(out, "manifest.json"), "utf8")) as Manifest;
    assert.deepEqual(
      manifest.lossRecords.records.map((r) => [r.key, r.checksum, r.record?.bytes]),
      [[loss!.key, "verified", loss!.record.bytes]],
    );
    assert.deepEqual(
      manifest.continuity?.nodes.map((n) => [n.node, n.verdict]),
      [["node-c", "continuous"]],
    );
  });

  it("drains on SIGTERM: cuts open batches, uploads them and exits 0, leaving nothing to redo", async () => {
    const root = join(dir, "drain-pods");
    const state = join(dir, "drain-state");
    const w = createWorkload({
      root,
      namespaces: ["web", "auth"],
      podsPerNamespace: 2,
      seed: 4,
      startMs: Date.UTC(2026, 10, 21, 9),
    });
    for (const writer of w.writers) writer.writeLines(3000);
    w.close();
    const args = shipArgs({ logs: `${root}/*/*/*.log*`, stateDir: state, bucket: "drain", node: "node-d" });
    // Long batch limits, so the batches are still open when SIGTERM arrives.
    const shipper = startShipper([...args, "--batch-max-age", "10m", "--drain-timeout", "20s"], s3.endpoint);
    // Wait until the committed offsets cover every byte: all lines are in open batches.
    const committed = async () =>
      (await committedCheckpoint(state)).files.reduce((n, f) => n + f.reader.offset, 0);
    await waitFor("the committed offsets to cover every byte", async () => (await committed()) >= w.bytes(), {
      detail: () => shipper.log().slice(-2000),
    });
    assert.equal(shipper.hasExited(), false, "still running before the signal");
    assert.equal(await shipper.kill("SIGTERM"), 0, shipper.log().slice(-2000));
    assert.match(shipper.log(), /"event":"shipper_drained","ms":\d+,"batchesLeftInSpool":0/);
    assert.deepEqual(await readdir(join(state, "spool")), [], "every batch left the spool");
    const archive = await readArchive(s3.endpoint, "drain");
    const problems = deliveryProblems(w.lids(), archive);
    assert.deepEqual(
      problems.missing.slice(0, 5),
      [],
      `${problems.missing.length} lines not shipped before the drain`,
    );
    assert.deepEqual(problems.duplicated, []);
    // A restart finds nothing left to do and ships nothing twice.
    await shipOnce(args, s3.endpoint);
    assert.equal((await readArchive(s3.endpoint, "drain")).records, archive.records);
  });

  it("follows a container restart and a pod deleted while its log is open, exactly once", async () => {
    const root = join(dir, "restart-pods");
    const state = join(dir, "restart-state");
    const base = { root, namespace: "web", container: "app", seed: 5, startMs: Date.UTC(2026, 10, 21, 7) };
    const first = new ContainerLogWriter({ ...base, pod: "api-1", id: 0 });
    const doomed = new ContainerLogWriter({ ...base, pod: "api-2", id: 1 });
    first.writeLines(2000);
    doomed.writeLines(2000);
    const args = shipArgs({ logs: `${root}/*/*/*.log*`, stateDir: state, bucket: "restart", node: "node-e" });
    const shipper = startShipper(
      [...args, "--scan-interval", "200ms", "--commit-interval", "200ms"],
      s3.endpoint,
    );
    const tracked = async () => {
      const paths = new Set((await committedCheckpoint(state)).files.map((f) => f.path));
      return paths.has(first.path) && paths.has(doomed.path);
    };
    await waitFor("both files in the checkpoint", tracked, { detail: () => shipper.log().slice(-2000) });
    // The pod is deleted: lines written just before are only reachable through the open descriptor.
    doomed.writeLines(3000);
    doomed.close();
    await rm(dirname(dirname(doomed.path)), { recursive: true });
    // The container restarts: kubelet's runtime writes 1.log beside 0.log.
    first.writeLines(500);
    first.close();
    const restarted = new ContainerLogWriter({ ...base, pod: "api-1", id: 2, uid: 0, restartCount: 1 });
    restarted.writeLines(2000);
    restarted.close();
    const expected = [...first.lids, ...doomed.lids, ...restarted.lids];
    // Stopped once the shipper has put every line in a batch (or, reading one twice, more).
    await shipper.waitForMetrics(
      `records_total to reach ${expected.length}`,
      (m) => m.sum("records_total") >= expected.length,
    );
    assert.equal(await shipper.kill("SIGTERM"), 0, shipper.log().slice(-2000));
    const archive = await readArchive(s3.endpoint, "restart");
    const problems = deliveryProblems(expected, archive);
    assert.deepEqual(
      problems.missing.slice(0, 5),
      [],
      `${problems.missing.length} of ${expected.length} lines missing`,
    );
    assert.deepEqual(problems.duplicated, []);
    assert.deepEqual(archive.withoutLid, []);
    assert.doesNotMatch(shipper.log(), /log_bytes_lost/);
  });
});
