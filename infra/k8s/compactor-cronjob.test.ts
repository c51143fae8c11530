// The compactor CronJob's objects as plain data (the stack's own test, infra/stack-compaction.test.ts,
// checks what the component registers): the command line, the schedule and the pod's hardening.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { localCliEnv, runCli } from "../../cli/test_support.ts";
import { COMPACTOR_REQUESTS } from "../../lib/economics/compactor.ts";
import { type LocalS3, startLocalS3 } from "../../local/s3.ts";
import { compactorArgs, compactorManifests, compactorSchedule } from "./compactor-cronjob.ts";

const SETTINGS = {
  bucket: "archive",
  prefix: "k8s/logs",
  region: "eu-west-1",
  settleMinutes: 75,
  partMaxBytes: 1024 ** 3,
  landingDays: 3,
  lockDays: 365,
  deleteAfterHours: 6,
  shards: 4,
};

/**
 * What the kubelet does to a container's args: `$(VAR)` replaced by VAR's value from the
 * container's env, a reference to an undefined variable left as it is
 * (https://kubernetes.io/docs/tasks/inject-data-application/define-command-argument-container/).
 */
function expandArgs(args: readonly string[], env: Record<string, string>): string[] {
  return args.map((a) =>
    a.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (ref, name: string) => env[name] ?? ref),
  );
}

describe("compactor CronJob", () => {
  it("the command line: --pending with bucket, prefix, settle in minutes, part size in bytes, lookback, landing and lock days, delete-after in hours, the pod's shard, region; --s3-endpoint only when set", () => {
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
      "--lookback",
      "48h",
      "--landing-days",
      "3",
      "--lock-days",
      "365",
      "--delete-after",
      "6h",
      "--shard",
      "$(JOB_COMPLETION_INDEX)/4",
      "--region",
      "eu-west-1",
    ]);
    assert.deepEqual(compactorArgs({ ...SETTINGS, s3Endpoint: "http://s3.local:9000" }).slice(-2), [
      "--s3-endpoint",
      "http://s3.local:9000",
    ]);
  });

  it("the lookback ends 12 hours before the originals may expire, at most the CLI's 48 hours", () => {
    const lookback = (landingDays: number) => {
      const args = compactorArgs({ ...SETTINGS, landingDays });
      return args[args.indexOf("--lookback") + 1];
    };
    assert.equal(lookback(1), "12h");
    assert.equal(lookback(2), "36h");
    assert.equal(lookback(3), "48h");
    assert.equal(lookback(30), "48h");
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
    // An Indexed Job of one pod per shard, all at once; two retries a shard.
    const job = spec.jobTemplate.spec;
    assert.equal(job.completionMode, "Indexed");
    assert.equal(job.completions, 4);
    assert.equal(job.parallelism, 4);
    assert.equal(job.backoffLimit, 8);
    const pod = job.template.spec;
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
    // The shard's index comes from the pod's own annotation, defined in env so $(…) expands.
    assert.deepEqual(
      container.env.find((e: { name: string }) => e.name === "JOB_COMPLETION_INDEX"),
      {
        name: "JOB_COMPLETION_INDEX",
        valueFrom: {
          fieldRef: { fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']" },
        },
      },
    );
    // docs/benchmarks.md "Compaction": one core (CPU-bound), a run at 10,000 nodes about 864 MiB.
    assert.deepEqual(container.resources, {
      requests: { cpu: "1", memory: "1Gi" },
      limits: { memory: "1Gi" },
    });
    assert.deepEqual(container.resources.requests, COMPACTOR_REQUESTS);
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

  // As the kubelet runs pod 2 of 4: $(JOB_COMPLETION_INDEX) expanded from the container's env.
  const args = (bucket: string, landingDays = SETTINGS.landingDays) =>
    expandArgs(
      compactorArgs({ ...SETTINGS, bucket, landingDays, region: "us-east-1", s3Endpoint: local.endpoint }),
      { JOB_COMPLETION_INDEX: "2" },
    );

  it("the CLI accepts every flag and value the CronJob passes: a dry run over an empty archive exits 0 with its summary", async () => {
    const run = await runCli([...args("archive"), "--dry-run"], { env });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stderr, "");
    assert.match(
      run.stdout,
      /^compact --pending: .*\(lookback 48h, settle 75m, shard 2\/4\), 0 namespace\(s\)/m,
    );
    const summary = JSON.parse(run.stdout.trim().split("\n").at(-1)!);
    assert.equal(summary.event, "compact-pending");
    // The settle, lookback and shard the stack set reached the command as the CronJob wrote them.
    assert.equal(summary.settleMs, SETTINGS.settleMinutes * 60_000);
    assert.equal(summary.shard, "2/4");
    assert.equal(summary.lookbackMs, 48 * 3_600_000);
  });

  it("the shortest lookback the stack passes (landingDays 1: 12h) is one the CLI takes with the settle", async () => {
    const run = await runCli([...args("archive", 1), "--dry-run"], { env });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /\(lookback 12h, settle 75m, shard 2\/4\)/);
  });

  it("unexpanded (no JOB_COMPLETION_INDEX in the env) the shard is refused, which is why the env defines it", async () => {
    const raw = compactorArgs({ ...SETTINGS, region: "us-east-1", s3Endpoint: local.endpoint });
    const run = await runCli([...raw, "--dry-run"], { env });
    assert.equal(run.status, 2);
    assert.match(run.stderr, /--shard/);
  });

  it("against a bucket that does not exist it fails on the bucket alone (exit 2, one line naming it), not on a flag", async () => {
    const run = await runCli([...args("no-such-bucket"), "--dry-run"], { env });
    assert.equal(run.status, 2, run.stdout + run.stderr);
    assert.match(run.stderr, /no-such-bucket/);
    assert.doesNotMatch(run.stderr, /unknown option|error: option/);
    assert.equal(run.stderr.trim().split("\n").length, 1, run.stderr);
  });

  it("a renamed flag is what this test catches: the CLI refuses it as a usage error", async () => {
    for (const [flag, renamedTo] of [
      ["--settle", "--settle-delay"],
      ["--landing-days", "--landing-day"],
      ["--lock-days", "--lock-day"],
      ["--delete-after", "--delete-after-hours"],
    ] as const) {
      const renamed = args("archive").map((a) => (a === flag ? renamedTo : a));
      const run = await runCli([...renamed, "--dry-run"], { env });
      assert.equal(run.status, 2, flag);
      assert.match(run.stderr, new RegExp(`unknown option '${renamedTo}'`));
    }
  });

  it("the CLI parses the values the CronJob passes for the sweep: a value it would refuse is a usage error naming the flag", async () => {
    for (const [flag, bad] of [
      ["--landing-days", "3d"],
      ["--lock-days", "-1"],
      ["--delete-after", "6"],
    ] as const) {
      const run = await runCli(
        [...args("archive").map((a, i, all) => (all[i - 1] === flag ? bad : a)), "--dry-run"],
        { env },
      );
      assert.equal(run.status, 2, `${flag} ${bad}: ${run.stdout}${run.stderr}`);
      assert.match(run.stderr, new RegExp(flag));
    }
  });
});
