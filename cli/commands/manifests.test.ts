// `logarchive manifests` run as a user runs it: a child process whose YAML is parsed back.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import { shipperManifests } from "../../shipper/deploy/daemonset.ts";

const cli = new URL("../logarchive.ts", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "manifests-"));
const policyPath = join(dir, "namespaces.yaml");
const POLICY = "archive:\n  prefix: k8s/logs\nanalytics:\n  include: [web]\n";
writeFileSync(policyPath, POLICY);
const ARN = "arn:aws:iam::123456789012:role/logarchive-shipper";

const run = (...args: string[]) =>
  spawnSync(process.execPath, [cli, "manifests", ...args], { encoding: "utf8", cwd: dir, timeout: 60_000 });

function parsed(stdout: string): unknown[] {
  const docs = parseAllDocuments(stdout);
  assert.ok(Array.isArray(docs));
  for (const d of docs) assert.deepEqual(d.errors, []);
  return docs.map((d) => d.toJS());
}

after(() => rmSync(dir, { recursive: true, force: true }));

describe("logarchive manifests", () => {
  it("prints the objects shipperManifests makes from the same flags", () => {
    const r = run(
      "--image",
      "registry.example/logarchive:1.2.3",
      "--bucket",
      "acme-logs",
      "--region",
      "eu-west-1",
      "--role-arn",
      ARN,
      "--policy",
      policyPath,
    );
    assert.equal(r.status, 0, r.stderr);
    const objects = parsed(r.stdout);
    assert.deepEqual(
      objects,
      JSON.parse(
        JSON.stringify(
          shipperManifests({
            image: "registry.example/logarchive:1.2.3",
            bucket: "acme-logs",
            region: "eu-west-1",
            roleArn: ARN,
            policyYaml: POLICY,
          }),
        ),
      ),
    );
    const kinds = (objects as { kind: string }[]).map((o) => o.kind);
    assert.deepEqual(kinds, [
      "Namespace",
      "ResourceQuota",
      "ServiceAccount",
      "ConfigMap",
      "NetworkPolicy",
      "DaemonSet",
      "PodMonitor",
    ]);
  });

  it("reads the settings file, lets flags win, and finds ./namespaces.yaml by itself", () => {
    const config = join(dir, "shipper-deploy.yaml");
    writeFileSync(
      config,
      [
        "image: registry.example/logarchive:1.0.0",
        "bucket: acme-logs",
        "region: eu-west-1",
        "namespace: obs",
        "runAs: root",
        "tolerations: [{ key: dedicated, operator: Equal, value: logging, effect: NoSchedule }]",
        "podMonitorLabels: { release: prom }",
        "shipperConfig:",
        "  spool_max_bytes: 4GiB",
        "",
      ].join("\n"),
    );
    const r = run("--config", config, "--image", "registry.example/logarchive:2.0.0", "--no-pod-monitor");
    assert.equal(r.status, 0, r.stderr);
    const expected = shipperManifests({
      image: "registry.example/logarchive:2.0.0",
      bucket: "acme-logs",
      region: "eu-west-1",
      namespace: "obs",
      runAs: "root",
      tolerations: [{ key: "dedicated", operator: "Equal", value: "logging", effect: "NoSchedule" }],
      podMonitorLabels: { release: "prom" },
      podMonitor: false,
      shipperConfig: { spool_max_bytes: "4GiB" },
      policyYaml: readFileSync(policyPath, "utf8"),
    });
    assert.deepEqual(parsed(r.stdout), JSON.parse(JSON.stringify(expected)));
    assert.ok(!(parsed(r.stdout) as { kind: string }[]).some((o) => o.kind === "PodMonitor"));
  });

  for (const [what, args, file, message] of [
    ["a missing bucket", ["--image", "i", "--region", "r"], undefined, /bucket: required; set --bucket/],
    ["a bad --run-as", ["--run-as", "admin"], undefined, /--run-as.*Allowed choices are non-root, root/],
    [
      "an unknown settings key",
      [],
      "image: i\nbucket: acme-logs\nregion: r\nreplicas: 3\n",
      /Unrecognized key: "replicas"/,
    ],
    [
      "a bad shipper option",
      [],
      "image: i\nbucket: acme-logs\nregion: r\nshipperConfig: { gzip_level: 12 }\n",
      /gzip_level \(in shipperConfig\): must be at most 9/,
    ],
    [
      "a bad role ARN",
      ["--role-arn", "shipper"],
      "image: i\nbucket: acme-logs\nregion: r\n",
      /roleArn: expected an IAM role ARN/,
    ],
    [
      "a --bucket S3 refuses",
      ["--image", "i", "--bucket", "Bad_Bucket", "--region", "r"],
      undefined,
      /--bucket.*is not an S3 bucket name: may hold only lowercase letters/,
    ],
    [
      "a settings bucket S3 refuses",
      [],
      "image: i\nbucket: my..logs\nregion: r\n",
      /bucket: is not an S3 bucket name: must not hold two adjacent dots/,
    ],
    [
      "a --config file that does not exist",
      ["--config", "/nonexistent/nope.yaml"],
      undefined,
      /^logarchive: --config \/nonexistent\/nope\.yaml: ENOENT[^\n]*\n$/,
    ],
    [
      "a bad quantity",
      [],
      "image: i\nbucket: acme-logs\nregion: r\nresources: { requests: { memory: lots } }\n",
      /resources\.requests\.memory: expected a quantity/,
    ],
  ] as const) {
    it(`exits 2 on ${what}, naming the field, without a stack trace`, () => {
      const extra: string[] = [];
      if (file !== undefined) {
        const path = join(dir, "bad.yaml");
        writeFileSync(path, file);
        extra.push("--config", path);
      }
      const r = run(...args, ...extra);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      assert.equal(r.stdout, "");
    });
  }
});
