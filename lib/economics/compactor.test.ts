// The compactor's figures the model restates so `logarchive plan|cost` load neither Pulumi nor
// the S3 client's upload code: they must equal what infra deploys and what the compactor uses.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  compactorManifests,
  DEFAULT_COMPACTOR_REQUESTS,
  RUN_DEADLINE_SECONDS,
  SCHEDULE_SLACK_MINUTES,
} from "../../infra/k8s/compactor-cronjob.ts";
import { DEFAULT_UPLOAD_CHUNK_BYTES } from "../compaction/part-writer.ts";
import { COMPACTOR_REQUESTS, compactorReservation, DEFAULT_COMPACTION } from "./design.ts";
import { COMPACTOR_RUN_DEADLINE_SECONDS, COMPACTOR_SCHEDULE_SLACK_MINUTES } from "./model.ts";

describe("the compactor the model prices is the one infra deploys", () => {
  it("prices the CronJob container's requests, deadline and schedule minute", () => {
    assert.deepEqual(COMPACTOR_REQUESTS, DEFAULT_COMPACTOR_REQUESTS);
    const cronJob = compactorManifests({
      bucket: "b",
      prefix: "logs",
      region: "us-east-1",
      settleMinutes: DEFAULT_COMPACTION.settleMinutes,
      partMaxBytes: DEFAULT_COMPACTION.partMaxBytes,
      image: "i",
      namespace: "n",
      roleArn: "arn:aws:iam::123456789012:role/r",
    }).find((o) => o.kind === "CronJob") as unknown as {
      spec: {
        jobTemplate: {
          spec: {
            activeDeadlineSeconds: number;
            template: { spec: { containers: { args: string[]; resources: { requests: object } }[] } };
          };
        };
      };
    };
    const job = cronJob.spec.jobTemplate.spec;
    assert.deepEqual(job.template.spec.containers[0]!.resources.requests, COMPACTOR_REQUESTS);
    assert.deepEqual(compactorReservation(), { cpu: 0.25, memoryGiB: 0.25 });
    assert.equal(job.activeDeadlineSeconds, COMPACTOR_RUN_DEADLINE_SECONDS);
    assert.equal(RUN_DEADLINE_SECONDS, COMPACTOR_RUN_DEADLINE_SECONDS);
    assert.equal(SCHEDULE_SLACK_MINUTES, COMPACTOR_SCHEDULE_SLACK_MINUTES);
    // The run uses the compactor's own upload chunk and lookback (it passes neither flag).
    const args = job.template.spec.containers[0]!.args;
    assert.ok(!args.includes("--lookback") && !args.includes("--concurrency"), args.join(" "));
    assert.equal(DEFAULT_COMPACTION.uploadPartBytes, DEFAULT_UPLOAD_CHUNK_BYTES);
  });
});
