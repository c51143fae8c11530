import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { ConfigError } from "../../lib/config/errors.ts";
import {
  FLUSH_DEADLINE_MARGIN_MS,
  flushSchedulerSettings,
  GEN2_HTTP_FUNCTION_MAX_TIMEOUT_MS,
  loaderOptionsMarkdownTable,
  resolveLoaderConfig,
  SCHEDULER_HTTP_ATTEMPT_DEADLINE,
} from "./config.ts";

const BASE = {
  LOGARCHIVE_LANDING_BUCKET: "landing",
  LOGARCHIVE_STATE_BUCKET: "loader-state",
  GOOGLE_CLOUD_PROJECT: "p",
};

function problemsOf(env: NodeJS.ProcessEnv): readonly string[] {
  try {
    resolveLoaderConfig(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.problems;
  }
  assert.fail("expected a ConfigError");
}

describe("loader configuration", () => {
  it("docs/loader.md has exactly the generated options table", () => {
    const doc = readFileSync(new URL("../../docs/loader.md", import.meta.url), "utf8");
    const between = doc
      .slice(doc.indexOf("<!-- options:start -->") + 22, doc.indexOf("<!-- options:end -->"))
      .trim();
    assert.equal(between, loaderOptionsMarkdownTable());
  });

  it("applies defaults", () => {
    const c = resolveLoaderConfig(BASE);
    assert.equal(c.stateBucket, "loader-state");
    assert.equal(c.bigqueryProject, "p");
    assert.equal(c.flushIntervalMs, 60_000);
    assert.equal(c.budgetFraction, 0.5);
    assert.equal(c.warehouse, "bigquery");
    assert.equal(c.validateObjects, true);
  });

  it("reports every bad variable at once, by name", () => {
    assert.throws(
      () =>
        resolveLoaderConfig({
          LOGARCHIVE_WAREHOUSE: "snowflake",
          LOGARCHIVE_BUDGET_FRACTION: "2",
          LOGARCHIVE_FLUSH_INTERVAL: "soon",
          LOGARCHIVE_STATE_PREFIX: "no-slash",
        }),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        const text = e.message;
        for (const name of [
          "LOGARCHIVE_LANDING_BUCKET: required",
          "LOGARCHIVE_WAREHOUSE: expected one of bigquery, duckdb",
          "LOGARCHIVE_BUDGET_FRACTION: must be at most 1",
          "LOGARCHIVE_FLUSH_INTERVAL: expected a duration",
          'LOGARCHIVE_STATE_PREFIX: must end with "/"',
        ]) {
          assert.ok(text.includes(name), `${name} in ${text}`);
        }
        return true;
      },
    );
  });

  it("needs a project for BigQuery", () => {
    assert.throws(
      () => resolveLoaderConfig({ LOGARCHIVE_LANDING_BUCKET: "l", LOGARCHIVE_STATE_BUCKET: "s" }),
      /LOGARCHIVE_BIGQUERY_PROJECT: required with warehouse=bigquery/,
    );
  });

  describe("the state bucket", () => {
    it("is required: there is no default to the landing bucket", () => {
      const problems = problemsOf({ LOGARCHIVE_LANDING_BUCKET: "landing", GOOGLE_CLOUD_PROJECT: "p" });
      assert.equal(problems.length, 1, problems.join("\n"));
      assert.match(problems[0]!, /^LOGARCHIVE_STATE_BUCKET: required; /);
    });

    it("is refused when it is the landing bucket, naming both variables", () => {
      const problems = problemsOf({ ...BASE, LOGARCHIVE_STATE_BUCKET: "landing" });
      assert.equal(problems.length, 1, problems.join("\n"));
      assert.match(
        problems[0]!,
        /^LOGARCHIVE_STATE_BUCKET: must not be the landing bucket \(LOGARCHIVE_LANDING_BUCKET="landing"\)/,
      );
      assert.ok(!problems[0]!.includes("\n"), "one line");
    });
  });

  describe("flush throughput", () => {
    it("LOGARCHIVE_FLUSH_CONCURRENCY defaults to 32 and is read", () => {
      assert.equal(resolveLoaderConfig(BASE).flushConcurrency, 32);
      assert.equal(resolveLoaderConfig({ ...BASE, LOGARCHIVE_FLUSH_CONCURRENCY: "64" }).flushConcurrency, 64);
    });
    for (const [value, bound] of [
      ["0", "must be at least 1"],
      ["257", "must be at most 256"],
    ] as const) {
      it(`LOGARCHIVE_FLUSH_CONCURRENCY=${value}: "${bound}"`, () => {
        assert.deepEqual(problemsOf({ ...BASE, LOGARCHIVE_FLUSH_CONCURRENCY: value }), [
          `LOGARCHIVE_FLUSH_CONCURRENCY: ${bound} (got "${value}")`,
        ]);
      });
    }
  });

  describe("the sweeper's bounds", () => {
    it("LOGARCHIVE_SWEEP_MAX_OBJECTS and LOGARCHIVE_SWEEP_INTERVAL default to 10,000 objects and 1 min, and are read", () => {
      const c = resolveLoaderConfig(BASE);
      assert.equal(c.sweepMaxObjects, 10_000);
      assert.equal(c.sweepIntervalMs, 60_000);
      const set = resolveLoaderConfig({
        ...BASE,
        LOGARCHIVE_SWEEP_MAX_OBJECTS: "50000",
        LOGARCHIVE_SWEEP_INTERVAL: "0s",
      });
      assert.equal(set.sweepMaxObjects, 50_000);
      assert.equal(set.sweepIntervalMs, 0);
    });
    for (const [name, value, bound] of [
      ["LOGARCHIVE_SWEEP_MAX_OBJECTS", "50001", "must be at most 50000"],
      ["LOGARCHIVE_SWEEP_MAX_OBJECTS", "0", "must be at least 1"],
      ["LOGARCHIVE_SWEEP_INTERVAL", "61m", "must be at most 1h"],
    ] as const) {
      it(`${name}=${value}: "${bound}"`, () => {
        assert.deepEqual(problemsOf({ ...BASE, [name]: value }), [`${name}: ${bound} (got "${value}")`]);
      });
    }
  });

  describe("duration maxima", () => {
    for (const [name, value, bound] of [
      ["LOGARCHIVE_FLUSH_INTERVAL", "25h", "must be at most 24h"],
      ["LOGARCHIVE_MIN_WINDOW", "1441m", "must be at most 24h"],
      ["LOGARCHIVE_JOB_POLL_INTERVAL", "61s", "must be at most 1m"],
      ["LOGARCHIVE_FLUSH_FUNCTION_TIMEOUT", "61m", "must be at most 1h"],
      ["LOGARCHIVE_FLUSH_INTERVAL", "500ms", "must be at least 1s"],
    ] as const) {
      it(`${name}=${value}: "${bound}"`, () => {
        const problems = problemsOf({ ...BASE, [name]: value });
        assert.deepEqual(problems, [`${name}: ${bound} (got "${value}")`]);
      });
    }

    it("the largest allowed values are accepted", () => {
      const c = resolveLoaderConfig({
        ...BASE,
        LOGARCHIVE_FLUSH_INTERVAL: "24h",
        LOGARCHIVE_MIN_WINDOW: "24h",
        LOGARCHIVE_JOB_POLL_INTERVAL: "60s",
      });
      assert.equal(c.flushIntervalMs, 86_400_000);
      assert.equal(c.minWindowMs, 86_400_000);
      assert.equal(c.jobPollIntervalMs, 60_000);
    });

    it("flush_deadline must leave the margin under the flush function's timeout", () => {
      const ok = resolveLoaderConfig({ ...BASE, LOGARCHIVE_FLUSH_DEADLINE: "480s" });
      assert.equal(ok.flushDeadlineMs + FLUSH_DEADLINE_MARGIN_MS, ok.flushFunctionTimeoutMs);
      const problems = problemsOf({ ...BASE, LOGARCHIVE_FLUSH_DEADLINE: "481s" });
      assert.equal(problems.length, 1, problems.join("\n"));
      assert.match(
        problems[0]!,
        /^LOGARCHIVE_FLUSH_DEADLINE: must be at most 8m \(LOGARCHIVE_FLUSH_FUNCTION_TIMEOUT 9m minus 1m\b.*\(got "481s"\)$/,
      );
    });

    it("flush_deadline follows a longer function timeout, up to the Scheduler's 30 minutes", () => {
      const c = resolveLoaderConfig({
        ...BASE,
        LOGARCHIVE_FLUSH_FUNCTION_TIMEOUT: "60m",
        LOGARCHIVE_FLUSH_DEADLINE: "29m",
      });
      assert.equal(c.flushDeadlineMs, 29 * 60_000);
      const problems = problemsOf({
        ...BASE,
        LOGARCHIVE_FLUSH_FUNCTION_TIMEOUT: "60m",
        LOGARCHIVE_FLUSH_DEADLINE: "30m",
      });
      assert.deepEqual(problems, ['LOGARCHIVE_FLUSH_DEADLINE: must be at most 29m (got "30m")']);
    });
  });

  describe("Cloud Scheduler settings for the flush", () => {
    it("defaults: every minute, an attempt deadline of the function timeout, above flush_deadline + margin", () => {
      const c = resolveLoaderConfig(BASE);
      const s = flushSchedulerSettings(c);
      assert.equal(s.schedule, "* * * * *");
      assert.equal(s.attemptDeadline, "540s");
      assert.equal(s.retryCount, 0);
      assert.equal(s.httpMethod, "POST");
      // Above the Scheduler's own 3-minute default, which would cut every long run short.
      assert.ok(s.attemptDeadlineSeconds * 1000 > SCHEDULER_HTTP_ATTEMPT_DEADLINE.defaultMs);
      assert.ok(s.attemptDeadlineSeconds * 1000 >= c.flushDeadlineMs + FLUSH_DEADLINE_MARGIN_MS);
      assert.ok(s.attemptDeadlineSeconds * 1000 <= SCHEDULER_HTTP_ATTEMPT_DEADLINE.maxMs);
    });

    it("caps the attempt deadline at the Scheduler's 30 minutes for a 60-minute function", () => {
      const c = resolveLoaderConfig({ ...BASE, LOGARCHIVE_FLUSH_FUNCTION_TIMEOUT: "60m" });
      assert.equal(c.flushFunctionTimeoutMs, GEN2_HTTP_FUNCTION_MAX_TIMEOUT_MS);
      assert.equal(flushSchedulerSettings(c).attemptDeadline, "1800s");
    });

    it("turns a whole-minute flush_interval into a cron schedule and refuses one Cloud Scheduler cannot run", () => {
      const every5 = resolveLoaderConfig({ ...BASE, LOGARCHIVE_FLUSH_INTERVAL: "5m" });
      assert.equal(flushSchedulerSettings(every5).schedule, "*/5 * * * *");
      for (const interval of ["2s", "90s", "7m"]) {
        const c = resolveLoaderConfig({ ...BASE, LOGARCHIVE_FLUSH_INTERVAL: interval });
        assert.throws(() => flushSchedulerSettings(c), /^Error: LOGARCHIVE_FLUSH_INTERVAL: /);
      }
    });
  });
});
