// FileDecoder with multiline merging: traces split into P/F chunks, interleaved streams,
// parse errors, the end of a file, and checkpoints taken anywhere.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { MULTILINE_DEFAULTS, type MultilineSettings } from "../../transforms/multiline/merger.ts";
import type { MultilineMode } from "../../transforms/multiline/rules.ts";
import {
  GO_PANIC,
  JAVA_CHAINED,
  NODE_ERROR,
  PYTHON_BARE,
  PYTHON_CHAINED,
} from "../../transforms/multiline/samples.ts";
import { type DecodedLine, FileDecoder, type FileDecoderOptions } from "./file_decoder.ts";
import type { Stream } from "./parser/parsed_line.ts";

interface Got {
  text: string;
  stream: Stream;
  nanos: number;
  truncated: boolean;
  unterminated: boolean;
  parseError: string | null;
}

const copy = (l: DecodedLine): Got => ({
  text: l.bytes.toString("utf8", l.start, l.end),
  stream: l.stream,
  nanos: l.nanos,
  truncated: l.truncated,
  unterminated: l.unterminated,
  parseError: l.parseError,
});

const FALLBACK = { epochSeconds: 0, nanos: 0 };

function ml(mode: MultilineMode, over: Partial<MultilineSettings> = {}): MultilineSettings {
  return { mode, ...MULTILINE_DEFAULTS, ...over };
}

function decode(data: Buffer, chunkSize: number, options: Partial<FileDecoderOptions> = {}): Got[] {
  const got: Got[] = [];
  const sink = (l: DecodedLine) => got.push(copy(l));
  const d = new FileDecoder({ fallbackTime: FALLBACK, ...options });
  for (let i = 0; i < data.length; i += chunkSize) d.push(data.subarray(i, i + chunkSize), sink);
  d.end(sink);
  return got;
}

interface Physical {
  stream: Stream;
  text: string;
  /** Sizes of the P chunks the runtime split the line into (the rest is the F chunk). */
  splits?: number[];
  /** A malformed line instead of a CRI one. */
  garbage?: boolean;
}

/** CRI lines 1 ms apart, lines with `splits` cut into P chunks as containerd does. */
function cri(lines: readonly Physical[]): Buffer {
  const out: string[] = [];
  let n = 0;
  const stamp = () => `2026-11-21T11:17:37.${String(++n * 1_000_000).padStart(9, "0")}Z`;
  for (const l of lines) {
    if (l.garbage) {
      out.push(`${l.text}\n`);
      continue;
    }
    let rest = l.text;
    for (const size of l.splits ?? []) {
      out.push(`${stamp()} ${l.stream} P ${rest.slice(0, size)}\n`);
      rest = rest.slice(size);
    }
    out.push(`${stamp()} ${l.stream} F ${rest}\n`);
  }
  return Buffer.from(out.join(""));
}

const on = (stream: Stream, texts: readonly string[]): Physical[] => texts.map((text) => ({ stream, text }));

describe("file decoder with multiline", () => {
  it("changes nothing when off, and merges nothing that is not a trace when on", () => {
    const data = cri([...on("stdout", ["a", "b"]), ...on("stderr", JAVA_CHAINED), ...on("stdout", ["c"])]);
    const off = decode(data, 100);
    assert.equal(off.length, JAVA_CHAINED.length + 3);
    assert.deepEqual(decode(data, 100, { multiline: null }), off);
    const plain = cri(on("stdout", ["GET / 200", '{"msg":"ok"}', "", "done"]));
    assert.deepEqual(decode(plain, 7, { multiline: ml("auto") }), decode(plain, 7));
  });

  it("merges a trace whose lines the runtime split into P/F chunks, across reads of any size", () => {
    const long = `\tat com.acme.Very${"Long".repeat(5000)}.method(App.java:1)`;
    const trace = [JAVA_CHAINED[0]!, long, ...JAVA_CHAINED.slice(1)];
    const lines: Physical[] = [
      { stream: "stderr", text: trace[0]!, splits: [10, 10] },
      { stream: "stderr", text: long, splits: [16_384] },
      ...on("stderr", trace.slice(2)),
      { stream: "stdout", text: "after" },
    ];
    const data = cri(lines);
    for (const chunkSize of [1, 13, 4096, data.length]) {
      const got = decode(data, chunkSize, { multiline: ml("java") });
      // stdout's line is not held back by stderr's open trace.
      assert.deepEqual(
        got.map((l) => [l.stream, l.text.length]),
        [
          ["stdout", 5],
          ["stderr", trace.join("\n").length],
        ],
        `chunk size ${chunkSize}`,
      );
      assert.ok(got[1]!.text === trace.join("\n"));
      assert.equal(got[1]!.nanos, 1_000_000, "the trace has its first chunk's time");
    }
  });

  it("keeps stdout and stderr traces apart when their chunks interleave", () => {
    const lines: Physical[] = [];
    for (let i = 0; i < Math.max(PYTHON_CHAINED.length, GO_PANIC.length); i++) {
      if (i < PYTHON_CHAINED.length) lines.push({ stream: "stdout", text: PYTHON_CHAINED[i]!, splits: [3] });
      if (i < GO_PANIC.length) lines.push({ stream: "stderr", text: GO_PANIC[i]! });
    }
    const got = decode(cri(lines), 64, { multiline: ml("auto") });
    assert.deepEqual(got.map((l) => [l.stream, l.text]).sort(), [
      ["stderr", GO_PANIC.join("\n")],
      ["stdout", PYTHON_CHAINED.join("\n")],
    ]);
  });

  it("emits a trace at the end of a finished file, an unterminated last line included", () => {
    const data = Buffer.concat([
      cri(on("stderr", PYTHON_BARE.slice(0, 3))),
      Buffer.from("2026-11-21T11:17:38Z stderr P KeyboardInterrupt"),
    ]);
    const got = decode(data, 5, { multiline: ml("python") });
    assert.deepEqual(
      got.map((l) => [l.text, l.unterminated]),
      [[PYTHON_BARE.join("\n"), true]],
    );
  });

  it("lets a malformed line pass a trace without joining or ending it", () => {
    const data = cri([
      ...on("stderr", NODE_ERROR.slice(0, 2)),
      { stream: "stderr", text: "garbage without a timestamp", garbage: true },
      ...on("stderr", NODE_ERROR.slice(2)),
    ]);
    const got = decode(data, 4096, { multiline: ml("java") });
    assert.deepEqual(
      got.map((l) => [l.text, l.parseError]),
      [
        ["garbage without a timestamp", "invalid timestamp"],
        [NODE_ERROR.join("\n"), null],
      ],
    );
  });

  it("ignores multiline without partial merging (--no-merge shows physical lines)", () => {
    const data = cri(on("stdout", JAVA_CHAINED));
    assert.equal(decode(data, 100, { merge: false, multiline: ml("java") }).length, JAVA_CHAINED.length);
  });

  it("resumes from a checkpoint taken anywhere with exactly the records of an uninterrupted read (property)", () => {
    const pool = [...JAVA_CHAINED, ...PYTHON_CHAINED, ...GO_PANIC, "plain", "", "ok ✓"];
    const lineArb = fc.record({
      stream: fc.constantFrom<Stream>("stdout", "stderr"),
      text: fc.constantFrom(...pool),
      splits: fc.array(fc.integer({ min: 1, max: 8 }), { maxLength: 2 }),
      garbage: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
    });
    fc.assert(
      fc.property(
        fc.array(lineArb, { minLength: 1, maxLength: 60 }),
        fc.constantFrom<MultilineMode>("java", "go", "python", "auto"),
        fc.integer({ min: 2, max: 6 }),
        fc.integer({ min: 1, max: 400 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 3 }),
        (lines, mode, maxLines, chunkSize, cutSeeds) => {
          const data = cri(lines.map((l) => ({ ...l, splits: l.splits.filter((s) => s < l.text.length) })));
          const settings = ml(mode, { maxLines });
          const whole = decode(data, chunkSize, { multiline: settings });
          // Crash after any chunk: what was emitted before the checkpoint is committed; a new
          // decoder resumes from the checkpoint (through JSON, as on disk) and reads again from
          // its offset. Several crashes in a row.
          const cuts = [...new Set(cutSeeds.map((s) => s % (data.length + 1)))].sort((a, b) => a - b);
          const got: Got[] = [];
          let resume: FileDecoderOptions["resumeFrom"];
          let from = 0;
          for (const cut of [...cuts, data.length]) {
            const d = new FileDecoder({
              fallbackTime: FALLBACK,
              multiline: settings,
              ...(resume ? { resumeFrom: resume } : {}),
            });
            const emitted: Got[] = [];
            const sink = (l: DecodedLine) => emitted.push(copy(l));
            const upTo = Math.max(cut, from);
            for (let i = from; i < upTo; i += chunkSize)
              d.push(data.subarray(i, Math.min(i + chunkSize, upTo)), sink);
            if (cut === data.length) {
              d.end(sink);
              got.push(...emitted);
              break;
            }
            resume = JSON.parse(JSON.stringify(d.checkpoint()));
            got.push(...emitted);
            from = resume!.reader.offset;
          }
          // The same records in the same order. (A malformed line is dated by the previous good
          // line, which a checkpoint does not keep; FileDecoder documents that.)
          const undated = (l: Got) => (l.parseError === null ? l : { ...l, nanos: 0 });
          assert.deepEqual(got.map(undated), whole.map(undated));
        },
      ),
      { numRuns: 300 },
    );
  });
});
