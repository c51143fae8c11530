// A live file shipped and checkpointed, then appended to, rotated (and compressed) and
// replaced by a new live file while the shipper is stopped: the restarted shipper finds
// the rotated file by its identity in its directory, whatever the globs list, and reads it
// on from its offset. Nothing is lost or read twice, and no tracked file leaves the
// checkpoint unfinished without being counted lost.

import assert from "node:assert/strict";
import {
  appendFileSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { DEFAULT_POLICY } from "../../../lib/policy/policy.ts";
import { ShipperMetrics } from "../../metrics.ts";
import type { FileCheckpoint } from "../../state/checkpoint.ts";
import type { DecodedLine } from "./file_decoder.ts";
import { KubernetesLogsSource } from "./source.ts";

function criLines(from: number, to: number): string {
  let text = "";
  for (let i = from; i <= to; i++)
    text += `2026-12-02T18:40:00.${String(i).padStart(9, "0")}Z stdout F line ${i}\n`;
  return text;
}

function linesOf(from: number, to: number): string[] {
  return Array.from({ length: to - from + 1 }, (_, i) => `line ${from + i}`);
}

interface Run {
  messages: string[];
  lost: number;
  lostEvents: Record<string, unknown>[];
  checkpoints: FileCheckpoint[];
}

/** One `--once` run over `restore`: scans and reads until everything present is read. */
async function shipOnce(globs: string[], restore: FileCheckpoint[]): Promise<Run> {
  const messages: string[] = [];
  const lostEvents: Record<string, unknown>[] = [];
  const metrics = new ShipperMetrics({ defaultMetrics: false });
  const src = new KubernetesLogsSource(
    {
      globs,
      node: "node-a",
      maxLineBytes: 1024 * 1024,
      multiline: [],
      policy: DEFAULT_POLICY,
      finishGraceMs: 0,
      once: true,
      metrics,
      log: (_level, event, fields) => {
        if (event === "log_bytes_lost") lostEvents.push(fields ?? {});
      },
      lineSink: () => (l: DecodedLine) => messages.push(l.bytes.toString("utf8", l.start, l.end)),
    },
    restore,
  );
  const buf = Buffer.allocUnsafe(16 * 1024);
  await src.scan();
  let i = 0;
  for (; i < 200 && !(src.caughtUp() && (await src.readStep(buf)) === 0); i++) {
    await src.readStep(buf);
    await src.scan();
  }
  assert.ok(i < 200, "the run caught up");
  const checkpoints = src.checkpoints();
  await src.close();
  const lost = (await metrics.bytesLost.get()).values.reduce((sum, v) => sum + v.value, 0);
  return { messages, lost, lostEvents, checkpoints };
}

interface Layout {
  podsDir: string;
  live: string;
  globs: { rotatedToo: string[]; withContainers: string[]; liveOnly: string[] };
}

function layout(root: string): Layout {
  const podsDir = join(root, "pods", "web_api-7c9f_uid-1", "app");
  const containers = join(root, "containers");
  mkdirSync(podsDir, { recursive: true });
  mkdirSync(containers, { recursive: true });
  const live = join(podsDir, "0.log");
  writeFileSync(live, criLines(1, 50));
  symlinkSync(live, join(containers, `api-7c9f_web_app-${"a".repeat(64)}.log`));
  return {
    podsDir,
    live,
    globs: {
      rotatedToo: [`${root}/pods/*/*/*.log*`],
      withContainers: [`${root}/pods/*/*/*.log*`, `${containers}/*.log`],
      liveOnly: [`${root}/pods/*/*/*.log`],
    },
  };
}

/** While the shipper is stopped: lines 51–60 appended, rotated (and compressed), 61–65 in a new live file. */
function rotateWhileDown(l: Layout, compress: boolean): void {
  appendFileSync(l.live, criLines(51, 60));
  const rotated = `${l.live}.20261202-184500`;
  renameSync(l.live, rotated);
  if (compress) {
    writeFileSync(`${rotated}.gz`, gzipSync(readFileSync(rotated)));
    rmSync(rotated);
  }
  writeFileSync(l.live, criLines(61, 65));
}

describe("a live file rotated while the shipper was stopped", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logarchive-restart-rotation-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const compress of [false, true]) {
    for (const setup of ["rotatedToo", "withContainers", "liveOnly"] as const) {
      it(`is read on from its offset${compress ? " as .gz" : ""} (globs: ${setup})`, async () => {
        const l = layout(join(dir, `${setup}-${compress ? "gz" : "plain"}`));
        const globs = l.globs[setup];
        const first = await shipOnce(globs, []);
        assert.deepEqual(first.messages, linesOf(1, 50));

        rotateWhileDown(l, compress);
        const second = await shipOnce(globs, first.checkpoints);
        assert.deepEqual(second.messages, linesOf(51, 65), "the rotated file's rest, then the new live file");
        assert.equal(second.lost, 0);
        assert.deepEqual(second.lostEvents, []);

        // The rotated file is remembered as done, so no glob reads it again.
        for (const again of [globs, l.globs.rotatedToo]) {
          const third = await shipOnce(again, second.checkpoints);
          assert.deepEqual(third.messages, [], `nothing read twice (globs: ${again.join(" ")})`);
          assert.equal(third.lost, 0);
        }
      });
    }
  }

  // Known gap, kept as a todo: counting such a file lost without evidence that it grew (the
  // first fix counted "at least 1 byte") also reports a false loss, and splits a line, when
  // dockerd's max-file deletes a file that was read to its end (test/shipper-docker-e2e.test.ts).
  // It needs evidence from disk, e.g. its successor's ctime against the checkpoint's time.
  it("counts a live file that vanished while the shipper was stopped as lost, instead of dropping it silently", {
    todo: "needs evidence that the vanished live file grew; see the comment above",
  }, async () => {
    const l = layout(join(dir, "vanished"));
    const first = await shipOnce(l.globs.liveOnly, []);
    assert.deepEqual(first.messages, linesOf(1, 50));
    // Appended to, rotated and deleted (max files) before the shipper came back.
    appendFileSync(l.live, criLines(51, 60));
    rmSync(l.live);
    writeFileSync(l.live, criLines(61, 65));
    const second = await shipOnce(l.globs.liveOnly, first.checkpoints);
    assert.deepEqual(second.messages, linesOf(61, 65));
    assert.ok(second.lost > 0, "the loss is counted");
    assert.equal(second.lostEvents.length, 1);
    assert.equal(second.lostEvents[0]!.reason, "rotation");
  });
});
