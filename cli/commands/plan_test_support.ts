// What the plan and cost tests share: their exported commands run as cli/program.ts would,
// a fixture directory with the worked example's policy and loader config, and that example's
// fleet flags.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { Command } from "commander";

/**
 * A temp dir (removed after the test file) holding the worked example's inputs: a policy that
 * archives and loads every namespace into one table (analytics share 1 without
 * --analytics-share), and a loader config with the state in its own bucket, so marker writes
 * fire no finalize.
 */
export function workedExampleFixture(name: string): { dir: string; policy: string; loaderConfig: string } {
  const dir = mkdtempSync(join(tmpdir(), `logarchive-${name}-test-`));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const policy = join(dir, "namespaces.yaml");
  writeFileSync(policy, 'analytics:\n  include: ["*"]\n');
  const loaderConfig = join(dir, "loader.yaml");
  // The settings the worked example was computed by hand with (the loader's defaults until
  // 2026-12-07, when flush_concurrency became 32, min_window 3m and sweep_interval 1m): the
  // example checks the model's arithmetic; the defaults have tests of their own.
  writeFileSync(
    loaderConfig,
    "landing_bucket: landing\nstate_bucket: state\nflush_concurrency: 16\nmin_window: 0s\nsweep_interval: 5m\n",
  );
  return { dir, policy, loaderConfig };
}

/**
 * The worked example's fleet (plan.test.ts computes it by hand): 10 nodes, one namespace each,
 * 8.64 GB/day per node, lines of 100 B, gzip 0.25.
 */
export function workedFleetArgs(fixture: { policy: string; loaderConfig: string }): string[] {
  return [
    "--nodes",
    "10",
    "--gb-per-node-day",
    "8.64",
    "--namespaces",
    "1",
    "--active-per-node",
    "1",
    "--skew",
    "zipf:0",
    "--compression",
    "0.25",
    "--line-bytes",
    "100",
    "--policy",
    fixture.policy,
    "--loader-config",
    fixture.loaderConfig,
  ];
}

/** Asserts `actual` is within `tolerance` (a fraction) of `expected`. */
export function close(actual: number, expected: number, what: string, tolerance = 0.005): void {
  assert.ok(
    Math.abs(actual - expected) <= Math.abs(expected) * tolerance,
    `${what}: ${actual} is not within ${tolerance * 100}% of ${expected}`,
  );
}

/** Runs `logarchive ARGS` through the exported command; returns what it wrote and its exit code. */
export async function runCommand(
  make: (io: { write(t: string): void; setExitCode(c: number): void }) => Command,
  args: string[],
): Promise<{ out: string; code: number | undefined }> {
  let out = "";
  let code: number | undefined;
  const program = new Command("logarchive").exitOverride();
  program.addCommand(
    make({
      write: (t) => {
        out += t;
      },
      setExitCode: (c) => {
        code = c;
      },
    }).exitOverride(),
  );
  await program.parseAsync(["node", "logarchive", ...args]);
  return { out, code };
}
