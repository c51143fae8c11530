// The exit-code rule of every command (README.md#exit-codes): 0 success, 1 a verdict
// failure, 2 a usage or config error; usage errors are one line, never a stack trace.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";

const cli = new URL("./logarchive.ts", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "exit-codes-"));
const env: NodeJS.ProcessEnv = { ...process.env, LOGARCHIVE_LOG_LEVEL: "error" };
for (const name of [
  "LOGARCHIVE_POLICY",
  "LOGARCHIVE_DATA_DIR",
  "LOGARCHIVE_QUEUE_URL",
  "LOGARCHIVE_CONFIG",
]) {
  delete env[name];
}
const run = (...args: string[]) =>
  spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", env, cwd: dir, timeout: 60_000 });
const noStack = (stderr: string) => assert.doesNotMatch(stderr, /\n\s+at /, stderr);

after(() => rmSync(dir, { recursive: true, force: true }));

describe("exit codes", () => {
  it("0 for help, version and a command that succeeds", () => {
    for (const args of [["--help"], ["--version"], ["reconcile", "--help"], ["schema", "duckdb"]]) {
      const r = run(...args);
      assert.equal(r.status, 0, `${args.join(" ")}: ${r.stderr}`);
    }
  });

  for (const [what, args, message] of [
    ["no command", [], /Usage: logarchive/],
    ["an unknown command", ["nosuch"], /unknown command 'nosuch'/],
    ["an unknown subcommand", ["schema", "nosuch"], /unknown command 'nosuch'/],
    ["a missing subcommand", ["loader"], /Usage: logarchive loader/],
    ["an unknown option", ["schema", "duckdb", "--bogus"], /unknown option '--bogus'/],
    ["a missing required option", ["reconcile", "--to", "2026-11-22"], /required option '--from <time>'/],
    ["a mandatory option of transfer", ["transfer"], /required option '--queue-url <url>'/],
    ["a missing argument", ["policy"], /missing required argument 'file'/],
    [
      "a bad option value",
      ["loader", "plan", "--budget-fraction", "3"],
      /--budget-fraction.*expected a number in \(0, 1\]/,
    ],
    ["a bad port", ["local", "--s3-port", "70000"], /--s3-port.*expected a port number/],
    [
      "a name that cannot be a namespace",
      ["policy", new URL("../namespaces.yaml", import.meta.url).pathname, "Payments"],
      /namespace "Payments": expected a Kubernetes namespace name/,
    ],
    [
      "an impossible date",
      ["schema", "athena", "--bucket", "b", "--since", "2026-02-30"],
      /--since.*2026-02-30 is not a date: February 2026 has 28 days/,
    ],
    [
      "a key prefix keys cannot carry",
      ["schema", "athena", "--bucket", "b", "--prefix", "logs/../x"],
      /^error: option '--prefix <prefix>' argument 'logs\/\.\.\/x' is invalid\. The key prefix has a "\.\." segment/,
    ],
    [
      "an endpoint that is not a URL",
      [
        "transfer",
        "--queue-url",
        "http://127.0.0.1:1/q",
        "--gcs-bucket",
        "b",
        "--s3-endpoint",
        "localhost:9000",
      ],
      /--s3-endpoint <url>.*expected an http\(s\) URL/,
    ],
    ["a policy file that is not there", ["policy", "nosuch.yaml"], /nosuch\.yaml is invalid:\n.*ENOENT/],
    ["a shipper config that is not there", ["ship", "--config", "nosuch.yaml"], /nosuch\.yaml is invalid/],
    ["a shipper config missing a required value", ["ship"], /bucket: required/],
  ] as const) {
    it(`2 for ${what}, without a stack trace`, () => {
      const r = run(...args);
      assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message);
      noStack(r.stderr);
    });
  }
});

// The machine's `node` may be Node 20, which cannot run .ts: the file runs itself on the
// project's Node 24 when executed directly, and otherwise says what to do in one line.
const oldNode = "/usr/bin/node";
describe("running ./cli/logarchive.ts directly", { skip: !existsSync(oldNode) && `no ${oldNode}` }, () => {
  const path = `${dir}/bin:/usr/bin:/bin`;
  const exec = (file: string, ...args: string[]) =>
    spawnSync(file, args, { encoding: "utf8", env: { ...env, PATH: path } });

  it("runs on the project's Node even when PATH's node is another version", () => {
    const version = spawnSync(oldNode, ["--version"], { encoding: "utf8" }).stdout.trim();
    const r = exec(cli, "--version");
    assert.equal(r.status, 0, `PATH node ${version}: ${r.stderr}`);
    assert.match(r.stdout, /^\d+\.\d+\.\d+\n$/);
    assert.equal(r.stderr, "");
    const unknown = exec(cli, "nosuch");
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /unknown command 'nosuch'/);
  });

  it("follows a symlink to the file, as npm links bin files", () => {
    const link = join(dir, "logarchive-link");
    symlinkSync(cli, link);
    const r = exec(link, "schema", "duckdb");
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /CREATE TABLE/);
  });

  it("prints a one-line hint, not a stack, where no project Node is installed", () => {
    const copy = join(dir, "cli", "logarchive.ts");
    spawnSync("mkdir", ["-p", join(dir, "cli")]);
    copyFileSync(cli, copy);
    const r = exec(copy, "reconcile", "--help");
    assert.equal(r.status, 2);
    assert.equal(
      r.stderr,
      "logarchive: this needs the project's Node 24 (run npm ci), then use npx logarchive reconcile --help\n",
    );
  });
});
