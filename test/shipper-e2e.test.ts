// The shipper against the local S3, end to end: generated container logs in, every line
// counted back out of the archive. Nothing lost, nothing doubled.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type LocalS3, startLocalS3 } from "../local/s3.ts";
import { deliveryProblems, readArchive, startShipper } from "../shipper/test_support/archive.ts";
import { createWorkload } from "../shipper/test_support/workload.ts";

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
      buckets: ["static", "live"],
    });
  });
  after(async () => {
    await s3?.stop();
    await rm(dir, { recursive: true, force: true });
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
    for (let round = 0; round < 6; round++) {
      for (const writer of w.writers) {
        writer.writeLines(700);
        if (round === 2) writer.startLineAcrossRotation();
        if (round === 2 || round === 4) writer.rotateRename();
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
    assert.ok(w.bytes() > 100 * 2 ** 20, `workload is ${w.bytes()} bytes`);
    assert.ok(shipper.peakRss() < 256 * 2 ** 20, `peak RSS ${shipper.peakRss()} bytes`);
    assert.doesNotMatch(shipper.log(), /log_bytes_lost/);
    console.error(
      "DEBUG",
      w.bytes(),
      archive.records,
      archive.objects,
      archive.storedBytes,
      archive.rawBytes,
      archive.parseErrors,
      shipper.peakRss(),
    );
  });
});
