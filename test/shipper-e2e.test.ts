// The shipper against the local S3, end to end: generated container logs in, every line
// counted back out of the archive. Nothing lost, nothing doubled.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type LocalS3, startLocalS3 } from "../local/s3.ts";
import { deliveryProblems, readArchive, startShipper } from "../shipper/test_support/archive.ts";
import { ContainerLogWriter, createWorkload, random } from "../shipper/test_support/workload.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

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

describe("shipper end to end", { timeout: 600_000 }, () => {
  let dir: string;
  let s3: LocalS3;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logarchive-ship-e2e-"));
    s3 = await startLocalS3({
      host: "127.0.0.1",
      port: 0,
      dataDir: join(dir, "s3"),
      buckets: ["static", "live", "lost", "drain", "restart"],
    });
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
    const shipper = startShipper(
      [
        "--once",
        "--logs",
        `${root}/*/*/*.log*`,
        "--state-dir",
        join(dir, "static-state"),
        "--bucket",
        "static",
        "--node",
        "node-a",
      ],
      s3.endpoint,
    );
    assert.equal(await shipper.exited, 0, shipper.log().slice(-3000));
    const archive = await readArchive(s3.endpoint, "static");
    const problems = deliveryProblems(w.lids(), archive);
    assert.deepEqual(problems.missing.slice(0, 10), [], `${problems.missing.length} lines missing`);
    assert.deepEqual(problems.duplicated.slice(0, 10), [], `${problems.duplicated.length} lines doubled`);
    assert.deepEqual(problems.unexpected, []);
    assert.deepEqual(archive.invalid.slice(0, 5), []);
    assert.deepEqual(archive.inconsistent.slice(0, 5), []);
    assert.equal(archive.records, w.lids().length, "one record per logical line");
    assert.ok(archive.parseErrors > 0, "malformed lines are archived with parse_error");
    assert.ok(archive.objects > NAMESPACES.length, `${archive.objects} objects: batches split at the hour`);
    assert.ok(w.bytes() > 280 * 1e6, `workload is ${w.bytes()} bytes`);
    assert.ok(shipper.peakRss() < 256 * 2 ** 20, `peak RSS ${shipper.peakRss()} bytes`);
    assert.doesNotMatch(shipper.log(), /log_bytes_lost/);
  });

  it("survives 20+ SIGKILLs, an S3 outage with a full spool, and rotations under load, exactly once", async () => {
    const root = join(dir, "live-pods");
    const state = join(dir, "live-state");
    const rand = random(7);
    const w = createWorkload({
      root,
      namespaces: ["payments", "web", "search", "batch-jobs", "auth", "ml"],
      podsPerNamespace: 2,
      seed: 2,
      startMs: Date.UTC(2026, 10, 21, 13, 59, 50),
    });
    const args = [
      "--logs",
      `${root}/*/*/*.log*`,
      "--state-dir",
      state,
      "--bucket",
      "live",
      "--node",
      "node-b",
      "--batch-max-bytes",
      "64KiB",
      "--batch-max-age",
      "1s",
      "--commit-interval",
      "200ms",
      "--scan-interval",
      "200ms",
      "--spool-max-bytes",
      "256KiB",
      "--retry-initial",
      "50ms",
      "--retry-max",
      "500ms",
      "--upload-timeout",
      "2s",
      "--drain-timeout",
      "2s",
    ];
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
    const port = Number(new URL(s3.endpoint).port);
    let kills = 0;
    let sawBackpressure = false;
    for (let life = 0; life < 22; life++) {
      const shipper = startShipper(args, s3.endpoint);
      const until = Date.now() + 300 + rand() * 1200;
      while (Date.now() < until) {
        tick();
        await sleep(40);
      }
      if (life === 8) {
        // S3 goes away; the shipper spools until the 256 KiB spool is full, then stops
        // reading; it is killed during the outage and restarted before S3 returns.
        await s3.stop();
        for (let i = 0; i < 60; i++) {
          tick();
          await sleep(40);
        }
        sawBackpressure = /"event":"backpressure"/.test(shipper.log());
        shipper.child.kill("SIGKILL");
        await shipper.exited;
        kills++;
        const during = startShipper(args, `http://127.0.0.1:${port}`);
        for (let i = 0; i < 25; i++) {
          tick();
          await sleep(40);
        }
        s3 = await startLocalS3({
          host: "127.0.0.1",
          port,
          dataDir: join(dir, "s3"),
          buckets: ["static", "live", "lost", "drain", "restart"],
        });
        await sleep(500);
        during.child.kill("SIGKILL");
        await during.exited;
        kills++;
        continue;
      }
      shipper.child.kill("SIGKILL");
      await shipper.exited;
      kills++;
    }
    w.close();
    const final = startShipper(["--once", ...args], s3.endpoint);
    assert.equal(await final.exited, 0, final.log().slice(-3000));
    assert.ok(kills >= 20, `${kills} kills`);
    assert.ok(sawBackpressure, "the spool filled during the outage and reading paused");
    const archive = await readArchive(s3.endpoint, "live");
    const problems = deliveryProblems(w.lids(), archive);
    if (process.env.LOGARCHIVE_DEBUG) {
      const { writeFileSync } = await import("node:fs");
      writeFileSync(
        "/tmp/e2e-debug.json",
        JSON.stringify({ problems, withoutLid: archive.withoutLid, finalLog: final.log(), root, state }),
      );
    }
    assert.deepEqual(
      problems.missing.slice(0, 10),
      [],
      `${problems.missing.length} of ${w.lids().length} lines missing`,
    );
    assert.deepEqual(problems.duplicated.slice(0, 10), [], `${problems.duplicated.length} lines doubled`);
    assert.deepEqual(problems.unexpected, []);
    assert.deepEqual(archive.invalid.slice(0, 5), []);
    assert.deepEqual(archive.inconsistent.slice(0, 5), []);
    assert.deepEqual(archive.withoutLid, [], "no line was split in two");
    assert.equal(archive.records, w.lids().length);
    assert.doesNotMatch(final.log(), /log_bytes_lost/);
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
    const args = [
      "--logs",
      `${root}/*/*/*.log*`,
      "--state-dir",
      state,
      "--bucket",
      "lost",
      "--node",
      "node-c",
    ];
    // S3 unreachable: uploads fail, the 1 MiB spool fills and reading stops part-way.
    const stuck = startShipper(
      [...args, "--spool-max-bytes", "1MiB", "--read-chunk-bytes", "64KiB"],
      "http://127.0.0.1:9",
    );
    const deadline = Date.now() + 60_000;
    while (!/"event":"backpressure"/.test(stuck.log()) && Date.now() < deadline) await sleep(100);
    await sleep(1500);
    stuck.child.kill("SIGKILL");
    await stuck.exited;
    const { readFile, rm: remove } = await import("node:fs/promises");
    const checkpoint = JSON.parse(await readFile(join(state, "checkpoint.json"), "utf8"));
    const entry = checkpoint.files.find((f: { path: string }) => f.path === writer.path);
    assert.ok(entry, "the file is in the checkpoint");
    assert.ok(
      entry.reader.offset > 0 && entry.reader.offset < writer.bytes,
      `offset ${entry.reader.offset} of ${writer.bytes}`,
    );
    // While the shipper is down, the file is rotated away and deleted (kubelet's MaxFiles).
    await remove(writer.path);
    const resumed = startShipper(["--once", ...args], s3.endpoint);
    assert.equal(await resumed.exited, 0, resumed.log().slice(-2000));
    const lost = /"event":"log_bytes_lost","reason":"rotation","path":"([^"]+)","bytes":(\d+)/.exec(
      resumed.log(),
    );
    assert.ok(lost, "the loss is logged");
    assert.equal(lost[1], writer.path);
    assert.equal(Number(lost[2]), writer.bytes - entry.reader.offset);
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
    const args = [
      "--logs",
      `${root}/*/*/*.log*`,
      "--state-dir",
      state,
      "--bucket",
      "drain",
      "--node",
      "node-d",
    ];
    // Long batch limits, so the batches are still open when SIGTERM arrives.
    const shipper = startShipper([...args, "--batch-max-age", "10m", "--drain-timeout", "20s"], s3.endpoint);
    const deadline = Date.now() + 30_000;
    // Wait until the committed offsets cover every byte: all lines are in open batches.
    const { readFile } = await import("node:fs/promises");
    const committed = async () => {
      const cp = JSON.parse(
        await readFile(join(state, "checkpoint.json"), "utf8").catch(() => '{"files":[]}'),
      );
      return cp.files.reduce((n: number, f: { reader: { offset: number } }) => n + f.reader.offset, 0);
    };
    while ((await committed()) < w.bytes() && Date.now() < deadline) await sleep(100);
    assert.equal(shipper.child.exitCode, null, "still running before the signal");
    shipper.child.kill("SIGTERM");
    assert.equal(await shipper.exited, 0, shipper.log().slice(-2000));
    assert.match(shipper.log(), /"event":"shipper_drained","ms":\d+,"batchesLeftInSpool":0/);
    const { readdir } = await import("node:fs/promises");
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
    const again = startShipper(["--once", ...args], s3.endpoint);
    assert.equal(await again.exited, 0);
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
    const args = [
      "--logs",
      `${root}/*/*/*.log*`,
      "--state-dir",
      state,
      "--bucket",
      "restart",
      "--node",
      "node-e",
    ];
    const shipper = startShipper(
      [...args, "--scan-interval", "200ms", "--commit-interval", "200ms"],
      s3.endpoint,
    );
    const { readFile, rm: remove } = await import("node:fs/promises");
    const tracked = async (path: string) =>
      (await readFile(join(state, "checkpoint.json"), "utf8").catch(() => "")).includes(path);
    const deadline = Date.now() + 30_000;
    while (!((await tracked(first.path)) && (await tracked(doomed.path))) && Date.now() < deadline)
      await sleep(100);
    // The pod is deleted: lines written just before are only reachable through the open descriptor.
    doomed.writeLines(3000);
    doomed.close();
    await remove(dirname(dirname(doomed.path)), { recursive: true });
    // The container restarts: kubelet's runtime writes 1.log beside 0.log.
    first.writeLines(500);
    first.close();
    const restarted = new ContainerLogWriter({ ...base, pod: "api-1", id: 2, uid: 0, restartCount: 1 });
    restarted.writeLines(2000);
    restarted.close();
    await sleep(4000);
    shipper.child.kill("SIGTERM");
    assert.equal(await shipper.exited, 0, shipper.log().slice(-2000));
    const archive = await readArchive(s3.endpoint, "restart");
    const expected = [...first.lids, ...doomed.lids, ...restarted.lids];
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
