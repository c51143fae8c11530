// A node reboot, simulated, end to end against the local S3. After a reboot the device
// numbers of the filesystems can change (and the checkpoint holds each file's dev/ino);
// inodes on the same filesystem stay, but a file copied to a new filesystem keeps only
// its content. We cannot reboot here, so the shipper is stopped (SIGKILL, or SIGTERM with
// its drain), its checkpoint is rewritten on disk as the rebooted node would see it, the
// containers write on (and rotate), and the shipper is started again.
//
// The promise under test (shipper/sources/kubernetes_logs/source.ts): a checkpointed file
// is the same file when its dev/ino match and its first KiB still has its fingerprint, or,
// failing that, when a file of its chain (same directory and name) has its fingerprint;
// it then continues from its committed offset. A file whose fingerprint matches but whose
// dev/ino differ is that file, never read again from its start; an inode number that now
// names other content is a new file. So every line is archived exactly once.

import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { after, before, describe, it } from "node:test";
import type { LocalS3 } from "../local/s3.ts";
import { type Checkpoint, CheckpointStore, type FileCheckpoint } from "../shipper/state/checkpoint.ts";
import { assertExactlyOnce, readArchive } from "../shipper/test_support/archive.ts";
import {
  committedCheckpoint,
  SUITE_GUARD_MS,
  shipArgs,
  shipOnce,
  startShipper,
  startTestS3,
  waitFor,
} from "../shipper/test_support/harness.ts";
import { ContainerLogWriter, type WriterOptions } from "../shipper/test_support/workload.ts";

/** Rewrites the committed checkpoint in place, as the shipper's own store reads and writes it. */
async function rewriteCheckpoint(
  stateDir: string,
  change: (files: FileCheckpoint[]) => void,
): Promise<Checkpoint> {
  const store = new CheckpointStore(stateDir);
  const checkpoint = await store.load();
  change(checkpoint.files);
  await store.save(checkpoint);
  return checkpoint;
}

/** Every regular file under `dir`. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

const BUCKETS = ["dev-sigkill", "dev-sigterm", "copied", "moved", "reused"];

describe("shipper end to end across a node reboot", { timeout: SUITE_GUARD_MS }, () => {
  let dir: string;
  let s3: LocalS3;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logarchive-reboot-e2e-"));
    s3 = await startTestS3(join(dir, "s3"), BUCKETS);
  });
  after(async () => {
    await s3?.stop();
    if (!process.env.LOGARCHIVE_DEBUG) await rm(dir, { recursive: true, force: true });
  });

  /**
   * Six containers write while a shipper runs; it is stopped with `signal` once it has
   * committed part of every file. Returns the writers (still open) and the shipper's args.
   */
  async function shipPart(bucket: string, signal: "SIGKILL" | "SIGTERM") {
    const root = join(dir, `${bucket}-pods`);
    const state = join(dir, `${bucket}-state`);
    const options: WriterOptions[] = ["web", "auth", "batch-jobs"].flatMap((namespace, i) =>
      [0, 1].map((p) => ({
        root,
        namespace,
        pod: `api-${p}-6b7d9`,
        container: p === 0 ? "app" : "sidecar",
        id: i * 2 + p,
        seed: 300 + i * 2 + p,
        startMs: Date.UTC(2026, 10, 21, 3, 59, 55),
      })),
    );
    const writers = options.map((o) => new ContainerLogWriter(o));
    for (const w of writers) w.writeLines(1500);
    // Rotated before the shipper starts: its chain holds a rotated file and the live one.
    writers[2]!.rotateRename();
    const args = shipArgs(
      { logs: `${root}/*/*/*.log*`, stateDir: state, bucket, node: `node-${bucket}` },
      {
        "commit-interval": "100ms",
        "scan-interval": "200ms",
        "batch-max-age": "1s",
        "read-chunk-bytes": "16KiB",
      },
    );
    const shipper = startShipper(args, s3.endpoint);
    // Writing on while the shipper reads, until it has committed part of every file.
    await waitFor(
      "part of every file committed",
      async () => {
        const cp = await committedCheckpoint(state);
        const started = new Set(cp.files.filter((f) => f.reader.offset > 0).map((f) => f.path));
        return writers.every((w) => started.has(w.path));
      },
      {
        whilePolling: () => {
          for (const w of writers) w.writeLines(20);
        },
        intervalMs: 50,
        detail: () => shipper.log().slice(-2000),
      },
    );
    // A line's P chunk, read and committed before the stop; its F chunk comes after the
    // reboot, in the next file. The other containers write on until the stop.
    writers[0]!.startLineAcrossRotation();
    const first = writers[0]!;
    await waitFor(
      "the P chunk committed",
      async () =>
        (await committedCheckpoint(state)).files.find((f) => f.path === first.path)?.reader.offset ===
        statSync(first.path).size,
      {
        whilePolling: () => {
          for (const w of writers.slice(1)) w.writeLines(20);
        },
        intervalMs: 50,
        detail: () => shipper.log().slice(-2000),
      },
    );
    assert.equal(await shipper.kill(signal), signal === "SIGTERM" ? 0 : null, shipper.log().slice(-2000));
    if (signal === "SIGTERM") assert.match(shipper.log(), /"event":"shipper_drained"/);
    return { root, state, options, writers, args };
  }

  /**
   * The containers write on after the reboot. The file holding a line's P chunk is rotated
   * first (its F chunk opens the new file); another is rotated twice, so its checkpointed
   * file survives only gzipped.
   */
  function writeAfterReboot(writers: ContainerLogWriter[]) {
    writers[0]!.rotateRename();
    for (const w of writers) w.writeLines(400);
    writers[1]!.rotateRename();
    writers[1]!.writeLines(200);
    writers[1]!.rotateRename();
    for (const w of writers) w.writeLines(400);
    for (const w of writers) w.close();
  }

  async function restartAndCheck(args: string[], bucket: string, lids: string[]) {
    const again = await shipOnce(args, s3.endpoint);
    const archive = await readArchive(s3.endpoint, bucket);
    // Doubled lines would be a file read again from its start; a record without a lid, the
    // line across the rotation split in two.
    assertExactlyOnce(lids, archive);
    assert.doesNotMatch(again.log(), /log_bytes_lost/);
  }

  /** Asserts the stopped shipper had shipped part, not all and not none, of its files. */
  function assertPartlyShipped(cp: Checkpoint, writers: ContainerLogWriter[], signal: string) {
    const live = writers.map((w) => cp.files.find((f) => f.path === w.path && !f.done));
    assert.ok(
      live.every((f) => f !== undefined && f.reader.offset > 0),
      "every live file was partly read before the reboot",
    );
    if (signal === "SIGKILL") {
      assert.ok(
        live.some((f, i) => f!.reader.offset < statSync(writers[i]!.path).size),
        "some file was still being read when the shipper was killed",
      );
    }
  }

  for (const signal of ["SIGKILL", "SIGTERM"] as const) {
    it(`resumes every file from its offset when the device numbers change (${signal})`, async () => {
      const bucket = signal === "SIGKILL" ? "dev-sigkill" : "dev-sigterm";
      const { state, writers, args } = await shipPart(bucket, signal);
      // The reboot: every filesystem comes back under a new device number; inodes stay.
      const devs = new Set<number>();
      const cp = await rewriteCheckpoint(state, (files) => {
        for (const f of files) {
          devs.add(f.dev);
          f.dev += 1000;
        }
      });
      assert.ok(cp.files.length >= writers.length + 1, `${cp.files.length} files in the checkpoint`);
      assert.ok(
        writers.every((w) => !devs.has(statSync(w.path).dev + 1000)),
        "the checkpoint's devices are not the files'",
      );
      assertPartlyShipped(cp, writers, signal);
      writeAfterReboot(writers);
      await restartAndCheck(
        args,
        bucket,
        writers.flatMap((w) => w.lids),
      );
    });
  }

  for (const where of ["at the same path", "mounted at another path"] as const) {
    it(`continues files copied to a new filesystem ${where} (new device and inodes, same content), reading nothing twice`, async () => {
      const bucket = where === "at the same path" ? "copied" : "moved";
      const { root, state, options, writers, args } = await shipPart(bucket, "SIGKILL");
      for (const w of writers) w.close();
      const cp = await rewriteCheckpoint(state, (files) => {
        for (const f of files) f.dev += 1000;
      });
      assertPartlyShipped(cp, writers, "SIGKILL");
      assert.ok(cp.files.every((f) => f.path.startsWith(root)));
      // Restored onto a new disk: every file, rotated and compressed ones too, is a copy,
      // in place or under another mount point (the shipper's globs follow it there).
      const newRoot = where === "at the same path" ? root : join(dir, `${bucket}-newdisk`, "pods");
      const before = new Map(filesUnder(root).map((f) => [f, statSync(f).ino]));
      for (const f of before.keys()) {
        const to = join(newRoot, relative(root, f));
        mkdirSync(dirname(to), { recursive: true });
        copyFileSync(f, `${to}.copy`);
        renameSync(`${to}.copy`, to);
      }
      if (newRoot !== root) rmSync(root, { recursive: true });
      assert.ok(
        [...before].every(([f, ino]) => statSync(join(newRoot, relative(root, f))).ino !== ino),
        "every file has a new inode",
      );
      // The containers come back and append to the copies (new lids, same files).
      const after = options.map(
        (o) => new ContainerLogWriter({ ...o, root: newRoot, id: o.id + 100, uid: o.id }),
      );
      assert.deepEqual(
        after.map((w) => relative(newRoot, w.path)),
        writers.map((w) => relative(root, w.path)),
      );
      writeAfterReboot(after);
      await restartAndCheck(
        args.map((a) => a.replace(root, newRoot)),
        bucket,
        [...writers, ...after].flatMap((w) => w.lids),
      );
    });
  }

  it("treats an inode number that now names another file's content as that other file", async () => {
    const { state, writers, args } = await shipPart("reused", "SIGKILL");
    // Same device, but each checkpointed inode number now holds another file (the next
    // one's): the inode fast path must be checked against the fingerprint every time.
    const cp = await rewriteCheckpoint(state, (files) => {
      const inos = files.map((f) => f.ino);
      files.forEach((f, i) => {
        f.ino = inos[(i + 1) % inos.length]!;
      });
    });
    assertPartlyShipped(cp, writers, "SIGKILL");
    writeAfterReboot(writers);
    await restartAndCheck(
      args,
      "reused",
      writers.flatMap((w) => w.lids),
    );
  });
});
