import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { Stream } from "../../sources/kubernetes_logs/parser/parsed_line.ts";
import { corpusLines, readCorpus } from "../../test_support/corpora.ts";
import { MULTILINE_DEFAULTS, type MultilineEmit, MultilineMerger, type MultilineSettings } from "./merger.ts";
import type { MultilineMode } from "./rules.ts";
import { GO_FATAL, GO_PANIC, JAVA_CHAINED, NODE_ERROR, PYTHON_BARE, PYTHON_CHAINED } from "./samples.ts";

interface Line {
  stream: Stream;
  /** ms since T0 */
  t: number;
  text: string;
  truncated?: boolean;
}

interface Rec {
  stream: Stream;
  t: number;
  text: string;
  truncated: boolean;
  unterminated: boolean;
}

const T0 = 1_795_259_857;

function settings(mode: MultilineMode, over: Partial<MultilineSettings> = {}): MultilineSettings {
  return { mode, ...MULTILINE_DEFAULTS, ...over };
}

/** An emit callback that appends each record, copied, to `out`. */
function into(out: Rec[]): MultilineEmit {
  return (stream, epochSeconds, nanos, bytes, start, end, truncated, unterminated) => {
    out.push({
      stream,
      t: (epochSeconds - T0) * 1000 + nanos / 1e6,
      text: bytes.toString("utf8", start, end),
      truncated,
      unterminated,
    });
  };
}

/** Pushes `lines`, each inside a larger buffer as the decoder hands them, collecting records in `out`. */
function push(m: MultilineMerger, lines: readonly Line[], out: Rec[], now = 0): void {
  const emit = into(out);
  for (const l of lines) {
    const b = Buffer.from(`<<${l.text}>>`);
    const ms = Math.floor(l.t);
    const seconds = T0 + Math.floor(ms / 1000);
    m.push(l.stream, seconds, (ms % 1000) * 1e6, b, 2, b.length - 2, l.truncated ?? false, false, now, emit);
  }
}

function run(mode: MultilineMode, lines: readonly Line[], over: Partial<MultilineSettings> = {}): Rec[] {
  const m = new MultilineMerger(settings(mode, over));
  const out: Rec[] = [];
  push(m, lines, out);
  flushAll(m, out);
  return out;
}

function flushAll(m: MultilineMerger, out: Rec[]): void {
  m.flush(into(out));
}

const at = (stream: Stream, texts: readonly string[], from = 0): Line[] =>
  texts.map((text, i) => ({ stream, t: from + i, text }));

const corpus = (file: string) => corpusLines(`multiline/${file}`).map((b) => b.toString("utf8"));

describe("multiline merger", () => {
  it("merges the Java and Go traces of Fluent Bit's multiline example, and nothing else", () => {
    const lines = readRaw("fluentbit_filter_multiline_example.log");
    const auto = run("auto", at("stderr", lines));
    assert.deepEqual(
      auto.map((r) => r.text.split("\n").length),
      [1, 6, 1, 51, 1],
    );
    assert.match(auto[1]!.text, /^Dec 14 06:41:08 Exception in thread "main"[^\n]*\n {4}at com\.myproject/);
    assert.match(auto[3]!.text, /^panic: my panic\n\ngoroutine 4 \[running\]:\n/);
    assert.match(auto[3]!.text, /\n {2}\/usr\/local\/go\/src\/runtime\/mgc\.go:216 \+0x58$/);
    assert.deepEqual(
      run("java", at("stderr", lines)).map((r) => r.text.split("\n").length),
      [1, 6, ...Array(53).fill(1)],
    );
    assert.equal(run("go", at("stderr", lines)).length, 10);
    assert.equal(run("python", at("stderr", lines)).length, lines.length, "no Python trace in it");
    for (const mode of ["auto", "java", "go", "python"] as const) {
      assert.equal(
        run(mode, at("stderr", lines))
          .map((r) => r.text)
          .join("\n"),
        lines.join("\n"),
        mode,
      );
    }
    const regex001 = corpus("fluentbit_regex001_example.log");
    assert.deepEqual(
      run("java", at("stdout", regex001)).map((r) => r.text.split("\n").length),
      [1, 6, 1],
    );
  });

  it("merges whole Java, Node, Python and Go traces between plain lines", () => {
    for (const [mode, trace] of [
      ["java", JAVA_CHAINED],
      ["java", NODE_ERROR],
      ["python", PYTHON_CHAINED],
      ["python", PYTHON_BARE],
      ["go", GO_PANIC],
      ["go", GO_FATAL],
    ] as const) {
      const recs = run(mode, at("stdout", ["before", ...trace, "after"]));
      assert.deepEqual(
        recs.map((r) => r.text),
        ["before", trace.join("\n"), "after"],
        `${mode}: ${trace[0]}`,
      );
      assert.deepEqual(
        recs.map((r) => r.t),
        [0, 1, trace.length + 1],
        "a record has its first line's time",
      );
    }
  });

  it("holds a trace at the end of the input until flush(), then emits it whole", () => {
    const m = new MultilineMerger(settings("java"));
    const out: Rec[] = [];
    push(m, at("stdout", ["ok", ...JAVA_CHAINED]), out);
    assert.deepEqual(
      out.map((r) => r.text),
      ["ok"],
    );
    assert.ok(m.open);
    flushAll(m, out);
    assert.deepEqual(
      out.map((r) => r.text),
      ["ok", JAVA_CHAINED.join("\n")],
    );
    assert.ok(!m.open);
    assert.equal(m.stats.records.end, 1);
    assert.equal(m.stats.lines, JAVA_CHAINED.length);
  });

  it("never mixes streams: a trace interrupted by the other stream stays whole, the other stream's lines pass", () => {
    const lines: Line[] = [];
    JAVA_CHAINED.forEach((text, i) => {
      lines.push({ stream: "stderr", t: 2 * i, text });
      lines.push({
        stream: "stdout",
        t: 2 * i + 1,
        text: i % 2 === 0 ? `GET /${i} 200` : "\tat not.a.Frame(of.stderr:1)",
      });
    });
    const recs = run("java", lines);
    const stderr = recs.filter((r) => r.stream === "stderr");
    const stdout = recs.filter((r) => r.stream === "stdout");
    assert.deepEqual(
      stderr.map((r) => r.text),
      [JAVA_CHAINED.join("\n")],
    );
    assert.equal(stdout.length, JAVA_CHAINED.length, "stdout lines are never merged into stderr's trace");
    // Both streams can hold a trace at once.
    const both = run("auto", [
      ...at("stdout", GO_PANIC.slice(0, 5), 0),
      ...at("stderr", PYTHON_BARE.slice(0, 2), 5),
      ...at("stdout", GO_PANIC.slice(5), 7),
      ...at("stderr", PYTHON_BARE.slice(2), 30),
    ]);
    assert.deepEqual(both.map((r) => r.text).sort(), [GO_PANIC.join("\n"), PYTHON_BARE.join("\n")].sort());
  });

  it("cuts at max_lines and max_bytes, marks the cut records truncated, and drops nothing", () => {
    const trace = JAVA_CHAINED;
    const byLines = run("java", at("stdout", [...trace, "next"]), { maxLines: 5 });
    assert.deepEqual(
      byLines.map((r) => [r.text.split("\n").length, r.truncated]),
      [
        [5, true],
        [5, true],
        [2, false],
        [1, false],
      ],
    );
    assert.equal(byLines.map((r) => r.text).join("\n"), [...trace, "next"].join("\n"));
    const maxBytes = 200;
    const byBytes = run("java", at("stdout", trace), { maxBytes });
    assert.ok(byBytes.length > 1);
    for (const r of byBytes)
      assert.ok(Buffer.byteLength(r.text) <= maxBytes, `${Buffer.byteLength(r.text)} bytes`);
    assert.deepEqual(
      byBytes.map((r) => r.truncated),
      [...Array(byBytes.length - 1).fill(true), false],
    );
    assert.equal(byBytes.map((r) => r.text).join("\n"), trace.join("\n"));
    // A single line longer than max_bytes is a record of its own, uncut (max_line_bytes caps lines).
    const long = `\tat ${"x".repeat(300)}`;
    const withLong = run("java", at("stdout", [trace[0]!, long, trace[1]!]), { maxBytes });
    assert.deepEqual(
      withLong.map((r) => r.text),
      [trace[0], long, trace[1]],
    );
    assert.deepEqual(
      withLong.map((r) => r.truncated),
      [true, true, false],
    );
    const m = new MultilineMerger(settings("java", { maxLines: 5 }));
    const out: Rec[] = [];
    push(m, at("stdout", [...trace, "next"]), out);
    assert.equal(m.stats.records.limit, 2);
    assert.equal(m.stats.records.next_line, 1);
  });

  it("flushes a trace whose stream went quiet for flush_timeout (wall clock), not before", () => {
    const m = new MultilineMerger(settings("go", { flushTimeoutMs: 1000 }));
    const out: Rec[] = [];
    push(m, at("stderr", GO_FATAL), out, 10_000);
    const idle: Rec[] = [];
    m.flushIdle(10_999, into(idle));
    assert.equal(idle.length, 0);
    m.flushIdle(11_000, into(idle));
    assert.deepEqual(
      idle.map((r) => r.text),
      [GO_FATAL.join("\n")],
    );
    assert.equal(m.stats.records.timeout, 1);
    // The timeout counts from the last line, not the first: a trace written slowly stays whole.
    const slow = new MultilineMerger(settings("java", { flushTimeoutMs: 1000 }));
    const got: Rec[] = [];
    JAVA_CHAINED.forEach((text, i) => {
      slow.flushIdle(i * 600, into(got));
      push(slow, [{ stream: "stdout", t: i * 600, text }], got, i * 600);
    });
    flushAll(slow, got);
    assert.deepEqual(
      got.map((r) => r.text),
      [JAVA_CHAINED.join("\n")],
    );
  });

  it("does not join a line logged more than flush_timeout after the trace's last line", () => {
    const lines = [
      ...at("stdout", PYTHON_BARE.slice(0, 3), 0),
      { stream: "stdout" as const, t: 5000, text: "KeyboardInterrupt" },
    ];
    assert.deepEqual(
      run("python", lines, { flushTimeoutMs: 2000 }).map((r) => r.text),
      [PYTHON_BARE.slice(0, 3).join("\n"), "KeyboardInterrupt"],
    );
    assert.equal(run("python", lines, { flushTimeoutMs: 10_000 }).length, 1);
  });

  it("leaves a start line with no continuation as it was, flags included", () => {
    const recs = run("java", [
      { stream: "stdout", t: 0, text: "java.lang.IllegalStateException: cut", truncated: true },
      { stream: "stdout", t: 1, text: "INFO fine" },
    ]);
    assert.deepEqual(recs, [
      {
        stream: "stdout",
        t: 0,
        text: "java.lang.IllegalStateException: cut",
        truncated: true,
        unterminated: false,
      },
      { stream: "stdout", t: 1, text: "INFO fine", truncated: false, unterminated: false },
    ]);
    assert.deepEqual(
      run("java", [
        { stream: "stdout", t: 0, text: JAVA_CHAINED[0]! },
        { stream: "stdout", t: 1, text: JAVA_CHAINED[1]!, truncated: true },
      ]).map((r) => r.truncated),
      [true],
      "a trace with a truncated line is truncated",
    );
  });

  it("continues a trace from a snapshot, under the same or other settings", () => {
    const lines = at("stderr", ["a", ...GO_PANIC, "b"]);
    const whole = run("go", lines);
    for (let k = 0; k <= lines.length; k++) {
      const first = new MultilineMerger(settings("go"));
      const out: Rec[] = [];
      push(first, lines.slice(0, k), out);
      const snap = JSON.parse(JSON.stringify(first.snapshot() ?? null)) ?? undefined;
      assert.equal(snap === undefined, !first.open);
      const second = MultilineMerger.restore(snap, settings("go"), 0);
      push(second, lines.slice(k), out);
      flushAll(second, out);
      assert.deepEqual(out, whole, `snapshot after line ${k}`);
    }
    // Multiline turned off meanwhile: the restored trace is finished, nothing new is merged.
    const first = new MultilineMerger(settings("java"));
    const out: Rec[] = [];
    push(first, at("stdout", JAVA_CHAINED.slice(0, 3)), out);
    const off = MultilineMerger.restore(first.snapshot(), { ...settings("java"), mode: "off" }, 0);
    push(off, at("stdout", [JAVA_CHAINED[3]!, ...JAVA_CHAINED.slice(0, 2)], 3), out);
    flushAll(off, out);
    assert.deepEqual(
      out.map((r) => r.text),
      [JAVA_CHAINED.slice(0, 4).join("\n"), JAVA_CHAINED[0], JAVA_CHAINED[1]],
    );
  });

  it("rejects malformed snapshots", () => {
    const s = (groups: unknown) => ({ version: 1, groups }) as never;
    assert.throws(
      () => MultilineMerger.restore({ version: 2, groups: [] } as never, settings("go"), 0),
      TypeError,
    );
    assert.throws(() => MultilineMerger.restore(s([{ stream: "stdin" }]), settings("go"), 0), TypeError);
    assert.throws(
      () =>
        MultilineMerger.restore(s([{ stream: "stdout", state: "go_frame_1", lines: 0 }]), settings("go"), 0),
      TypeError,
    );
    assert.throws(() => new MultilineMerger(settings("go", { maxLines: 0 })), RangeError);
  });

  it("loses, doubles and reorders nothing, whatever the lines, limits, timeouts and restarts (property)", () => {
    const pool = [
      ...JAVA_CHAINED,
      ...PYTHON_CHAINED,
      ...GO_PANIC,
      ...NODE_ERROR,
      "",
      "plain line",
      '{"level":"error","msg":"Error: upstream"}',
      "panic: boom",
      "Traceback (most recent call last):",
      "ünïcödé ✓ line",
    ];
    const lineArb = fc.record({
      stream: fc.constantFrom<Stream>("stdout", "stderr"),
      gap: fc.oneof(fc.constant(0), fc.nat(3000)),
      text: fc.oneof(
        fc.constantFrom(...pool),
        fc.string({ maxLength: 12 }).filter((s) => !s.includes("\n")),
      ),
      truncated: fc.boolean(),
      /** Wall-clock idle check or a snapshot/restore before this line. */
      event: fc.constantFrom("none", "none", "idle", "restart"),
    });
    fc.assert(
      fc.property(
        fc.array(lineArb, { maxLength: 80 }),
        fc.constantFrom<MultilineMode>("java", "go", "python", "auto"),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 300 }),
        fc.integer({ min: 0, max: 2500 }),
        (input, mode, maxLines, maxBytes, flushTimeoutMs) => {
          const s = settings(mode, { maxLines, maxBytes, flushTimeoutMs });
          let m = new MultilineMerger(s);
          const out: Rec[] = [];
          const lines: Line[] = [];
          let t = 0;
          for (const l of input) {
            t += l.gap;
            const line: Line = { stream: l.stream, t, text: l.text, truncated: l.truncated };
            lines.push(line);
            if (l.event === "idle") {
              m.flushIdle(t, into(out));
            } else if (l.event === "restart") {
              m = MultilineMerger.restore(
                JSON.parse(JSON.stringify(m.snapshot() ?? null)) ?? undefined,
                s,
                t,
              );
            }
            push(m, [line], out, t);
          }
          flushAll(m, out);
          assert.ok(!m.open);
          for (const stream of ["stdout", "stderr"] as const) {
            const ins = lines.filter((l) => l.stream === stream);
            const recs = out.filter((r) => r.stream === stream);
            // Splitting every record at "\n" gives back the stream's lines, in order.
            assert.deepEqual(
              recs.flatMap((r) => r.text.split("\n")),
              ins.map((l) => l.text),
            );
            let i = 0;
            for (const r of recs) {
              const n = r.text.split("\n").length;
              const members = ins.slice(i, i + n);
              assert.equal(r.t, members[0]!.t, "a record has its first line's time");
              assert.ok(n <= maxLines);
              if (n > 1) assert.ok(Buffer.byteLength(r.text) <= maxBytes);
              if (members.some((l) => l.truncated)) assert.ok(r.truncated);
              if (!r.truncated) assert.ok(members.every((l) => !l.truncated));
              i += n;
            }
          }
        },
      ),
      { numRuns: 400 },
    );
  });
});

/** The corpus file's lines, empty ones included (corpusLines drops them; a Go panic needs them). */
function readRaw(file: string): string[] {
  const lines = readCorpus(`multiline/${file}`).toString("utf8").split("\n");
  if (lines.at(-1) === "") lines.pop();
  return lines;
}
