import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError } from "../lib/config/errors.ts";
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
