// The compactor CronJob's objects as plain data (the stack's own test, infra/stack-compaction.test.ts,
// checks what the component registers): the command line, the schedule and the pod's hardening.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { localCliEnv, runCli } from "../../cli/test_support.ts";
import { type LocalS3, startLocalS3 } from "../../local/s3.ts";
import { compactorArgs, compactorManifests, compactorSchedule } from "./compactor-cronjob.ts";

const SETTINGS = {
  bucket: "archive",
  prefix: "k8s/logs",
  region: "eu-west-1",
  settleMinutes: 75,
  partMaxBytes: 1024 ** 3,
};

describe("compactor CronJob", () => {
  it("the command line: --pending with bucket, prefix, settle in minutes, part size in bytes, region; --s3-endpoint only when set", () => {
    assert.deepEqual(compactorArgs(SETTINGS), [
      "compact",
      "--pending",
      "--bucket",
      "archive",
      "--prefix",
      "k8s/logs",
      "--settle",
      "75m",
      "--part-max-bytes",
      "1073741824",
      "--region",
      "eu-west-1",
    ]);
    assert.deepEqual(compactorArgs({ ...SETTINGS, s3Endpoint: "http://s3.local:9000" }).slice(-2), [
      "--s3-endpoint",
      "http://s3.local:9000",
    ]);
  });

  it("runs hourly, five minutes after an hour has settled, the minute wrapping past the hour", () => {
    assert.equal(compactorSchedule(75), "20 * * * *");
    assert.equal(compactorSchedule(55), "0 * * * *");
    assert.equal(compactorSchedule(1), "6 * * * *");
  });

  it("a ServiceAccount with the role and a CronJob whose pod runs as it, non-root, read-only, no token", () => {
    const objects = compactorManifests({
      ...SETTINGS,
      image: "img:1",
      namespace: "logarchive",
      roleArn: "arn:aws:iam::123456789012:role/compactor",
    });
    assert.deepEqual(
      objects.map((o) => [o.kind, o.metadata.name, o.metadata.namespace]),
      [
        ["ServiceAccount", "logarchive-compactor", "logarchive"],
        ["CronJob", "logarchive-compactor", "logarchive"],
      ],
    );
    assert.equal(
      objects[0]!.metadata.annotations!["eks.amazonaws.com/role-arn"],
      "arn:aws:iam::123456789012:role/compactor",
    );
    // biome-ignore lint/suspicious/noExplicitAny: manifest JSON
    const spec = objects[1]!.spec as any;
    assert.equal(spec.concurrencyPolicy, "Forbid");
    const pod = spec.jobTemplate.spec.template.spec;
    assert.equal(pod.serviceAccountName, "logarchive-compactor");
    assert.equal(pod.automountServiceAccountToken, false);
    const container = pod.containers[0];
    assert.equal(container.securityContext.runAsNonRoot, true);
    assert.equal(container.securityContext.readOnlyRootFilesystem, true);
    assert.deepEqual(container.securityContext.capabilities, { drop: ["ALL"] });
    // The only writable path is /tmp, an emptyDir.
    assert.deepEqual(container.volumeMounts, [{ name: "tmp", mountPath: "/tmp" }]);
    assert.deepEqual(
      pod.volumes.map((v: { name: string }) => v.name),
      ["tmp"],
    );
    assert.deepEqual(container.args, compactorArgs(SETTINGS));
    // docs/benchmarks.md "Compaction": a run at 10,000 nodes is estimated at about 864 MiB.
    assert.deepEqual(container.resources, {
      requests: { cpu: "250m", memory: "256Mi" },
      limits: { memory: "1Gi" },
    });
  });
});

// The CronJob's command line against the real CLI (cli/logarchive.ts, as the image runs it), so a
// flag renamed or dropped in cli/commands/compact.ts fails here rather than in the cluster.
describe("compactorArgs against `logarchive compact`", () => {
  let dir: string;
  let local: LocalS3;
  const env = localCliEnv();

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "compactor-args-"));
    local = await startLocalS3({ host: "127.0.0.1", port: 0, dataDir: dir, buckets: ["archive"] });
  });
  after(async () => {
    await local?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  const args = (bucket: string) =>
    compactorArgs({ ...SETTINGS, bucket, region: "us-east-1", s3Endpoint: local.endpoint });

  it("the CLI accepts every flag and value the CronJob passes: a dry run over an empty archive exits 0 with its summary", async () => {
    const run = await runCli([...args("archive"), "--dry-run"], { env });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stderr, "");
    assert.match(run.stdout, /^compact --pending: .*\(lookback 48h, settle 75m\), 0 namespace\(s\)/m);
    const summary = JSON.parse(run.stdout.trim().split("\n").at(-1)!);
    assert.equal(summary.event, "compact-pending");
    // The settle the stack set reached the command as the CronJob wrote it.
    assert.equal(summary.settleMs, SETTINGS.settleMinutes * 60_000);
  });

  it("against a bucket that does not exist it fails on the bucket alone (exit 2, one line naming it), not on a flag", async () => {
    const run = await runCli([...args("no-such-bucket"), "--dry-run"], { env });
    assert.equal(run.status, 2, run.stdout + run.stderr);
    assert.match(run.stderr, /no-such-bucket/);
    assert.doesNotMatch(run.stderr, /unknown option|error: option/);
    assert.equal(run.stderr.trim().split("\n").length, 1, run.stderr);
  });

  it("a renamed flag is what this test catches: the CLI refuses it as a usage error", async () => {
    const renamed = args("archive").map((a) => (a === "--settle" ? "--settle-delay" : a));
    const run = await runCli([...renamed, "--dry-run"], { env });
    assert.equal(run.status, 2);
    assert.match(run.stderr, /unknown option '--settle-delay'/);
  });
});
