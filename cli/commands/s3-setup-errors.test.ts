// An S3 setup the user has to fix (no credentials, a bucket that does not exist, an endpoint
// that refuses connections) is one line naming the flag or variable, exit 2, in every command
// that reads the archive: retrieve, hold and query --engine archive (cli/options.ts s3SetupError).
// The CLI runs as a child process, as a user runs it, against the local S3 and a closed port.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parsePolicy } from "../../lib/policy/policy.ts";
import { LOCAL_S3_CREDENTIALS } from "../../local/s3.ts";
import { type LocalCloud, startLocalCloud } from "../../local/stack.ts";
import { runCli } from "../test_support.ts";

/** The environment without any AWS or logarchive setting: what a new user's shell may have. */
function bareEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home };
  for (const name of Object.keys(env)) {
    if (name.startsWith("AWS_") || name.startsWith("LOGARCHIVE_")) delete env[name];
  }
  // No instance metadata service to ask here: the provider chain ends at once instead of timing out.
  env.AWS_EC2_METADATA_DISABLED = "true";
  return env;
}

const run = (args: string[], env: NodeJS.ProcessEnv) => runCli(args, { env });

/** A port nothing listens on: bound by this process, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve())));
  return port;
}

/** One line on stderr, naming what to fix, and no stack trace. */
function assertOneLine(result: { status: number | null; stderr: string }, expected: RegExp): void {
  assert.equal(result.status, 2, result.stderr);
  assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
  assert.doesNotMatch(result.stderr, /\n\s+at /);
  assert.match(result.stderr, expected);
}

const RANGE = ["--namespace", "payments", "--from", "2026-03-03", "--to", "2026-03-04"];
const QUERY = [
  "query",
  "log_volume",
  "--param",
  "namespaces=payments",
  "--param",
  "from=2026-03-03",
  "--param",
  "to=2026-03-04",
  "--engine",
  "archive",
];

describe("S3 setup errors: one line and exit 2 (retrieve, hold, query --engine archive)", () => {
  let dir: string;
  let cloud: LocalCloud;
  let withCredentials: NodeJS.ProcessEnv;
  let withoutCredentials: NodeJS.ProcessEnv;
  let refused: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "s3-setup-errors-"));
    cloud = await startLocalCloud({ dataDir: join(dir, "stack"), policy: parsePolicy("{}\n", "test") });
    withoutCredentials = { ...bareEnv(dir), AWS_REGION: "us-east-1" };
    withCredentials = {
      ...withoutCredentials,
      AWS_ACCESS_KEY_ID: LOCAL_S3_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_S3_CREDENTIALS.secretAccessKey,
    };
    refused = `http://127.0.0.1:${await closedPort()}`;
  });

  after(async () => {
    await cloud?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const commands = () => [
    {
      name: "retrieve",
      args: (extra: string[]) => ["retrieve", ...RANGE, "--out", join(dir, "out"), ...extra],
    },
    {
      name: "hold",
      args: (extra: string[]) => ["hold", ...RANGE, "--on", "--out", join(dir, "hold.json"), ...extra],
    },
  ];

  it("no AWS credentials names the variables to set", async () => {
    for (const command of commands()) {
      const result = await run(
        command.args(["--bucket", "logs-archive", "--prefix", "logs"]),
        withoutCredentials,
      );
      assertOneLine(
        result,
        /no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE/,
      );
    }
    const query = await run([...QUERY, "--archive", "s3://logs-archive/logs"], withoutCredentials);
    assertOneLine(
      query,
      /no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE/,
    );
  });

  it("a bucket that does not exist names the flag and the bucket", async () => {
    const endpoint = cloud.endpoints.s3.endpoint;
    for (const command of commands()) {
      const result = await run(
        command.args(["--s3-endpoint", endpoint, "--bucket", "no-such-bucket", "--prefix", "logs"]),
        withCredentials,
      );
      assertOneLine(
        result,
        new RegExp(`--bucket no-such-bucket: no such bucket at --s3-endpoint ${endpoint}`),
      );
    }
    const query = await run(
      [...QUERY, "--archive", "s3://no-such-bucket/logs", "--s3-endpoint", endpoint],
      withCredentials,
    );
    assertOneLine(query, /--archive s3:\/\/no-such-bucket\/logs: no such bucket at --s3-endpoint/);
  });

  it("an endpoint that refuses connections names the flag and the URL", async () => {
    for (const command of commands()) {
      const result = await run(
        command.args(["--s3-endpoint", refused, "--bucket", "logs-archive", "--prefix", "logs"]),
        withCredentials,
      );
      assertOneLine(result, new RegExp(`--s3-endpoint ${refused} refuses connections \\(ECONNREFUSED\\)`));
    }
    const query = await run(
      [...QUERY, "--archive", "s3://logs-archive/logs", "--s3-endpoint", refused],
      withCredentials,
    );
    assertOneLine(query, new RegExp(`--s3-endpoint ${refused} refuses connections \\(ECONNREFUSED\\)`));
  });
});
