// The shipper image cannot be built here (no Docker), so this checks the Dockerfile
// against the source: every file `cli/logarchive.ts ship` can load at runtime is copied
// and not excluded by .dockerignore, every package it imports survives `npm ci
// --omit=dev`, and the base image is Node 24.

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, matchesGlob, normalize } from "node:path";
import { describe, it } from "node:test";

const ROOT = join(import.meta.dirname, "../..");
const DOCKERFILE = readFileSync(join(import.meta.dirname, "Dockerfile"), "utf8");
const DOCKERIGNORE = readFileSync(join(ROOT, ".dockerignore"), "utf8");
const PACKAGE = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  dependencies: Record<string, string>;
};

// `import type … from` and `export type … from` are erased by type stripping; every other
// static import or re-export loads its module, `import { type A } from` included.
const STATIC_IMPORT = /^\s*(?:import|export)\s+(type\s+)?(?:[\w*${}\s,]+?\s+from\s+)?["']([^"']+)["']/gm;
const FILE_URL = /new URL\(\s*["']([^"']+)["']\s*,\s*import\.meta\.url\s*\)/g;

interface Closure {
  /** Repository-relative source files loaded at runtime. */
  files: Set<string>;
  /** Other files read through `new URL(…, import.meta.url)`. */
  assets: Set<string>;
  /** Bare specifiers: npm packages. */
  packages: Set<string>;
}

function importClosure(roots: readonly string[]): Closure {
  const closure: Closure = { files: new Set(), assets: new Set(), packages: new Set() };
  const queue = [...roots];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (closure.files.has(file)) continue;
    closure.files.add(file);
    const text = readFileSync(join(ROOT, file), "utf8");
    for (const [, typeOnly, spec] of text.matchAll(STATIC_IMPORT)) {
      if (typeOnly || spec === undefined) continue;
      if (spec.startsWith(".")) queue.push(normalize(join(dirname(file), spec)));
      else if (!spec.startsWith("node:") && !builtinModules.includes(spec)) {
        closure.packages.add(
          spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]!,
        );
      }
    }
    for (const [, spec] of text.matchAll(FILE_URL)) {
      const target = normalize(join(dirname(file), spec!));
      // A .ts file named by URL is a worker or a dynamic import: it loads modules too.
      if (target.endsWith(".ts")) queue.push(target);
      else closure.assets.add(target);
    }
  }
  return closure;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: "utf8" })
    .map((f) => join(dir, f))
    .filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts") && !f.endsWith(".d.ts"))
    .filter((f) => !/(^|\/)(test_support|testdata)\//.test(f));
}

/** Sources of the final stage's COPY instructions (not `COPY --from`). */
function copiedPaths(dockerfile: string): string[] {
  const finalStage = dockerfile.slice(dockerfile.lastIndexOf("\nFROM "));
  return [...finalStage.matchAll(/^COPY\s+(?!--from)(.+)$/gm)].flatMap((m) =>
    m[1]!
      .trim()
      .split(/\s+/)
      .slice(0, -1)
      .map((p) => p.replace(/\/$/, "").replace(/^\.\//, "")),
  );
}

/** Docker's .dockerignore rule: a pattern excludes a path or any directory above it; `!` re-includes. */
function dockerIgnored(path: string, ignoreFile: string): boolean {
  const parts = path.split("/");
  const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join("/"));
  let ignored = false;
  for (const line of ignoreFile.split("\n").map((l) => l.trim())) {
    if (line === "" || line.startsWith("#")) continue;
    const negated = line.startsWith("!");
    const pattern = normalize(negated ? line.slice(1) : line).replace(/\/$/, "");
    if (prefixes.some((p) => matchesGlob(p, pattern))) ignored = !negated;
  }
  return ignored;
}

function isCopied(path: string, copied: readonly string[]): boolean {
  return copied.some((c) => c === "." || path === c || path.startsWith(`${c}/`));
}

const closure = importClosure([
  "cli/logarchive.ts",
  // `ship` may not be wired into cli/program.ts yet: every runtime file of these folders.
  ...sourceFiles("cli"),
  ...sourceFiles("shipper"),
  ...sourceFiles("lib"),
]);

describe("shipper Dockerfile", () => {
  it("finds imports the way Node loads them: inline type imports load, `import type` does not", () => {
    assert.ok(closure.files.has("cli/program.ts"));
    assert.ok(closure.files.has("lib/config/errors.ts"));
    assert.ok(closure.packages.has("commander"));
    assert.ok(closure.packages.has("prom-client"));
    // cli/commands/local.ts has `import type … from "../../local/stack.ts"` and a dynamic import.
    assert.ok(
      ![...closure.files].some((f) => f.startsWith("local/")),
      "local/ is loaded only by `logarchive local`",
    );
  });

  it("copies every top-level folder and file the shipper loads at runtime", () => {
    const copied = copiedPaths(DOCKERFILE);
    const needed = [...closure.files, ...closure.assets];
    const missing = needed.filter((f) => !isCopied(f, copied));
    assert.deepEqual(missing, [], `not copied into the image: ${missing.join(", ")}`);
    const tops = new Set(needed.map((f) => f.split("/")[0]));
    assert.ok(tops.has("shipper") && tops.has("lib") && tops.has("cli") && tops.has("package.json"));
  });

  it("excludes none of those files through .dockerignore, but excludes tests and node_modules", () => {
    const excluded = [...closure.files, ...closure.assets].filter((f) => dockerIgnored(f, DOCKERIGNORE));
    assert.deepEqual(excluded, [], `.dockerignore drops files the shipper loads: ${excluded.join(", ")}`);
    for (const path of [
      "node_modules/yaml/package.json",
      ".git/HEAD",
      "shipper/http.test.ts",
      "docs/shipper.md",
    ]) {
      assert.ok(dockerIgnored(path, DOCKERIGNORE), path);
    }
  });

  it("gets every imported package from production dependencies, since npm ci omits dev ones", () => {
    assert.match(DOCKERFILE, /npm ci --omit=dev/);
    const dev = [...closure.packages].filter((p) => !(p in PACKAGE.dependencies));
    assert.deepEqual(dev, [], `imported at runtime but not in dependencies: ${dev.join(", ")}`);
  });

  it("builds on an official Node 24 image and runs the CLI with it as a numeric non-root user", () => {
    const base = /^ARG NODE_IMAGE=(\S+)$/m.exec(DOCKERFILE)?.[1];
    assert.match(base ?? "", /^node:24(-[a-z]+)*(@sha256:[0-9a-f]{64})?$/);
    const froms = [...DOCKERFILE.matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1]);
    assert.ok(
      froms.length >= 2 && froms.every((f) => f === "${NODE_IMAGE}"),
      `FROM lines: ${froms.join(", ")}`,
    );
    assert.match(DOCKERFILE, /^ENTRYPOINT \["node", "cli\/logarchive\.ts"\]$/m);
    assert.match(DOCKERFILE, /^CMD \["ship", "--help"\]$/m);
    assert.match(DOCKERFILE, /^USER [1-9]\d*:[1-9]\d*$/m);
  });

  it("reads the Dockerfile's COPY sources and .dockerignore rules as Docker does", () => {
    assert.deepEqual(
      copiedPaths("FROM a AS b\nCOPY x y\nFROM c\nCOPY --from=b /n ./n\nCOPY a/ b.json ./\n"),
      ["a", "b.json"],
    );
    assert.equal(dockerIgnored("src/a.test.ts", "*.test.ts"), false, "no implicit **/ in .dockerignore");
    assert.equal(dockerIgnored("src/a.test.ts", "**/*.test.ts"), true);
    assert.equal(dockerIgnored("docs/x/y.md", "docs"), true);
    assert.equal(dockerIgnored("docs/keep.md", "docs\n!docs/keep.md"), false);
  });
});
