import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError } from "../../../lib/config/errors.ts";
import { parseShipperConfigFile, resolveShipperConfig } from "../../config.ts";
import { multilineFor, parseMultilineRules } from "./config.ts";

function resolve(yaml: string) {
  const values = parseShipperConfigFile(`bucket: b\n${yaml}`, "shipper.yaml");
  return resolveShipperConfig({ file: { path: "shipper.yaml", values }, env: {} });
}

function problems(yaml: string): string[] {
  try {
    resolve(yaml);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return [...error.problems];
  }
  assert.fail("expected a ConfigError");
}

describe("multiline configuration", () => {
  it("is off by default", () => {
    assert.deepEqual(resolve("").multiline, []);
    assert.equal(multilineFor([], "payments", "app"), null);
  });

  it("reads rules with their defaults and units", () => {
    const c = resolve(`
multiline:
  - namespaces: [kube-system]
    mode: "off"
  - namespaces: [payments, "checkout-*"]
    containers: [app]
    mode: java
    max_lines: 300
    max_bytes: 256KiB
    flush_timeout: 1500ms
  - namespaces: ["*"]
    mode: auto
`);
    assert.deepEqual(c.multiline, [
      {
        namespaces: ["kube-system"],
        containers: ["*"],
        mode: "off",
        maxLines: 1000,
        maxBytes: 512 * 1024,
        flushTimeoutMs: 2000,
      },
      {
        namespaces: ["payments", "checkout-*"],
        containers: ["app"],
        mode: "java",
        maxLines: 300,
        maxBytes: 256 * 1024,
        flushTimeoutMs: 1500,
      },
      {
        namespaces: ["*"],
        containers: ["*"],
        mode: "auto",
        maxLines: 1000,
        maxBytes: 512 * 1024,
        flushTimeoutMs: 2000,
      },
    ]);
  });

  it("applies the first rule whose namespace and container globs match", () => {
    const { rules } = parseMultilineRules(
      [
        { namespaces: ["kube-system"], mode: "off" },
        { namespaces: ["payments", "checkout-*"], containers: ["app"], mode: "java", max_lines: 300 },
        { namespaces: ["ml-*"], mode: "python" },
        { namespaces: ["*"], mode: "auto" },
      ],
      "test",
    );
    assert.ok(rules);
    assert.equal(multilineFor(rules, "kube-system", "coredns"), null, "off exempts before a wider rule");
    assert.deepEqual(multilineFor(rules, "checkout-eu", "app"), {
      mode: "java",
      maxLines: 300,
      maxBytes: 512 * 1024,
      flushTimeoutMs: 2000,
    });
    assert.equal(
      multilineFor(rules, "checkout-eu", "istio-proxy")?.mode,
      "auto",
      "the sidecar falls through",
    );
    assert.equal(multilineFor(rules, "ml-train", "app")?.mode, "python");
    const only = parseMultilineRules([{ namespaces: ["payments"], mode: "go" }], "test").rules!;
    assert.equal(multilineFor(only, "web", "app"), null, "a namespace no rule names is untouched");
  });

  it("stops with every problem, each naming the rule and field", () => {
    const got = problems(`
multiline:
  - namespaces: [Payments]
    mode: jav
  - mode: go
    max_lines: 1
    max_bytes: 12 parsecs
    flush_timeout: 2
  - namespaces: [web]
    mode: python
    flush_timout: 2s
    max_bytes: 1GiB
    max_lines: 2.5
`);
    const text = got.join("\n");
    assert.match(text, /multiline\[0\]\.namespaces\[0\] \(in shipper\.yaml\): is not a namespace glob/);
    assert.match(
      text,
      /multiline\[0\]\.mode \(in shipper\.yaml\): expected java, go, python, auto or off \(got "jav"\)/,
    );
    assert.match(
      text,
      /multiline\[1\]\.namespaces \(in shipper\.yaml\): required: a list of namespace globs/,
    );
    assert.match(text, /multiline\[1\]\.max_lines \(in shipper\.yaml\): must be at least 2/);
    assert.match(
      text,
      /multiline\[1\]\.max_bytes \(in shipper\.yaml\): expected a size such as 512KiB \(got "12 parsecs"\)/,
    );
    assert.match(
      text,
      /multiline\[1\]\.flush_timeout \(in shipper\.yaml\): expected a duration such as 500ms or 2s/,
    );
    assert.match(text, /multiline\[2\] \(in shipper\.yaml\): Unrecognized key: "flush_timout"/);
    assert.match(text, /multiline\[2\]\.max_bytes \(in shipper\.yaml\): must be at most 1MiB/);
    assert.match(text, /multiline\[2\]\.max_lines \(in shipper\.yaml\): expected an integer/);
    assert.deepEqual(problems("multiline:\n  namespaces: [web]\n"), [
      "multiline (in shipper.yaml): expected a list of rules ({namespaces, mode, ...})",
    ]);
    assert.deepEqual(problems("multiline:\n  - namespaces: []\n"), [
      "multiline[0].namespaces (in shipper.yaml): list at least one namespace glob",
      "multiline[0].mode (in shipper.yaml): required: java, go, python, auto or off",
    ]);
  });

  it("has no flag or environment variable", () => {
    const c = resolveShipperConfig({
      env: { LOGARCHIVE_MULTILINE: "java" },
      flags: { bucket: "b" },
    });
    assert.deepEqual(c.multiline, []);
  });
});
