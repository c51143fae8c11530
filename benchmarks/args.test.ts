import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { oneOf, parseBenchArgs, positiveNumber, UsageError, wholeNumber } from "./args.ts";

const OPTIONS = {
  mb: { type: "string", default: "200" },
  verify: { type: "boolean", default: false },
} as const;
const asValues = <V>(values: V) => values;

/** The UsageError `fn` throws (fails the test if it throws nothing or something else). */
function usageError(fn: () => unknown): UsageError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof UsageError, `expected a UsageError, got ${String(error)}`);
    return error;
  }
  assert.fail("expected a UsageError, nothing was thrown");
}

describe("parseBenchArgs", () => {
  it("gives the values, defaults filled in, to read", () => {
    assert.deepEqual({ ...parseBenchArgs(OPTIONS, [], asValues) }, { mb: "200", verify: false });
    assert.deepEqual(
      { ...parseBenchArgs(OPTIONS, ["--mb", "5", "--verify"], asValues) },
      { mb: "5", verify: true },
    );
    assert.equal(
      parseBenchArgs(OPTIONS, ["--mb=7"], (values) => positiveNumber("mb", values.mb)),
      7,
    );
  });

  it("turns parseArgs's errors into a one-line UsageError naming the flag or argument", () => {
    for (const [args, names] of [
      [["--bogus"], "--bogus"],
      [["--mb"], "--mb"],
      [["--verify=yes"], "--verify"],
      [["stray"], "stray"],
    ] as const) {
      const error = usageError(() => parseBenchArgs(OPTIONS, args, asValues));
      assert.ok(error.message.includes(names), `${args.join(" ")}: ${error.message}`);
      assert.ok(!error.message.includes("\n"), `${args.join(" ")}: more than one line: ${error.message}`);
    }
  });

  it("lets a check's UsageError through, and does not call read when parsing failed", () => {
    const error = usageError(() =>
      parseBenchArgs(OPTIONS, ["--mb", "0"], (values) => positiveNumber("mb", values.mb)),
    );
    assert.match(error.message, /^--mb: /);
    let read = false;
    usageError(() =>
      parseBenchArgs(OPTIONS, ["--nope"], () => {
        read = true;
      }),
    );
    assert.equal(read, false);
  });

  it("does not turn a bug in read into a usage error", () => {
    assert.throws(
      () =>
        parseBenchArgs(OPTIONS, [], () => {
          throw new RangeError("a bug");
        }),
      RangeError,
    );
  });
});

describe("value checks", () => {
  it("positiveNumber takes decimals above 0 and names the flag and value otherwise", () => {
    assert.equal(positiveNumber("mb", "200"), 200);
    assert.equal(positiveNumber("mb", "0.5"), 0.5);
    for (const text of ["0", "0.0", "-1", "", "abc", "1e3", "0x10", " 5", "Infinity"]) {
      const error = usageError(() => positiveNumber("mb", text));
      assert.equal(error.message, `--mb: expected a number above 0, got ${JSON.stringify(text)}`);
    }
  });

  it("wholeNumber takes whole numbers from min up and names the flag and value otherwise", () => {
    assert.equal(wholeNumber("latency-ms", "0", 0), 0);
    assert.equal(wholeNumber("runs", "3", 1), 3);
    for (const text of ["0", "1.5", "-2", "", "two"]) {
      const error = usageError(() => wholeNumber("runs", text, 1));
      assert.equal(
        error.message,
        `--runs: expected a whole number of 1 or more, got ${JSON.stringify(text)}`,
      );
    }
  });

  it("oneOf takes a listed choice and names the flag, the choices and the value otherwise", () => {
    assert.equal(oneOf("workload", "corpora", ["realistic", "corpora"]), "corpora");
    const error = usageError(() => oneOf("workload", "Realistic", ["realistic", "corpora"]));
    assert.equal(error.message, '--workload: expected one of realistic, corpora, got "Realistic"');
  });
});

// parse_encode is the benchmark with the lightest imports (no S3, GCS or DuckDB), so the
// cheapest to start; its flags are parsed before any work starts.
describe("a benchmark given a bad flag or value", () => {
  const bench = new URL("parse_encode.bench.ts", import.meta.url).pathname;
  for (const [args, line] of [
    [["--bogus"], "Unknown option '--bogus'"],
    [["--mb", "lots"], '--mb: expected a number above 0, got "lots"'],
  ] as const) {
    it(`${args.join(" ")}: one line on stderr naming it, nothing on stdout, exit 2`, () => {
      const run = spawnSync(process.execPath, [bench, ...args], { encoding: "utf8", timeout: 60_000 });
      assert.equal(run.stderr, `${line}\n`);
      assert.equal(run.stdout, "");
      assert.equal(run.status, 2);
    });
  }
});
