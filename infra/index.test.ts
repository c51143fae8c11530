// The program as Pulumi runs it: infra/index.ts's default export, with the stack config set the
// way the CLI hands it over (pulumi.runtime.setAllConfig) and the engine mocked.

import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { loadPack } from "../queries/pack.ts";
import { EXAMPLE_OIDC_PROVIDER_ARN, EXAMPLE_RETRIEVAL_PRINCIPAL } from "./config.ts";
import { installMocks, type Registered } from "./test_support/mocks.ts";

const registered: Registered[] = [];
let packageDir: string;
let program: () => Promise<Record<string, unknown>>;

function setConfig(own: Record<string, string>): void {
  const config: Record<string, string> = {
    "aws:region": "eu-west-1",
    "gcp:project": "my-project",
    "gcp:region": "europe-west1",
  };
  for (const [k, v] of Object.entries(own)) config[`logarchive:${k}`] = v;
  pulumi.runtime.setAllConfig(config);
}

before(async () => {
  packageDir = await mkdtemp(join(tmpdir(), "logarchive-functions-package-"));
  await writeFile(join(packageDir, "package.json"), '{"type":"module","main":"functions/index.js"}');
  installMocks(registered);
  program = (await import("./index.ts")).default;
});

after(async () => {
  await rm(packageDir, { recursive: true, force: true });
});

describe("infra/index.ts", () => {
  it("a bad setting ends the run with a RunError (no stack trace) whose lines start with the key", async () => {
    setConfig({
      eksOidcProviderArn: EXAMPLE_OIDC_PROVIDER_ARN,
      retrievalPrincipals: JSON.stringify([EXAMPLE_RETRIEVAL_PRINCIPAL]),
      retentionDays: "10",
      functionsPackageDir: packageDir,
    });
    await assert.rejects(program(), (error: Error) => {
      assert.ok(pulumi.RunError.isInstance(error), String(error));
      assert.match(error.message, /^logarchive:(objectLockDays|retentionDays): /);
      return true;
    });
    setConfig({
      eksOidcProviderArn: EXAMPLE_OIDC_PROVIDER_ARN,
      retrievalPrincipals: JSON.stringify([EXAMPLE_RETRIEVAL_PRINCIPAL]),
      deployShipper: "false",
      archiveCompaction: JSON.stringify({ enabled: false }),
      functionsPackageDir: join(packageDir, "missing"),
    });
    await assert.rejects(program(), (error: Error) => {
      assert.ok(pulumi.RunError.isInstance(error), String(error));
      assert.match(error.message, /^logarchive:functionsPackageDir: .*npm run build:functions/);
      return true;
    });
    assert.equal(registered.length, 0, "nothing is created before the config is valid");
  });

  it("deploys from namespaces.yaml and the query pack, and exports the shipper's role ARN", async () => {
    setConfig({
      eksOidcProviderArn: EXAMPLE_OIDC_PROVIDER_ARN,
      retrievalPrincipals: JSON.stringify([EXAMPLE_RETRIEVAL_PRINCIPAL]),
      functionsPackageDir: packageDir,
      landingLocation: "EU",
      deployShipper: "false",
      archiveCompaction: JSON.stringify({ enabled: false }),
    });
    const outputs = await new Promise<Record<string, unknown>>((resolve, reject) => {
      program().then((o) => pulumi.output(o).apply((v) => resolve(v as Record<string, unknown>)), reject);
    });
    await pulumi.runtime.disconnect();
    assert.match(String(outputs.shipperRoleArn), /^arn:aws:iam::\d{12}:role\/shipper$/);
    assert.equal(outputs.awsRegion, "eu-west-1");
    assert.equal(
      registered.filter((r) => r.type.startsWith("kubernetes:")).length,
      0,
      "deployShipper false: no DaemonSet",
    );
    const athena = (await loadPack()).get("athena")!;
    const named = registered
      .filter((r) => r.type === "aws:athena/namedQuery:NamedQuery")
      .map((r) => r.inputs.name);
    assert.deepEqual(named.sort(), ["_definitions", ...athena.keys()].sort());
    const dataset = registered.find((r) => r.type === "gcp:bigquery/dataset:Dataset")!;
    assert.equal(dataset.inputs.location, "EU");
    const finalize = registered.find(
      (r) => r.type === "gcp:cloudfunctionsv2/function:Function" && r.name === "loader-finalize",
    )!;
    assert.equal(finalize.inputs.serviceConfig.environmentVariables.LOGARCHIVE_BIGQUERY_LOCATION, "EU");
    assert.match(
      finalize.inputs.serviceConfig.environmentVariables.LOGARCHIVE_POLICY_YAML,
      /^# Namespace policy/,
    );
  });
});
