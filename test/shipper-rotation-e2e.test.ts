// Rotation-following, end to end against the local S3: containers write fast and kubelet
// rotates their logs every 256 KiB (rename to `<n>.log.<ts>`, gzip the older ones), while
// the shipper runs live and is killed and restarted once. Once a file is tracked, its
// rotated names are followed in its directory and an open file is read to its end,
// whether or not the globs match the new name: with `*.log` (Fluent Bit's usual `Path`)
// as with `*.log*`, every line is archived exactly once and nothing is counted lost.

import assert from "node:assert/strict";
import { statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { LocalS3 } from "../local/s3.ts";
import { CheckpointStore } from "../shipper/state/checkpoint.ts";
import { deliveryProblems, readArchive, startShipper } from "../shipper/test_support/archive.ts";
import { startTestS3 } from "../shipper/test_support/harness.ts";
import { ContainerLogWriter } from "../shipper/test_support/workload.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const ROTATE_BYTES = 256 * 1024;

describe("shipper end to end, following kubelet's rotation", { timeout: 600_000 }, () => {
  let dir: string;
  let s3: LocalS3;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logarchive-rotation-e2e-"));
    s3 = await startTestS3(join(dir, "s3"), ["live-only", "rotated-too"]);
  });
  after(async () => {
    await s3?.stop();
    if (!process.env.LOGARCHIVE_DEBUG) await rm(dir, { recursive: true, force: true });
  });

  for (const [bucket, pattern] of [
    ["live-only", "*.log"],
    ["rotated-too", "*.log*"],
  ] as const) {
    it(`archives every line once with --logs '…/*/*/${pattern}' (${bucket}), through fast rotation and a restart`, async () => {
      const root = join(dir, `${bucket}-pods`);
      const writers = ["web", "auth", "search"].flatMap((namespace, i) =>
        [0, 1].map(
          (p) =>
            new ContainerLogWriter({
              root,
              namespace,
              pod: `api-${p}-6b7d9`,
              container: p === 0 ? "app" : "sidecar",
              id: i * 2 + p,
              seed: 500 + i * 2 + p,
              startMs: Date.UTC(2026, 10, 21, 13, 5),
            }),
        ),
      );
      const args = [
        "--logs",
        `${root}/*/*/${pattern}`,
        "--state-dir",
        join(dir, `${bucket}-state`),
        "--bucket",
        bucket,
        "--node",
        `node-${bucket}`,
        "--commit-interval",
        "100ms",
        "--scan-interval",
        "200ms",
        "--batch-max-age",
        "1s",
      ];
      for (const w of writers) w.writeLines(15);
      let shipper = startShipper(args, s3.endpoint);
      // The rotation starts once the shipper tracks every container: with `*.log`, files
      // rotated before it ever saw their chain are outside the globs.
      for (const deadline = Date.now() + 60_000; Date.now() < deadline; await sleep(50)) {
        const cp = await new CheckpointStore(join(dir, `${bucket}-state`)).load();
        if (writers.every((w) => cp.files.some((f) => f.path === w.path && f.reader.offset > 0))) break;
      }
      const logs: string[] = [];
      for (let round = 0; round < 120; round++) {
        for (const w of writers) {
          w.writeLines(15);
          if (statSync(w.path).size >= ROTATE_BYTES) {
            // Now and then a line whose P chunk is in the rotated file and its F in the new one.
            if (round % 3 === 0) w.startLineAcrossRotation();
            w.rotateRename();
          }
        }
        if (round === 60) {
          // Killed while chains are behind: the restarted shipper finds their files
          // rotated (and compressed) under names the globs may not list.
          shipper.child.kill("SIGKILL");
          await shipper.exited;
          logs.push(shipper.log());
          shipper = startShipper(args, s3.endpoint);
        }
        await sleep(10);
      }
      for (const w of writers) w.close();
      const lids = writers.flatMap((w) => w.lids);
      // Waits for the archive to hold every line (or for a loss to be counted), then stops
      // the shipper with its drain.
      let archive = await readArchive(s3.endpoint, bucket);
      for (const deadline = Date.now() + 180_000; Date.now() < deadline; await sleep(500)) {
        archive = await readArchive(s3.endpoint, bucket);
        if (lids.every((lid) => archive.lids.has(lid)) || /log_bytes_lost/.test(shipper.log())) break;
      }
      shipper.child.kill("SIGTERM");
      assert.equal(await shipper.exited, 0, shipper.log().slice(-3000));
      logs.push(shipper.log());
      archive = await readArchive(s3.endpoint, bucket);
      const problems = deliveryProblems(lids, archive);
      const lost = logs.join("").match(/"event":"log_bytes_lost".*/g) ?? [];
      assert.deepEqual(lost.slice(0, 3), [], `${lost.length} log_bytes_lost events`);
      assert.deepEqual(
        problems.missing.slice(0, 10),
        [],
        `${problems.missing.length} of ${lids.length} lines missing`,
      );
      assert.deepEqual(problems.duplicated.slice(0, 10), [], `${problems.duplicated.length} lines doubled`);
      assert.deepEqual(problems.unexpected, []);
      assert.deepEqual(archive.withoutLid, [], "a line split across a rotation is one record");
      assert.deepEqual(archive.invalid.slice(0, 5), []);
      assert.equal(archive.records, lids.length);
    });
  }
});
