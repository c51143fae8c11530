// The stack with archive compaction on (logarchive:archiveCompaction.enabled), under
// pulumi.runtime.setMocks, in stream delivery: the tier and compacted lifecycle rules, the
// shipper's capped retention grant and its shipper.yaml, the compactor's role and CronJob, and
// the security policy pack over all of it. On is the default (COMPACTION_ENABLED_BY_DEFAULT);
// this file sets it explicitly beside its other values, and stack.test.ts covers the stack with
// compaction off.

import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { retrievalPrefixes } from "../lib/infra-contract.ts";
import { compactedPrefix, indexPrefix, tierPrefix } from "../lib/keys/layout.ts";
import { longLivedTiers } from "../lib/keys/tiers.ts";
import { parsePolicy } from "../lib/policy/policy.ts";
import { parseStackConfig } from "./config.ts";
import {
  destructiveActionViolations,
  encryptionViolations,
  objectLockViolations,
  publicAccessViolations,
  tlsOnlyViolations,
  wildcardActionViolations,
} from "./policies/security.ts";
import { ACCOUNT, installMocks, type Loose, type Registered } from "./test_support/mocks.ts";

const registered: Registered[] = [];

const policyYaml = `
archive:
  prefix: logs
analytics:
  include: ["*"]
  delivery: stream
  stream_expiration_days: 2
warehouse:
  dataset: logarchive
`;
const policy = parsePolicy(policyYaml);
const IMAGE = "registry.example.com/logarchive-shipper:test";

const config = parseStackConfig(
  {
    eksOidcProviderArn: `arn:aws:iam::${ACCOUNT}:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABCDEF`,
    shipper: JSON.stringify({ image: IMAGE, namespace: "logging" }),
    retrievalPrincipals: JSON.stringify([`arn:aws:iam::${ACCOUNT}:role/compliance`]),
    archiveCompaction: JSON.stringify({
      enabled: true,
      landingDays: 5,
      settleMinutes: 80,
      partMaxBytes: "512MiB",
    }),
  },
  { "aws:region": "us-east-1", "gcp:project": "my-project", "gcp:region": "us-central1" },
  () => policyYaml,
);

let outputs: Record<string, unknown> = {};

before(async () => {
  installMocks(registered);
  const { deployLogarchive } = await import("./stack.ts");
  const stack = deployLogarchive({ config, stackName: "test", projectName: "logarchive", athenaQueries: [] });
  outputs = await new Promise((resolve) =>
    pulumi.output(stack.outputs).apply((o) => resolve(o as Record<string, unknown>)),
  );
  await pulumi.runtime.disconnect();
});

const ofType = (type: string) => registered.filter((r) => r.type === type);
const one = (type: string, name?: string) => {
  const found = ofType(type).filter((r) => name === undefined || r.name === name);
  assert.equal(
    found.length,
    1,
    `expected exactly one ${type}${name ? ` named ${name}` : ""}, found ${found.length}`,
  );
  return found[0]!;
};
const policyOf = (r: Registered) => JSON.parse(r.inputs.policy ?? r.inputs.assumeRolePolicy);
const prefixOf = (r: Loose): string => r.filter.prefix ?? r.filter.and.prefix;

const BUCKET = "arn:aws:s3:::archive-bucket";
const KEY = `arn:aws:kms:us-east-1:${ACCOUNT}:key/archive-key`;
const COMPACTED = compactedPrefix("logs");

describe("archive compaction on: lifecycle", () => {
  const rules = () =>
    one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "archive-lifecycle").inputs.rules;

  it("the compacted prefix is lib's, beside the tiers, under no other rule's prefix", () => {
    assert.equal(COMPACTED, "logs/compacted/");
    const others = [...new Set<string>(rules().map(prefixOf))].filter((p) => p !== COMPACTED);
    for (const p of others) assert.ok(!COMPACTED.startsWith(p) && !p.startsWith(COMPACTED), p);
  });

  it("each long-lived tier keeps its own rules (originals that stay current: transitions, expiry at the retention) with noncurrent versions removed after 1 day (the compactor's delete markers); no rule expires an original by age or tag", () => {
    for (const tier of longLivedTiers()) {
      const prefix = tierPrefix("logs", tier);
      const of = rules().filter((r: Loose) => prefixOf(r) === prefix);
      assert.deepEqual(of[0], {
        id: `logarchive-${tier}`,
        status: "Enabled",
        filter: { prefix },
        expiration: { days: 730 },
        noncurrentVersionExpiration: { noncurrentDays: 1 },
        abortIncompleteMultipartUpload: { daysAfterInitiation: 7 },
      });
      // The size bands carry transitions only, from day 30.
      const bands = of.slice(1);
      assert.ok(bands.length >= 1);
      for (const band of bands) {
        assert.match(band.id, new RegExp(`^logarchive-${tier}-\\d+-(\\d+|up)$`));
        assert.equal(band.expiration, undefined);
        assert.equal(band.filter.and.tags, undefined);
      }
      const first = Math.min(...bands.flatMap((b: Loose) => b.transitions.map((t: Loose) => t.days)));
      assert.equal(first, 30);
    }
    // No landing rule, no tag filter anywhere.
    for (const r of rules()) {
      assert.doesNotMatch(r.id, /-landing$/);
      assert.equal(r.filter.and?.tags, undefined, r.id);
    }
  });

  it("the compacted prefix takes the archive's size-aware transitions (no transfer hold) and expires at the retention", () => {
    const of = rules().filter((r: Loose) => prefixOf(r) === COMPACTED);
    assert.deepEqual(of[0], {
      id: "logarchive-compacted",
      status: "Enabled",
      filter: { prefix: COMPACTED },
      expiration: { days: 730 },
      noncurrentVersionExpiration: { noncurrentDays: 30 },
      abortIncompleteMultipartUpload: { daysAfterInitiation: 7 },
    });
    const banded = of.slice(1);
    assert.ok(banded.length >= 1);
    for (const band of banded) assert.match(band.id, /^logarchive-compacted-\d+-(\d+|up)$/);
    // Parts are 150 MiB-1 GiB: in the top band, which takes all three classes at their own days.
    assert.equal(banded.at(-1).filter.and.objectSizeLessThan, undefined);
    assert.deepEqual(
      banded.at(-1).transitions.map((t: Loose) => [t.storageClass, t.days]),
      [
        ["STANDARD_IA", 30],
        ["GLACIER_IR", 90],
        ["DEEP_ARCHIVE", 180],
      ],
    );
  });

  it("hour indexes, loss records and the stream copies keep their rules", () => {
    for (const prefix of ["logs/index/", "logs/losses/"]) {
      const [r, ...more] = rules().filter((x: Loose) => prefixOf(x) === prefix);
      assert.equal(more.length, 0);
      assert.equal(r.expiration.days, 730);
      assert.equal(r.transitions, undefined);
    }
    const stream = rules().find((r: Loose) => prefixOf(r) === "logs/stream/");
    assert.equal(stream.expiration.days, 2);
  });
});

describe("archive compaction on: the shipper", () => {
  it("may set retention only on the stream and tier prefixes, capped at max(stream_expiration_days, landingDays) + 2", () => {
    const doc = policyOf(one("aws:iam/rolePolicy:RolePolicy", "shipper-write"));
    assert.deepEqual(doc.Statement, [
      {
        Sid: "WriteArchiveObjects",
        Effect: "Allow",
        Action: ["s3:GetObject", "s3:PutObject"],
        Resource: [
          `${BUCKET}/logs/analytics/*`,
          `${BUCKET}/logs/archive/*`,
          `${BUCKET}/logs/losses/*`,
          `${BUCKET}/logs/index/*`,
          `${BUCKET}/logs/stream/*`,
        ],
      },
      {
        Sid: "SetShortRetention",
        Effect: "Allow",
        Action: ["s3:PutObjectRetention"],
        Resource: [`${BUCKET}/logs/stream/*`, `${BUCKET}/logs/analytics/*`, `${BUCKET}/logs/archive/*`],
        Condition: { NumericLessThanEquals: { "s3:object-lock-remaining-retention-days": "7" } },
      },
      { Sid: "EncryptWithArchiveKey", Effect: "Allow", Action: ["kms:GenerateDataKey"], Resource: KEY },
    ]);
    // No tagging: the originals are PUT untagged.
    assert.doesNotMatch(JSON.stringify(doc), /Tagging/);
  });

  it("shipper.yaml: the bucket's lock mode and landing_days = landingDays", () => {
    const shipperYaml: string = one("kubernetes:core/v1:ConfigMap").inputs.data["shipper.yaml"];
    assert.match(shipperYaml, /^object_lock_mode: GOVERNANCE$/m);
    assert.match(shipperYaml, /^landing_days: 5$/m);
  });
});

describe("archive compaction on: the compactor", () => {
  it("its IRSA role trusts only its own ServiceAccount, in the shipper's namespace", () => {
    const trust = policyOf(one("aws:iam/role:Role", "compactor"));
    assert.deepEqual(trust.Statement, [
      {
        Effect: "Allow",
        Principal: {
          Federated: `arn:aws:iam::${ACCOUNT}:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABCDEF`,
        },
        Action: "sts:AssumeRoleWithWebIdentity",
        Condition: {
          StringEquals: {
            "oidc.eks.us-east-1.amazonaws.com/id/ABCDEF:sub":
              "system:serviceaccount:logging:logarchive-compactor",
            "oidc.eks.us-east-1.amazonaws.com/id/ABCDEF:aud": "sts.amazonaws.com",
          },
        },
      },
    ]);
  });

  it("reads and lists the tiers, the hour indexes and its own prefix; writes only under the compacted prefix; on the tiers alone, delete markers and a retention capped at objectLockDays + 2", () => {
    const doc = policyOf(one("aws:iam/rolePolicy:RolePolicy", "compactor-compact"));
    const read = [...longLivedTiers().map((t) => tierPrefix("logs", t)), indexPrefix("logs"), COMPACTED];
    assert.deepEqual(read, ["logs/analytics/", "logs/archive/", "logs/index/", "logs/compacted/"]);
    assert.deepEqual(doc.Statement, [
      {
        Sid: "ReadOriginalsAndIndexes",
        Effect: "Allow",
        Action: ["s3:GetObject", "s3:GetObjectVersion"],
        Resource: read.map((p) => `${BUCKET}/${p}*`),
      },
      {
        Sid: "ListOriginalsAndIndexes",
        Effect: "Allow",
        Action: ["s3:ListBucket", "s3:ListBucketVersions"],
        Resource: BUCKET,
        Condition: { StringLike: { "s3:prefix": read.map((p) => `${p}*`) } },
      },
      {
        Sid: "WriteCompactedParts",
        Effect: "Allow",
        Action: ["s3:AbortMultipartUpload", "s3:PutObject"],
        Resource: [`${BUCKET}/logs/compacted/*`],
      },
      {
        // DeleteObject without a version id: a delete marker on each compacted original.
        Sid: "MarkCompactedOriginalsDeleted",
        Effect: "Allow",
        Action: ["s3:DeleteObject"],
        Resource: [`${BUCKET}/logs/analytics/*`, `${BUCKET}/logs/archive/*`],
      },
      {
        // The HEAD returns an original's mode and retain-until only with this.
        Sid: "ReadOriginalsLockState",
        Effect: "Allow",
        Action: ["s3:GetObjectRetention"],
        Resource: [`${BUCKET}/logs/analytics/*`, `${BUCKET}/logs/archive/*`],
      },
      {
        // An original it could not compact keeps the bucket default (objectLockDays 365).
        Sid: "KeepUncompactedOriginalsLocked",
        Effect: "Allow",
        Action: ["s3:PutObjectRetention"],
        Resource: [`${BUCKET}/logs/analytics/*`, `${BUCKET}/logs/archive/*`],
        Condition: { NumericLessThanEquals: { "s3:object-lock-remaining-retention-days": "367" } },
      },
      {
        Sid: "UseArchiveKey",
        Effect: "Allow",
        Action: ["kms:Decrypt", "kms:GenerateDataKey"],
        Resource: KEY,
      },
    ]);
    assert.deepEqual(
      ofType("aws:iam/role:Role")
        .map((r) => r.name)
        .sort(),
      ["compactor", "retrieval", "shipper", "transfer"],
    );
    assert.equal(config.objectLockDays, 365);
    // Never a version delete, a governance bypass, a lock or lifecycle change, or tagging.
    for (const action of [
      "s3:DeleteObjectVersion",
      "s3:BypassGovernanceRetention",
      "s3:PutBucketObjectLockConfiguration",
      "s3:PutLifecycleConfiguration",
      "s3:PutObjectTagging",
      "s3:PutObjectVersionTagging",
    ])
      assert.ok(!JSON.stringify(doc).includes(`"${action}"`), action);
    assert.equal(outputs.compactorRoleArn, `arn:aws:iam::${ACCOUNT}:role/compactor`);
  });

  it("an hourly CronJob, concurrencyPolicy Forbid, the shipper's image, `logarchive compact --pending` with the stack's settings", () => {
    const cron = one("kubernetes:batch/v1:CronJob").inputs;
    assert.equal(cron.metadata.name, "logarchive-compactor");
    assert.equal(cron.metadata.namespace, "logging");
    // 80 minutes' settle: each hour is ready at 20 past the hour after next; the run at 25 takes it.
    assert.equal(cron.spec.schedule, "25 * * * *");
    assert.equal(cron.spec.concurrencyPolicy, "Forbid");
    const job = cron.spec.jobTemplate.spec;
    assert.ok(job.activeDeadlineSeconds < 3600, "a stuck run ends before the next is due");
    const pod = job.template.spec;
    assert.equal(pod.serviceAccountName, "logarchive-compactor");
    assert.equal(pod.restartPolicy, "Never");
    assert.deepEqual(pod.securityContext, { seccompProfile: { type: "RuntimeDefault" } });
    const [container, ...others] = pod.containers;
    assert.equal(others.length, 0);
    assert.equal(container.image, IMAGE);
    assert.equal(
      container.image,
      one("kubernetes:apps/v1:DaemonSet").inputs.spec.template.spec.containers[0].image,
    );
    assert.deepEqual(container.args, [
      "compact",
      "--pending",
      "--bucket",
      "archive-bucket",
      "--prefix",
      "logs",
      "--settle",
      "80m",
      "--part-max-bytes",
      String(512 * 2 ** 20),
      "--lookback",
      "48h",
      // The sweep: the shipper's landing_days, the bucket's objectLockDays, athenaCutoffHours.
      "--landing-days",
      "5",
      "--lock-days",
      "365",
      "--delete-after",
      "6h",
      "--shard",
      "$(JOB_COMPLETION_INDEX)/4",
      "--region",
      "us-east-1",
    ]);
    assert.equal(job.completionMode, "Indexed");
    assert.equal(job.completions, 4);
    assert.equal(job.parallelism, 4);
    assert.deepEqual(container.securityContext, {
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ["ALL"] },
      runAsUser: 1000,
      runAsGroup: 1000,
      runAsNonRoot: true,
    });
    assert.ok(container.resources.requests.cpu && container.resources.requests.memory);
    assert.ok(container.resources.limits.memory);
  });

  it("its ServiceAccount carries the compactor role, not the shipper's", () => {
    const accounts = ofType("kubernetes:core/v1:ServiceAccount").map((r) => r.inputs.metadata);
    const compactor = accounts.find((m: Loose) => m.name === "logarchive-compactor");
    assert.equal(compactor.namespace, "logging");
    assert.equal(
      compactor.annotations["eks.amazonaws.com/role-arn"],
      `arn:aws:iam::${ACCOUNT}:role/compactor`,
    );
    const shipper = accounts.find((m: Loose) => m.name === "logarchive-shipper");
    assert.equal(shipper.annotations["eks.amazonaws.com/role-arn"], `arn:aws:iam::${ACCOUNT}:role/shipper`);
  });
});

describe("archive compaction on: Athena", () => {
  it("the catalog gets the compacted table, over lib's compacted prefix", () => {
    const tables = ofType("aws:glue/catalogTable:CatalogTable");
    assert.equal(tables.length, 2);
    const compacted = tables.find((t) => t.name === "athena-compacted");
    assert.ok(compacted, tables.map((t) => t.name).join(", "));
    assert.equal(compacted.inputs.storageDescriptor.location, `s3://archive-bucket/${COMPACTED}`);
  });
});

describe("archive compaction on: security policies", () => {
  it("the stack passes every rule, the shipper's retention grant and the compactor's role included", () => {
    const resources = registered.map((r) => ({ type: r.type, name: r.name, props: r.props ?? r.inputs }));
    assert.deepEqual(publicAccessViolations(resources), []);
    assert.deepEqual(encryptionViolations(resources), []);
    assert.deepEqual(tlsOnlyViolations(resources), []);
    assert.deepEqual(wildcardActionViolations(resources), []);
    assert.deepEqual(destructiveActionViolations(resources), []);
    assert.deepEqual(objectLockViolations(resources, { requiredMode: "GOVERNANCE" }), []);
    // The destructive-action rule saw the retention grant (it did not pass by missing it).
    const shipper = resources.find((r) => r.name === "shipper-write")!;
    assert.match(shipper.props.policy, /s3:PutObjectRetention/);
    const compactor = resources.find((r) => r.name === "compactor-compact")!;
    assert.match(compactor.props.policy, /"s3:DeleteObject"/);
    assert.match(compactor.props.policy, /s3:PutObjectRetention/);
    assert.equal(policy.archive.prefix, "logs");
  });
});

describe("archive compaction on: the retrieval role", () => {
  it("has on the compacted prefix exactly the object actions it has on the tiers (retrieve, hold, reconcile read and hold parts and manifests)", () => {
    const doc = policyOf(one("aws:iam/rolePolicy:RolePolicy", "retrieval-retrieve"));
    const read = doc.Statement.find((st: Loose) => st.Sid === "ReadRestoreAndHoldArchive");
    const prefixes = read.Resource.map((r: string) => r.slice(`${BUCKET}/`.length, -1));
    assert.deepEqual(prefixes, retrievalPrefixes(policy));
    for (const tier of longLivedTiers()) assert.ok(prefixes.includes(tierPrefix("logs", tier)));
    assert.ok(prefixes.includes(COMPACTED));
    // One statement, so the actions on compacted/ cannot drift from those on the tiers.
    const onCompacted = doc.Statement.filter(
      (st: Loose) => st.Effect === "Allow" && [st.Resource].flat().includes(`${BUCKET}/${COMPACTED}*`),
    );
    assert.equal(onCompacted.length, 1);
    for (const action of [
      "s3:GetObject",
      "s3:GetObjectVersion",
      "s3:RestoreObject",
      "s3:GetObjectRetention",
      "s3:GetObjectLegalHold",
      "s3:PutObjectLegalHold",
    ])
      assert.ok(onCompacted[0].Action.includes(action), action);
  });
});
