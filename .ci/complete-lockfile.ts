// The npm registry this project's machines reach serves only the linux builds of packages
// that ship per-platform binaries (Biome, DuckDB). `npm install` then writes a lockfile
// without the other platforms' optional packages, and `npm ci` rejects that lockfile as
// out of sync. This adds the missing entries, marked with the os/cpu/libc their names
// state, so `npm ci` skips them on this platform exactly as it would with a full lockfile.
// Run after `npm install` changes package-lock.json: `node .ci/complete-lockfile.ts`.

import { readFileSync, writeFileSync } from "node:fs";

interface LockEntry {
  version?: string;
  dev?: boolean;
  optional?: boolean;
  optionalDependencies?: Record<string, string>;
  os?: string[];
  cpu?: string[];
  libc?: string[];
  license?: string;
}

const path = new URL("../package-lock.json", import.meta.url);
const lock = JSON.parse(readFileSync(path, "utf8")) as { packages: Record<string, LockEntry> };

function platformOf(name: string): Pick<LockEntry, "os" | "cpu" | "libc"> | null {
  const m =
    /-(android|darwin|linux|win32|freebsd|openbsd|netbsd|aix)-(x64|arm64|arm|ia32|ppc64|s390x|riscv64|loong64|mips64el)(-musl)?$/.exec(
      name,
    );
  if (m === null) return null;
  const [, os, cpu, musl] = m;
  return { os: [os!], cpu: [cpu!], ...(os === "linux" ? { libc: [musl ? "musl" : "glibc"] } : {}) };
}

let added = 0;
for (const [where, entry] of Object.entries(lock.packages)) {
  for (const [dep, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const key = `node_modules/${dep}`;
    const platform = platformOf(dep);
    if (lock.packages[key] !== undefined || platform === null || !/^\d+\.\d+\.\d+/.test(version)) continue;
    lock.packages[key] = {
      version,
      ...(entry.dev ? { dev: true } : {}),
      optional: true,
      ...(entry.license ? { license: entry.license } : {}),
      ...platform,
    };
    added++;
    process.stdout.write(`added ${key}@${version} (from ${where || "root"})\n`);
  }
}
lock.packages = Object.fromEntries(
  Object.entries(lock.packages).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a < b ? -1 : 1)),
);
writeFileSync(path, `${JSON.stringify(lock, null, 2)}\n`);
process.stdout.write(`${added} platform entries added\n`);
