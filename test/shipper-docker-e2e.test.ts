// The shipper on a Docker (json-file) node, end to end against the local S3: dockerd's
// files under /var/lib/docker/containers/<id>/<id>-json.log, reached through kubelet's
// symlinks, rotated by dockerd itself (`<id>-json.log` → `.1` → `.2` …, max-file) while
// they are written and while the shipper is down. Every line archived exactly once, long
// lines merged from their 16 KiB chunks, escapes and invalid UTF-8 decoded as dockerd
// meant them.

import assert from "node:assert/strict";
import { symlinkSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { gunzipSync } from "node:zlib";
import { GetObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { isIndexKey } from "../lib/keys/layout.ts";
import type { LocalS3 } from "../local/s3.ts";
import type { Checkpoint } from "../shipper/state/checkpoint.ts";
import { assertExactlyOnce, readArchive, s3Client } from "../shipper/test_support/archive.ts";
import { DockerLogWriter } from "../shipper/test_support/docker_workload.ts";
import {
  committedCheckpoint,
  pace,
  SUITE_GUARD_MS,
  shipArgs,
  shipOnce,
  startShipper,
  startTestS3,
  waitFor,
} from "../shipper/test_support/harness.ts";
import { ContainerLogWriter, LID, random } from "../shipper/test_support/workload.ts";

/** Every archived record's message, by the lid it carries; `parseErrors` holds the lids of records with parse_error. */
async function messagesByLid(
  endpoint: string,
  bucket: string,
): Promise<Map<string, string[]> & { parseErrors: Set<string> }> {
  const s3 = s3Client(endpoint);
  const out = Object.assign(new Map<string, string[]>(), { parseErrors: new Set<string>() });
  try {
    let token: string | undefined;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
      for (const o of page.Contents ?? []) {
        // Hour indexes (a run that spans an hour's end) hold no records.
        if (isIndexKey(o.Key!)) continue;
        const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: o.Key }));
        const body = gunzipSync(Buffer.from(await got.Body!.transformToByteArray())).toString("utf8");
        for (const line of body.split("\n")) {
          if (line === "") continue;
          const { message, parse_error } = JSON.parse(line) as { message: string; parse_error?: string };
          const lid = LID.exec(message)?.[1];
          if (lid !== undefined) out.set(lid, [...(out.get(lid) ?? []), message]);
          if (lid !== undefined && parse_error) out.parseErrors.add(lid);
        }
      }
      token = page.NextContinuationToken;
    } while (token !== undefined);
  } finally {
    s3.destroy();
  }
  return out;
}

/** The lines whose exact message is known whose archived message differs (or is missing). */
function wrongMessages(writers: readonly DockerLogWriter[], got: Map<string, string[]>): string[] {
  const wrong: string[] = [];
  for (const w of writers) {
    for (const [lid, want] of w.expected) {
      const have = got.get(lid);
      if (have?.length !== 1 || have[0] !== want) {
        wrong.push(
          `${lid}: ${JSON.stringify(have?.map((m) => m.slice(0, 200)))} ≠ ${JSON.stringify(want.slice(0, 200))}`,
        );
      }
    }
  }
  return wrong;
}

describe("shipper end to end on Docker json-file logs", { timeout: SUITE_GUARD_MS }, () => {
  let dir: string;
  let s3: LocalS3;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logarchive-docker-e2e-"));
    s3 = await startTestS3(join(dir, "s3"), ["docker", "mixed", "partial"]);
  });
  after(async () => {
    await s3?.stop();
    if (!process.env.LOGARCHIVE_DEBUG) await rm(dir, { recursive: true, force: true });
  });

  it("follows dockerd's rotation through /var/log/containers symlinks, across SIGKILLs, exactly once", async () => {
    const root = join(dir, "docker-node");
    const state = join(dir, "docker-state");
    const rand = random(11);
    const writers: DockerLogWriter[] = [];
    for (const [i, namespace] of ["payments", "web", "search"].entries()) {
      for (const p of [0, 1]) {
        writers.push(
          new DockerLogWriter({
            root,
            namespace,
            pod: `api-${p}-5d8f7b`,
            container: p === 0 ? "app" : "sidecar",
            id: i * 2 + p,
            seed: 100 + i * 2 + p,
            // Starts 10 s before an hour boundary: batches split there.
            startMs: Date.UTC(2026, 10, 21, 11, 59, 50),
            // Rotates every ~5 s at this rate; 4 rotated files hold ~20 s, more than the
            // shipper ever lags here (restarts, and ≥ 2 s per rotated file to finish it).
            maxSize: 128 * 1024,
            maxFile: 5,
          }),
        );
      }
    }
    // A containerd container beside them: its /var/log/containers link points at a CRI
    // file under /var/log/pods. (Not rotated: kubelet's rotated CRI files are not reachable
    // from /var/log/containers, which is why /var/log/pods is the default.)
    const containerd = new ContainerLogWriter({
      root: join(root, "pods"),
      namespace: "web",
      pod: "cri-0",
      container: "app",
      id: 9,
      seed: 109,
      startMs: Date.UTC(2026, 10, 21, 11, 59, 50),
    });
    symlinkSync(containerd.path, join(root, "containers", `cri-0_web_app-${"c".repeat(64)}.log`));
    const args = shipArgs(
      { logs: `${root}/containers/*.log`, stateDir: state, bucket: "docker", node: "node-docker" },
      {
        "batch-max-bytes": "64KiB",
        "batch-max-age": "1s",
        "commit-interval": "200ms",
        "scan-interval": "200ms",
        "drain-timeout": "2s",
      },
    );
    const tick = () => {
      for (const w of writers) w.writeLines(1);
      containerd.writeLines(1);
    };
    // Counted in ticks, not time: a loaded machine writes the same lines, only slower.
    const run = async (ticks: number) => {
      for (let i = 0; i < ticks; i++) {
        tick();
        await pace(50);
      }
    };
    let kills = 0;
    // Each life starts once the shipper runs (so a slow start-up cannot let dockerd rotate
    // unread files away) and outlasts the 2 s a rotated file waits before it is finished,
    // so the chains move on between kills.
    for (let life = 0; life < 5; life++) {
      const shipper = startShipper(args, s3.endpoint);
      await shipper.waitForEvent("shipper_started");
      await run(50 + Math.floor(rand() * 30));
      if (life === 1) {
        // Every container goes quiet for longer than the 2 s a finished-looking file is
        // given, then logs again: its file was not rotated, so it must still be read.
        await shipper.waitForMetrics("the shipper to catch up", (m) => m.sum("lag_bytes") === 0);
        await pace(3000);
        await run(20);
      }
      await shipper.kill("SIGKILL");
      kills++;
      // dockerd goes on writing (and rotating) while the shipper is down.
      for (let i = 0; i < 10; i++) tick();
    }
    // A last burst rotates every file at least once more with no shipper running.
    for (const w of writers) {
      const before = w.rotations;
      while (w.rotations === before) w.writeLines(5);
    }
    for (const w of writers) w.close();
    containerd.close();
    const final = await shipOnce(args, s3.endpoint);

    const lids = [...writers.flatMap((w) => w.lids), ...containerd.lids];
    const archive = await readArchive(s3.endpoint, "docker");
    assert.ok(kills >= 5, `${kills} kills`);
    assert.ok(
      writers.every((w) => w.rotations >= 2) && writers.some((w) => w.removedBytes > 0),
      `rotations ${writers.map((w) => w.rotations)}, max-file removed ${writers.map((w) => w.removedBytes)}`,
    );
    // withoutLid: no chunk of a split line became its own record.
    assertExactlyOnce(lids, archive);
    const split = writers.reduce((n, w) => n + w.split, 0);
    assert.ok(split >= 10, `${split} lines split into 16 KiB chunks`);
    const messages = await messagesByLid(s3.endpoint, "docker");
    const malformed = writers.flatMap((w) => w.malformed);
    assert.ok(malformed.length > 0);
    assert.deepEqual(
      writers.flatMap((w) => w.lids).filter((lid) => messages.parseErrors.has(lid)),
      malformed,
      "exactly the malformed lines are archived raw with parse_error",
    );
    const wrong = wrongMessages(writers, messages);
    assert.deepEqual(wrong.slice(0, 3), [], `${wrong.length} messages differ from what dockerd logged`);
    assert.doesNotMatch(final.log(), /log_bytes_lost|unrecognised_log_path/);
  });

  it("keeps a split line whole when dockerd deletes the file of its first chunks while the shipper is down", async () => {
    const root = join(dir, "partial-node");
    const state = join(dir, "partial-state");
    // max-file 2: the second rotation deletes the file the first one renamed to `.1`.
    const w = new DockerLogWriter({
      root,
      namespace: "web",
      pod: "long-0",
      container: "app",
      id: 70,
      seed: 70,
      startMs: Date.UTC(2026, 10, 21, 4),
      maxSize: 2 ** 20,
      maxFile: 2,
    });
    w.writeLines(30);
    const lid = w.startLongLine(40_000);
    const args = shipArgs({ logs: `${root}/containers/*.log`, stateDir: state, bucket: "partial" });
    const shipper = startShipper([...args, "--node", "node-p", "--commit-interval", "100ms"], s3.endpoint);
    // Killed once its first file is read to the end and committed, the line's start held.
    const cp = await waitFor(
      "the first file committed to its end",
      async () => {
        const c = await committedCheckpoint(state);
        return c.files[0]?.reader.offset === w.bytes && c;
      },
      { detail: () => shipper.log().slice(-2000) },
    );
    await shipper.kill("SIGKILL");
    assert.equal(cp.files[0]?.reader.offset, w.bytes, "the first file was read to its end");
    assert.ok(
      JSON.stringify(cp.files[0]?.merger).length > 32_000,
      "the line's first chunks are in the checkpoint",
    );
    w.rotate();
    w.finishLongLine();
    w.writeLines(10);
    w.rotate();
    w.writeLines(10);
    w.close();
    assert.ok(w.removedBytes > 0, "the first file was deleted");
    const final = await shipOnce([...args, "--node", "node-p"], s3.endpoint);
    const archive = await readArchive(s3.endpoint, "partial");
    // withoutLid: the last chunk is not a record of its own.
    assertExactlyOnce(w.lids, archive);
    assert.deepEqual(
      wrongMessages([w], await messagesByLid(s3.endpoint, "partial")),
      [],
      `line ${lid} whole`,
    );
    assert.doesNotMatch(final.log(), /log_bytes_lost/, "nothing unread was deleted");
  });

  it("ships a mixed node (CRI files and cri-dockerd symlinks under /var/log/pods) exactly once", async () => {
    const root = join(dir, "mixed-node");
    const pods = join(root, "pods");
    const state = join(dir, "mixed-state");
    const startMs = Date.UTC(2026, 10, 21, 6);
    const cri = [0, 1].map(
      (i) =>
        new ContainerLogWriter({
          root: pods,
          namespace: i === 0 ? "web" : "auth",
          pod: `cri-${i}`,
          container: "app",
          id: 50 + i,
          seed: 50 + i,
          startMs,
        }),
    );
    const docker = [0, 1].map(
      (i) =>
        new DockerLogWriter({
          root,
          layout: "pods",
          podsDir: pods,
          namespace: i === 0 ? "web" : "auth",
          pod: `dockerd-${i}`,
          container: "app",
          id: 60 + i,
          seed: 60 + i,
          startMs,
          maxSize: 48 * 1024,
          maxFile: 6,
        }),
    );
    const write = () => {
      for (const w of cri) w.writeLines(60);
      for (const w of docker) w.writeLines(60);
    };
    write();
    cri[0]!.rotateRename();
    write();
    const args = shipArgs({
      logs: `${pods}/*/*/*.log*`,
      stateDir: state,
      bucket: "mixed",
      node: "node-mixed",
    });
    const first = startShipper([...args, "--commit-interval", "100ms", "--batch-max-age", "1s"], s3.endpoint);
    // Killed once it has committed some of every file.
    const startedFiles = (cp: Checkpoint) => cp.files.filter((f) => f.reader.offset > 0).length;
    await waitFor(
      "part of four files committed",
      async () => startedFiles(await committedCheckpoint(state)) >= 4,
      {
        detail: () => first.log().slice(-2000),
      },
    );
    await first.kill("SIGKILL");
    cri[0]!.startLineAcrossRotation();
    cri[0]!.rotateRename();
    cri[1]!.rotateRename();
    write();
    for (const w of [...cri, ...docker]) w.close();
    const final = await shipOnce(args, s3.endpoint);

    const lids = [...cri.flatMap((w) => w.lids), ...docker.flatMap((w) => w.lids)];
    const archive = await readArchive(s3.endpoint, "mixed");
    assert.ok(
      docker.every((w) => w.rotations >= 2 && w.removedBytes === 0),
      "each Docker file rotated, none removed",
    );
    assertExactlyOnce(lids, archive);
    const wrong = wrongMessages(docker, await messagesByLid(s3.endpoint, "mixed"));
    assert.deepEqual(wrong.slice(0, 3), [], `${wrong.length} messages differ from what dockerd logged`);
    assert.doesNotMatch(final.log(), /log_bytes_lost|unrecognised_log_path/);
  });
});
