// What `pulumi up` deploys against what `logarchive plan` and `logarchive cost` model when told
// nothing else: the stack with its default settings under pulumi.runtime.setMocks, then the two
// commands with their defaults, compared value by value. One source (lib/gcp-deploy.ts,
// lib/archive-lifecycle.ts) keeps them equal; this test fails if either side stops reading it.

import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { costCommand } from "../cli/commands/cost.ts";
import { planCommand } from "../cli/commands/plan.ts";
import { runCommand } from "../cli/commands/plan_test_support.ts";
import { functionSize } from "../lib/gcp-deploy.ts";
import { EXAMPLE_OIDC_PROVIDER_ARN, EXAMPLE_RETRIEVAL_PRINCIPAL, parseStackConfig } from "./config.ts";
import { installMocks, type Registered } from "./test_support/mocks.ts";

const registered: Registered[] = [];
const policyYaml = "analytics:\n  include: ['*']\n  exclude: [kube-system]\n";
const DAY_MS = 86_400_000;

before(async () => {
  installMocks(registered);
  const { deployLogarchive } = await import("./stack.ts");
  // Only what the stack requires: every setting the model reads is left at its default.
  const config = parseStackConfig(
    {
      eksOidcProviderArn: EXAMPLE_OIDC_PROVIDER_ARN,
      shipper: JSON.stringify({ image: "registry.example.com/logarchive-shipper:test" }),
      retrievalPrincipals: JSON.stringify([EXAMPLE_RETRIEVAL_PRINCIPAL]),
    },
    { "aws:region": "us-east-1", "gcp:project": "my-project", "gcp:region": "us-central1" },
    () => policyYaml,
  );
  const stack = deployLogarchive({ config, stackName: "test", projectName: "logarchive", athenaQueries: [] });
  await new Promise((resolve) => pulumi.output(stack.outputs).apply(resolve));
  await pulumi.runtime.disconnect();
});

const one = (type: string, name: string) => {
  const found = registered.filter((r) => r.type === type && r.name === name);
  assert.equal(found.length, 1, `expected one ${type} named ${name}, found ${found.length}`);
  return found[0]!;
};

// A small fleet: the values compared do not depend on its size.
const FLEET = ["--nodes", "10", "--gb-per-node-day", "1", "--namespaces", "5", "--format", "json"];

describe("the deploy and the economics model agree by default", () => {
  it("functions: the model bills the deployed memory and its tier's vCPU, and checks the deployed max instances", async () => {
    const finalize = one("gcp:cloudfunctionsv2/function:Function", "loader-finalize").inputs.serviceConfig;
    const flush = one("gcp:cloudfunctionsv2/function:Function", "loader-flush").inputs.serviceConfig;
    assert.equal(flush.availableMemory, finalize.availableMemory, "both functions get one memory");
    assert.equal(finalize.availableCpu, undefined, "no CPU is set: the tier's vCPU applies");
    assert.equal(
      typeof finalize.maxInstanceCount,
      "number",
      "the finalize function has a max instance count",
    );
    const deployedSize = functionSize(finalize.availableMemory);
    assert.notEqual(deployedSize, null, `${finalize.availableMemory} is a documented tier`);

    const plan = JSON.parse((await runCommand(planCommand, ["plan", ...FLEET])).out);
    assert.deepEqual(plan.inputs.functions, {
      ...deployedSize,
      finalizeMaxInstances: finalize.maxInstanceCount,
    });
    const instances = plan.quotas.find((q: { id: string }) => q.id === "function_instances");
    assert.equal(instances.limit, finalize.maxInstanceCount);
  });

  it("BigQuery: cost adds up the billing model and partition expiration the datasets are created with", async () => {
    const dataset = one("gcp:bigquery/dataset:Dataset", "warehouse-logarchive").inputs;
    const report = JSON.parse((await runCommand(costCommand, ["cost", ...FLEET])).out).report;
    const inTotal = report.lines.filter(
      (l: { item: string; inTotal: boolean }) => l.item.startsWith("BigQuery") && l.inTotal,
    );
    assert.equal(inTotal.length, 2, "active and long-term of one billing model");
    const model = dataset.storageBillingModel.toLowerCase();
    for (const line of inTotal) {
      assert.match(line.item, new RegExp(`^BigQuery (active|long-term) ${model}`), line.item);
      assert.match(
        line.item,
        new RegExp(`\\(${dataset.defaultPartitionExpirationMs / DAY_MS}-day partitions\\)`),
      );
    }
  });
});
