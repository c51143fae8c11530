// The functions' deployment package, built by functions/deploy/package.ts into a temp dir and
// run the way Cloud Functions runs it: its production dependencies installed from its own
// lockfile (the entries linked from this repository's node_modules, as `npm ci --omit=dev`
// would lay them out, with no registry), then the functions-framework's own CLI started in
// the package directory with --target, finding the code through package.json `main`. Each
// function is a separate process on its own port, configured only by LOGARCHIVE_* variables,
// against the local GCS, with DuckDB as the warehouse.

import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
} from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { Storage } from "@google-cloud/storage";
import { type LocalGcs, startLocalGcs } from "../../local/gcs/server.ts";
import { FINALIZE_FUNCTION, FINALIZED_EVENT_TYPE, FLUSH_FUNCTION } from "../handlers.ts";
import { archiveObject } from "../loader/test_support/objects.ts";
import {
  buildFunctionsPackage,
  type FunctionsPackage,
  importsOf,
  PACKAGE_MAIN,
  PACKAGE_NAME,
  packageNameOf,
} from "./package.ts";

const ROOT = resolve(import.meta.dirname, "../..");
/** Last-resort guard for a child that never gets ready; readiness itself is its log line. */
const READY_TIMEOUT_MS = 60_000;

interface LockEntry {
  version?: string;
  optional?: boolean;
  bin?: Record<string, string>;
}

let dir: string;
let built: FunctionsPackage;
let gcs: LocalGcs;
let storage: Storage;
const children: ChildProcess[] = [];

/**
 * `npm ci --omit=dev` from the package's lockfile, offline: every locked package the platform
 * has is linked in from the repository's node_modules at its locked path (without its nested
 * node_modules, which are entries of their own), and top-level bins get their .bin links.
 * Hard links, not symlinks: Node would follow a symlink back into the repository and resolve
 * what the package lacks from there.
 */
function installFromLockfile(pkg: string): void {
  const lock = JSON.parse(readFileSync(join(pkg, "package-lock.json"), "utf8")) as {
    packages: Record<string, LockEntry>;
  };
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === "") continue;
    const source = join(ROOT, path);
    if (!existsSync(source)) {
      // Another platform's binary: npm skips it by its os/cpu too.
      assert.equal(entry.optional, true, `${path} is locked as required but not installed here`);
      continue;
    }
    const installed = JSON.parse(readFileSync(join(source, "package.json"), "utf8")) as { version: string };
    assert.equal(installed.version, entry.version, `${path}: the lockfile and node_modules disagree`);
    linkTree(source, join(pkg, path));
    if (!path.includes("/node_modules/")) {
      for (const [name, target] of Object.entries(entry.bin ?? {})) {
        mkdirSync(join(pkg, "node_modules", ".bin"), { recursive: true });
        symlinkSync(
          relative(join(pkg, "node_modules", ".bin"), join(pkg, path, target)),
          join(pkg, "node_modules", ".bin", name),
        );
      }
    }
  }
}

function linkTree(source: string, target: string): void {
  mkdirSync(target, { recursive: true });
  for (const name of readdirSync(source)) {
    if (name === "node_modules") continue;
    const from = join(source, name);
    const to = join(target, name);
    const stat = lstatSync(from);
    if (stat.isDirectory()) linkTree(from, to);
    else if (stat.isSymbolicLink()) symlinkSync(readlinkSync(from), to);
    else {
      try {
        linkSync(from, to);
      } catch {
        copyFileSync(from, to);
      }
    }
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

interface RunningFunction {
  url: string;
  /** The JSON lines the function logged on stdout (Cloud Logging's format). */
  logged: Record<string, unknown>[];
  /** Resolves with the first logged line `match` accepts, now or later. */
  waitForLog(match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
}

/** `functions-framework --target=… --signature-type=… --port=…` in the package dir, as the runtime starts it. */
async function startFunction(
  target: string,
  signatureType: "cloudevent" | "http",
  env: Record<string, string>,
): Promise<RunningFunction> {
  const port = await freePort();
  // The bin's `#!/usr/bin/env node` could find another Node; the runtime's is Node 24, like ours.
  const child = spawn(
    process.execPath,
    [
      join(dir, "pkg", "node_modules", ".bin", "functions-framework"),
      `--target=${target}`,
      `--signature-type=${signatureType}`,
      `--port=${port}`,
    ],
    // Only what the deployment sets: nothing of this process's environment leaks in. NODE_ENV
    // stays unset (production silences the framework's "Serving function" line we wait for).
    {
      cwd: join(dir, "pkg"),
      env: { PATH: process.env.PATH ?? "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  children.push(child);
  const logged: Record<string, unknown>[] = [];
  const waiters: {
    match: (l: Record<string, unknown>) => boolean;
    resolve: (l: Record<string, unknown>) => void;
  }[] = [];
  let stderr = "";
  child.stderr!.on("data", (chunk) => {
    stderr += chunk;
  });
  const ready = new Promise<void>((resolveReady, reject) => {
    const guard = setTimeout(
      () => reject(new Error(`${target} not ready in time; stderr: ${stderr}`)),
      READY_TIMEOUT_MS,
    );
    child.once("exit", (code, signal) => {
      clearTimeout(guard);
      reject(new Error(`${target} exited (${code ?? signal}) before serving; stderr: ${stderr}`));
    });
    createInterface({ input: child.stdout! }).on("line", (text) => {
      if (text === `URL: http://localhost:${port}/`) {
        clearTimeout(guard);
        resolveReady();
        return;
      }
      if (!text.startsWith("{")) return;
      const line = JSON.parse(text) as Record<string, unknown>;
      logged.push(line);
      for (const w of waiters.filter((w) => w.match(line))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    });
  });
  await ready;
  return {
    url: `http://127.0.0.1:${port}/`,
    logged,
    waitForLog: (match) =>
      new Promise((resolveLine) => {
        const seen = logged.find(match);
        if (seen) resolveLine(seen);
        else waiters.push({ match, resolve: resolveLine });
      }),
  };
}

async function stopChildren(): Promise<void> {
  await Promise.all(
    children
      .filter((c) => c.exitCode === null && c.signalCode === null)
      .map((c) => {
        const exited = new Promise((r) => c.once("exit", r));
        c.kill("SIGTERM");
        return exited;
      }),
  );
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "functions-package-test-"));
  built = buildFunctionsPackage(join(dir, "pkg"));
  installFromLockfile(built.dir);
  gcs = await startLocalGcs({ dataDir: join(dir, "gcs"), host: "127.0.0.1", port: 0 });
  storage = new Storage({ apiEndpoint: gcs.url, projectId: "test" });
  await storage.createBucket("landing");
  await storage.createBucket("loader-state");
});

after(async () => {
  await stopChildren();
  await gcs?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe("the functions' deployment package", () => {
  it("is a module package whose main is the compiled entry point, with no build script to run", () => {
    const manifest = JSON.parse(readFileSync(join(built.dir, "package.json"), "utf8")) as Record<
      string,
      unknown
    >;
    assert.equal(manifest.name, PACKAGE_NAME);
    assert.equal(manifest.type, "module");
    assert.equal(manifest.main, PACKAGE_MAIN);
    assert.match(String((manifest.engines as { node?: string }).node), /^>=24\.\d+ <25$/);
    assert.equal(manifest.scripts, undefined, "the buildpack runs a build script if there is one");
    assert.ok(built.modules.includes(PACKAGE_MAIN));
  });

  it("holds only the functions' modules: no tests, test support, CLI, shipper or local stack", () => {
    const files = readdirSync(built.dir, { recursive: true, encoding: "utf8" }).filter(
      (f) => !f.startsWith("node_modules") && lstatSync(join(built.dir, f)).isFile(),
    );
    assert.deepEqual(files.filter((f) => f.endsWith(".js")).sort(), [...built.modules].sort());
    const unwanted = files.filter(
      (m) =>
        /\.test\.js$|test_support\//.test(m) ||
        /^(cli|shipper|local|test|benchmarks|infra)\//.test(m) ||
        !/^(functions|lib)\/.*\.js$|^package(-lock)?\.json$/.test(m),
    );
    assert.deepEqual(unwanted, []);
    assert.ok(built.modules.includes("functions/handlers.js"));
    assert.ok(
      built.modules.includes("functions/warehouse/bigquery.js"),
      "the warehouse adapters load lazily",
    );
  });

  it("declares exactly the production dependencies its modules import, at the root package.json's ranges", () => {
    const root = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
      dependencies: Record<string, string>;
    };
    const imported = new Set<string>(["@google-cloud/functions-framework"]);
    for (const module of built.modules.filter((m) => m.endsWith(".js"))) {
      for (const spec of importsOf(module, readFileSync(join(built.dir, module), "utf8"))) {
        if (spec.startsWith(".")) {
          const target = resolve(built.dir, dirname(module), spec);
          assert.ok(
            target.startsWith(`${built.dir}/`) && existsSync(target),
            `${module}: ${spec} is not in the package`,
          );
        } else if (!spec.startsWith("node:")) imported.add(packageNameOf(spec));
      }
    }
    assert.deepEqual(Object.keys(built.dependencies).sort(), [...imported].sort());
    for (const [name, range] of Object.entries(built.dependencies))
      assert.equal(range, root.dependencies[name]);
    const docs = readFileSync(join(ROOT, "docs", "loader.md"), "utf8");
    const listed = /the compiled modules import[\s\S]*?Today: ([^.]*)\./.exec(docs)?.[1] ?? "";
    assert.deepEqual(
      [...listed.matchAll(/`([^`]+)`/g)].map((m) => m[1]).sort(),
      Object.keys(built.dependencies).sort(),
      "docs/loader.md (Deploying the functions) lists the package's dependencies",
    );
    for (const devOnly of ["typescript", "fast-check", "@biomejs/biome", "node", "google-auth-library"])
      assert.equal(built.dependencies[devOnly], undefined, devOnly);
  });

  it("resolves every import of every module inside the package, its installed node_modules included", () => {
    const modules = built.modules.filter((m) => m.endsWith(".js")).map((m) => join(built.dir, m));
    // Records what Node resolves (import and require) while it loads every module of the package.
    const probe = `
      import { registerHooks } from "node:module";
      import { pathToFileURL } from "node:url";
      const resolved = [];
      registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); resolved.push(r.url); return r; } });
      for (const file of JSON.parse(process.argv[1])) await import(pathToFileURL(file).href);
      process.stdout.write(JSON.stringify(resolved));
    `;
    const result = spawnSync(
      process.execPath,
      ["--input-type=module", "-e", probe, JSON.stringify(modules)],
      {
        cwd: built.dir,
        env: { PATH: process.env.PATH ?? "" },
        encoding: "utf8",
      },
    );
    assert.equal(result.status, 0, result.stderr);
    const files = (JSON.parse(result.stdout) as string[])
      .filter((url) => url.startsWith("file:"))
      .map((url) => fileURLToPath(url));
    assert.ok(
      files.some((f) => f.includes("/node_modules/@google-cloud/bigquery/")),
      "the probe loaded the lazy imports",
    );
    assert.deepEqual(
      files.filter((f) => !f.startsWith(`${built.dir}/`)),
      [],
    );
  });

  it("locks the same versions as the repository for every package it installs, and nothing dev-only", () => {
    const rootLock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")) as {
      packages: Record<string, LockEntry & { dev?: boolean }>;
    };
    const lock = JSON.parse(readFileSync(join(built.dir, "package-lock.json"), "utf8")) as {
      packages: Record<string, LockEntry & { dependencies?: Record<string, string>; dev?: boolean }>;
    };
    assert.deepEqual(lock.packages[""]!.dependencies, built.dependencies);
    for (const path of built.lockedPackages) {
      assert.equal(lock.packages[path]!.version, rootLock.packages[path]!.version, path);
      assert.notEqual(rootLock.packages[path]!.dev, true, `${path} is dev-only in the root lockfile`);
      assert.equal(lock.packages[path]!.dev, undefined, path);
    }
    assert.equal(lock.packages["node_modules/typescript"], undefined);
  });

  it("starts under the functions-framework CLI and answers a finalize CloudEvent and a flush, as deployed", async () => {
    const env = {
      LOGARCHIVE_LANDING_BUCKET: "landing",
      LOGARCHIVE_STATE_BUCKET: "loader-state",
      LOGARCHIVE_GCS_ENDPOINT: gcs.url,
      LOGARCHIVE_POLICY_YAML: "analytics:\n  include: ['*']\n  exclude: ['kube-system']\n",
      LOGARCHIVE_WAREHOUSE: "duckdb",
      LOGARCHIVE_ALLOW_FORCED_FLUSH: "true",
      LOGARCHIVE_JOB_POLL_INTERVAL: "20ms",
    };
    // Two functions, two instances: each opens its own DuckDB file (DuckDB allows one writer
    // process); only the flush loads.
    const [finalize, flush] = await Promise.all([
      startFunction(FINALIZE_FUNCTION, "cloudevent", {
        ...env,
        LOGARCHIVE_DUCKDB_PATH: join(dir, "finalize.duckdb"),
      }),
      startFunction(FLUSH_FUNCTION, "http", { ...env, LOGARCHIVE_DUCKDB_PATH: join(dir, "flush.duckdb") }),
    ]);

    const names: string[] = [];
    for (let seq = 1; seq <= 3; seq++) {
      const o = archiveObject({ namespace: "payments", seq, records: 4 });
      const file = storage.bucket("landing").file(o.name);
      await file.save(o.body, {
        resumable: false,
        metadata: { contentType: "application/gzip", metadata: o.metadata },
      });
      const [resource] = await file.getMetadata();
      const eventId = `pkg-${seq}`;
      const response = await fetch(finalize.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "ce-specversion": "1.0",
          "ce-type": FINALIZED_EVENT_TYPE,
          "ce-source": "//storage.googleapis.com/projects/_/buckets/landing",
          "ce-subject": `objects/${o.name}`,
          "ce-id": eventId,
          "ce-time": new Date().toISOString(),
        },
        body: JSON.stringify(resource),
      });
      assert.ok(response.ok, `${response.status} ${await response.text()}`);
      const line = await finalize.waitForLog((l) => l.event_id === eventId);
      assert.equal(line.event, "finalize_queued", JSON.stringify(line));
      assert.equal(line.object, o.name);
      names.push(o.name);
    }
    assert.ok(
      finalize.logged.some((l) => l.event === "loader_started" && l.warehouse === "duckdb"),
      "configured from LOGARCHIVE_* alone",
    );

    const response = await fetch(`${flush.url}?force=true`, { method: "POST" });
    const body = (await response.json()) as { tables: { table: string; status: string; rows?: number }[] };
    assert.equal(response.status, 200, JSON.stringify(body));
    const table = body.tables.find((t) => t.table === "logarchive.container_logs");
    assert.equal(table?.status, "loaded", JSON.stringify(body));
    assert.equal(table?.rows, 12, "three objects of four records");

    const [done] = await storage.bucket("loader-state").getFiles({ prefix: "_logarchive/loader/done/" });
    assert.equal(done.length, names.length, "each object marked loaded once, in the state bucket");
  });
});
