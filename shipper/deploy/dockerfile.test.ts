// The shipper image cannot be built here (no Docker), so this checks the Dockerfile against
// the source and then does what its stages do, with the same COPY rules: every source file
// `cli/logarchive.ts ship` loads goes into the build stage (and past .dockerignore), the
// build compiles it to dist/, the final stage copies the compiled file, every package it
// imports survives `npm ci --omit=dev`, and the compiled CLI, run from a directory holding
// only what the final stage copies, ships.

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { builtinModules } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, matchesGlob, normalize } from "node:path";
import { after, before, describe, it } from "node:test";
import { gunzipSync } from "node:zlib";
import { GetObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { LOCAL_S3_CREDENTIALS, startLocalS3 } from "../../local/s3.ts";

const LOCAL_S3_ENV = {
  AWS_ACCESS_KEY_ID: LOCAL_S3_CREDENTIALS.accessKeyId,
  AWS_SECRET_ACCESS_KEY: LOCAL_S3_CREDENTIALS.secretAccessKey,
  AWS_REGION: "us-east-1",
};

const ROOT = join(import.meta.dirname, "../..");
const DOCKERFILE = readFileSync(join(import.meta.dirname, "Dockerfile"), "utf8");
const DOCKERIGNORE = readFileSync(join(ROOT, ".dockerignore"), "utf8");
const PACKAGE = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  dependencies: Record<string, string>;
  scripts: Record<string, string>;
};
/** tsconfig.build.json is JSON with comments. */
const BUILD_CONFIG = JSON.parse(
  readFileSync(join(ROOT, "tsconfig.build.json"), "utf8").replace(/^\s*\/\/.*$/gm, ""),
) as { extends?: string; files?: string[]; compilerOptions: Record<string, unknown> };

// `import type … from` and `export type … from` are erased by type stripping; every other
// static import or re-export loads its module, `import { type A } from` included.
const STATIC_IMPORT = /^\s*(?:import|export)\s+(type\s+)?(?:[\w*${}\s,]+?\s+from\s+)?["']([^"']+)["']/gm;
const DYNAMIC_IMPORT = /\bimport\(\s*["']([^"']+)["']\s*\)/g;
const FILE_URL = /new URL\(\s*["']([^"']+)["']\s*,\s*import\.meta\.url\s*\)/g;
/**
 * Where a literal `import("…")` is part of `ship`: the command's lazy import of the shipper
 * and anything under shipper/. Other commands' lazy imports (local/, functions/) are not
 * in the image.
 */
const SHIP_DYNAMIC = (file: string) => file === "cli/commands/ship.ts" || file.startsWith("shipper/");

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
  const follow = (file: string, spec: string) => {
    if (spec.startsWith(".")) queue.push(normalize(join(dirname(file), spec)));
    else if (!spec.startsWith("node:") && !builtinModules.includes(spec)) {
      closure.packages.add(
        spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]!,
      );
    }
  };
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (closure.files.has(file)) continue;
    closure.files.add(file);
    const text = readFileSync(join(ROOT, file), "utf8");
    for (const [, typeOnly, spec] of text.matchAll(STATIC_IMPORT)) if (!typeOnly) follow(file, spec!);
    if (SHIP_DYNAMIC(file)) for (const [, spec] of text.matchAll(DYNAMIC_IMPORT)) follow(file, spec!);
    for (const [, spec] of text.matchAll(FILE_URL)) {
      const target = normalize(join(dirname(file), spec!));
      // A .ts file named by URL is a worker or a dynamic import: it loads modules too.
      if (target.endsWith(".ts")) queue.push(target);
      else closure.assets.add(target);
    }
  }
  return closure;
}

interface Copy {
  /** Stage name of `COPY --from=`, or null for the build context. */
  from: string | null;
  sources: string[];
  dest: string;
}

interface Stage {
  name: string | null;
  from: string;
  workdir: string;
  copies: Copy[];
  runs: string[];
}

/** The Dockerfile's stages with their COPY and RUN instructions (line continuations joined). */
function parseStages(dockerfile: string): Stage[] {
  const stages: Stage[] = [];
  const lines = dockerfile.replace(/\\\n/g, " ").split("\n");
  for (const line of lines.map((l) => l.trim())) {
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?$/i.exec(line);
    if (from) {
      stages.push({ name: from[2] ?? null, from: from[1]!, workdir: "/", copies: [], runs: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (stage === undefined) continue;
    const workdir = /^WORKDIR\s+(\S+)$/.exec(line);
    if (workdir) stage.workdir = workdir[1]!;
    const copy = /^COPY\s+(--from=(\S+)\s+)?(.+)$/.exec(line);
    if (copy) {
      const parts = copy[3]!.trim().split(/\s+/);
      stage.copies.push({ from: copy[2] ?? null, sources: parts.slice(0, -1), dest: parts.at(-1)! });
    }
    const run = /^RUN\s+(.+)$/.exec(line);
    if (run) stage.runs.push(run[1]!.replace(/\s+/g, " "));
  }
  return stages;
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

/** A path relative to a stage's root for a COPY source or destination (`./x/`, `/app/x`, `x`). */
function inStage(path: string, workdir: string): string {
  const absolute = path.startsWith("/") ? path : join(workdir, path);
  return normalize(absolute).replace(/\/$/, "");
}

/**
 * Where `path` (relative to the stage root, e.g. `/app/cli/x.js`) lands in `stage` when
 * copied from `from`, or null when no COPY of that stage takes it. Destinations ending in
 * `/` (or `./`) receive a file source by its base name and a directory source's content.
 */
function copiedTo(stage: Stage, from: string | null, path: string, fromWorkdir: string): string | null {
  for (const copy of stage.copies.filter((c) => c.from === from)) {
    for (const source of copy.sources) {
      const src = from === null ? normalize(source).replace(/\/$/, "") : inStage(source, fromWorkdir);
      const dest = inStage(copy.dest, stage.workdir);
      if (path === src) {
        const isDir = copy.dest.endsWith("/") || copy.dest === ".";
        return isDir && !source.endsWith("/") ? join(dest, src.split("/").at(-1)!) : dest;
      }
      if (path.startsWith(`${src}/`)) return join(dest, path.slice(src.length + 1));
    }
  }
  return null;
}

/** Files (not directories) under `dir`, relative to `root`. */
function filesUnder(dir: string, root = ROOT): string[] {
  return readdirSync(join(root, dir), { recursive: true, encoding: "utf8" })
    .map((f) => join(dir, f))
    .filter((f) => statSync(join(root, f)).isFile());
}

const closure = importClosure(["cli/logarchive.ts"]);
const stages = parseStages(DOCKERFILE);
const deps = stages.find((s) => s.name === "deps");
const build = stages.find((s) => s.name === "build");
const final = stages.at(-1)!;
/** Every source file the shipper loads and the build config, repository-relative. */
const buildInputs = [...closure.files, "tsconfig.json", "tsconfig.build.json", "package.json"];
const ENTRYPOINT = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(DOCKERFILE)?.[1] ?? "[]") as string[];
/** Node's own flags in the ENTRYPOINT (some, like --optimize-for-size, are not allowed in NODE_OPTIONS). */
const NODE_FLAGS = ENTRYPOINT.slice(1, -1);
/** Runtime files in the image for each loaded source: `.ts` compiled to `.js` under dist/. */
const compiled = (file: string) => `dist/${file.replace(/\.ts$/, ".js")}`;

describe("shipper Dockerfile", () => {
  it("finds imports the way Node loads them: inline type imports load, `import type` does not", () => {
    assert.ok(closure.files.has("cli/program.ts"));
    assert.ok(closure.files.has("lib/config/errors.ts"));
    // Loaded by `ship` only through its lazy import.
    assert.ok(closure.files.has("shipper/shipper.ts"));
    assert.ok(closure.files.has("shipper/sinks/s3/batch.ts"));
    assert.ok(closure.packages.has("commander"));
    assert.ok(closure.packages.has("prom-client"));
    assert.ok(closure.packages.has("@aws-sdk/client-s3"));
    // cli/commands/local.ts has `import type … from "../../local/stack.ts"` and a dynamic import.
    assert.ok(
      ![...closure.files].some((f) => f.startsWith("local/") || f.startsWith("functions/")),
      "local/ and functions/ are loaded only by other commands",
    );
  });

  it("has a deps, a build and a final stage, all on an official Node 24 image", () => {
    const base = /^ARG NODE_IMAGE=(\S+)$/m.exec(DOCKERFILE)?.[1];
    assert.match(base ?? "", /^node:24(-[a-z]+)*(@sha256:[0-9a-f]{64})?$/);
    assert.ok(deps && build, `stages: ${stages.map((s) => s.name).join(", ")}`);
    assert.ok(
      stages.every((s) => s.from === "${NODE_IMAGE}"),
      `FROM: ${stages.map((s) => s.from).join(", ")}`,
    );
    assert.ok(final !== deps && final !== build);
  });

  it("builds with `npm run build`, which compiles the CLI entry point and its imports into dist/", () => {
    assert.ok(
      build!.runs.some((r) => /^npm ci\b(?!.*--omit=dev)/.test(r)),
      "the build stage needs dev dependencies",
    );
    assert.ok(build!.runs.at(-1) === "npm run build", `build stage RUN: ${build!.runs.join(" | ")}`);
    assert.match(PACKAGE.scripts.build ?? "", /tsc -p tsconfig\.build\.json/);
    assert.equal(BUILD_CONFIG.extends, "./tsconfig.json");
    assert.deepEqual(BUILD_CONFIG.files, ["cli/logarchive.ts"]);
    const o = BUILD_CONFIG.compilerOptions;
    assert.equal(o.outDir, "dist");
    assert.equal(o.rootDir, ".");
    assert.equal(o.noEmit, false);
    assert.equal(o.rewriteRelativeImportExtensions, true);
  });

  it("copies every source file the shipper loads, and the build config, into the build stage", () => {
    const missing = buildInputs.filter((f) => copiedTo(build!, null, f, "/") !== `/app/${f}`);
    assert.deepEqual(missing, [], `not copied into the build stage at /app: ${missing.join(", ")}`);
  });

  it("copies the compiled form of every file the shipper loads into the final image, at the same path", () => {
    const needed = [...[...closure.files].map(compiled), ...[...closure.assets].map((a) => `dist/${a}`)];
    const missing = needed.filter(
      (f) => copiedTo(final, "build", `/app/${f}`, build!.workdir) !== `/app/${f.slice("dist/".length)}`,
    );
    assert.deepEqual(missing, [], `not in the image: ${missing.join(", ")}`);
    assert.ok(closure.assets.has("package.json"), "program.ts reads ../package.json");
    // Nothing else from the build context: the image runs the compiled files only.
    assert.deepEqual(
      final.copies.filter((c) => c.from === null),
      [],
      "the final stage copies from the deps and build stages only",
    );
    assert.equal(
      copiedTo(final, "deps", "/app/node_modules/yaml/package.json", deps!.workdir),
      "/app/node_modules/yaml/package.json",
    );
  });

  it("excludes none of the build's inputs through .dockerignore, but excludes tests, dist and node_modules", () => {
    const excluded = buildInputs.filter((f) => dockerIgnored(f, DOCKERIGNORE));
    assert.deepEqual(excluded, [], `.dockerignore drops files the build needs: ${excluded.join(", ")}`);
    for (const path of [
      "node_modules/yaml/package.json",
      "dist/cli/logarchive.js",
      ".git/HEAD",
      "shipper/http.test.ts",
      "docs/shipper.md",
    ]) {
      assert.ok(dockerIgnored(path, DOCKERIGNORE), path);
    }
  });

  it("gets every imported package from production dependencies, since npm ci omits dev ones", () => {
    assert.ok(deps!.runs.some((r) => /^npm ci --omit=dev\b/.test(r)));
    const dev = [...closure.packages].filter((p) => !(p in PACKAGE.dependencies));
    assert.deepEqual(dev, [], `imported at runtime but not in dependencies: ${dev.join(", ")}`);
  });

  it("runs the compiled CLI with Node as a numeric non-root user", () => {
    assert.deepEqual(ENTRYPOINT, ["node", ...NODE_FLAGS, "cli/logarchive.js"]);
    assert.ok(
      NODE_FLAGS.every((f) => /^--[a-z][\w-]*(=\S+)?$/.test(f)),
      `node flags: ${NODE_FLAGS.join(" ")}`,
    );
    assert.match(DOCKERFILE, /^CMD \["ship", "--help"\]$/m);
    assert.match(DOCKERFILE, /^USER [1-9]\d*:[1-9]\d*$/m);
  });

  it("reads COPY rules and .dockerignore as Docker does", () => {
    const [a, b] = parseStages(
      "FROM x AS b\nWORKDIR /app\nCOPY y ./\nRUN npm \\\n run z\nFROM x\nWORKDIR /app\nCOPY --from=b /app/dist/lib/ ./lib/\nCOPY --from=b /app/dist/p.json ./\n",
    );
    assert.deepEqual(a!.runs, ["npm run z"]);
    assert.equal(copiedTo(a!, null, "y", "/"), "/app/y");
    assert.equal(copiedTo(b!, "b", "/app/dist/lib/k/m.js", "/app"), "/app/lib/k/m.js");
    assert.equal(copiedTo(b!, "b", "/app/dist/p.json", "/app"), "/app/p.json");
    assert.equal(copiedTo(b!, "b", "/app/dist/other.js", "/app"), null);
    assert.equal(dockerIgnored("src/a.test.ts", "*.test.ts"), false, "no implicit **/ in .dockerignore");
    assert.equal(dockerIgnored("src/a.test.ts", "**/*.test.ts"), true);
    assert.equal(dockerIgnored("docs/x/y.md", "docs"), true);
    assert.equal(dockerIgnored("docs/keep.md", "docs\n!docs/keep.md"), false);
  });
});

// What the stages do, without Docker: the build stage's files (as its COPY rules and
// .dockerignore select them) are built with `npm run build`; the final stage's files are
// taken from that output by its COPY rules; the CLI then ships a log file from there to the
// local S3, run with the ENTRYPOINT's node flags. A file the shipper loads that does not
// reach the image fails the run, dynamic imports included.
describe("shipper image, assembled from the Dockerfile's COPY rules", () => {
  let work = "";
  before(() => {
    work = mkdtempSync(join(tmpdir(), "logarchive-image-"));
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it("ships a container log to S3 with `logarchive ship --once`, from the compiled files alone", async () => {
    // The build stage: its COPY sources from the context, past .dockerignore.
    const buildRoot = join(work, "build");
    for (const copy of build!.copies.filter((c) => c.from === null)) {
      for (const source of copy.sources) {
        const src = normalize(source).replace(/\/$/, "");
        for (const file of statSync(join(ROOT, src)).isDirectory() ? filesUnder(src) : [src]) {
          const dest = copiedTo(build!, null, file, "/");
          if (dest === null || dockerIgnored(file, DOCKERIGNORE)) continue;
          mkdirSync(dirname(join(buildRoot, dest)), { recursive: true });
          cpSync(join(ROOT, file), join(buildRoot, dest));
        }
      }
    }
    // `npm ci` in the build stage: the repository's own node_modules stand in for it.
    const app = join(buildRoot, build!.workdir);
    symlinkSync(join(ROOT, "node_modules"), join(app, "node_modules"));
    const built = spawnSync("npm", ["run", "--silent", "build"], { cwd: app, encoding: "utf8" });
    assert.equal(built.status, 0, `npm run build: ${built.stderr}${built.stdout}`);

    // The final stage: what its COPY --from=build rules take from the build's output.
    const image = join(work, "image");
    for (const file of filesUnder("dist", app)) {
      const dest = copiedTo(final, "build", join(build!.workdir, file), build!.workdir);
      if (dest === null) continue;
      mkdirSync(dirname(join(image, dest)), { recursive: true });
      cpSync(join(app, file), join(image, dest));
    }
    const imageApp = join(image, final.workdir);
    // COPY --from=deps /app/node_modules: production dependencies (here, all of them;
    // the package check above covers dev-only imports).
    symlinkSync(join(ROOT, "node_modules"), join(imageApp, "node_modules"));
    assert.ok(existsSync(join(imageApp, "cli", "logarchive.js")));
    assert.ok(!existsSync(join(imageApp, "shipper", "shipper.ts")), "no sources in the image");

    // A container log as kubelet lays it out: short and long lines (the long ones escaped
    // in slices), JSON quotes, non-ASCII text, and a line split into P and F chunks.
    const messages = [
      "GET /healthz 200",
      `{"msg":"payment accepted","amount":"12.50 €","trace":"${"0123456789abcdef".repeat(8)}"}`,
      `stack ${"at com.example.Handler.run(Handler.java:42)\t".repeat(400)}`,
      "partial line, then its end",
    ];
    const cri = (i: number, tag: string, text: string) =>
      `2026-11-21T11:00:00.${String(i).padStart(9, "0")}Z stdout ${tag} ${text}\n`;
    const log = [
      ...messages.slice(0, 3).map((m, i) => cri(i, "F", m)),
      cri(3, "P", "partial line, "),
      cri(4, "F", "then its end"),
    ].join("");
    const logDir = join(work, "pods", "shop_web-0_0c4f8c1e-2a4b-4f7e-9a51-8d3b2c1a0f9e", "web");
    mkdirSync(logDir, { recursive: true });
    writeFileSync(join(logDir, "0.log"), log);

    const s3 = await startLocalS3({
      host: "127.0.0.1",
      port: 0,
      dataDir: join(work, "s3"),
      buckets: ["archive"],
    });
    try {
      // Asynchronously: the local S3 answers from this process.
      const child = spawn(
        process.execPath,
        [
          ...NODE_FLAGS,
          ENTRYPOINT.at(-1)!,
          "ship",
          "--once",
          "--listen",
          "",
          "--logs",
          join(work, "pods", "*", "*", "*.log*"),
          "--state-dir",
          join(work, "state"),
          "--bucket",
          "archive",
          "--s3-endpoint",
          s3.endpoint,
          "--node",
          "image-test",
        ],
        {
          cwd: imageApp,
          stdio: ["ignore", "ignore", "pipe"],
          env: {
            ...process.env,
            NODE_OPTIONS: /^ENV NODE_OPTIONS="([^"]*)"$/m.exec(DOCKERFILE)?.[1] ?? "",
            ...LOCAL_S3_ENV,
          },
        },
      );
      let stderr = "";
      child.stderr.on("data", (c: Buffer) => {
        stderr += c.toString();
      });
      const [code] = (await once(child, "close")) as [number | null];
      assert.equal(code, 0, stderr);

      const client = new S3Client({
        region: "us-east-1",
        endpoint: s3.endpoint,
        forcePathStyle: true,
        credentials: LOCAL_S3_CREDENTIALS,
      });
      try {
        const listed = await client.send(new ListObjectsV2Command({ Bucket: "archive" }));
        const keys = (listed.Contents ?? []).map((o) => o.Key!);
        assert.equal(keys.length, 1, keys.join(", "));
        const object = await client.send(new GetObjectCommand({ Bucket: "archive", Key: keys[0] }));
        const records = gunzipSync(await object.Body!.transformToByteArray())
          .toString("utf8")
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l) as { message: string; namespace: string; pod: string });
        assert.deepEqual(
          records.map((r) => r.message),
          messages,
        );
        assert.deepEqual([records[0]!.namespace, records[0]!.pod], ["shop", "web-0"]);
      } finally {
        client.destroy();
      }
    } finally {
      await s3.stop();
    }
  });
});
