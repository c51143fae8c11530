import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type MultilineMode, START, STATE_NAMES, stateNumber, TraceRules, UNKNOWN_STATE } from "./rules.ts";
import {
  GO_FATAL,
  GO_PANIC,
  JAVA_CHAINED,
  JAVA_NESTED,
  NODE_ERROR,
  PYTHON_BARE,
  PYTHON_CHAINED,
} from "./samples.ts";

/** How many leading lines of `lines` one trace takes under `mode`; 0 if the first line starts none. */
function traceLength(mode: MultilineMode, lines: readonly string[]): number {
  const rules = new TraceRules(mode);
  const bufs = lines.map((l) => Buffer.from(l));
  let state = rules.start(bufs[0]!, 0, bufs[0]!.length);
  if (state === START) return 0;
  let n = 1;
  for (; n < bufs.length; n++) {
    // Lines inside a bigger buffer, as the decoder hands them: matching must stop at `end`.
    const framed = Buffer.concat([Buffer.from("xx"), bufs[n]!, Buffer.from("Exception:\n")]);
    state = rules.next(state, framed, 2, 2 + bufs[n]!.length);
    if (state === START) break;
  }
  return n;
}

describe("multiline rules", () => {
  it("take a whole Java trace: frames, Caused by, Suppressed, ... N more, common frames omitted", () => {
    assert.equal(traceLength("java", JAVA_CHAINED), JAVA_CHAINED.length);
    assert.equal(traceLength("java", JAVA_NESTED), JAVA_NESTED.length);
    assert.equal(traceLength("java", NODE_ERROR), NODE_ERROR.length);
    assert.equal(traceLength("java", [...JAVA_CHAINED, "INFO next request"]), JAVA_CHAINED.length);
  });

  it("start a Java trace at a type name followed by ':' or the end of the line, anywhere in it", () => {
    const rules = new TraceRules("java");
    const starts = (s: string) => rules.start(Buffer.from(s), 0, Buffer.byteLength(s)) !== START;
    assert.ok(starts('Dec 14 06:41:08 Exception in thread "main" java.lang.RuntimeException: boom'));
    assert.ok(starts("java.lang.OutOfMemoryError"));
    assert.ok(starts("java.lang.OutOfMemoryError\r"), "CRLF writers");
    assert.ok(starts("x.Throwable: y"));
    assert.ok(!starts("ErrorCount=3 while exporting"));
    assert.ok(!starts("\tat com.acme.App.main(App.java:12)"), "a frame alone starts nothing");
    assert.ok(!starts("Traceback (most recent call last):"));
  });

  it("take a whole Python traceback, chained tracebacks, carets, and a bare exception name", () => {
    assert.equal(traceLength("python", PYTHON_CHAINED), PYTHON_CHAINED.length);
    assert.equal(traceLength("python", PYTHON_BARE), PYTHON_BARE.length);
    assert.equal(traceLength("python", [...PYTHON_BARE, "2026-11-21 11:00:00 INFO restarted"]), 4);
    // The blank line after the final error waits for a chain marker; a plain line ends the trace.
    assert.equal(traceLength("python", [...PYTHON_BARE, "", "next"]), 5);
    assert.equal(
      traceLength("python", ["ERROR:root:Traceback (most recent call last):", '  File "a.py"', "E: x"]),
      3,
    );
  });

  it("take a whole Go panic: recovered panics, signal, goroutines, elided frames, created by", () => {
    assert.equal(traceLength("go", GO_PANIC), GO_PANIC.length);
    assert.equal(traceLength("go", GO_FATAL), GO_FATAL.length);
    assert.equal(
      traceLength("go", [...GO_FATAL, "", "goroutine 1 [select]:", "main.main()", "\tmain.go:3"]),
      9,
    );
    assert.equal(traceLength("go", [...GO_PANIC, "exit status 2"]), GO_PANIC.length);
    assert.equal(
      traceLength("go", [
        "http: panic serving 10.0.0.1:5555: boom",
        "goroutine 9 [running]:",
        "net/http.(*conn).serve.func1()",
        "\t/usr/local/go/src/net/http/server.go:1854 +0xbf",
      ]),
      4,
    );
  });

  it("need a word boundary before panic: and fatal error:", () => {
    const rules = new TraceRules("go");
    const starts = (s: string) => rules.start(Buffer.from(s), 0, s.length) !== START;
    assert.ok(starts('level=error msg="recovered" err="panic: boom"'));
    assert.ok(!starts("nopanic: fine"));
    assert.ok(!starts("goroutine 1 [running]:"));
  });

  it("keep to their language; auto tries all three", () => {
    assert.equal(traceLength("python", JAVA_CHAINED), 0);
    assert.equal(traceLength("go", PYTHON_CHAINED), 0);
    assert.equal(traceLength("java", GO_PANIC), 0);
    for (const trace of [JAVA_CHAINED, PYTHON_CHAINED, GO_PANIC, GO_FATAL, NODE_ERROR]) {
      assert.equal(traceLength("auto", trace), trace.length);
    }
  });

  it("never continue a trace with a non-blank line that is not a frame", () => {
    for (const mode of ["java", "python", "go", "auto"] as const) {
      for (const trace of [JAVA_CHAINED, PYTHON_CHAINED, GO_PANIC]) {
        const n = traceLength(mode, [...trace, '{"level":"info","msg":"ok"}']);
        assert.ok(n === 0 || n === trace.length, `${mode}: ${n}`);
      }
    }
  });

  it("match only the first KiB of a very long line, with no '$' at the cut", () => {
    const rules = new TraceRules("python");
    const frames = rules.start(Buffer.from(PYTHON_BARE[0]!), 0, PYTHON_BARE[0]!.length);
    const word = Buffer.from(`${"a".repeat(2000)} and more`);
    assert.equal(rules.next(frames, word, 0, word.length), START, "not a bare exception name");
    const name = Buffer.from("a".repeat(2000));
    assert.notEqual(rules.next(frames, name, 0, 1000), START, "a bare exception name");
  });

  it("name their states for checkpoints; unknown names continue nothing", () => {
    for (const [n, name] of STATE_NAMES.entries()) if (n > START) assert.equal(stateNumber(name), n);
    assert.equal(stateNumber("start"), UNKNOWN_STATE);
    assert.equal(stateNumber("ruby_frames"), UNKNOWN_STATE);
    const rules = new TraceRules("auto");
    assert.equal(rules.next(UNKNOWN_STATE, Buffer.from("\tat x"), 0, 4), START);
    assert.equal(new TraceRules("off").start(Buffer.from("panic: x"), 0, 8), START);
  });
});
