// Exactly once when the files change while a scan is looking at them. The shipper is a
// separate process from the writers: between the scan's listing, its stat of a name and
// its read of the file's head, the workload's rotations (shipper/test_support/workload.ts:
// rotateRename, rotateCopyTruncate, startLineAcrossRotation, the gzip of older rotated
// files and the unlink of their plain copy) can run. Each test puts one such operation at
// the exact point of the scan where it was seen to break exactly-once in
// test/shipper-e2e.test.ts, by running it from inside the scan's stat call, and then
// checks every line is archived once, whole, with no loss reported.
//
// Inode numbers are reused at once on ext4: a file created right after an unlink
// usually gets the freed number (the copy of a copytruncate, a new `0.log`).

import assert from "node:assert/strict";
import {
  appendFileSync,
  closeSync,
  copyFileSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire, syncBuiltinESMExports } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { DEFAULT_POLICY } from "../../../lib/policy/policy.ts";
import { ShipperMetrics } from "../../metrics.ts";
import type { FileCheckpoint } from "../../state/checkpoint.ts";
import type { DecodedLine } from "./file_decoder.ts";
import { KubernetesLogsSource } from "./source.ts";

// The source imports `stat` from node:fs/promises; replacing it on the CommonJS object and
// syncing the ES module bindings lets a test act at the moment a scan stats a name.
const fsPromises = createRequire(import.meta.url)("node:fs/promises") as typeof import("node:fs/promises");
const realStat = fsPromises.stat;

/** Runs `action` once, when a scan stats `path`: before the stat, or after it returned. */
function onStat(path: string, when: "before" | "after", action: () => void): void {
  let done = false;
  fsPromises.stat = (async (p: Parameters<typeof realStat>[0], opts?: Parameters<typeof realStat>[1]) => {
    const mine = !done && String(p) === path;
    if (mine && when === "before") {
      done = true;
      action();
    }
    const st = await realStat(p, opts as never);
    if (mine && when === "after") {
      done = true;
      action();
    }
    return st;
  }) as typeof realStat;
  syncBuiltinESMExports();
}

function restoreStat(): void {
  fsPromises.stat = realStat;
  syncBuiltinESMExports();
}

let clock = 0;
function cri(n: number): string {
  clock++;
  return `2026-11-21T13:59:50.${String(clock).padStart(9, "0")}Z stdout F line lid=${n} ${"x".repeat(n % 7 === 0 ? 300 : 40)}\n`;
}
function lines(from: number, to: number): string {
  let text = "";
  for (let n = from; n <= to; n++) text += cri(n);
  return text;
}
/** containerd's split of line `n` across a rotation: its P chunk ends one file, its F chunk starts the next. */
function partialStart(n: number): string {
  clock++;
  return `2026-11-21T13:59:50.${String(clock).padStart(9, "0")}Z stderr P lid=${n} first half across a rotation, \n`;
}
function partialEnd(): string {
  clock++;
  return `2026-11-21T13:59:50.${String(clock).padStart(9, "0")}Z stderr F second half after it\n`;
}
const stamp = (n: number) => `20260101-0000${String(n).padStart(2, "0")}`;

/** The workload's gzip of an older rotated file: `.tmp`, renamed to `.gz`, then the plain file unlinked. */
function gzipRotated(path: string): void {
  const fd = openSync(`${path}.tmp`, "w");
  writeSync(fd, gzipSync(readFileSync(path)));
  closeSync(fd);
  renameSync(`${path}.tmp`, `${path}.gz`);
  unlinkSync(path);
}

class Harness {
  readonly committed: string[] = [];
  readonly lost: Record<string, unknown>[] = [];
  checkpoint: FileCheckpoint[] = [];
  readonly root: string;
  #pending: string[] = [];
  src!: KubernetesLogsSource;

  constructor(root: string) {
    this.root = root;
  }

  /**
   * A run of the source; `finishGraceMs` and `now` as the shipper's (default: no grace, the
   * wall clock), so a test can let the grace pass without waiting for it.
   */
  start(once = false, timing: { finishGraceMs?: number; now?: () => number } = {}): KubernetesLogsSource {
    this.#pending = [];
    this.src = new KubernetesLogsSource(
      {
        globs: [`${this.root}/*/*/*.log*`],
        node: "node-a",
        maxLineBytes: 1024 * 1024,
        multiline: [],
        policy: DEFAULT_POLICY,
        finishGraceMs: timing.finishGraceMs ?? 0,
        ...(timing.now ? { now: timing.now } : {}),
        once,
        metrics: new ShipperMetrics({ defaultMetrics: false }),
        log: (_level, event, fields) => {
          if (event === "log_bytes_lost") this.lost.push(fields ?? {});
        },
        lineSink: () => (l: DecodedLine) => this.#pending.push(l.bytes.toString("utf8", l.start, l.end)),
      },
      // As the checkpoint file holds it: a copy, no shared objects.
      JSON.parse(JSON.stringify(this.checkpoint)) as FileCheckpoint[],
    );
    return this.src;
  }

  /** Reads until nothing more comes, without scanning. */
  async readAll(): Promise<void> {
    const buf = Buffer.allocUnsafe(4096);
    for (let i = 0; i < 1000; i++) {
      if ((await this.src.readStep(buf)) === 0 && (await this.src.readStep(buf)) === 0) return;
    }
    assert.fail("reading did not settle");
  }

  commit(): void {
    this.checkpoint = this.src.checkpoints();
    this.committed.push(...this.#pending);
    this.#pending = [];
  }

  /** SIGKILL: what was read since the last commit is gone, the checkpoint stays. */
  async kill(): Promise<void> {
    await this.src.close();
    this.#pending = [];
  }

  /** The final `--once` run from the committed checkpoint. */
  async shipOnce(): Promise<void> {
    const src = this.start(true);
    const buf = Buffer.allocUnsafe(4096);
    await src.scan();
    let i = 0;
    for (; i < 300; i++) {
      const n = await src.readStep(buf);
      if (n === 0 && src.caughtUp()) break;
      await src.scan();
    }
    assert.ok(i < 300, "the --once run caught up");
    this.commit();
    await src.close();
  }

  /** Every lid in `1..last` archived once, in whole records, and no loss reported. */
  assertExactlyOnce(last: number): void {
    const counts = new Map<number, number>();
    const withoutLid: string[] = [];
    for (const m of this.committed) {
      const lid = /lid=(\d+)/.exec(m);
      if (lid === null) withoutLid.push(m.slice(0, 60));
      else counts.set(Number(lid[1]), (counts.get(Number(lid[1])) ?? 0) + 1);
    }
    const missing: number[] = [];
    const doubled: number[] = [];
    for (let n = 1; n <= last; n++) {
      if (!counts.has(n)) missing.push(n);
      else if (counts.get(n)! > 1) doubled.push(n);
    }
    assert.deepEqual(
      { missing, doubled, withoutLid, lost: this.lost },
      { missing: [], doubled: [], withoutLid: [], lost: [] },
    );
  }
}

describe("scans racing the writers' rotations", () => {
  let dir: string;
  let n = 0;
  const container = () => {
    const d = join(dir, `r${n++}`, `web_api-${n}_uid-${n}`, "app");
    mkdirSync(d, { recursive: true });
    return { root: join(dir, `r${n - 1}`), d, live: join(d, "0.log") };
  };
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logarchive-scan-races-"));
  });
  afterEach(restoreStat);
  after(async () => {
    restoreStat();
    await rm(dir, { recursive: true, force: true });
  });

  it("a copytruncate between the stat of a new file and the read of its head reports no false loss after a restart", async () => {
    // e2e: `log_bytes_lost reason=rotation` for `0.log.<ts>` of 154,090 bytes, every line archived.
    const { root, live } = container();
    const h = new Harness(root);
    writeFileSync(live, lines(1, 40));
    // The scan stats 0.log at 40 lines; before it reads the head, the writer appends and
    // copytruncates (rotateCopyTruncate): the file is now empty, its lines in the copy.
    onStat(live, "after", () => {
      appendFileSync(live, lines(41, 50));
      copyFileSync(live, `${live}.${stamp(19)}`);
      truncateSync(live, 0);
    });
    const src = h.start();
    await src.scan();
    restoreStat();
    // Before any scan sees it again, the truncated file gets new lines, is renamed
    // (rotateRename), and at the next rotation gzipped and unlinked.
    appendFileSync(live, lines(51, 60));
    renameSync(live, `${live}.${stamp(20)}`);
    writeFileSync(live, lines(61, 70));
    gzipRotated(`${live}.${stamp(20)}`);
    renameSync(live, `${live}.${stamp(21)}`);
    writeFileSync(live, lines(71, 80));
    await src.scan();
    h.commit();
    await h.kill();
    await h.shipOnce();
    h.assertExactlyOnce(80);
  });

  it("a copy that takes the inode number of a finished rotated file is still found as the truncated file's copy", async () => {
    // e2e: 510 lines doubled, one contiguous range of one writer.
    const { root, live } = container();
    const h = new Harness(root);
    writeFileSync(live, lines(1, 20));
    const src = h.start();
    await src.scan();
    await h.readAll();
    // rotateRename: 0.log → 0.log.<ts>; the new 0.log gets lines 21–40.
    renameSync(live, `${live}.${stamp(1)}`);
    writeFileSync(live, lines(21, 40));
    await src.scan();
    await h.readAll();
    await src.scan();
    await h.readAll();
    assert.equal(src.files.find((f) => f.path === `${live}.${stamp(1)}`)?.state, "done");
    // The next rotation gzips it: its plain file is unlinked and its inode number freed,
    // while the finished file is remembered under it (so the .gz is not read again).
    const freedIno = statSync(`${live}.${stamp(1)}`).ino;
    gzipRotated(`${live}.${stamp(1)}`);
    await src.scan();
    appendFileSync(live, lines(41, 50));
    h.commit();
    // copytruncate after this scan's listing: the copy is made (taking the freed inode
    // number) and 0.log truncated before the scan stats it.
    const copy = `${live}.${stamp(2)}`;
    onStat(live, "before", () => {
      copyFileSync(live, copy);
      truncateSync(live, 0);
      appendFileSync(live, lines(51, 55));
    });
    await src.scan();
    restoreStat();
    if (statSync(copy).ino !== freedIno) {
      // The precondition this test is about: not every filesystem reuses a number at once.
      await h.kill();
      return;
    }
    for (let i = 0; i < 3; i++) {
      await h.readAll();
      await src.scan();
    }
    await h.readAll();
    h.commit();
    await h.kill();
    await h.shipOnce();
    h.assertExactlyOnce(55);
  });

  it("a copy listed while it is still being written is not read as a file of its own", async () => {
    const { root, live } = container();
    const h = new Harness(root);
    writeFileSync(live, lines(1, 30));
    const src = h.start();
    await src.scan();
    await h.readAll();
    appendFileSync(live, lines(31, 40));
    // copyFileSync creates the copy, then fills it: a scan can list it and read its head
    // part-way (here, its first 300 bytes).
    const copy = `${live}.${stamp(1)}`;
    const content = readFileSync(live);
    writeFileSync(copy, content.subarray(0, 300));
    await src.scan();
    await h.readAll();
    // The copy completes, 0.log is truncated (rotateCopyTruncate) and written again.
    writeFileSync(copy, content);
    truncateSync(live, 0);
    appendFileSync(live, lines(41, 45));
    for (let i = 0; i < 3; i++) {
      await src.scan();
      await h.readAll();
    }
    h.commit();
    await h.kill();
    await h.shipOnce();
    h.assertExactlyOnce(45);
  });

  for (const [written, after] of [
    ["less than was read", 52],
    ["more than was read", 120],
  ] as const) {
    it(`a file copytruncated, written (${written}), renamed and gzipped between two scans goes on in its copy`, async () => {
      // The scan that would see the truncation never lists the file: before it runs, the
      // truncated 0.log is rotated away (rotateRename) and gzipped and unlinked at the next
      // rotation, so only the held descriptor still reaches it.
      const { root, live } = container();
      const h = new Harness(root);
      writeFileSync(live, lines(1, 40));
      const src = h.start();
      await src.scan();
      await h.readAll();
      appendFileSync(live, lines(41, 50));
      copyFileSync(live, `${live}.${stamp(19)}`);
      truncateSync(live, 0);
      appendFileSync(live, lines(51, after));
      renameSync(live, `${live}.${stamp(20)}`);
      writeFileSync(live, lines(after + 1, after + 5));
      gzipRotated(`${live}.${stamp(20)}`);
      renameSync(live, `${live}.${stamp(21)}`);
      writeFileSync(live, lines(after + 6, after + 10));
      await h.readAll();
      for (let i = 0; i < 4; i++) {
        await src.scan();
        await h.readAll();
      }
      h.commit();
      // The running shipper reads it all: no restart is needed to find the copy.
      h.assertExactlyOnce(after + 10);
      await h.kill();
      await h.shipOnce();
      h.assertExactlyOnce(after + 10);
    });
  }

  it("counts what copytruncate loses (written between the copy and the truncation) and ships the rest once", async () => {
    // The one loss inherent in copytruncate (kubelet never uses it; logrotate does): lines
    // appended after the copy was made and before the truncation are in neither file.
    const { root, live } = container();
    const h = new Harness(root);
    writeFileSync(live, lines(1, 30));
    const src = h.start();
    await src.scan();
    await h.readAll();
    appendFileSync(live, lines(31, 40));
    copyFileSync(live, `${live}.${stamp(1)}`);
    appendFileSync(live, lines(41, 45));
    const gap = statSync(live).size - statSync(`${live}.${stamp(1)}`).size;
    await src.scan();
    truncateSync(live, 0);
    appendFileSync(live, lines(46, 50));
    for (let i = 0; i < 3; i++) {
      await src.scan();
      await h.readAll();
    }
    h.commit();
    await h.kill();
    const lids = h.committed.map((m) => Number(/lid=(\d+)/.exec(m)?.[1]));
    const expected = [...Array.from({ length: 40 }, (_, i) => i + 1), 46, 47, 48, 49, 50];
    assert.deepEqual(
      [...lids].sort((a, b) => a - b),
      expected,
      "every line once but the five in neither file",
    );
    assert.deepEqual(
      h.lost.map((l) => [l.reason, l.bytes]),
      [["truncation", gap]],
    );
  });

  it("a file renamed between the listing and the stat is still read before the file that replaced it", async () => {
    // e2e: a record "second half after it" without its lid: the F chunk of a line split
    // across a rotation was read before the file holding its P chunk had been found.
    const { root, live } = container();
    const h = new Harness(root);
    writeFileSync(live, lines(1, 10));
    const src = h.start();
    await src.scan();
    await h.readAll();
    // rotateRename, then the new 0.log ends with the P chunk of line 21 (startLineAcrossRotation).
    renameSync(live, `${live}.${stamp(1)}`);
    writeFileSync(live, lines(11, 20) + partialStart(21));
    // The next scan lists 0.log; before it stats the name the writer rotates again: the file
    // is now 0.log.<ts2> (not in this listing) and a new 0.log starts with the F chunk.
    onStat(live, "before", () => {
      renameSync(live, `${live}.${stamp(2)}`);
      writeFileSync(live, partialEnd() + lines(22, 30));
    });
    await src.scan();
    restoreStat();
    for (let i = 0; i < 4; i++) {
      await h.readAll();
      await src.scan();
    }
    await h.readAll();
    h.commit();
    await h.kill();
    await h.shipOnce();
    h.assertExactlyOnce(30);
    assert.ok(
      h.committed.includes("lid=21 first half across a rotation, second half after it"),
      "the split line is one record",
    );
  });
  /**
   * A container whose 0.log the source has read to its end (lines 1–20), ending with the P
   * chunk of line 21 that a rotation will split; the source's clock runs `skew.ms` ahead of
   * the wall clock, so a test can let the finish grace pass without waiting for it.
   */
  async function beforeSplitRotation(graceMs: number) {
    const { root, live } = container();
    const h = new Harness(root);
    const skew = { ms: 0 };
    writeFileSync(live, lines(1, 10));
    const src = h.start(false, { finishGraceMs: graceMs, now: () => Date.now() + skew.ms });
    await src.scan();
    await h.readAll();
    appendFileSync(live, lines(11, 20) + partialStart(21));
    return { live, h, src, skew };
  }

  /** Every line up to `last` once, line 21 whole across the rotation. */
  function assertSplitLineWhole(h: Harness, last: number): void {
    h.commit();
    h.assertExactlyOnce(last);
    assert.ok(
      h.committed.includes("lid=21 first half across a rotation, second half after it"),
      "the split line is one record",
    );
  }

  for (const graceMs of [0, 2000]) {
    it(`a file rotated right after the scan's stat is not finished before a later scan looked for its successor (grace ${graceMs} ms)`, async () => {
      // e2e (live-only glob, a loaded machine): "second half after it" without its lid, and
      // the first half archived as a line of its own. The scan stats 0.log while it is still
      // the live file; the writer then ends it with the P chunk of a line, rotates it and
      // starts the new 0.log with the F chunk. The scan learns of the rename only from the
      // held descriptor, so it has not listed the new 0.log. If the shipper then gets no CPU
      // until the grace is over (here: the clock jumps), the rotated file is read to its end
      // with no successor known: its P chunk must wait for the scan that finds the new file.
      const { live, h, src, skew } = await beforeSplitRotation(graceMs);
      onStat(live, "after", () => {
        renameSync(live, `${live}.${stamp(1)}`);
        writeFileSync(live, partialEnd() + lines(22, 30));
      });
      await src.scan();
      restoreStat();
      assert.equal(src.files.length, 1, "this scan has not listed the new 0.log");
      assert.notEqual(src.files[0]!.movedAt, null, "but it knows the file it holds was rotated");
      // The shipper stalls past the grace between this scan and its next read.
      skew.ms += graceMs + 1;
      await h.readAll();
      assert.equal(
        src.files[0]!.state,
        "active",
        "the rotated file waits for a scan to look for its successor",
      );
      assert.ok(src.needsScan, "and asks for that scan now");
      for (let i = 0; i < 3; i++) {
        await src.scan();
        await h.readAll();
      }
      assert.equal(src.files.find((f) => f.path === `${live}.${stamp(1)}`)?.state, "done");
      assertSplitLineWhole(h, 30);
      await h.kill();
    });
  }

  it("a rotated file whose successor is tracked is finished when its grace is over, without waiting for another full scan", async () => {
    // Rotation lag (issue 8 item 6): the last rotated file of a chain used to wait for a
    // full scan that started after its grace; a listing of its own directory showing every
    // newer file of its chain tracked is enough to know where its partial line goes.
    const graceMs = 2000;
    const { live, h, src, skew } = await beforeSplitRotation(graceMs);
    renameSync(live, `${live}.${stamp(1)}`);
    writeFileSync(live, partialEnd() + lines(22, 30));
    // The first scan finds the new 0.log, the second confirms it (TrackedFile.foundInScan).
    await src.scan();
    await src.scan();
    await h.readAll();
    const rotated = src.files.find((f) => f.path === `${live}.${stamp(1)}`)!;
    assert.equal(rotated.state, "active", "within its grace the rotated file is not finished");
    // The grace passes with no scan after it.
    skew.ms += graceMs + 1;
    const scans = src.scans;
    await h.readAll();
    assert.equal(src.scans, scans, "no scan ran");
    assert.equal(rotated.state, "done", "finished from the listing of its directory");
    assertSplitLineWhole(h, 30);
    await h.kill();
  });

  it("a rotated file is not finished early while its directory holds a newer file of its chain that is not tracked", async () => {
    // The scan lists the new 0.log, which is rotated again (to `.<stamp 2>`) and replaced
    // before the scan stats it: the file that holds the rest of the split line is then
    // under a name this scan did not list. Finishing the first file now would emit its P
    // chunk alone.
    const graceMs = 2000;
    const { live, h, src, skew } = await beforeSplitRotation(graceMs);
    renameSync(live, `${live}.${stamp(1)}`);
    writeFileSync(live, partialEnd() + lines(22, 30));
    onStat(live, "before", () => {
      renameSync(live, `${live}.${stamp(2)}`);
      writeFileSync(live, lines(31, 40));
    });
    await src.scan();
    restoreStat();
    assert.equal(
      src.files.some((f) => f.path === `${live}.${stamp(2)}`),
      false,
      "the file holding the F chunk is not tracked yet",
    );
    skew.ms += graceMs + 1;
    await h.readAll();
    assert.equal(
      src.files.find((f) => f.path === `${live}.${stamp(1)}`)?.state,
      "active",
      "the rotated file waits for a scan",
    );
    assert.ok(src.needsScan, "and asks for it");
    for (let i = 0; i < 3; i++) {
      await src.scan();
      await h.readAll();
    }
    assertSplitLineWhole(h, 40);
    await h.kill();
  });

  it("a file checkpointed while empty is not taken for another container's file that got its inode number", async () => {
    // e2e (restart during fast rotation): a 0.log tracked while still empty (no fingerprint)
    // was checkpointed, then rotated, gzipped and unlinked while the shipper was down; ext4
    // gave its inode number to another container's .gz. Taken for the empty file, that .gz
    // joined the first container's chain as a plain file: its first line's P chunk went
    // there, and its own content was counted lost to a "truncation".
    const { root, live } = container();
    const other = join(root, "web_search-1_uid-other", "app");
    mkdirSync(other, { recursive: true });
    const h = new Harness(root);
    writeFileSync(live, lines(1, 10));
    let src = h.start();
    await src.scan();
    await h.readAll();
    renameSync(live, `${live}.${stamp(1)}`);
    writeFileSync(live, "");
    await src.scan();
    await h.readAll();
    h.commit();
    const empty = h.checkpoint.find((cp) => cp.path === live);
    assert.equal(empty?.fingerprintBytes, 0, "the new 0.log was checkpointed while empty");
    await h.kill();
    // While the shipper is down: the empty 0.log is written, ends with a P chunk, is rotated
    // and gzipped; the new 0.log starts with the F chunk. The other container's .gz is made.
    appendFileSync(live, lines(11, 20) + partialStart(21));
    renameSync(live, `${live}.${stamp(2)}`);
    writeFileSync(live, partialEnd() + lines(22, 30));
    gzipRotated(`${live}.${stamp(2)}`);
    writeFileSync(join(other, `0.log.${stamp(1)}`), lines(31, 40) + partialStart(41));
    gzipRotated(join(other, `0.log.${stamp(1)}`));
    writeFileSync(join(other, "0.log"), partialEnd() + lines(42, 50));
    // The inode number the empty file had now names the other container's .gz.
    const reused = statSync(join(other, `0.log.${stamp(1)}.gz`));
    empty!.ino = reused.ino;
    empty!.dev = reused.dev;
    src = h.start();
    for (let i = 0; i < 4; i++) {
      await src.scan();
      await h.readAll();
    }
    h.commit();
    await h.kill();
    await h.shipOnce();
    h.assertExactlyOnce(50);
    for (const lid of [21, 41])
      assert.ok(
        h.committed.includes(`lid=${lid} first half across a rotation, second half after it`),
        `the line split across a rotation (lid ${lid}) is one record`,
      );
  });
});
