// The compactor CronJob's objects as plain data (the stack's own test, infra/stack-compaction.test.ts,
// checks what the component registers): the command line, the schedule and the pod's hardening.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
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
  });
});
