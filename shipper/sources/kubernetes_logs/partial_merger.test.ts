import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { Stream } from "./parser/parsed_line.ts";
import { type MergedLine, PartialMerger, utf8CutPoint } from "./partial_merger.ts";

interface Chunk {
  stream: Stream;
  partial: boolean;
  time: number;
  bytes: Buffer;
}

interface Out {
  stream: Stream;
  time: number;
  text: Buffer;
  truncated: boolean;
  unterminated: boolean;
}

const copy = (m: MergedLine): Out => ({
  stream: m.stream,
  time: m.epochSeconds,
  text: Buffer.from(m.bytes.subarray(m.start, m.end)),
  truncated: m.truncated,
  unterminated: m.unterminated,
});

/** Splits `line` at the given cut points into P chunks ending with one F chunk. */
function split(stream: Stream, line: Uint8Array, cuts: number[]): Omit<Chunk, "time">[] {
  const points = [...new Set(cuts.map((c) => c % (line.length + 1)))].sort((a, b) => a - b);
  const chunks: Omit<Chunk, "time">[] = [];
  let from = 0;
  for (const p of points) {
    chunks.push({ stream, partial: true, bytes: Buffer.from(line.subarray(from, p)) });
    from = p;
  }
  chunks.push({ stream, partial: false, bytes: Buffer.from(line.subarray(from)) });
  return chunks;
}

const lineArb = fc.record({
  // Multi-byte characters make the cap's character-boundary cut matter.
  bytes: fc.oneof(
    fc.uint8Array({ maxLength: 60 }),
    fc.string({ unit: "grapheme", maxLength: 20 }).map((s) => new Uint8Array(Buffer.from(s))),
  ),
  cuts: fc.array(fc.nat(), { maxLength: 5 }),
});

/** Both streams' lines, chunked, interleaved in an arbitrary order that keeps each stream's order. */
const scenarioArb = fc
  .record({
    stdout: fc.array(lineArb, { maxLength: 8 }),
    stderr: fc.array(lineArb, { maxLength: 8 }),
    order: fc.array(fc.boolean(), { maxLength: 200 }),
  })
  .map(({ stdout, stderr, order }) => {
    const a = stdout.flatMap((l) => split("stdout", l.bytes, l.cuts));
    const b = stderr.flatMap((l) => split("stderr", l.bytes, l.cuts));
    const chunks: Chunk[] = [];
    let k = 0;
    while (a.length + b.length > 0) {
      const pickA = b.length === 0 || (a.length > 0 && (order[k % Math.max(order.length, 1)] ?? true));
      chunks.push({ ...(pickA ? a.shift()! : b.shift()!), time: chunks.length });
      k++;
    }
    return {
      lines: {
        stdout: stdout.map((l) => Buffer.from(l.bytes)),
        stderr: stderr.map((l) => Buffer.from(l.bytes)),
      },
      chunks,
    };
  });

function run(merger: PartialMerger, chunks: Chunk[], outs: Out[], restartAt = -1): PartialMerger {
  let m = merger;
  chunks.forEach((c, i) => {
    if (i === restartAt) {
      m = PartialMerger.restore(JSON.parse(JSON.stringify(m.snapshot())), { maxLineBytes: m.maxLineBytes });
    }
    const line = m.push(c.stream, c.partial, c.time, 0, c.bytes, 0, c.bytes.length);
    if (line !== null) outs.push(copy(line));
    assert.ok(m.pendingBytes <= 2 * m.maxLineBytes);
  });
  return m;
}

/** Time of each line's first chunk, per stream, in order. */
function firstChunkTimes(chunks: Chunk[], stream: Stream): number[] {
  const times: number[] = [];
  let open = false;
  for (const c of chunks) {
    if (c.stream !== stream) continue;
    if (!open) times.push(c.time);
    open = c.partial;
  }
  return times;
}

describe("partial merger", () => {
  it("reassembles arbitrarily split lines, per stream, with the first chunk's time (property)", () => {
    fc.assert(
      fc.property(scenarioArb, fc.integer({ min: -1, max: 60 }), ({ lines, chunks }, restartAt) => {
        const outs: Out[] = [];
        run(new PartialMerger(), chunks, outs, restartAt);
        for (const stream of ["stdout", "stderr"] as const) {
          const got = outs.filter((o) => o.stream === stream);
          assert.deepEqual(
            got.map((o) => o.text),
            lines[stream],
          );
          assert.deepEqual(
            got.map((o) => o.time),
            firstChunkTimes(chunks, stream),
          );
          assert.ok(got.every((o) => !o.truncated && !o.unterminated));
        }
      }),
    );
  });

  it("never exceeds the cap, cuts only over-long lines, at a character boundary, and counts the rest (property)", () => {
    fc.assert(
      fc.property(
        scenarioArb,
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: -1, max: 60 }),
        ({ lines, chunks }, cap, restartAt) => {
          const outs: Out[] = [];
          const m = run(new PartialMerger({ maxLineBytes: cap }), chunks, outs, restartAt);
          let dropped = 0;
          for (const stream of ["stdout", "stderr"] as const) {
            const got = outs.filter((o) => o.stream === stream);
            assert.equal(got.length, lines[stream].length);
            got.forEach((o, i) => {
              const original = lines[stream][i]!;
              assert.ok(o.text.length <= cap);
              assert.equal(o.truncated, original.length > cap);
              assert.deepEqual(o.text, original.subarray(0, o.text.length));
              if (o.truncated) assert.equal(o.text.length, utf8CutPoint(original, 0, cap));
              dropped += original.length - o.text.length;
            });
          }
          // After a restart the counters start again; check them only for uninterrupted runs.
          if (restartAt < 0 || restartAt >= chunks.length) assert.equal(m.stats.droppedBytes, dropped);
        },
      ),
    );
  });

  it("returns a whole line in one chunk as a view of the input, without copying", () => {
    const input = Buffer.from("xxhello");
    const line = new PartialMerger().push("stdout", false, 1, 2, input, 2, 7);
    assert.ok(line);
    assert.equal(line.bytes, input);
    assert.deepEqual([line.start, line.end, line.epochSeconds, line.nanos], [2, 7, 1, 2]);
  });

  it("emits a line as soon as it crosses the cap and drops its chunks up to F", () => {
    const m = new PartialMerger({ maxLineBytes: 10 });
    const p = (s: string, partial = true) => m.push("stdout", partial, 0, 0, Buffer.from(s), 0, s.length);
    assert.equal(p("12345"), null);
    const line = p("67890abc");
    assert.ok(line);
    assert.equal(line.bytes.subarray(line.start, line.end).toString(), "1234567890");
    assert.equal(line.truncated, true);
    assert.equal(p("dropped"), null);
    assert.equal(p("also dropped", false), null);
    assert.deepEqual(m.stats, { droppedBytes: 3 + 7 + 12, truncatedLines: 1, unterminatedLines: 0 });
    assert.deepEqual(m.snapshot(), { version: 1, streams: [] });
    assert.equal(p("next", false)?.bytes.toString(), "next");
  });

  it("does not cut a multi-byte character at the cap", () => {
    const m = new PartialMerger({ maxLineBytes: 4 });
    const text = Buffer.from("ab€"); // € is 3 bytes
    const line = m.push("stdout", false, 0, 0, text, 0, text.length);
    assert.equal(line?.bytes.subarray(line.start, line.end).toString(), "ab");
    assert.equal(m.stats.droppedBytes, 3);
  });

  it("marks a line truncated when the line reader already cut its chunk", () => {
    const m = new PartialMerger({ maxLineBytes: 100 });
    const line = m.push("stderr", true, 0, 0, Buffer.from("prefix"), 0, 6, true);
    assert.deepEqual([line?.truncated, line?.end], [true, 6]);
    // The rest of that logical line is dropped.
    assert.equal(m.push("stderr", false, 0, 0, Buffer.from("tail"), 0, 4), null);
  });

  it("flushes a pending P run as an unterminated line with its first chunk's time", () => {
    const m = new PartialMerger();
    m.push("stderr", true, 7, 70, Buffer.from("no newline "), 0, 11);
    m.push("stderr", true, 8, 80, Buffer.from("at exit"), 0, 7);
    m.push("stdout", false, 9, 90, Buffer.from("done"), 0, 4);
    const lines = m.flush();
    assert.equal(lines.length, 1);
    const [l] = lines;
    assert.deepEqual(
      [l?.stream, l?.epochSeconds, l?.nanos, l?.unterminated, l?.truncated],
      ["stderr", 7, 70, true, false],
    );
    assert.equal(l?.bytes.subarray(l.start, l.end).toString(), "no newline at exit");
    assert.equal(m.stats.unterminatedLines, 1);
    assert.deepEqual(m.flush(), []);
  });

  it("carries a partial across a rotation through a JSON snapshot", () => {
    const before = new PartialMerger();
    before.push("stdout", true, 100, 5, Buffer.from("P in the rotated file, "), 0, 23);
    before.push("stderr", true, 101, 6, Buffer.from("err"), 0, 3);
    const saved = JSON.stringify(before.snapshot());
    assert.deepEqual(JSON.parse(saved).streams[0], {
      stream: "stdout",
      pending: Buffer.from("P in the rotated file, ").toString("base64"),
      epochSeconds: 100,
      nanos: 5,
    });
    const after = PartialMerger.restore(JSON.parse(saved));
    const line = after.push("stdout", false, 200, 0, Buffer.from("F in the new one"), 0, 16);
    assert.equal(
      line?.bytes.subarray(line.start, line.end).toString(),
      "P in the rotated file, F in the new one",
    );
    assert.deepEqual([line?.epochSeconds, line?.nanos], [100, 5]);
    assert.equal(after.flush()[0]?.bytes.toString(), "err");
  });

  it("cuts a restored pending run that exceeds a lowered cap", () => {
    const big = new PartialMerger({ maxLineBytes: 100 });
    big.push("stdout", true, 1, 0, Buffer.alloc(50, 0x61), 0, 50);
    const small = PartialMerger.restore(big.snapshot(), { maxLineBytes: 20 });
    const line = small.push("stdout", false, 2, 0, Buffer.from("end"), 0, 3);
    assert.deepEqual([line?.end, line?.truncated], [20, true]);
    assert.equal(small.stats.droppedBytes, 33);
  });

  it("rejects a malformed snapshot", () => {
    assert.throws(() => PartialMerger.restore({ version: 2 } as never), /version: 1/);
    assert.throws(
      () => PartialMerger.restore({ version: 1, streams: [{ stream: "stdin" as Stream }] }),
      /bad stream/,
    );
    assert.throws(
      () => PartialMerger.restore({ version: 1, streams: [{ stream: "stdout" }] }),
      /needs pending/,
    );
  });

  it("finds character boundaries for cuts", () => {
    const b = Buffer.from("a€😀");
    assert.equal(utf8CutPoint(b, 0, 1), 1);
    assert.equal(utf8CutPoint(b, 0, 2), 1);
    assert.equal(utf8CutPoint(b, 0, 3), 1);
    assert.equal(utf8CutPoint(b, 0, 4), 4);
    assert.equal(utf8CutPoint(b, 0, 7), 4);
    assert.equal(utf8CutPoint(b, 0, 8), 8);
    // Invalid bytes are cut where asked.
    assert.equal(utf8CutPoint(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80]), 0, 5), 5);
  });
});
