// One file reached by two globs, end to end against the local S3: kubelet's
// /var/log/containers/<pod>_<ns>_<container>-<id>.log symlink and the /var/log/pods file it
// points to are one file (device and inode), tracked once whatever names and globs reach
// it, within a scan, across scans and across a restart: every line is archived once, with
// the /var/log/pods name's metadata.

import assert from "node:assert/strict";
import { mkdirSync, symlinkSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { gunzipSync } from "node:zlib";
import { GetObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import type { LocalS3 } from "../local/s3.ts";
import { CheckpointStore } from "../shipper/state/checkpoint.ts";
import { deliveryProblems, readArchive, s3Client, startShipper } from "../shipper/test_support/archive.ts";
import { startTestS3 } from "../shipper/test_support/harness.ts";
import { ContainerLogWriter } from "../shipper/test_support/workload.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Every record in the bucket, parsed. */
async function records(endpoint: string, bucket: string): Promise<Record<string, unknown>[]> {
  const s3 = s3Client(endpoint);
  const out: Record<string, unknown>[] = [];
  try {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
    for (const o of page.Contents ?? []) {
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: o.Key }));
      const body = gunzipSync(Buffer.from(await got.Body!.transformToByteArray())).toString("utf8");
      for (const line of body.split("\n")) if (line !== "") out.push(JSON.parse(line));
    }
  } finally {
    s3.destroy();
  }
  return out;
}

describe("shipper end to end, one file reached by two globs", { timeout: 300_000 }, () => {
  let dir: string;
  let s3: LocalS3;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logarchive-multiglob-e2e-"));
    s3 = await startTestS3(join(dir, "s3"), ["both"]);
  });
  after(async () => {
    await s3?.stop();
    if (!process.env.LOGARCHIVE_DEBUG) await rm(dir, { recursive: true, force: true });
  });

  it("archives every line once, with the /var/log/pods metadata, across rotations and a restart", async () => {
    const pods = join(dir, "pods");
    const containers = join(dir, "containers");
    mkdirSync(containers, { recursive: true });
    const state = join(dir, "state");
    const writers = ["web", "auth", "batch-jobs"].map((namespace, id) => {
      const pod = `api-${id}-6b7d9`;
      const w = new ContainerLogWriter({
        root: pods,
        namespace,
        pod,
        container: "app",
        id,
        seed: 900 + id,
        startMs: Date.UTC(2026, 10, 21, 7, 30),
      });
      // kubelet's symlink to the file's current name, which rotation reuses for the new file.
      symlinkSync(w.path, join(containers, `${pod}_${namespace}_app-${String(id).repeat(64)}.log`));
      return w;
    });
    const lids = () => writers.flatMap((w) => w.lids);
    const args = [
      "--logs",
      `${pods}/*/*/*.log*,${containers}/*.log`,
      "--state-dir",
      state,
      "--bucket",
      "both",
      "--node",
      "node-both",
      "--commit-interval",
      "100ms",
      "--scan-interval",
      "200ms",
      "--batch-max-age",
      "1s",
      "--read-chunk-bytes",
      "16KiB",
    ];
    for (const w of writers) w.writeLines(400);
    writers[0]!.startLineAcrossRotation();
    writers[0]!.rotateRename();
    for (const w of writers) w.writeLines(400);

    // A live shipper reads part of it, across rotations, and is killed.
    const first = startShipper(args, s3.endpoint);
    for (let round = 0; round < 16; round++) {
      for (const w of writers) w.writeLines(50);
      if (round % 4 === 3) writers[round % writers.length]!.rotateRename();
      await sleep(50);
    }
    // Killed once it has committed part of every chain (kubelet's names and the links').
    for (const deadline = Date.now() + 60_000; Date.now() < deadline; await sleep(50)) {
      const cp = await new CheckpointStore(state).load();
      const dirs = new Set(cp.files.filter((f) => f.reader.offset > 0).map((f) => dirname(f.path)));
      if (writers.every((w) => dirs.has(w.dir))) break;
    }
    first.child.kill("SIGKILL");
    await first.exited;
    const cp = await new CheckpointStore(state).load();
    // (An inode number may come back for a new file while a finished one is remembered.)
    const inodes = cp.files.map((f) => `${f.dev}:${f.ino}:${f.fingerprint}`);
    assert.equal(new Set(inodes).size, inodes.length, "each file is checkpointed once");
    assert.ok(
      cp.files.every((f) => f.path.startsWith(pods)),
      "each file is tracked under its /var/log/pods name",
    );

    writers[1]!.startLineAcrossRotation();
    writers[1]!.rotateRename();
    for (const w of writers) w.writeLines(300);
    for (const w of writers) w.close();
    const again = startShipper(["--once", ...args], s3.endpoint);
    assert.equal(await again.exited, 0, again.log().slice(-3000));
    assert.doesNotMatch(again.log(), /log_bytes_lost/);

    const archive = await readArchive(s3.endpoint, "both");
    const problems = deliveryProblems(lids(), archive);
    assert.deepEqual(problems.missing.slice(0, 10), [], `${problems.missing.length} lines missing`);
    assert.deepEqual(
      problems.duplicated.slice(0, 10),
      [],
      `${problems.duplicated.length} of ${lids().length} lines archived twice`,
    );
    assert.deepEqual(archive.withoutLid, [], "no stray fragment of a line split across a rotation");
    assert.equal(archive.records, lids().length);
    const all = await records(s3.endpoint, "both");
    const withoutUid = all.filter((r) => typeof r.pod_uid !== "string" || "container_id" in r);
    assert.deepEqual(
      withoutUid.slice(0, 3),
      [],
      `${withoutUid.length} of ${all.length} records lack the /var/log/pods name's metadata`,
    );
  });
});
