import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { GcsError } from "./errors.ts";
import { GlobMatcher, MAX_GLOB_LENGTH } from "./glob.ts";

/**
 * The reference: the RegExp translation the server used before (backtracking, so only for small inputs).
 * Its one intended difference, `[!]…`/`[^]…` (it read `[^]` as "any character"), is kept out of the
 * generated patterns.
 */
function referenceRegExp(glob: string): RegExp {
  let out = "";
  let braces = 0;
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === "*") {
      if (glob[i + 1] === "*") {
        i++;
        if (glob[i + 1] === "/") {
          i++;
          out += "(?:.*/)?";
        } else out += ".*";
      } else out += "[^/]*";
    } else if (c === "?") out += "[^/]";
    else if (c === "[") {
      const end = glob.indexOf("]", i + 2);
      if (end < 0) throw new Error("invalid");
      let body = glob.slice(i + 1, end);
      if (body.startsWith("!")) body = `^${body.slice(1)}`;
      out += `[${body.replace(/[\\\]]/g, "\\$&")}]`;
      i = end;
    } else if (c === "{") {
      braces++;
      out += "(?:";
    } else if (c === "}" && braces > 0) {
      braces--;
      out += ")";
    } else if (c === "," && braces > 0) out += "|";
    else out += c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  }
  if (braces !== 0) throw new Error("invalid");
  return new RegExp(`^${out}$`, "su");
}

function matches(glob: string, name: string): boolean {
  return new GlobMatcher(glob).test(name);
}

function rejects(glob: string): void {
  assert.throws(
    () => new GlobMatcher(glob),
    (error: unknown) => error instanceof GcsError && error.code === 400 && error.reason === "invalid",
    glob,
  );
}

describe("matchGlob", () => {
  it("matches GCS glob syntax", () => {
    const cases: [string, string, boolean][] = [
      ["list/*/*.txt", "list/b/1.txt", true],
      ["list/*/*.txt", "list/b/deep/3.txt", false],
      ["list/**/{3,4}.txt", "list/b/deep/3.txt", true],
      ["list/**/{3,4}.txt", "list/4.txt", true],
      ["list/**/{3,4}.txt", "list/5.txt", false],
      ["a/**", "a/b/c", true],
      ["a**", "a/b", true],
      ["a*", "a/b", false],
      ["a?c", "abc", true],
      ["a?c", "a/c", false],
      ["[a-c]x", "bx", true],
      ["[a-c]x", "dx", false],
      ["[!a-c]x", "dx", true],
      ["[^a-c]x", "ax", false],
      ["[]]", "]", true],
      ["[!]]", "a", true],
      ["[!]]", "]", false],
      ["[a-]", "-", true],
      ["{a,{b,c}d}", "cd", true],
      ["{a,{b,c}d}", "c", false],
      ["{,x}y", "y", true],
      ["a,b}", "a,b}", true],
      ["\\*", "\\x", true],
      ["?", "😀", true],
      ["[😀-😂]", "😁", true],
      ["", "", true],
      ["", "a", false],
    ];
    for (const [glob, name, expected] of cases)
      assert.equal(matches(glob, name), expected, `${glob} ~ ${name}`);
  });

  it("answers 400 invalid for a malformed glob, not a server error", () => {
    for (const glob of ["[z-a]", "[", "[]", "[!]", "a[b", "{a,b", "{{a}", "x".repeat(MAX_GLOB_LENGTH + 1)]) {
      rejects(glob);
    }
  });

  it("agrees with the reference RegExp on small inputs (property)", () => {
    const token = fc.constantFrom(
      "*",
      "**",
      "**/",
      "?",
      "/",
      "a",
      "b",
      ".",
      "{",
      "}",
      ",",
      "[a-b]",
      "[!a]",
      "[/]",
      "[]a]",
      "[b-a]",
      "[",
      "]",
      "-",
      "\\",
      "😀",
    );
    const glob = fc
      .array(token, { maxLength: 8 })
      .map((parts) => parts.join(""))
      .filter((g) => !/\[[!^]?\]/.test(g) && !/\[\^/.test(g));
    const name = fc
      .array(fc.constantFrom("a", "b", "/", ".", "-", "]", "\\", ",", "😀"), { maxLength: 8 })
      .map((parts) => parts.join(""));
    fc.assert(
      fc.property(glob, fc.array(name, { minLength: 1, maxLength: 5 }), (g, names) => {
        let reference: RegExp | undefined;
        try {
          reference = referenceRegExp(g);
        } catch {
          reference = undefined;
        }
        if (reference === undefined) {
          rejects(g);
          return;
        }
        const matcher = new GlobMatcher(g);
        for (const n of names) assert.equal(matcher.test(n), reference.test(n), `${g} ~ ${n}`);
      }),
      { numRuns: 5000 },
    );
  });

  it("takes linear time on patterns that make a backtracking matcher explode (property)", {
    timeout: 120_000,
  }, () => {
    // Each of these would take the reference RegExp longer than the age of the universe on these names.
    const long = "a".repeat(4000);
    assert.equal(matches(`${"**a".repeat(40)}b`, long), false);
    assert.equal(matches(`${"*a".repeat(40)}b`, long), false);
    assert.equal(matches(`${"{a,a}".repeat(200)}b`, long), false);
    assert.equal(matches(`${"{a,aa,*}".repeat(100)}b`, long), false);
    assert.equal(matches(`${"**/".repeat(100)}b`, `${"a/".repeat(2000)}c`), false);
    // Deep braces cannot overflow the stack: the compiler and matcher are iterative.
    assert.equal(matches(`${"{".repeat(500)}a${"}".repeat(500)}`, "a"), true);
    const hostile = fc
      .array(fc.constantFrom("*", "**", "?", "a", "{a,", "{*,", "}", "[a]", "**/"), { maxLength: 60 })
      .map((parts) => parts.join(""));
    fc.assert(
      fc.property(hostile, fc.integer({ min: 0, max: 3000 }), (g, n) => {
        let matcher: GlobMatcher;
        try {
          matcher = new GlobMatcher(g);
        } catch {
          return;
        }
        matcher.test("a".repeat(n));
        matcher.test(`${"a/".repeat(n / 2)}b`);
      }),
      { numRuns: 300 },
    );
  });
});
