import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { LOADER_OPTIONS } from "../../functions/loader/config.ts";
import { BIGQUERY_QUOTAS, planLoadWindows } from "../../functions/loader/plan.ts";
import { FLUSH_INTERVAL_BOUNDS, MIN_WINDOW_BOUNDS, MIN_WINDOW_DEFAULT } from "./loader.ts";

const cli = new URL("../logarchive.ts", import.meta.url).pathname;

describe("logarchive loader plan", () => {
  it("prints the window, the job counts and the freshness for a table count", () => {
    const r = spawnSync(process.execPath, [cli, "loader", "plan", "--tables", "300"], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stdout,
      /300 destination table\(s\): each flushed at most every 9\.0 min \(bound by project\)/,
    );
    assert.match(r.stdout, /160\/table\/day, 48000\/project\/day/);
  });

  it("floors the window at the loader's min_window, as the loader does, and says so", () => {
    const spec = LOADER_OPTIONS.find((o) => o.key === "min_window") as { default?: string; max?: number };
    assert.equal(MIN_WINDOW_DEFAULT, spec.default);
    assert.deepEqual(MIN_WINDOW_BOUNDS, { max: spec.max });
    const run = (...args: string[]) =>
      spawnSync(process.execPath, [cli, "loader", "plan", "--tables", "1", ...args], { encoding: "utf8" });
    // One table: the budget allows a job every 115.2 s, 2 min in whole flushes; the 3m floor wins.
    const byDefault = run();
    assert.equal(byDefault.status, 0, byDefault.stderr);
    assert.match(byDefault.stdout, /each flushed at most every 3\.0 min \(bound by min-window\)/);
    const unfloored = run("--min-window", "0s");
    assert.match(unfloored.stdout, /each flushed at most every 2\.0 min \(bound by table\)/);
    const bad = run("--min-window", "25h");
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--min-window.*'25h' is invalid\. must be at most 24h/);
  });

  it("names the flag when a value is wrong", () => {
    const r = spawnSync(process.execPath, [cli, "loader", "plan", "--budget-fraction", "3"], {
      encoding: "utf8",
    });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /--budget-fraction.*expected a number in \(0, 1\]/);
  });

  it("refuses a --flush-interval the loader would refuse, naming the bound", () => {
    const spec = LOADER_OPTIONS.find((o) => o.key === "flush_interval") as { min?: number; max?: number };
    assert.deepEqual(FLUSH_INTERVAL_BOUNDS, { min: spec.min, max: spec.max });
    for (const [value, problem] of [
      ["48h", "must be at most 24h"],
      ["2147483648ms", "must be at most 24h"],
      ["500ms", "must be at least 1s"],
      ["soon", "expected a duration"],
    ] as const) {
      const r = spawnSync(
        process.execPath,
        [cli, "loader", "plan", "--tables", "3", "--flush-interval", value],
        {
          encoding: "utf8",
        },
      );
      assert.equal(r.status, 2, value);
      assert.match(r.stderr, new RegExp(`--flush-interval.*'${value}' is invalid\\. ${problem}`));
    }
  });

  it("docs/loader.md's quota table matches the plan", () => {
    const doc = readFileSync(new URL("../../docs/loader.md", import.meta.url), "utf8");
    const rows = [
      ...doc.matchAll(/^\| ([\d,]+) \| (\d+) min \| (\d+) min \| ([\d,]+) \| ([\d,]+) \| (\d+) min \|$/gm),
    ];
    assert.ok(rows.length >= 4, "the table is there");
    for (const [, tables, budgetWindow, window, perTable, perProject, worst] of rows) {
      const n = (s: string | undefined) => Number(s?.replaceAll(",", ""));
      const input = {
        quotas: BIGQUERY_QUOTAS,
        tables: n(tables),
        budgetFraction: 0.5,
        flushIntervalSeconds: 60,
      };
      assert.equal(planLoadWindows(input).windowSeconds, n(budgetWindow) * 60, `${tables} tables, budget`);
      const plan = planLoadWindows({ ...input, minWindowSeconds: 180 });
      assert.equal(plan.windowSeconds, n(window) * 60, `${tables} tables`);
      assert.equal(plan.jobsPerTablePerDay, n(perTable));
      assert.equal(plan.jobsPerProjectPerDay, n(perProject));
      assert.equal(plan.worstFreshnessSeconds, n(worst) * 60);
    }
  });
});
