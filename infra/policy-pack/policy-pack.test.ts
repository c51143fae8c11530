// The policy pack as the Pulumi CLI runs it: `pulumi preview --policy-pack infra/policy-pack` starts
// @pulumi/pulumi's run-policy-pack in the pack directory, which require()s that directory (Node
// resolves it through package.json `main`), and `new PolicyPack()` reads package.json's version from
// the working directory before it serves. Both happen here in a child process, with the gRPC server
// replaced by a recorder: no CLI needed.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { securityPolicies } from "../policies/security.ts";

const PACK_DIR = dirname(fileURLToPath(import.meta.url));
const ROOT = join(PACK_DIR, "..", "..");

/** What run-policy-pack does with the pack directory, with `serve` recording its arguments. */
const RUNNER = `
const path = require("node:path");
const server = require(require.resolve("@pulumi/policy/server.js", { paths: [process.cwd()] }));
server.serve = (name, version, enforcementLevel, args) => {
  process.stdout.write(JSON.stringify({ name, version, enforcementLevel, policies: args.policies.map((p) => p.name) }));
};
require(path.join(process.cwd(), "."));
`;

describe("policy pack", () => {
  it("package.json names an ES module main that exists, a version, and the @pulumi/policy the repository uses", async () => {
    const pkg = JSON.parse(await readFile(join(PACK_DIR, "package.json"), "utf8"));
    const root = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8"));
    assert.equal(pkg.type, "module");
    assert.match(pkg.version, /^\d+\.\d+\.\d+$/);
    assert.ok(existsSync(join(PACK_DIR, pkg.main)), `main ${pkg.main} does not exist`);
    const rootRange = root.dependencies?.["@pulumi/policy"] ?? root.devDependencies?.["@pulumi/policy"];
    assert.equal(pkg.dependencies["@pulumi/policy"], rootRange);
  });

  it("loaded as the runner loads it, it serves the logarchive-security pack with every rule", async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ["-e", RUNNER], { cwd: PACK_DIR });
    const served = JSON.parse(stdout);
    const pkg = JSON.parse(await readFile(join(PACK_DIR, "package.json"), "utf8"));
    assert.equal(served.name, "logarchive-security");
    assert.equal(served.version, pkg.version);
    assert.deepEqual(
      served.policies,
      securityPolicies.map((p) => p.name),
    );
    assert.ok(served.policies.length >= 5);
  });
});
