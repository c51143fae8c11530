// `ship --once` on files that are still being written, end to end against the local S3.
// --once reads what is there and commits the offsets, but a file its writer may still
// append to stays live in the checkpoint: a later --once run, or the DaemonSet's live
// shipper on the same state directory, ships what was appended, exactly once.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { LocalS3 } from "../local/s3.ts";
import { CheckpointStore } from "../shipper/state/checkpoint.ts";
import { deliveryProblems, readArchive, startShipper } from "../shipper/test_support/archive.ts";
import { startTestS3 } from "../shipper/test_support/harness.ts";
import { type ContainerLogWriter, namespaceWriters } from "../shipper/test_support/workload.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("ship --once on live files", { timeout: 300_000 }, () => {
  let dir: string;
  let s3: LocalS3;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logarchive-once-e2e-"));
    s3 = await startTestS3(join(dir, "s3"), ["once", "healed"]);
  });
  after(async () => {
    await s3?.stop();
    if (!process.env.LOGARCHIVE_DEBUG) await rm(dir, { recursive: true, force: true });
  });

  function writers(root: string): ContainerLogWriter[] {
    return namespaceWriters(root, ["web", "auth"], { seed: 800, startMs: Date.UTC(2026, 10, 21, 9, 10) });
  }

  function argsFor(root: string, state: string, bucket: string): string[] {
    return [
      "--logs",
      `${root}/*/*/*.log*`,
      "--state-dir",
      state,
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
  }

  async function once(args: string[]): Promise<string> {
    const run = startShipper(["--once", ...args], s3.endpoint);
    assert.equal(await run.exited, 0, run.log().slice(-3000));
    return run.log();
  }

  /** Runs the live shipper until the archive holds every one of `lids`, then stops it with its drain. */
  async function live(args: string[], bucket: string, lids: readonly string[]): Promise<string> {
    const run = startShipper(args, s3.endpoint);
    const deadline = Date.now() + 120_000;
    for (;;) {
      const archive = await readArchive(s3.endpoint, bucket);
      if (lids.every((lid) => archive.lids.has(lid)) || Date.now() > deadline) break;
      await sleep(250);
    }
    run.child.kill("SIGTERM");
    assert.equal(await run.exited, 0, run.log().slice(-3000));
    return run.log();
  }

  async function assertExactlyOnce(bucket: string, lids: readonly string[]): Promise<void> {
    const archive = await readArchive(s3.endpoint, bucket);
    const problems = deliveryProblems(lids, archive);
    assert.deepEqual(
      problems.missing.slice(0, 10),
      [],
      `${problems.missing.length} of ${lids.length} lines missing`,
    );
    assert.deepEqual(problems.duplicated.slice(0, 10), [], `${problems.duplicated.length} lines doubled`);
    assert.deepEqual(problems.unexpected, []);
    assert.deepEqual(archive.withoutLid, [], "the line across the rotation is one record");
    assert.deepEqual(archive.invalid.slice(0, 5), []);
    assert.equal(archive.records, lids.length);
  }

  it("leaves live files live: a second --once and then the live shipper ship what was appended, once", async () => {
    const root = join(dir, "once-pods");
    const state = join(dir, "once-state");
    const args = argsFor(root, state, "once");
    const w = writers(root);
    for (const x of w) x.writeLines(300);
    // One chain has a rotated file, which --once may finish, and a line split across it.
    w[1]!.startLineAcrossRotation();
    w[1]!.rotateRename();
    for (const x of w) x.writeLines(100);

    await once(args);
    const cp = await new CheckpointStore(state).load();
    for (const x of w) {
      const f = cp.files.find((c) => c.path === x.path);
      assert.ok(f, `${x.path} is in the checkpoint`);
      assert.equal(f.done, false, `${x.path} may still be written: it stays live`);
      assert.ok(f.reader.offset > 0);
    }
    assert.ok(
      cp.files.some((f) => f.path !== w[1]!.path && f.path.startsWith(w[1]!.path) && f.done),
      "the rotated file read to its end is done",
    );

    for (const x of w) x.writeLines(200);
    // A line whose P chunk comes before the next --once and whose F chunk after it.
    w[0]!.startLineAcrossRotation();
    await once(args);
    w[0]!.rotateRename();
    for (const x of w) x.writeLines(200);
    await live(
      args,
      "once",
      w.flatMap((x) => x.lids),
    );
    for (const x of w) x.close();
    // Whatever the live shipper left (the partial's end written by close()) goes with a last --once.
    await once(args);
    await assertExactlyOnce(
      "once",
      w.flatMap((x) => x.lids),
    );
  });

  it("reopens a live file an earlier version's --once marked done", async () => {
    const root = join(dir, "healed-pods");
    const state = join(dir, "healed-state");
    const args = argsFor(root, state, "healed");
    const w = writers(root);
    for (const x of w) x.writeLines(300);
    await once(args);
    // What an earlier shipper's --once left: every live file done at its end.
    const store = new CheckpointStore(state);
    const cp = await store.load();
    for (const f of cp.files) f.done = true;
    await store.save(cp);
    for (const x of w) x.writeLines(200);
    await once(args);
    for (const x of w) x.close();
    await assertExactlyOnce(
      "healed",
      w.flatMap((x) => x.lids),
    );
  });
});
