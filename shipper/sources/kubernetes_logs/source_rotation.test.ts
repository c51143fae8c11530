// The finish grace of a rotated file runs from the evidence on disk (the rename's ctime,
// the last write's mtime), not from when this shipper first looked: a chain of rotated
// files found after a restart is read through at disk speed, while a file rotated just
// now still gets its grace for the tail containerd may write into it.

import assert from "node:assert/strict";
import { appendFileSync, mkdirSync, renameSync, utimesSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DEFAULT_POLICY } from "../../../lib/policy/policy.ts";
import { ShipperMetrics } from "../../metrics.ts";
import type { DecodedLine } from "./file_decoder.ts";
import { KubernetesLogsSource } from "./source.ts";

const GRACE_MS = 2000;

function source(root: string, out: string[], now: () => number): KubernetesLogsSource {
  return new KubernetesLogsSource({
    globs: [`${root}/*/*/*.log*`],
    node: "node-a",
    maxLineBytes: 1024 * 1024,
    multiline: [],
    policy: DEFAULT_POLICY,
    finishGraceMs: GRACE_MS,
    once: false,
    metrics: new ShipperMetrics({ defaultMetrics: false }),
    log: () => {},
    lineSink: () => (l: DecodedLine) => out.push(l.bytes.toString("utf8", l.start, l.end)),
    now,
  });
}

/** A container whose log was rotated `files - 1` times, each rotated file written `ageMs` ago. */
function chain(root: string, files: number, ageMs: number): { live: string; lines: string[] } {
  const dir = join(root, "web_api-7c9f_uid-1", "app");
  mkdirSync(dir, { recursive: true });
  const live = join(dir, "0.log");
  const lines: string[] = [];
  for (let f = 0; f < files; f++) {
    const text: string[] = [];
    for (let i = 0; i < 200; i++) {
      const line = `file ${f} line ${i}`;
      lines.push(line);
      text.push(`2026-11-21T12:00:0${f}.${String(i).padStart(9, "0")}Z stdout F ${line}\n`);
    }
    appendFileSync(live, text.join(""));
    if (f === files - 1) break;
    const rotated = `${live}.20261121-12000${f}`;
    renameSync(live, rotated);
    const at = (Date.now() - ageMs) / 1000;
    utimesSync(rotated, at, at);
  }
  return { live, lines };
}

/** Scans and reads until a pass reads nothing; no waiting, so only what needs no grace is read. */
async function readThrough(src: KubernetesLogsSource): Promise<void> {
  const buf = Buffer.allocUnsafe(16 * 1024);
  for (let pass = 0; pass < 50; pass++) {
    await src.scan();
    let read = 0;
    for (let step = 0; step < 20; step++) read += await src.readStep(buf);
    if (read === 0 && pass > 2) return;
  }
}

describe("finish grace from the evidence on disk", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logarchive-rotation-src-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads a backlog chain rotated long before the shipper started without waiting the grace per file", async () => {
    const root = join(dir, "backlog");
    const { lines } = chain(root, 5, 60_000);
    const out: string[] = [];
    // The shipper (re)starts a minute after the rotations: their ctime is that old.
    const src = source(root, out, () => Date.now() + 60_000);
    await readThrough(src);
    await src.close();
    assert.deepEqual(out, lines, "every rotated file finished at its end, then the live file read");
    assert.equal(src.files.filter((f) => f.state === "done").length, 4);
  });

  it("still gives a file rotated just now its grace, and finishes it once the grace has passed", async () => {
    const root = join(dir, "fresh");
    const { lines } = chain(root, 2, 0);
    const out: string[] = [];
    let clock = Date.now();
    const src = source(root, out, () => clock);
    await readThrough(src);
    assert.deepEqual(out, lines.slice(0, 200), "the live file waits while the rotated one may get a tail");
    assert.equal(src.files.filter((f) => f.state === "done").length, 0);
    clock += GRACE_MS + 1000;
    await readThrough(src);
    await src.close();
    assert.deepEqual(out, lines);
    assert.equal(src.files.filter((f) => f.state === "done").length, 1);
  });
});
