// Every duration option of every component is bounded by lib/config/units.ts, whether or
// not its own spec sets a max: found from the option lists, so a new option is covered.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LOADER_OPTIONS, loaderEnvOf, resolveLoaderConfig } from "../../functions/loader/config.ts";
import { type OptionKey, resolveShipperConfig, SHIPPER_OPTIONS } from "../../shipper/config.ts";
import { parseMultilineRules } from "../../shipper/transforms/multiline/config.ts";
import { ConfigError } from "./errors.ts";
import { MAX_TIMER_MS } from "./units.ts";

const PAST_TIMER_LIMIT = `${MAX_TIMER_MS + 1}ms`;

function problemsOf(run: () => unknown): readonly string[] {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.problems;
  }
  assert.fail("expected a ConfigError");
}

describe("every duration option has a maximum", () => {
  const shipperDurations = SHIPPER_OPTIONS.filter((o) => o.kind === "duration").map((o) => o.key);
  const loaderDurations = LOADER_OPTIONS.filter((o) => o.kind === "duration").map((o) => o.key);

  it("finds the duration options the issue names", () => {
    for (const key of ["upload_timeout", "batch_max_age", "drain_timeout"])
      assert.ok(shipperDurations.includes(key as never), key);
    for (const key of ["flush_deadline", "min_window", "job_poll_interval", "flush_interval"])
      assert.ok(loaderDurations.includes(key as never), key);
  });

  for (const key of shipperDurations) {
    it(`shipper ${key}: a value past the timer limit is refused, naming the field`, () => {
      const flags = { bucket: "b", [key]: PAST_TIMER_LIMIT } as Partial<Record<OptionKey, unknown>>;
      const problems = problemsOf(() => resolveShipperConfig({ flags, env: {} }));
      assert.equal(problems.length, 1, problems.join("\n"));
      assert.match(problems[0]!, new RegExp(`^--${key.replaceAll("_", "-")}: `));
    });
  }

  for (const key of loaderDurations) {
    it(`loader ${key}: a value past the timer limit is refused, naming the variable`, () => {
      const env = {
        LOGARCHIVE_LANDING_BUCKET: "b",
        LOGARCHIVE_STATE_BUCKET: "s",
        LOGARCHIVE_WAREHOUSE: "duckdb",
        [loaderEnvOf(key)]: PAST_TIMER_LIMIT,
      };
      const problems = problemsOf(() => resolveLoaderConfig(env));
      assert.equal(problems.length, 1, problems.join("\n"));
      assert.match(problems[0]!, new RegExp(`^${loaderEnvOf(key)}: `));
    });
  }

  it("multiline flush_timeout: refused past its maximum", () => {
    const result = parseMultilineRules(
      [{ namespaces: ["*"], mode: "java", flush_timeout: PAST_TIMER_LIMIT }],
      "s.yaml",
    );
    assert.equal(result.rules, null);
    assert.match(result.problems.join("\n"), /flush_timeout/);
  });
});
