// `npm run build:functions [-- --out-dir DIR]`: the Cloud Functions deployment package, a
// directory to zip and upload as the source of both functions (gen2, runtime nodejs24):
//
//   DIR/package.json        main functions/index.js, type module, only the production
//                           dependencies the compiled modules import, and no scripts (the
//                           Node.js buildpack would run a `build` script)
//   DIR/package-lock.json   the root lockfile's entries for exactly those dependencies, so
//                           the buildpack's `npm ci` installs the versions the tests ran
//   DIR/functions/…, lib/…  functions/index.ts and every module it loads, compiled by
//                           tsconfig.functions.json at their repository paths
//
// The buildpack installs node_modules itself; the functions-framework is then started in DIR
// with --target=logarchiveFinalize or logarchiveFlush and finds the code through `main`.
// The build refuses an import it cannot account for (a dev dependency, a computed dynamic
// import, a file read by URL) instead of shipping a package that fails at its first event.

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { isBuiltin } from "node:module";
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { parseArgs } from "node:util";

const ROOT = resolve(import.meta.dirname, "../..");
export const DEFAULT_OUT_DIR = join(ROOT, "dist", "functions-package");
export const PACKAGE_NAME = "logarchive-functions";
export const PACKAGE_MAIN = "functions/index.js";
const ENTRY_SOURCE = "functions/index.ts";
const FUNCTIONS_FRAMEWORK = "@google-cloud/functions-framework";

/** Source trees that must never reach the functions' package, whatever imports them. */
const FORBIDDEN = [/\.test\.js$/, /(^|\/)test_support\//, /^(cli|shipper|local|test|benchmarks|infra)\//];

// Emitted JavaScript (comments removed, type-only imports erased): every import is a load.
const STATIC_IMPORT = /^\s*(?:(?:import|export)\b[^;"'`]*?[\s}*]from\s*|import\s*)["']([^"']+)["']/gm;
const DYNAMIC_IMPORT = /\bimport\s*\(/g;
const LITERAL_DYNAMIC_IMPORT = /^\s*["']([^"']+)["']\s*\)/;
const FILE_URL = /new URL\(\s*["'`]/;

interface LockEntry {
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  dev?: boolean;
  optional?: boolean;
  devOptional?: boolean;
  peer?: boolean;
  link?: boolean;
  [field: string]: unknown;
}

interface Lockfile {
  name: string;
  version: string;
  lockfileVersion: number;
  requires?: boolean;
  packages: Record<string, LockEntry>;
}

interface RootManifest {
  name: string;
  version: string;
  description?: string;
  license?: string;
  engines?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

export interface FunctionsPackage {
  dir: string;
  /** Package-relative paths of the compiled modules. */
  modules: string[];
  /** The generated package.json's dependencies: name → the root package.json's range. */
  dependencies: Record<string, string>;
  /** Lockfile paths (`node_modules/…`) of every package `npm ci` installs, optional ones included. */
  lockedPackages: string[];
}

/** A problem with the sources or the output directory: reported as one line, no stack. */
export class PackageError extends Error {
  override name = "PackageError";
}

/** The module paths an emitted ES module loads: static imports, re-exports, literal import(). */
export function importsOf(file: string, text: string): string[] {
  const specifiers = [...text.matchAll(STATIC_IMPORT)].map((m) => m[1]!);
  for (const m of text.matchAll(DYNAMIC_IMPORT)) {
    const literal = LITERAL_DYNAMIC_IMPORT.exec(text.slice(m.index + m[0].length));
    if (literal === null)
      throw new PackageError(
        `${file}: import() of a computed specifier; the package cannot know what it loads`,
      );
    specifiers.push(literal[1]!);
  }
  if (FILE_URL.test(text))
    throw new PackageError(`${file}: reads a file by URL, which the package does not copy`);
  return specifiers;
}

/** `@scope/name/sub` → `@scope/name`, `name/sub` → `name`. */
export function packageNameOf(specifier: string): string {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]!;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => statSync(join(dir, f)).isFile())
    .map((f) => f.split(sep).join("/"))
    .sort();
}

/** Where Node finds `name` from the package installed at `from` ("" for the root), in lockfile paths. */
export function resolveLocked(
  packages: Record<string, LockEntry>,
  from: string,
  name: string,
): string | null {
  let base = from;
  for (;;) {
    const candidate = base === "" ? `node_modules/${name}` : `${base}/node_modules/${name}`;
    if (packages[candidate] !== undefined) return candidate;
    if (base === "") return null;
    const up = base.lastIndexOf("/node_modules/");
    base = up === -1 ? "" : base.slice(0, up);
  }
}

/**
 * The root lockfile's entries `npm ci --omit=dev` installs for `dependencies`, at the same
 * paths (the root's hoisting stays valid for a subset of its tree). Flags are recomputed for
 * this tree: nothing is dev, and an entry only optional edges reach is optional.
 */
export function lockedSubset(
  lock: Lockfile,
  dependencies: Record<string, string>,
): Record<string, LockEntry> {
  const required = new Set<string>();
  const reached = new Set<string>();
  const visit = (path: string, viaRequired: boolean) => {
    if (viaRequired ? required.has(path) : reached.has(path)) return;
    reached.add(path);
    if (viaRequired) required.add(path);
    const entry = lock.packages[path]!;
    const edges: [string, boolean][] = [
      ...Object.keys(entry.dependencies ?? {}).map((n): [string, boolean] => [n, true]),
      ...Object.keys(entry.peerDependencies ?? {})
        .filter((n) => entry.peerDependenciesMeta?.[n]?.optional !== true)
        .map((n): [string, boolean] => [n, true]),
      ...Object.keys(entry.optionalDependencies ?? {}).map((n): [string, boolean] => [n, false]),
    ];
    for (const [name, isRequired] of edges) {
      const target = resolveLocked(lock.packages, path, name);
      if (target === null) {
        if (isRequired)
          throw new PackageError(`package-lock.json: ${path} needs ${name}, which the lockfile lacks`);
        continue;
      }
      visit(target, viaRequired && isRequired);
    }
  };
  for (const name of Object.keys(dependencies)) {
    const path = resolveLocked(lock.packages, "", name);
    if (path === null)
      throw new PackageError(`package-lock.json has no node_modules/${name}: run npm install first`);
    visit(path, true);
  }
  const subset: Record<string, LockEntry> = {};
  for (const path of [...reached].sort()) {
    const {
      dev: _dev,
      optional: _optional,
      devOptional: _devOptional,
      peer: _peer,
      ...entry
    } = lock.packages[path]!;
    subset[path] = required.has(path) ? entry : { ...entry, optional: true };
  }
  return subset;
}

/** Refuse to empty a directory that is not a previous package (or empty), or that holds the repository. */
function prepareOutDir(dir: string): void {
  const fromDir = relative(dir, ROOT);
  if (fromDir === "" || !(fromDir.startsWith("..") || isAbsolute(fromDir)))
    throw new PackageError(`--out-dir ${dir} holds the repository; choose a directory of its own`);
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory())
      throw new PackageError(`--out-dir ${dir} is a file; choose a directory`);
    const entries = readdirSync(dir);
    const manifest = join(dir, "package.json");
    const previous =
      existsSync(manifest) &&
      (JSON.parse(readFileSync(manifest, "utf8")) as { name?: string }).name === PACKAGE_NAME;
    if (entries.length > 0 && !previous)
      throw new PackageError(
        `--out-dir ${dir} is not empty and holds no earlier ${PACKAGE_NAME}; choose an empty directory`,
      );
    rmSync(dir, { recursive: true, force: true });
  }
  mkdirSync(dir, { recursive: true });
}

function compile(outDir: string): void {
  const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
  const result = spawnSync(
    process.execPath,
    [tsc, "-p", join(ROOT, "tsconfig.functions.json"), "--outDir", outDir],
    { cwd: ROOT, encoding: "utf8" },
  );
  if (result.status !== 0)
    throw new PackageError(
      `tsc -p tsconfig.functions.json failed (${result.status ?? result.signal}): ${`${result.stdout}${result.stderr}`.trim()}`,
    );
}

/** The production packages the compiled modules import; every relative import must be in the package. */
function importedPackages(dir: string, modules: string[], manifest: RootManifest): Set<string> {
  const packages = new Set<string>();
  const present = new Set(modules);
  for (const module of modules) {
    for (const specifier of importsOf(module, readFileSync(join(dir, module), "utf8"))) {
      if (specifier.startsWith(".")) {
        const target = relative(dir, resolve(dir, dirname(module), specifier))
          .split(sep)
          .join("/");
        if (!present.has(target))
          throw new PackageError(`${module} imports ${specifier}, which is not in the package (${target})`);
        continue;
      }
      if (specifier.startsWith("node:") || isBuiltin(specifier)) continue;
      if (specifier.startsWith("/") || /^[a-z]+:/.test(specifier))
        throw new PackageError(
          `${module} imports ${specifier}: only relative and package imports can be packaged`,
        );
      const name = packageNameOf(specifier);
      if (manifest.dependencies?.[name] === undefined)
        throw new PackageError(
          `${module} imports ${name}, which is not in package.json dependencies${manifest.devDependencies?.[name] === undefined ? "" : " (only devDependencies)"}; the deployed function could not load it`,
        );
      packages.add(name);
    }
  }
  return packages;
}

export function buildFunctionsPackage(outDir: string = DEFAULT_OUT_DIR): FunctionsPackage {
  const dir = resolve(outDir);
  const manifest = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as RootManifest;
  const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")) as Lockfile;
  prepareOutDir(dir);
  compile(dir);

  const modules = filesUnder(dir);
  if (!modules.includes(PACKAGE_MAIN))
    throw new PackageError(
      `tsc did not emit ${PACKAGE_MAIN} from ${ENTRY_SOURCE}; check tsconfig.functions.json`,
    );
  const forbidden = modules.filter((m) => FORBIDDEN.some((f) => f.test(m)));
  if (forbidden.length > 0)
    throw new PackageError(
      `${ENTRY_SOURCE} loads modules that must not be deployed: ${forbidden.join(", ")}; move what the functions need into lib/ or functions/`,
    );

  const names = importedPackages(dir, modules, manifest);
  // The runtime starts the framework from the package's own node_modules (Google installs
  // one otherwise, of a version nobody tested).
  names.add(FUNCTIONS_FRAMEWORK);
  const dependencies = Object.fromEntries(
    [...names].sort().map((name) => [name, manifest.dependencies![name] ?? ""]),
  );
  if (dependencies[FUNCTIONS_FRAMEWORK] === "")
    throw new PackageError(`package.json dependencies lack ${FUNCTIONS_FRAMEWORK}`);

  const packageJson = {
    name: PACKAGE_NAME,
    version: manifest.version,
    private: true,
    description: `Cloud Functions logarchiveFinalize and logarchiveFlush (built from ${manifest.name} by npm run build:functions).`,
    ...(manifest.license ? { license: manifest.license } : {}),
    type: "module",
    main: PACKAGE_MAIN,
    engines: { node: manifest.engines?.node ?? "24" },
    dependencies,
  };
  const locked = lockedSubset(lock, dependencies);
  const lockfile = {
    name: PACKAGE_NAME,
    version: manifest.version,
    lockfileVersion: lock.lockfileVersion,
    requires: true,
    packages: {
      "": {
        name: PACKAGE_NAME,
        version: manifest.version,
        ...(manifest.license ? { license: manifest.license } : {}),
        dependencies,
        engines: packageJson.engines,
      },
      ...locked,
    },
  };
  writeFileSync(join(dir, "package.json"), `${JSON.stringify(packageJson, null, 2)}\n`);
  writeFileSync(join(dir, "package-lock.json"), `${JSON.stringify(lockfile, null, 2)}\n`);
  return { dir, modules, dependencies, lockedPackages: Object.keys(locked) };
}

if (import.meta.main) {
  const usage = "usage: node functions/deploy/package.ts [--out-dir DIR]   (default dist/functions-package)";
  let outDir: string;
  try {
    const { values } = parseArgs({ options: { "out-dir": { type: "string" } }, strict: true });
    outDir = values["out-dir"] ?? DEFAULT_OUT_DIR;
    if (outDir === "") throw new Error("--out-dir is empty");
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${usage}\n`);
    process.exit(2);
  }
  try {
    const built = buildFunctionsPackage(outDir);
    process.stdout.write(
      `${built.dir}: ${built.modules.length} modules, ` +
        `dependencies ${Object.keys(built.dependencies).join(", ")} (${built.lockedPackages.length} locked packages)\n`,
    );
  } catch (error) {
    if (!(error instanceof PackageError)) throw error;
    process.stderr.write(`build:functions: ${error.message}\n`);
    process.exit(error.message.startsWith("--out-dir") ? 2 : 1);
  }
}
