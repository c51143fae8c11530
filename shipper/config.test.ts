import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError } from "../lib/config/errors.ts";
import { MAX_RECORD_MESSAGE_BYTES } from "../lib/record/limits.ts";
import { parseShipperConfigFile, resolveShipperConfig } from "./config.ts";

describe("shipper configuration", () => {
  it("takes a flag over the environment over the config file over the default", () => {
    const file = {
      path: "shipper.yaml",
      values: parseShipperConfigFile(
        "bucket: from-file\nbatch_max_age: 30s\ngzip_level: 9\n",
        "shipper.yaml",
      ),
    };
    const c = resolveShipperConfig({
      file,
      env: { LOGARCHIVE_BATCH_MAX_AGE: "20s", LOGARCHIVE_GZIP_LEVEL: "", NODE_NAME: "node-7" },
      flags: { batch_max_age: "10s" },
    });
    assert.equal(c.bucket, "from-file");
    assert.equal(c.batchMaxAgeMs, 10_000, "flag wins");
    assert.equal(c.gzipLevel, 9, "an empty variable is unset, so the file applies");
    assert.equal(c.batchMaxBytes, 8 * 2 ** 20, "default");
    assert.equal(c.node, "node-7", "$NODE_NAME from the downward API");
    assert.equal(c.listen, "0.0.0.0:2021");
    assert.equal(
      resolveShipperConfig({ env: {}, flags: { bucket: "b", listen: "" } }).listen,
      "",
      "an empty flag disables",
    );
  });

  it("stops with every problem at once, each naming the option and where it was set", () => {
    try {
      resolveShipperConfig({
        file: { path: "shipper.yaml", values: { batch_max_bytes: "8 megs", gzip_lvl: 3 } },
        env: { LOGARCHIVE_COMMIT_INTERVAL: "1" },
        flags: { gzip_level: "11", listen: "nowhere" },
      });
      assert.fail("expected a ConfigError");
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      const problems = error.problems.join("\n");
      assert.match(problems, /gzip_lvl \(in shipper\.yaml\): unknown option/);
      assert.match(
        problems,
        /bucket: required; set --bucket, LOGARCHIVE_BUCKET or `bucket:` in the config file/,
      );
      assert.match(problems, /batch_max_bytes \(in shipper\.yaml\): expected a size such as 8MiB/);
      assert.match(
        problems,
        /LOGARCHIVE_COMMIT_INTERVAL: expected a duration such as 500ms, 60s or 5m \(got "1"\)/,
      );
      assert.match(problems, /--gzip-level: must be at most 9 \(got "11"\)/);
      assert.match(problems, /listen: expected host:port/);
      assert.equal(error.problems.length, 6);
    }
  });
});

describe("shipper configuration checks values when it is read", () => {
  function problemsOf(sources: Parameters<typeof resolveShipperConfig>[0]): readonly string[] {
    try {
      resolveShipperConfig(sources);
    } catch (error) {
      assert.ok(error instanceof ConfigError, String(error));
      return error.problems;
    }
    assert.fail("expected a ConfigError");
  }

  it("refuses a key prefix the archive layout would refuse, naming where it was set", () => {
    assert.deepEqual(problemsOf({ env: { LOGARCHIVE_PREFIX: "logs/../other" }, flags: { bucket: "b" } }), [
      'LOGARCHIVE_PREFIX: has a ".." segment ("logs/../other"): keys must not climb or repeat directories (got "logs/../other")',
    ]);
    assert.match(
      problemsOf({ file: { path: "s.yaml", values: { bucket: "b", prefix: "a//b" } }, env: {} }).join("\n"),
      /^prefix \(in s\.yaml\): has an empty segment/,
    );
    assert.equal(
      resolveShipperConfig({ env: {}, flags: { bucket: "b", prefix: "/archive/logs/" } }).prefix,
      "/archive/logs/",
    );
  });

  it("bounds each timeout and retry delay, naming the bound", () => {
    const flags = {
      bucket: "b",
      upload_timeout: "2h",
      retry_initial: "61s",
      retry_max: "90m",
      drain_timeout: "61m",
    };
    assert.deepEqual(problemsOf({ env: {}, flags }), [
      '--upload-timeout: must be at most 1h (got "2h")',
      '--retry-initial: must be at most 1m (got "61s")',
      '--retry-max: must be at most 1h (got "90m")',
      '--drain-timeout: must be at most 1h (got "61m")',
    ]);
    const atTheBounds = resolveShipperConfig({
      env: {},
      flags: {
        bucket: "b",
        upload_timeout: "1h",
        retry_initial: "60s",
        retry_max: "1h",
        drain_timeout: "1h",
      },
    });
    assert.deepEqual(
      [
        atTheBounds.uploadTimeoutMs,
        atTheBounds.retryInitialMs,
        atTheBounds.retryMaxMs,
        atTheBounds.drainTimeoutMs,
      ],
      [3_600_000, 60_000, 3_600_000, 3_600_000],
    );
    assert.deepEqual(problemsOf({ env: {}, flags: { bucket: "b", upload_timeout: "999ms" } }), [
      '--upload-timeout: must be at least 1s (got "999ms")',
    ]);
  });

  it("caps max_line_bytes at the longest message the loader accepts in a record", () => {
    assert.deepEqual(problemsOf({ env: { LOGARCHIVE_MAX_LINE_BYTES: "2MiB" }, flags: { bucket: "b" } }), [
      'LOGARCHIVE_MAX_LINE_BYTES: must be at most 1MiB (got "2MiB")',
    ]);
    assert.equal(
      resolveShipperConfig({ env: {}, flags: { bucket: "b" } }).maxLineBytes,
      MAX_RECORD_MESSAGE_BYTES,
    );
    assert.equal(
      resolveShipperConfig({ env: {}, flags: { bucket: "b", max_line_bytes: "1MiB" } }).maxLineBytes,
      MAX_RECORD_MESSAGE_BYTES,
    );
  });

  it("takes object_lock_mode off|GOVERNANCE|COMPLIANCE (default off) and landing_days as whole days >= 0 (default 0)", () => {
    const defaults = resolveShipperConfig({ env: {}, flags: { bucket: "b" } });
    assert.equal(defaults.objectLockMode, "off");
    assert.equal(defaults.landingDays, 0);
    const set = resolveShipperConfig({
      file: { path: "s.yaml", values: { bucket: "b", object_lock_mode: "GOVERNANCE", landing_days: 3 } },
      env: { LOGARCHIVE_OBJECT_LOCK_MODE: "COMPLIANCE" },
    });
    assert.equal(set.objectLockMode, "COMPLIANCE", "the environment over the file");
    assert.equal(set.landingDays, 3);
    assert.equal(
      resolveShipperConfig({
        env: { LOGARCHIVE_LANDING_DAYS: "7" },
        flags: { bucket: "b", object_lock_mode: "GOVERNANCE" },
      }).landingDays,
      7,
    );
    assert.deepEqual(problemsOf({ env: {}, flags: { bucket: "b", object_lock_mode: "governance" } }), [
      '--object-lock-mode: expected one of off, GOVERNANCE, COMPLIANCE (got "governance")',
    ]);
    assert.deepEqual(
      problemsOf({
        file: { path: "s.yaml", values: { bucket: "b", object_lock_mode: "COMPLIANCE", landing_days: -1 } },
        env: {},
      }),
      ["landing_days (in s.yaml): must be at least 0 (got -1)"],
    );
    assert.deepEqual(
      problemsOf({
        env: { LOGARCHIVE_LANDING_DAYS: "1.5", LOGARCHIVE_OBJECT_LOCK_MODE: "COMPLIANCE" },
        flags: { bucket: "b" },
      }),
      ['LOGARCHIVE_LANDING_DAYS: expected an integer (got "1.5")'],
    );
    assert.deepEqual(problemsOf({ env: {}, flags: { bucket: "b", landing_days: "3" } }), [
      "landing_days: 3 needs object_lock_mode GOVERNANCE or COMPLIANCE (the bucket's default retention mode); it is off",
    ]);
  });
});
