import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { LineReader } from "./line_reader.ts";

interface Line {
  text: Buffer;
  endOffset: number;
  cut: boolean;
  unterminated: boolean;
}

function collect(into: Line[]) {
  return (
    bytes: Buffer,
    start: number,
    end: number,
    endOffset: number,
    cut: boolean,
    unterminated: boolean,
  ) => {
    into.push({ text: Buffer.from(bytes.subarray(start, end)), endOffset, cut, unterminated });
  };
}

/** Splits `data` into chunks at the given cut points. */
function chunked(data: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    chunks.push(data.subarray(from, p));
    from = p;
  }
  chunks.push(data.subarray(from));
  return chunks;
}

/** What the reader must produce for `data` with cap `cap`: split on \n, long lines cut. */
function expected(data: Buffer, cap: number): { lines: Omit<Line, "endOffset">[]; dropped: number } {
  const lines: Omit<Line, "endOffset">[] = [];
  let dropped = 0;
  let start = 0;
  while (start < data.length) {
    const nl = data.indexOf(10, start);
    const end = nl < 0 ? data.length : nl;
    const cut = end - start > cap;
    lines.push({ text: data.subarray(start, cut ? start + cap : end), cut, unterminated: nl < 0 && !cut });
    if (cut) dropped += end - start - cap;
    start = end + 1;
  }
  return { lines, dropped };
}

// Newline-rich bytes, so lines of every length (0 included) occur.
const dataArb = fc
  .array(fc.oneof(fc.constant(10), fc.integer({ min: 0, max: 255 }), fc.constant(0x61)), { maxLength: 300 })
  .map((a) => Buffer.from(a));

describe("line reader", () => {
  it("splits any chunking of any bytes into the same lines, with their end offsets (property)", () => {
    fc.assert(
      fc.property(
        dataArb,
        fc.array(fc.nat(), { maxLength: 20 }),
        fc.integer({ min: 1, max: 50 }),
        (data, cuts, cap) => {
          const got: Line[] = [];
          const reader = new LineReader({ maxLineBytes: cap });
          for (const chunk of chunked(data, cuts)) {
            reader.push(chunk, collect(got));
            assert.ok(reader.carriedBytes <= cap);
          }
          reader.end(collect(got));
          const want = expected(data, cap);
          assert.deepEqual(
            got.map(({ text, cut, unterminated }) => ({ text, cut, unterminated })),
            want.lines,
          );
          assert.equal(reader.stats.droppedBytes, want.dropped);
          let offset = 0;
          for (const [i, line] of got.entries()) {
            const nl = data.indexOf(10, offset);
            if (!line.cut) assert.equal(line.endOffset, nl < 0 ? data.length : nl + 1, `line ${i}`);
            offset = nl < 0 ? data.length : nl + 1;
          }
        },
      ),
    );
  });

  it("resumes from any checkpoint with exactly the lines not yet handed out (property)", () => {
    fc.assert(
      fc.property(
        dataArb,
        fc.array(fc.nat(), { maxLength: 10 }),
        fc.nat(),
        fc.integer({ min: 1, max: 40 }),
        (data, cuts, at, cap) => {
          const chunks = chunked(data, cuts);
          const stop = at % (chunks.length + 1);
          const first: Line[] = [];
          const reader = new LineReader({ maxLineBytes: cap });
          for (const chunk of chunks.slice(0, stop)) reader.push(chunk, collect(first));
          const checkpoint = JSON.parse(JSON.stringify(reader.checkpoint()));

          const rest: Line[] = [];
          const resumed = new LineReader({ maxLineBytes: cap, resumeFrom: checkpoint });
          resumed.push(data.subarray(checkpoint.offset), collect(rest));
          resumed.end(collect(rest));

          const all: Line[] = [];
          const whole = new LineReader({ maxLineBytes: cap });
          whole.push(data, collect(all));
          whole.end(collect(all));
          const strip = (ls: Line[]) =>
            ls.map(({ text, cut, unterminated }) => ({ text, cut, unterminated }));
          assert.deepEqual(strip([...first, ...rest]), strip(all));
        },
      ),
    );
  });

  it("hands out a line inside one chunk as a view of that chunk", () => {
    const chunk = Buffer.from("one\ntwo\nthr");
    const seen: Buffer[] = [];
    const reader = new LineReader();
    reader.push(chunk, (bytes) => seen.push(bytes));
    assert.deepEqual(seen, [chunk, chunk]);
    assert.deepEqual(reader.checkpoint(), { offset: 8, discarding: false });
    assert.equal(reader.carriedBytes, 3);
  });

  it("keeps memory at the cap for a file with no newline at all, counting what it drops", () => {
    const reader = new LineReader({ maxLineBytes: 1024 });
    const got: Line[] = [];
    const chunk = Buffer.alloc(64 * 1024, 0x78);
    for (let i = 0; i < 256; i++) {
      reader.push(chunk, collect(got));
      assert.ok(reader.carriedBytes <= 1024);
    }
    reader.push(Buffer.from("\nnext\n"), collect(got));
    assert.deepEqual(
      got.map((l) => [l.text.length, l.cut]),
      [
        [1024, true],
        [4, false],
      ],
    );
    assert.equal(reader.stats.droppedBytes, 256 * 64 * 1024 - 1024);
    assert.deepEqual(reader.stats, { lines: 2, cutLines: 1, droppedBytes: 256 * 64 * 1024 - 1024 });
  });

  it("reports a cut line's checkpoint as discarding until its newline", () => {
    const reader = new LineReader({ maxLineBytes: 4 });
    reader.push(Buffer.from("abcdefgh"), () => {});
    assert.deepEqual(reader.checkpoint(), { offset: 8, discarding: true });
    reader.push(Buffer.from("ij\nk"), () => {});
    assert.deepEqual(reader.checkpoint(), { offset: 11, discarding: false });
  });

  it("leaves a tail without newline alone until end() says the writer is gone", () => {
    const reader = new LineReader();
    const got: Line[] = [];
    reader.push(Buffer.from("complete\nbeing writ"), collect(got));
    assert.equal(got.length, 1);
    reader.end(collect(got));
    assert.deepEqual(
      got.map((l) => [l.text.toString(), l.unterminated, l.endOffset]),
      [
        ["complete", false, 9],
        ["being writ", true, 19],
      ],
    );
  });
});
