import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { z } from "zod";
import { ConfigError } from "./errors.ts";
import { MAX_YAML_NESTING, parseYamlConfig } from "./yaml.ts";

const anything = z.unknown();

function configError(text: string): ConfigError {
  try {
    parseYamlConfig(text, anything, "hostile.yaml");
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error;
  }
  assert.fail(`expected a ConfigError for ${JSON.stringify(text.slice(0, 60))}`);
}

/** One problem line, naming the file, and no stack trace in it. */
function assertOneLine(error: ConfigError, pattern: RegExp): void {
  assert.match(error.message, /^hostile\.yaml is invalid:\n {2}- /);
  assert.equal(error.problems.length, 1, error.message.slice(0, 500));
  assert.match(error.problems[0]!, pattern);
  assert.doesNotMatch(error.message, /\n\s+at /);
}

describe("parseYamlConfig on hostile input", () => {
  it("parses ordinary configs with anchors and aliases", () => {
    const value = parseYamlConfig(
      "base: &b {namespaces: [a, b], mode: java}\nrules: [*b, *b]\nlist:\n  - - x\n    - y\n",
      anything,
      "ok.yaml",
    );
    assert.deepEqual(value, {
      base: { namespaces: ["a", "b"], mode: "java" },
      rules: [
        { namespaces: ["a", "b"], mode: "java" },
        { namespaces: ["a", "b"], mode: "java" },
      ],
      list: [["x", "y"]],
    });
  });

  it("stops an alias bomb with one line", () => {
    const levels = ["a: &a [x, x, x, x, x, x, x, x, x]"];
    for (let i = 1; i < 9; i++) {
      const prev = String.fromCharCode(96 + i);
      const next = String.fromCharCode(97 + i);
      levels.push(`${next}: &${next} [${Array(9).fill(`*${prev}`).join(", ")}]`);
    }
    assertOneLine(configError(levels.join("\n")), /aliases/);
  });

  it("stops an unresolved alias with one line", () => {
    assertOneLine(configError("{*g}"), /alias/);
    assertOneLine(configError("a: *nowhere"), /alias/);
  });

  it("rejects an alias inside its own anchor, which would make a cyclic value", () => {
    assertOneLine(configError("a: &a [*a]"), /refers to itself/);
    assertOneLine(configError("a: &m {b: *m}"), /refers to itself/);
  });

  it("rejects a list or map as a mapping key", () => {
    assertOneLine(configError("{[a]: b}"), /key is a list, a map or binary/);
    assertOneLine(configError("? {a: b}\n: c"), /key is a list, a map or binary/);
    assertOneLine(configError("!!binary eA==: c"), /binary/);
  });

  it("stops 100k levels of flow nesting quickly, before the parser recurses", () => {
    for (const open of ["[", "{a: ", "[{", "- ["]) {
      const error = configError(open.repeat(100_000));
      assertOneLine(error, new RegExp(`nested deeper than ${MAX_YAML_NESTING} levels`));
    }
  });

  it("stops deep block nesting (compact sequences) too", () => {
    assertOneLine(configError(`${"- ".repeat(100_000)}x`), /nested deeper/);
  });

  it("counts brackets in quoted strings, comments and block scalars as text, not nesting", () => {
    const deep = "[".repeat(MAX_YAML_NESTING * 2);
    const value = parseYamlConfig(
      `a: "${deep}"\nb: '${deep}'\n# ${deep}\nc: |\n  ${deep}\nd: plain${deep}\n`,
      anything,
      "ok.yaml",
    );
    assert.deepEqual(value, { a: deep, b: deep, c: `${deep}\n`, d: `plain${deep}` });
  });

  it("accepts nesting up to the limit", () => {
    const depth = MAX_YAML_NESTING - 2;
    const value = parseYamlConfig(`a: ${"[".repeat(depth)}1${"]".repeat(depth)}`, anything, "ok.yaml");
    let inner: unknown = (value as { a: unknown }).a;
    for (let i = 0; i < depth; i++) inner = (inner as unknown[])[0];
    assert.equal(inner, 1);
  });

  it("reports at most a few syntax errors, not thousands", () => {
    const error = configError("[a, ".repeat(MAX_YAML_NESTING - 4) + "}".repeat(2000));
    assert.ok(error.problems.length <= 4, error.message.slice(0, 500));
  });

  it("on arbitrary text either returns an acyclic value or throws ConfigError", () => {
    const yamlish = fc.constantFrom(
      ..."[]{},:-?&*!|>'\"#%@` \n\t\\abcx01.".split(""),
      "&a ",
      "*a",
      "&b ",
      "*b",
      "<<: ",
      "!!binary ",
      "!!set ",
      "!!map ",
      "? ",
      "---\n",
      "...\n",
      "%YAML 1.2\n",
      "  ",
      "- ",
    );
    fc.assert(
      fc.property(fc.array(yamlish, { maxLength: 80 }), (parts) => {
        const text = parts.join("");
        try {
          const value = parseYamlConfig(text, anything, "fuzz.yaml");
          JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v));
        } catch (error) {
          if (!(error instanceof ConfigError)) {
            throw new Error(`${JSON.stringify(text)} threw ${String(error)}`);
          }
        }
      }),
      { numRuns: 3000 },
    );
  });
});
