// The compactor's figures the model restates so `logarchive plan|cost` load neither Pulumi nor
// the S3 client's upload code: they must equal what infra deploys and what the compactor uses.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { STACK_SETTINGS } from "../../infra/config.ts";
import {
  compactorManifests,
  DEFAULT_COMPACTOR_REQUESTS,
  RUN_DEADLINE_SECONDS,
  SCHEDULE_SLACK_MINUTES,
} from "../../infra/k8s/compactor-cronjob.ts";
import { DEFAULT_UPLOAD_CHUNK_BYTES } from "../compaction/defaults.ts";
import { compactorLookbackHours, DEFAULT_COMPACTOR_SHARDS } from "./compactor.ts";
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
      landingDays: DEFAULT_COMPACTION.landingDays,
      lockDays: 365,
      deleteAfterHours: 6,
      shards: DEFAULT_COMPACTION.shards,
      image: "i",
      namespace: "n",
      roleArn: "arn:aws:iam::123456789012:role/r",
    }).find((o) => o.kind === "CronJob") as unknown as {
      spec: {
        jobTemplate: {
          spec: {
            activeDeadlineSeconds: number;
            completions: number;
            parallelism: number;
            template: { spec: { containers: { args: string[]; resources: { requests: object } }[] } };
          };
        };
      };
    };
    const job = cronJob.spec.jobTemplate.spec;
    assert.deepEqual(job.template.spec.containers[0]!.resources.requests, COMPACTOR_REQUESTS);
    assert.deepEqual(compactorReservation(), { cpu: 1, memoryGiB: 1 });
    assert.equal(job.activeDeadlineSeconds, COMPACTOR_RUN_DEADLINE_SECONDS);
    assert.equal(RUN_DEADLINE_SECONDS, COMPACTOR_RUN_DEADLINE_SECONDS);
    assert.equal(SCHEDULE_SLACK_MINUTES, COMPACTOR_SCHEDULE_SLACK_MINUTES);
    // The run uses the compactor's own upload chunk and concurrency (it passes neither flag), and
    // the lookback the model counts its window from.
    const args = job.template.spec.containers[0]!.args;
    assert.ok(!args.includes("--concurrency"), args.join(" "));
    assert.equal(args[args.indexOf("--lookback") + 1], `${DEFAULT_COMPACTION.lookbackHours}h`);
    assert.equal(DEFAULT_COMPACTION.lookbackHours, compactorLookbackHours(DEFAULT_COMPACTION.landingDays));
    assert.equal(DEFAULT_COMPACTION.uploadPartBytes, DEFAULT_UPLOAD_CHUNK_BYTES);
  });

  it("prices the stack's default shards: the setting's default, one pod per shard a run, each --shard i/shards", () => {
    const setting = STACK_SETTINGS.find((s) => s.key === "archiveCompaction");
    assert.ok(setting !== undefined);
    const defaults = setting.schema.parse(undefined) as { shards: number; landingDays: number };
    assert.equal(defaults.shards, DEFAULT_COMPACTOR_SHARDS);
    assert.equal(DEFAULT_COMPACTION.shards, DEFAULT_COMPACTOR_SHARDS);
    assert.equal(defaults.landingDays, DEFAULT_COMPACTION.landingDays);
    const job = (
      compactorManifests({
        bucket: "b",
        prefix: "logs",
        region: "us-east-1",
        settleMinutes: DEFAULT_COMPACTION.settleMinutes,
        partMaxBytes: DEFAULT_COMPACTION.partMaxBytes,
        landingDays: defaults.landingDays,
        lockDays: 365,
        deleteAfterHours: 6,
        shards: defaults.shards,
        image: "i",
        namespace: "n",
        roleArn: "arn:aws:iam::123456789012:role/r",
      }).find((o) => o.kind === "CronJob") as unknown as {
        spec: {
          jobTemplate: {
            spec: {
              completions: number;
              parallelism: number;
              template: { spec: { containers: { args: string[] }[] } };
            };
          };
        };
      }
    ).spec.jobTemplate.spec;
    assert.equal(job.completions, DEFAULT_COMPACTION.shards);
    assert.equal(job.parallelism, DEFAULT_COMPACTION.shards);
    const args = job.template.spec.containers[0]!.args;
    assert.equal(args[args.indexOf("--shard") + 1], `$(JOB_COMPLETION_INDEX)/${DEFAULT_COMPACTION.shards}`);
  });
});
