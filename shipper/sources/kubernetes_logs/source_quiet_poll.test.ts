// A live file with nothing new is not read at every step: its reads back off, doubling up to
// quietPollMaxMs, and come back at once when a scan sees it grow, a read finds more, or its
// writer moves on (a rotated file is finished as promptly as before). The source's clock is
// injected: every wait here is a number the test sets, never a real delay.

import assert from "node:assert/strict";
import { appendFileSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DEFAULT_POLICY } from "../../../lib/policy/policy.ts";
import { ShipperMetrics } from "../../metrics.ts";
import type { DecodedLine } from "./file_decoder.ts";
import { KubernetesLogsSource } from "./source.ts";
import type { TrackedFile } from "./tracked_file.ts";

const MAX_MS = 1000;

function criLines(from: number, to: number): string {
  let text = "";
  for (let i = from; i <= to; i++)
    text += `2026-12-07T17:00:00.${String(i).padStart(9, "0")}Z stdout F line ${i}\n`;
  return text;
}

interface Setup {
  src: KubernetesLogsSource;
  live: string;
  out: string[];
  clock: { ms: number };
  /** Reads of each tracked file, by path at the time of the read. */
  reads: Map<string, number>;
  step(): Promise<number>;
}

let dir: string;
let n = 0;

function setup(o: { once?: boolean; quietPollMaxMs?: number } = {}): Setup {
  const root = join(dir, `c${n++}`);
  const pod = join(root, "web_api-7c9f_uid-1", "app");
  mkdirSync(pod, { recursive: true });
  const live = join(pod, "0.log");
  writeFileSync(live, criLines(1, 10));
  const out: string[] = [];
  // Ahead of every file time the test makes (their mtime and ctime count for the finish
  // grace, which this clock is also used for), and moved only by the test.
  const clock = { ms: Date.now() + 60_000 };
  const src = new KubernetesLogsSource({
    globs: [`${root}/*/*/*.log*`],
    node: "node-a",
    maxLineBytes: 1024 * 1024,
    multiline: [],
    policy: DEFAULT_POLICY,
    finishGraceMs: 0,
    once: o.once ?? false,
    quietPollMaxMs: o.quietPollMaxMs ?? MAX_MS,
    metrics: new ShipperMetrics({ defaultMetrics: false }),
    log: () => {},
    lineSink: () => (l: DecodedLine) => out.push(l.bytes.toString("utf8", l.start, l.end)),
    now: () => clock.ms,
  });
  const reads = new Map<string, number>();
  const counted = new WeakSet<TrackedFile>();
  const buf = Buffer.allocUnsafe(64 * 1024);
  const step = async () => {
    for (const tf of src.files) {
      if (counted.has(tf)) continue;
      counted.add(tf);
      const readChunk = tf.readChunk.bind(tf);
      tf.readChunk = (b, sink) => {
        reads.set(tf.path, (reads.get(tf.path) ?? 0) + 1);
        return readChunk(b, sink);
      };
    }
    return src.readStep(buf);
  };
  return { src, live, out, clock, reads, step };
}

/** Steps until two steps in a row read nothing (a file finished in one is followed by the next). */
async function readToEnd(s: Setup): Promise<void> {
  for (let i = 0; i < 100; i++) if ((await s.step()) === 0 && (await s.step()) === 0) return;
  assert.fail("reading did not reach the end");
}

/** A setup whose live file's 10 lines are all read: from here on the file is quiet. */
async function setupReadToEnd(o: Parameters<typeof setup>[0] = {}): Promise<Setup> {
  const s = setup(o);
  await s.src.scan();
  await s.src.scan();
  await readToEnd(s);
  return s;
}

/** Six quiet reads of the live file, each when it is due: its wait is now quietPollMaxMs. */
async function backOffToMax(s: Setup): Promise<void> {
  for (let i = 0; i < 6; i++) {
    s.clock.ms = s.src.files[0]!.nextReadAt;
    await s.step();
  }
}

describe("reads of quiet files back off", () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logarchive-quiet-poll-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("waits 100 ms, then twice as long after every quiet read, up to quietPollMaxMs", async () => {
    const s = await setupReadToEnd();
    const waits: number[] = [];
    for (let quiet = 0; quiet < 7; quiet++) {
      const before = s.reads.get(s.live) ?? 0;
      // Many steps at one instant: none reads the quiet file.
      for (let i = 0; i < 5; i++) await s.step();
      assert.equal(s.reads.get(s.live), before, "no read before its time");
      const wait = s.src.files[0]!.nextReadAt - s.clock.ms;
      s.clock.ms += wait - 1;
      await s.step();
      assert.equal(s.reads.get(s.live), before, "nor 1 ms before it");
      s.clock.ms += 1;
      await s.step();
      assert.equal(s.reads.get(s.live), before + 1, "read once it is due");
      waits.push(wait);
    }
    assert.deepEqual(waits, [100, 200, 400, 800, 1000, 1000, 1000]);
    assert.equal(s.out.length, 10);
    await s.src.close();
  });

  it("reads a quiet file at the next step once a scan sees it grow", async () => {
    const s = await setupReadToEnd();
    await backOffToMax(s);
    assert.equal(s.src.files[0]!.quietWaitMs, MAX_MS);
    appendFileSync(s.live, criLines(11, 12));
    assert.equal(await s.step(), 0, "not due, and no scan has seen it grow");
    await s.src.scan();
    assert.ok((await s.step()) > 0, "read at the first step after the scan, the clock unmoved");
    assert.deepEqual(s.out.slice(-2), ["line 11", "line 12"]);
    assert.equal(s.src.files[0]!.quietWaitMs, 0, "and polled at every step again");
    await s.src.close();
  });

  it("reads a file that grew without a scan within quietPollMaxMs", async () => {
    const s = await setupReadToEnd();
    await backOffToMax(s);
    appendFileSync(s.live, criLines(11, 11));
    s.clock.ms += MAX_MS;
    assert.ok((await s.step()) > 0);
    assert.equal(s.out.at(-1), "line 11");
    await s.src.close();
  });

  it("does not make a rotated file wait: it is read on and finished at once", async () => {
    const s = await setupReadToEnd();
    await backOffToMax(s);
    // The quiet file is rotated as it is (no scan sees it grow); the new 0.log gets lines.
    renameSync(s.live, `${s.live}.20261207-170000`);
    writeFileSync(s.live, criLines(11, 14));
    await s.src.scan();
    await readToEnd(s);
    await s.src.scan();
    await s.src.scan();
    await readToEnd(s);
    assert.equal(s.src.files.find((f) => f.path === `${s.live}.20261207-170000`)?.state, "done");
    assert.deepEqual(s.out.slice(10), ["line 11", "line 12", "line 13", "line 14"], "the clock unmoved");
    await s.src.close();
  });

  for (const [name, o] of [
    ["with --once", { once: true }],
    ["with quietPollMaxMs 0", { quietPollMaxMs: 0 }],
  ] as const) {
    it(`reads every file at every step ${name}`, async () => {
      const s = await setupReadToEnd(o);
      const before = s.reads.get(s.live) ?? 0;
      for (let i = 0; i < 5; i++) await s.step();
      assert.equal(s.reads.get(s.live), before + 5);
      await s.src.close();
    });
  }
});
