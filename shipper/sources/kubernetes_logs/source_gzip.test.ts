// A damaged rotated `.gz` (cut short, trailing garbage, a flipped bit): the source ships
// every line that inflates before the damage, counts the rest in
// logarchive_shipper_lost_bytes_total{reason="corrupt_gzip"}, logs it, and goes on with the
// next file of the chain.

import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { constants, gunzipSync, gzipSync } from "node:zlib";
import { DEFAULT_POLICY } from "../../../lib/policy/policy.ts";
import { ShipperMetrics } from "../../metrics.ts";
import type { DecodedLine } from "./file_decoder.ts";
import { KubernetesLogsSource } from "./source.ts";

function criLines(from: number, count: number): { text: string; messages: string[] } {
  const messages: string[] = [];
  let text = "";
  for (let i = from; i < from + count; i++) {
    // Varied and not too compressible, so the file spans many gzip pieces.
    const message = `line ${i} ${((i * 2654435761) >>> 0).toString(36).repeat(1 + (i % 7))}`;
    messages.push(message);
    text += `2026-11-21T12:00:00.${String(i).padStart(9, "0")}Z stdout F ${message}\n`;
  }
  return { text, messages };
}

/** The messages of the complete lines in what `body` inflates to before its damage, and whether a cut line follows. */
function inflatable(body: Buffer): { lines: string[]; cutLine: boolean } {
  let text: string;
  try {
    text = gunzipSync(body, { finishFlush: constants.Z_SYNC_FLUSH }).toString("utf8");
  } catch {
    throw new Error("the test's damage must leave an inflatable prefix gunzipSync can read");
  }
  const lines = text
    .split("\n")
    .slice(0, -1)
    .map((l) => l.split(" stdout F ")[1]!);
  return { lines, cutLine: !text.endsWith("\n") };
}

async function ship(
  root: string,
  gz: Buffer,
): Promise<{ messages: string[]; lost: number; events: Record<string, unknown>[] }> {
  const dir = join(root, "web_api-7c9f_uid-1", "app");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "0.log.20261121-120000.gz"), gz);
  const live = criLines(900_000, 50);
  writeFileSync(join(dir, "0.log"), live.text);
  const messages: string[] = [];
  const events: Record<string, unknown>[] = [];
  const metrics = new ShipperMetrics({ defaultMetrics: false });
  const src = new KubernetesLogsSource({
    globs: [`${root}/*/*/*.log*`],
    node: "node-a",
    maxLineBytes: 1024 * 1024,
    multiline: [],
    policy: DEFAULT_POLICY,
    finishGraceMs: 0,
    once: true,
    metrics,
    log: (_level, event, fields) => {
      if (event === "log_bytes_lost") events.push(fields ?? {});
    },
    lineSink: () => (l: DecodedLine) => messages.push(l.bytes.toString("utf8", l.start, l.end)),
  });
  const buf = Buffer.allocUnsafe(64 * 1024);
  await src.scan();
  for (let i = 0; i < 1000 && !(src.caughtUp() && (await src.readStep(buf)) === 0); i++) {
    await src.readStep(buf);
    await src.scan();
  }
  await src.close();
  const lost = (await metrics.bytesLost.get()).values.find((v) => v.labels.reason === "corrupt_gzip");
  // The live file after the damaged one is read whole.
  assert.deepEqual(messages.slice(-50), live.messages);
  return { messages: messages.slice(0, -50), lost: lost?.value ?? 0, events };
}

describe("a damaged rotated .gz", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logarchive-gzip-src-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const original = criLines(0, 20_000);
  const sound = gzipSync(Buffer.from(original.text));

  it("reads a sound .gz whole and counts nothing lost", async () => {
    const { messages, lost } = await ship(join(dir, "sound"), sound);
    assert.deepEqual(messages, original.messages);
    assert.equal(lost, 0);
  });

  it("ships every line before a truncation and counts the loss", async () => {
    const cut = sound.subarray(0, Math.floor(sound.length * 0.6));
    const { lines: want, cutLine } = inflatable(cut);
    assert.ok(want.length > 5000 && want.length < original.messages.length && cutLine);
    const { messages, lost, events } = await ship(join(dir, "cut"), cut);
    assert.deepEqual(messages.slice(0, want.length), want, "every complete line that inflates");
    assert.equal(messages.length, want.length + 1, "and the cut line's fragment, as inflated");
    assert.ok(lost > 0, "the loss is counted");
    assert.equal(events.length, 1);
    assert.equal(events[0]!.reason, "corrupt_gzip");
  });

  it("ships every line of a .gz with trailing garbage and counts the garbage", async () => {
    const garbage = Buffer.from("\nthis is not gzip at all\n");
    const { messages, lost, events } = await ship(join(dir, "trailing"), Buffer.concat([sound, garbage]));
    assert.deepEqual(messages, original.messages);
    assert.ok(lost > 0 && lost <= garbage.length, `${lost} bytes counted`);
    assert.equal(events.length, 1);
  });

  it("ships every line before a flipped bit and counts the rest", async () => {
    // Two gzip members (valid, as `cat a.gz b.gz`); a bit flipped in the second's header
    // makes it fail there, after all of the first has inflated.
    const second = criLines(20_000, 5000);
    const tail = gzipSync(Buffer.from(second.text));
    tail[3]! ^= 0x20; // FLG: a reserved bit, which gunzip refuses
    const { messages, lost } = await ship(join(dir, "flipped"), Buffer.concat([sound, tail]));
    assert.deepEqual(messages, original.messages, "the first member's every line");
    assert.ok(lost > tail.length / 2, `${lost} bytes counted`);
  });

  it("ships no line of a file whose compressed data a flipped bit damaged, and counts the whole file lost", async () => {
    const flipped = Buffer.from(sound);
    flipped[Math.floor(flipped.length * 0.5)]! ^= 0x08;
    const { messages, lost, events } = await ship(join(dir, "flipped-data"), flipped);
    // zlib would inflate it to invented lines (found only by the CRC at the member's end):
    // none is archived, and every compressed byte is counted.
    assert.deepEqual(messages, []);
    assert.equal(lost, flipped.length);
    assert.equal(events.length, 1);
  });
});
