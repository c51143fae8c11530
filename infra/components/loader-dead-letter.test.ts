// The finalize trigger's dead-letter topic, attached during `pulumi up` by a local gcloud command
// (command.local.Command), or left to the operator when attachDeadLetter is off. Two Loaders under
// pulumi.runtime.setMocks, whose Eventarc trigger reports a subscription name with a space, a
// quote and a command substitution; the registered command is then run through its own
// interpreter with a fake `gcloud` that prints the arguments it was given.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmod, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import * as pulumi from "@pulumi/pulumi";
import { shellCommand, shellQuote } from "../shell.ts";
import { installMocks, type Registered } from "../test_support/mocks.ts";
import type { Loader, LoaderArgs } from "./loader.ts";

const run = promisify(execFile);

/** A name no real subscription has, with what a shell would split, unquote or execute. */
const AWKWARD_SUBSCRIPTION = "projects/my-project/subscriptions/eventarc it's $(touch pwned) `touch pwned2`";
const COMMAND_TYPE = "command:local:Command";

const registered: Registered[] = [];
let on: { loader: Loader; command: string };
let off: { loader: Loader; command: string };

const args = (accountIdPrefix: string, attachDeadLetter: boolean): LoaderArgs => ({
  project: "my-project",
  projectNumber: "1234",
  region: "us-central1",
  triggerRegion: "us",
  accountIdPrefix,
  landingBucketName: "landing",
  stateBucketName: "state",
  quarantinePrefix: "_logarchive/quarantine/",
  packageDir: "dist/functions-package",
  environment: {},
  finalizeTimeoutSeconds: 300,
  flushTimeoutSeconds: 540,
  memory: "512Mi",
  finalizeMaxInstances: 500,
  scheduler: {
    schedule: "* * * * *",
    timeZone: "Etc/UTC",
    httpMethod: "POST",
    attemptDeadline: "540s",
    attemptDeadlineSeconds: 540,
    retryCount: 0,
  },
  deadLetterMaxDeliveryAttempts: 7,
  attachDeadLetter,
});

const resolved = (o: pulumi.Output<string>) => new Promise<string>((resolve) => o.apply(resolve));

before(async () => {
  installMocks(registered, { triggerSubscription: AWKWARD_SUBSCRIPTION });
  const { Loader } = await import("./loader.ts");
  const onLoader = new Loader("dl-on", args("la-on", true));
  const offLoader = new Loader("dl-off", args("la-off", false));
  on = { loader: onLoader, command: await resolved(onLoader.deadLetterCommand) };
  off = { loader: offLoader, command: await resolved(offLoader.deadLetterCommand) };
  await pulumi.runtime.disconnect();
});

after(() => {
  registered.length = 0;
});

/**
 * Runs `command` the way the provider does (the interpreter, then the command as its last
 * argument) in an empty directory with a fake gcloud first on PATH: the arguments gcloud got, and
 * the files in the directory afterwards (a command that ran `touch` leaves one).
 */
async function runWithFakeGcloud(
  command: string,
  interpreter: readonly string[],
): Promise<{ argv: string[]; files: string[] }> {
  const cwd = await mkdtemp(join(tmpdir(), "logarchive-fake-gcloud-"));
  try {
    const gcloud = join(cwd, "gcloud");
    await writeFile(gcloud, `#!/bin/sh\nfor a in "$@"; do printf '%s\\0' "$a"; done\n`);
    await chmod(gcloud, 0o755);
    const { stdout } = await run(interpreter[0]!, [...interpreter.slice(1), command], {
      cwd,
      env: { ...process.env, PATH: `${cwd}${delimiter}${process.env.PATH ?? ""}` },
    });
    return { argv: stdout.split("\0").slice(0, -1), files: (await readdir(cwd)).sort() };
  } finally {
    await rm(cwd, { recursive: true, force: true });
  }
}

describe("shellQuote", () => {
  it("leaves resource paths and flags bare, and single-quotes anything else", () => {
    assert.equal(shellQuote("projects/p/topics/t-1_x.y"), "projects/p/topics/t-1_x.y");
    assert.equal(shellQuote("--max-delivery-attempts=20"), "--max-delivery-attempts=20");
    assert.equal(shellQuote(20), "20");
    assert.equal(shellQuote(""), "''");
    assert.equal(shellQuote("a b"), "'a b'");
    assert.equal(shellQuote("it's"), "'it'\\''s'");
    assert.equal(shellQuote("$(id)"), "'$(id)'");
    assert.equal(shellCommand("gcloud", "x y", "z"), "gcloud 'x y' z");
  });
});

describe("the dead-letter topic is attached during pulumi up (attachDeadLetter on)", () => {
  const attach = () => {
    const found = registered.filter((r) => r.type === COMMAND_TYPE);
    assert.equal(found.length, 1, "exactly one command, the attaching Loader's");
    return found[0]!;
  };

  it("a command.local.Command runs the gcloud update on create and update, and nothing on delete", () => {
    const command = attach();
    assert.equal(command.name, "dl-on-finalize-dead-letter-attach");
    assert.equal(command.inputs.create, on.command);
    assert.equal(command.inputs.update, on.command);
    assert.equal(command.inputs.delete, undefined);
    assert.deepEqual(command.inputs.interpreter, ["/bin/sh", "-c"]);
    assert.equal(command.inputs.environment.CLOUDSDK_CORE_DISABLE_PROMPTS, "1");
  });

  it("its triggers are the trigger's subscription, so a replaced trigger is attached again", () => {
    assert.deepEqual(attach().inputs.triggers, [AWKWARD_SUBSCRIPTION]);
  });

  it("the command names the subscription, the topic and the attempts, each value one shell word", async () => {
    const command = attach();
    assert.ok(
      command.inputs.create.includes(`'${AWKWARD_SUBSCRIPTION.replaceAll("'", `'\\''`)}'`),
      command.inputs.create,
    );
    const { argv, files } = await runWithFakeGcloud(command.inputs.create, command.inputs.interpreter);
    assert.deepEqual(argv, [
      "pubsub",
      "subscriptions",
      "update",
      AWKWARD_SUBSCRIPTION,
      "--dead-letter-topic=projects/my-project/topics/dl-on-finalize-dead-letter",
      "--max-delivery-attempts=7",
    ]);
    assert.deepEqual(files, ["gcloud"], "nothing in the name was executed");
  });
});

describe("attachDeadLetter off", () => {
  it("registers no command, and the output command is still there to run by hand", async () => {
    assert.equal(off.loader.deadLetterAttachment, undefined);
    assert.ok(on.loader.deadLetterAttachment !== undefined);
    assert.deepEqual(
      registered.filter((r) => r.type === COMMAND_TYPE && r.name.startsWith("dl-off")),
      [],
    );
    const { argv, files } = await runWithFakeGcloud(off.command, ["/bin/sh", "-c"]);
    assert.deepEqual(files, ["gcloud"]);
    assert.deepEqual(argv, [
      "pubsub",
      "subscriptions",
      "update",
      AWKWARD_SUBSCRIPTION,
      "--dead-letter-topic=projects/my-project/topics/dl-off-finalize-dead-letter",
      "--max-delivery-attempts=7",
    ]);
  });
});
