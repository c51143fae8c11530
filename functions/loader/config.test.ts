import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { ConfigError } from "../../lib/config/errors.ts";
import { loaderOptionsMarkdownTable, resolveLoaderConfig } from "./config.ts";

describe("loader configuration", () => {
  it("docs/loader.md has exactly the generated options table", () => {
    const doc = readFileSync(new URL("../../docs/loader.md", import.meta.url), "utf8");
    const between = doc
      .slice(doc.indexOf("<!-- options:start -->") + 22, doc.indexOf("<!-- options:end -->"))
      .trim();
    assert.equal(between, loaderOptionsMarkdownTable());
  });

  it("applies defaults and takes the state bucket from the landing bucket", () => {
    const c = resolveLoaderConfig({ LOGARCHIVE_LANDING_BUCKET: "landing", GOOGLE_CLOUD_PROJECT: "p" });
    assert.equal(c.stateBucket, "landing");
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
      () => resolveLoaderConfig({ LOGARCHIVE_LANDING_BUCKET: "l" }),
      /LOGARCHIVE_BIGQUERY_PROJECT: required with warehouse=bigquery/,
    );
  });
});
