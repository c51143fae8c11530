// The settings file of `logarchive manifests --config`: the example in docs/shipper.md#deploy
// lists every setting with its default, and the schema accepts what shipperManifests takes.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ConfigError } from "../../lib/config/errors.ts";
import { shipperManifests } from "./daemonset.ts";
import { checkManifestSettings, manifestSettingsSchema, parseManifestSettings } from "./settings.ts";

const DOC = readFileSync(join(import.meta.dirname, "../../docs/shipper.md"), "utf8");
const POLICY = "archive:\n  prefix: logs\n";

function exampleBlock(): string {
  const m = /```yaml\n(# shipper-deploy\.yaml[^\n]*\n[\s\S]*?)```/.exec(DOC);
  assert.ok(m, "no shipper-deploy.yaml example in docs/shipper.md");
  return m[1]!;
}

describe("manifest settings", () => {
  it("documents every setting, and the documented values are the defaults", () => {
    const text = exampleBlock();
    for (const key of Object.keys(manifestSettingsSchema.shape)) {
      assert.match(text, new RegExp(`^#? ?${key}:`, "m"), `${key} is not in the example`);
    }
    const settings = parseManifestSettings(text, "docs/shipper.md");
    const required = { image: settings.image!, bucket: settings.bucket!, region: settings.region! };
    assert.deepEqual(
      shipperManifests({ ...settings, ...required, policyYaml: POLICY }),
      shipperManifests({ ...required, policyYaml: POLICY }),
    );
  });

  it("names the key of every problem", () => {
    try {
      parseManifestSettings(
        "runAs: admin\nuid: -1\ntolerations: [{ operator: Maybe }]\nreplicas: 2\n",
        "s.yaml",
      );
      assert.fail("accepted");
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      const text = error.problems.join("\n");
      for (const key of ["runAs", "uid", "tolerations[0].operator", "replicas"])
        assert.match(text, new RegExp(key.replace(/[[\].]/g, "\\$&")));
    }
  });

  it("checks an already parsed object, such as a stack config value, the same way", () => {
    assert.deepEqual(checkManifestSettings({ runAs: "root", podMonitor: false }, "logarchive:shipper"), {
      runAs: "root",
      podMonitor: false,
    });
    assert.deepEqual(checkManifestSettings(undefined, "logarchive:shipper"), {});
    assert.throws(
      () => checkManifestSettings({ resources: { requests: { gpu: "1" } } }, "logarchive:shipper"),
      /logarchive:shipper is invalid:\n {2}- resources\.requests: Unrecognized key: "gpu"/,
    );
  });
});
