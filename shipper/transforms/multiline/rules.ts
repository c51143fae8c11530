// The built-in stack-trace rules: one state machine per language, in the manner of Fluent
// Bit's built-in multiline parsers and Google's fluent-plugin-detect-exceptions, from
// which both derive. A line either starts a trace (start()), or, while one is open,
// continues it into a new state (next()); a line that does neither ends the trace and is
// looked at afresh.
//
// Java (also Node.js/V8, whose stacks have the same shape):
//   `…Exception: msg` / `…Error: msg` / `…Throwable` anywhere in the line (followed by `:`
//   or the end of the line), then `\tat …` frames, `Caused by: …`, `Suppressed: …`,
//   `\t... N more` / `... N common frames omitted`, `nested exception is: …`.
// Python:
//   `Traceback (most recent call last):` (also `Exception Group Traceback …`), indented
//   `File …` / code / caret lines, the final `XxxError: msg` (or a bare `KeyboardInterrupt`),
//   and chained tracebacks (`During handling of the above exception…`, `The above
//   exception was the direct cause…`).
// Go:
//   `panic: …` / `fatal error: …` / `http: panic serving …`, `[signal …]`, blank lines,
//   `goroutine N [state]:` headers, `pkg.func(…)` / `created by …` lines each followed by an
//   indented (tab, or spaces as some loggers re-indent) `file.go:NN +0x…` line,
//   `runtime stack:` and `...additional frames elided...`.
//
// Cost: start() runs on every line of a container with multiline on while no trace is
// open. Every start pattern ends at a `:` or at the end of the line, so it compares the
// line's end in place and makes one pass over the colons of a latin1 copy of its first
// 4 KiB (a one-byte string, whose indexOf V8 runs natively), judging each colon by the
// character before it; no regex. next() runs only inside a trace; it matches anchored
// regexes against a latin1 copy of the line's first KiB. Patterns use `[\t ]`, never `\s`, because in a
// latin1 view the UTF-8 continuation bytes 0x85 and 0xA0 would count as whitespace.

export const MULTILINE_MODES = ["java", "go", "python", "auto"] as const;
export type MultilineMode = (typeof MULTILINE_MODES)[number];

/** No trace open. */
export const START = 0;
const JAVA_AFTER_EXCEPTION = 1;
const JAVA_FRAMES = 2;
const JAVA_NESTED = 3;
const PYTHON_FRAMES = 4;
const PYTHON_END = 5;
const PYTHON_END_BLANK = 6;
const PYTHON_CHAIN = 7;
const GO_AFTER_PANIC = 8;
const GO_AFTER_SIGNAL = 9;
const GO_GOROUTINE = 10;
const GO_FRAME_1 = 11;
const GO_FRAME_2 = 12;

/** State names as checkpoints store them (index = state number). */
export const STATE_NAMES: readonly string[] = [
  "start",
  "java_after_exception",
  "java_frames",
  "java_nested",
  "python_frames",
  "python_end",
  "python_end_blank",
  "python_chain",
  "go_after_panic",
  "go_after_signal",
  "go_goroutine",
  "go_frame_1",
  "go_frame_2",
];

/** A state restored from a checkpoint written by a shipper with states this one lacks: continues nothing. */
export const UNKNOWN_STATE = -1;

export function stateNumber(name: string): number {
  const n = STATE_NAMES.indexOf(name);
  return n <= START ? UNKNOWN_STATE : n;
}

/** Only the first KiB of a line is matched against the anchored continuation patterns. */
const HEAD_BYTES = 1024;

/** Start patterns are looked for in a line's first 4 KiB (and at its end). */
const START_SCAN_BYTES = 4096;
const JAVA_TYPE_BYTES = ["Exception", "Error", "Throwable"].map((t) => Buffer.from(t, "latin1"));
const TRACEBACK_BYTES = Buffer.from("Traceback (most recent call last):", "latin1");
const CR = 0x0d;
const SPACE = 0x20;

const JAVA_AT = /^[\t ]+(?:eval )?at /;
const JAVA_CAUSED = /^[\t ]*(?:Caused by|Suppressed):/;
const JAVA_MORE = /^[\t ]*\.\.\. \d+ (?:more|common frames omitted)/;
const JAVA_NESTED_EXCEPTION = /^[\t ]*nested exception is:/;
const PYTHON_INDENTED = /^[\t ]+[^\t ]/;
const PYTHON_ERROR = /^(?:[^\t .():]+\.)*[^\t .():]+:|^[A-Za-z_][\w.]*$/;
const PYTHON_CHAINED =
  /^(?:During handling of the above exception, another exception occurred:|The above exception was the direct cause of the following exception:)$/;
const GO_SIGNAL = /^\[signal /;
const GO_REPANIC = /^[\t ]+panic: /;
const GO_HEADER = /^goroutine \d+ (?:[^[]* )?\[[^\]]+\]:$|^runtime stack:$/;
const GO_FRAME = /^(?:[^\t .:]+\.)*[^\t .():]+\(|^created by /;
const GO_ELIDED = /^\.\.\.(?:additional frames elided|\d+ frames elided)\.\.\.$/;
const INDENTED = /^[\t ]/;

/** End of the line without a trailing `\r` (CRLF writers). */
function trimmedEnd(b: Buffer, start: number, end: number): number {
  return end > start && b[end - 1] === CR ? end - 1 : end;
}

function isWordChar(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f;
}

/** `text` has `word` ending just before `at`, not preceded by a word character (regex `\bword`). */
function wordBefore(text: string, at: number, word: string): boolean {
  const from = at - word.length;
  return from >= 0 && text.startsWith(word, from) && (from === 0 || !isWordChar(text.charCodeAt(from - 1)));
}

/** `b[start, end)` ends with `suffix`. */
function endsWithBytes(b: Buffer, start: number, end: number, suffix: Buffer): boolean {
  const n = suffix.length;
  if (end - start < n) return false;
  for (let i = 0; i < n; i++) if (b[end - n + i] !== suffix[i]) return false;
  return true;
}

export class TraceRules {
  readonly mode: MultilineMode | "off";
  readonly #java: boolean;
  readonly #go: boolean;
  readonly #python: boolean;

  /** `off` starts nothing; a group restored from a checkpoint still continues by its state. */
  constructor(mode: MultilineMode | "off") {
    this.mode = mode;
    this.#java = mode === "java" || mode === "auto";
    this.#go = mode === "go" || mode === "auto";
    this.#python = mode === "python" || mode === "auto";
  }

  /** The state a trace starting with `b[start, end)` is in, or START if the line starts none. */
  start(b: Buffer, start: number, end: number): number {
    if (this.mode === "off") return START;
    const stop = trimmedEnd(b, start, end);
    if (this.#python && endsWithBytes(b, start, stop, TRACEBACK_BYTES)) return PYTHON_FRAMES;
    let java =
      this.#java &&
      (endsWithBytes(b, start, stop, JAVA_TYPE_BYTES[0]!) ||
        endsWithBytes(b, start, stop, JAVA_TYPE_BYTES[1]!) ||
        endsWithBytes(b, start, stop, JAVA_TYPE_BYTES[2]!));
    if (java && !this.#go) return JAVA_AFTER_EXCEPTION;
    // Every other start pattern ends at a `:`. One pass over the colons, each judged by
    // the character before it; Go outranks Java wherever they are in the line.
    const text = b.toString("latin1", start, Math.min(stop, start + START_SCAN_BYTES));
    for (let i = text.indexOf(":"); i >= 0; i = text.indexOf(":", i + 1)) {
      const spaceAfter = text.charCodeAt(i + 1) === SPACE;
      switch (text.charCodeAt(i - 1)) {
        case 0x63: // c: `panic: `
          if (this.#go && spaceAfter && wordBefore(text, i, "panic")) return GO_AFTER_PANIC;
          break;
        case 0x70: // p: `http: panic serving`
          if (this.#go && text.startsWith("http: panic serving", i - 4)) return GO_GOROUTINE;
          break;
        case 0x72: // r: `fatal error: `, `…Error:`
          if (this.#go && spaceAfter && wordBefore(text, i, "fatal error")) return GO_AFTER_PANIC;
          if (this.#java && !java && text.startsWith("Error", i - 5)) java = true;
          break;
        case 0x6e: // n: `…Exception:`
          if (this.#java && !java && text.startsWith("Exception", i - 9)) java = true;
          break;
        case 0x65: // e: `…Throwable:`
          if (this.#java && !java && text.startsWith("Throwable", i - 9)) java = true;
          break;
      }
      if (java && !this.#go) break;
    }
    return java ? JAVA_AFTER_EXCEPTION : START;
  }

  /** The state after `b[start, end)` continues a trace in `state`, or START if it does not continue it. */
  next(state: number, b: Buffer, start: number, end: number): number {
    if (state <= START) return START;
    const stop = trimmedEnd(b, start, end);
    const blank = stop === start;
    // Blank lines are the one continuation that needs no pattern.
    switch (state) {
      case JAVA_AFTER_EXCEPTION:
        if (blank) return JAVA_AFTER_EXCEPTION;
        break;
      case JAVA_NESTED:
        return !blank && JAVA_ONLY.start(b, start, stop) !== START ? JAVA_AFTER_EXCEPTION : START;
      case PYTHON_END:
        if (blank) return PYTHON_END_BLANK;
        return endsWithBytes(b, start, stop, TRACEBACK_BYTES) ? PYTHON_FRAMES : START;
      case PYTHON_CHAIN:
        if (blank) return PYTHON_CHAIN;
        return endsWithBytes(b, start, stop, TRACEBACK_BYTES) ? PYTHON_FRAMES : START;
      case GO_AFTER_PANIC:
      case GO_AFTER_SIGNAL:
      case GO_FRAME_1:
        if (blank) return GO_GOROUTINE;
        break;
      default:
        if (blank) return START;
    }
    const text = head(b, start, stop);
    switch (state) {
      case JAVA_AFTER_EXCEPTION:
        if (JAVA_NESTED_EXCEPTION.test(text)) return JAVA_NESTED;
        return javaFrame(text);
      case JAVA_FRAMES:
        return javaFrame(text);
      case PYTHON_FRAMES:
        if (PYTHON_INDENTED.test(text)) return PYTHON_FRAMES;
        return PYTHON_ERROR.test(text) ? PYTHON_END : START;
      case PYTHON_END_BLANK:
        return PYTHON_CHAINED.test(text) ? PYTHON_CHAIN : START;
      case GO_AFTER_PANIC:
        if (GO_SIGNAL.test(text)) return GO_AFTER_SIGNAL;
        if (GO_REPANIC.test(text)) return GO_AFTER_PANIC;
        return GO_HEADER.test(text) ? GO_FRAME_1 : START;
      case GO_AFTER_SIGNAL:
        return START;
      case GO_GOROUTINE:
        return GO_HEADER.test(text) ? GO_FRAME_1 : START;
      case GO_FRAME_1:
        if (GO_FRAME.test(text)) return GO_FRAME_2;
        return GO_ELIDED.test(text) || GO_HEADER.test(text) ? GO_FRAME_1 : START;
      case GO_FRAME_2:
        return INDENTED.test(text) ? GO_FRAME_1 : START;
      default:
        return START;
    }
  }
}

/** The Java start rule, for `nested exception is:` in any mode. */
const JAVA_ONLY = new TraceRules("java");

function javaFrame(text: string): number {
  if (JAVA_AT.test(text) || JAVA_MORE.test(text)) return JAVA_FRAMES;
  return JAVA_CAUSED.test(text) ? JAVA_AFTER_EXCEPTION : START;
}

/**
 * The line's first KiB as latin1 (one JS character per byte). A longer line gets a
 * trailing U+FFFF so that no `$` matches at the cut.
 */
function head(b: Buffer, start: number, end: number): string {
  if (end - start <= HEAD_BYTES) return b.toString("latin1", start, end);
  return `${b.toString("latin1", start, start + HEAD_BYTES)}\uffff`;
}
