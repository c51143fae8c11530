// The whole stack under pulumi.runtime.setMocks: no CLI, no cloud. One run of deployLogarchive
// with a policy that routes, then assertions on what was registered, resource by resource.
// Archive compaction is off here, set explicitly (it is on by default): this file covers the
// stack without it; stack-compaction.test.ts the stack with it.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { knownDestinations, transferredPrefixes } from "../lib/infra-contract.ts";
import { formatObjectKey, TIERS } from "../lib/keys/layout.ts";
import { destinations, notificationRules, parsePolicy } from "../lib/policy/policy.ts";
import { BIGQUERY_CLUSTERING, BIGQUERY_TIME_PARTITIONING, bigQuerySchema } from "../lib/record/ddl.ts";
import { parseStackConfig } from "./config.ts";
import {
  destructiveActionViolations,
  encryptionViolations,
  objectLockViolations,
  publicAccessViolations,
  tlsOnlyViolations,
  wildcardActionViolations,
} from "./policies/security.ts";
import {
  ACCOUNT,
  installMocks,
  type Loose,
  type Registered,
  STS_SUBJECT,
  TRIGGER_SUBSCRIPTION,
} from "./test_support/mocks.ts";

const registered: Registered[] = [];

const policyYaml = `
archive:
  prefix: logs
  exclude: [kube-node-lease]
analytics:
  include: ["*"]
  exclude: [kube-system]
warehouse:
  dataset: logarchive
  routes:
    - namespaces: [payments]
      dataset: finance
      table: payments_logs
    - namespaces: ["team-*"]
      table: "logs_{namespace}"
`;
const policy = parsePolicy(policyYaml);

const config = parseStackConfig(
  {
    eksOidcProviderArn: `arn:aws:iam::${ACCOUNT}:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABCDEF`,
    objectLockMode: "COMPLIANCE",
    shipper: JSON.stringify({ image: "registry.example.com/logarchive-shipper:test", namespace: "logging" }),
    objectLockDays: "400",
    retrievalPrincipals: JSON.stringify([`arn:aws:iam::${ACCOUNT}:role/compliance`]),
    archiveCompaction: JSON.stringify({ enabled: false }),
    warehouseNamespaces: JSON.stringify(["team-a"]),
    warehouseReaders: JSON.stringify([
      { member: "group:analysts@example.com", dataset: "logarchive" },
      { member: "group:finance@example.com", dataset: "finance", table: "payments_logs" },
    ]),
  },
  { "aws:region": "us-east-1", "gcp:project": "my-project", "gcp:region": "us-central1" },
  () => policyYaml,
);

let outputs: Record<string, unknown> = {};

before(async () => {
  installMocks(registered);
  const { deployLogarchive } = await import("./stack.ts");
  const stack = deployLogarchive({
    config,
    stackName: "test",
    projectName: "logarchive",
    athenaQueries: [{ name: "error_rate", description: "Error rate", query: "SELECT 1" }],
  });
  outputs = await new Promise((resolve) =>
    pulumi.output(stack.outputs).apply((o) => resolve(o as Record<string, unknown>)),
  );
  // Every registration is an RPC; wait until none is left in flight.
  await pulumi.runtime.disconnect();
});

after(() => {
  registered.length = 0;
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

describe("AWS: archive bucket", () => {
  it("is versioned, Object Lock on at creation with the configured default retention", () => {
    const bucket = one("aws:s3/bucket:Bucket", "archive");
    assert.equal(bucket.inputs.objectLockEnabled, true);
    assert.equal(
      one("aws:s3/bucketVersioning:BucketVersioning", "archive-versioning").inputs.versioningConfiguration
        .status,
      "Enabled",
    );
    const lock = one("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration").inputs;
    assert.deepEqual(lock.rule.defaultRetention, { mode: "COMPLIANCE", days: 400 });
  });

  it("every S3 bucket has SSE-KMS with a bucket key, all four public-access blocks and a TLS-only policy", () => {
    const buckets = ofType("aws:s3/bucket:Bucket").map((b) => b.name);
    assert.deepEqual(buckets.sort(), ["archive", "athena-results"]);
    for (const name of buckets) {
      const sse = one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        `${name}-encryption`,
      );
      assert.equal(sse.inputs.rules[0].applyServerSideEncryptionByDefault.sseAlgorithm, "aws:kms");
      assert.match(sse.inputs.rules[0].applyServerSideEncryptionByDefault.kmsMasterKeyId, /^arn:aws:kms:/);
      assert.equal(sse.inputs.rules[0].bucketKeyEnabled, true);
      const pab = one(
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        `${name}-public-access`,
      ).inputs;
      for (const k of ["blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"])
        assert.equal(pab[k], true, k);
      const tls = policyOf(one("aws:s3/bucketPolicy:BucketPolicy", `${name}-policy`)).Statement[0];
      assert.equal(tls.Effect, "Deny");
      assert.deepEqual(tls.Condition, { Bool: { "aws:SecureTransport": "false" } });
    }
    for (const key of ofType("aws:kms/key:Key")) assert.equal(key.inputs.enableKeyRotation, true, key.name);
  });

  it("Athena's results have a key of their own, not the archive's", () => {
    // Results are copies of log lines kept a few weeks; the archive key is retained for years and
    // decrypts the whole archive. Keys: the archive's and the results'.
    assert.deepEqual(
      ofType("aws:kms/key:Key")
        .map((k) => k.name)
        .sort(),
      ["archive-key", "athena-results-key"],
    );
    const resultsKey = `arn:aws:kms:us-east-1:${ACCOUNT}:key/athena-results-key`;
    const sse = one(
      "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
      "athena-results-encryption",
    ).inputs.rules[0].applyServerSideEncryptionByDefault;
    assert.equal(sse.kmsMasterKeyId, resultsKey);
    const wg = one("aws:athena/workgroup:Workgroup").inputs.configuration;
    assert.equal(wg.resultConfiguration.encryptionConfiguration.kmsKeyArn, resultsKey);
    const archiveSse = one(
      "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
      "archive-encryption",
    ).inputs.rules[0].applyServerSideEncryptionByDefault;
    assert.equal(archiveSse.kmsMasterKeyId, `arn:aws:kms:us-east-1:${ACCOUNT}:key/archive-key`);
  });

  it("the archive key's alias names the project and stack and gets a unique suffix from AWS", () => {
    // The key and alias outlive `pulumi destroy` (retainOnDelete): a fixed alias would collide with
    // a second stack in the account, or with this stack re-created.
    const alias = one("aws:kms/alias:Alias").inputs;
    assert.equal(alias.name, undefined);
    assert.equal(alias.namePrefix, "alias/logarchive-test-archive-");
    assert.equal(alias.targetKeyId, "archive-key");
  });

  it("has one lifecycle rule per tier of the layout, scoped by lib's tier prefix, with noncurrent and multipart cleanup", () => {
    const all = one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "archive-lifecycle")
      .inputs.rules;
    // Loss records and hour indexes have rules of their own, without transitions (s3-lifecycle.test.ts).
    const evidence = ["logs/index/", "logs/losses/"];
    const byPrefix = all.filter((r: Loose) => r.filter.prefix !== undefined);
    assert.deepEqual(
      byPrefix.map((r: Loose) => r.filter.prefix).sort(),
      [...TIERS.map((t) => `logs/${t}/`), ...evidence].sort(),
    );
    const rules = byPrefix.filter((r: Loose) => !evidence.includes(r.filter.prefix));
    for (const r of rules) {
      assert.equal(r.expiration.days, 730);
      assert.equal(r.noncurrentVersionExpiration.noncurrentDays, 30);
      assert.equal(r.abortIncompleteMultipartUpload.daysAfterInitiation, 7);
      // archiveTransitionSizes defaults to break-even: the transitions sit in per-size-band
      // rules of the same prefix (s3-lifecycle.test.ts), the largest band taking all three.
      assert.equal(r.transitions, undefined);
      const banded = all.filter((b: Loose) => b.filter.and?.prefix === r.filter.prefix);
      assert.deepEqual(
        banded.at(-1).transitions.map((t: Loose) => [t.storageClass, t.days]),
        [
          ["STANDARD_IA", 30],
          ["GLACIER_IR", 90],
          ["DEEP_ARCHIVE", 180],
        ],
      );
      assert.ok(banded[0].filter.and.objectSizeGreaterThan > 0);
    }
  });
});

describe("AWS: event queue", () => {
  it("has exactly one bucket notification, with the rules of notificationRules(policy)", () => {
    const notification = one("aws:s3/bucketNotification:BucketNotification");
    assert.deepEqual(
      notification.inputs.queues.map((q: Loose) => ({
        id: q.id,
        prefix: q.filterPrefix,
        suffix: q.filterSuffix,
        events: q.events,
      })),
      notificationRules(policy),
    );
    assert.equal(notification.inputs.bucket, "archive-bucket");
  });

  it("the queue is encrypted, keeps messages 14 days and redrives to a dead-letter queue", () => {
    const queue = one("aws:sqs/queue:Queue", "events");
    assert.equal(queue.inputs.sqsManagedSseEnabled, true);
    assert.equal(queue.inputs.messageRetentionSeconds, 14 * 86400);
    const redrive = JSON.parse(queue.inputs.redrivePolicy);
    assert.equal(redrive.deadLetterTargetArn, `arn:aws:sqs:us-east-1:${ACCOUNT}:events-dlq`);
    assert.equal(redrive.maxReceiveCount, 10);
    assert.equal(one("aws:sqs/queue:Queue", "events-dlq").inputs.sqsManagedSseEnabled, true);
  });

  it("the queue policy lets only this bucket, in this account, send", () => {
    const st = policyOf(one("aws:sqs/queuePolicy:QueuePolicy")).Statement;
    assert.equal(st.length, 1);
    assert.deepEqual(st[0].Principal, { Service: "s3.amazonaws.com" });
    assert.equal(st[0].Action, "sqs:SendMessage");
    assert.deepEqual(st[0].Condition, {
      ArnLike: { "aws:SourceArn": "arn:aws:s3:::archive-bucket" },
      StringEquals: { "aws:SourceAccount": ACCOUNT },
    });
  });
});

// The documents as deployed, against literals written here: not against the constants of
// infra/iam.ts that built them, so an action added, dropped or misspelt there fails these tests.
describe("AWS: IAM, exact action lists", () => {
  const BUCKET = "arn:aws:s3:::archive-bucket";
  const KEY = `arn:aws:kms:us-east-1:${ACCOUNT}:key/archive-key`;

  it("shipper: PutObject and GetObject (HeadObject) under the layout's tier prefixes, loss records and hour indexes, GenerateDataKey, nothing else", () => {
    const doc = policyOf(one("aws:iam/rolePolicy:RolePolicy", "shipper-write"));
    assert.equal(doc.Statement.length, 2);
    assert.deepEqual(doc, {
      Version: "2012-10-17",
      Statement: [
        {
          Sid: "WriteArchiveObjects",
          Effect: "Allow",
          Action: ["s3:GetObject", "s3:PutObject"],
          Resource: [
            `${BUCKET}/logs/analytics/*`,
            `${BUCKET}/logs/archive/*`,
            `${BUCKET}/logs/losses/*`,
            `${BUCKET}/logs/index/*`,
          ],
        },
        { Sid: "EncryptWithArchiveKey", Effect: "Allow", Action: ["kms:GenerateDataKey"], Resource: KEY },
      ],
    });
    const trust = policyOf(one("aws:iam/role:Role", "shipper"));
    assert.equal(trust.Statement.length, 1);
    assert.deepEqual(trust.Statement[0], {
      Effect: "Allow",
      Principal: {
        Federated: `arn:aws:iam::${ACCOUNT}:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABCDEF`,
      },
      Action: "sts:AssumeRoleWithWebIdentity",
      Condition: {
        StringEquals: {
          "oidc.eks.us-east-1.amazonaws.com/id/ABCDEF:sub":
            "system:serviceaccount:logging:logarchive-shipper",
          "oidc.eks.us-east-1.amazonaws.com/id/ABCDEF:aud": "sts.amazonaws.com",
        },
      },
    });
  });

  it("transfer: trusted only by Google's Storage Transfer subject; exactly the SQS and S3 read actions", () => {
    const trust = policyOf(one("aws:iam/role:Role", "transfer"));
    assert.equal(trust.Statement.length, 1);
    assert.deepEqual(trust.Statement[0], {
      Effect: "Allow",
      Principal: { Federated: "accounts.google.com" },
      Action: "sts:AssumeRoleWithWebIdentity",
      Condition: { StringEquals: { "accounts.google.com:sub": STS_SUBJECT } },
    });
    const doc = policyOf(one("aws:iam/rolePolicy:RolePolicy", "transfer-read"));
    assert.equal(doc.Statement.length, 5);
    assert.deepEqual(doc, {
      Version: "2012-10-17",
      Statement: [
        {
          Sid: "DrainEventQueue",
          Effect: "Allow",
          Action: ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:ReceiveMessage"],
          Resource: `arn:aws:sqs:us-east-1:${ACCOUNT}:events`,
        },
        {
          Sid: "ReadTransferredObjects",
          Effect: "Allow",
          Action: ["s3:GetObject"],
          Resource: [`${BUCKET}/logs/analytics/*`, `${BUCKET}/logs/stream/*`],
        },
        {
          Sid: "ListArchiveBucket",
          Effect: "Allow",
          Action: ["s3:ListBucket"],
          Resource: BUCKET,
          // Listing only under the prefixes the notification announces (lib's transferredPrefixes).
          Condition: { StringLike: { "s3:prefix": ["logs/analytics/*", "logs/stream/*"] } },
        },
        // Always required by Storage Transfer (cloud.google.com/storage-transfer/docs/source-amazon-s3).
        { Sid: "LocateArchiveBucket", Effect: "Allow", Action: ["s3:GetBucketLocation"], Resource: BUCKET },
        { Sid: "DecryptArchiveObjects", Effect: "Allow", Action: ["kms:Decrypt"], Resource: KEY },
      ],
    });
    // The objects it reads are the ones the notification announces, per lib's contract.
    assert.deepEqual(transferredPrefixes(policy), ["logs/analytics/", "logs/stream/"]);
  });

  it("retrieval: read, restore and legal hold; every destructive action denied", () => {
    const doc = policyOf(one("aws:iam/rolePolicy:RolePolicy", "retrieval-retrieve"));
    assert.equal(doc.Statement.length, 4);
    assert.deepEqual(doc, {
      Version: "2012-10-17",
      Statement: [
        {
          Sid: "ReadRestoreAndHoldArchive",
          Effect: "Allow",
          Action: [
            "s3:GetObject",
            "s3:GetObjectAttributes",
            "s3:GetObjectLegalHold",
            "s3:GetObjectRetention",
            "s3:GetObjectVersion",
            "s3:GetObjectVersionAttributes",
            "s3:PutObjectLegalHold",
            "s3:RestoreObject",
          ],
          // retrievalPrefixes(policy): the tiers, loss records, hour indexes and compacted parts
          // (parts written while compaction was on outlive its switch-off); not the stream copies.
          Resource: [
            `${BUCKET}/logs/analytics/*`,
            `${BUCKET}/logs/archive/*`,
            `${BUCKET}/logs/losses/*`,
            `${BUCKET}/logs/index/*`,
            `${BUCKET}/logs/compacted/*`,
          ],
        },
        {
          Sid: "ListArchiveVersions",
          Effect: "Allow",
          Action: ["s3:ListBucket", "s3:ListBucketVersions"],
          Resource: BUCKET,
        },
        { Sid: "DecryptArchiveObjects", Effect: "Allow", Action: ["kms:Decrypt"], Resource: KEY },
        {
          Sid: "NeverDelete",
          Effect: "Deny",
          Action: [
            "s3:BypassGovernanceRetention",
            "s3:DeleteObject",
            "s3:DeleteObjectVersion",
            "s3:PutBucketObjectLockConfiguration",
            "s3:PutLifecycleConfiguration",
            "s3:PutObjectRetention",
            "s3:PutObjectTagging",
            "s3:PutObjectVersionTagging",
          ],
          Resource: [BUCKET, `${BUCKET}/*`],
        },
      ],
    });
    const trust = policyOf(one("aws:iam/role:Role", "retrieval"));
    assert.equal(trust.Statement.length, 1);
    assert.deepEqual(trust.Statement[0], {
      Effect: "Allow",
      // Only the configured principals: never the account root, which would let any principal of
      // the account with sts:AssumeRole on it in.
      Principal: { AWS: [`arn:aws:iam::${ACCOUNT}:role/compliance`] },
      Action: "sts:AssumeRole",
    });
  });

  it("no other IAM role or role policy exists", () => {
    assert.deepEqual(
      ofType("aws:iam/role:Role")
        .map((r) => r.name)
        .sort(),
      ["retrieval", "shipper", "transfer"],
    );
    assert.deepEqual(
      ofType("aws:iam/rolePolicy:RolePolicy")
        .map((r) => r.name)
        .sort(),
      ["retrieval-retrieve", "shipper-write", "transfer-read"],
    );
    assert.equal(ofType("aws:iam/rolePolicyAttachment:RolePolicyAttachment").length, 0);
  });
});

describe("AWS: Athena", () => {
  it("the workgroup enforces an encrypted result location and a scan limit", () => {
    const wg = one("aws:athena/workgroup:Workgroup").inputs.configuration;
    assert.equal(wg.enforceWorkgroupConfiguration, true);
    assert.equal(wg.bytesScannedCutoffPerQuery, 10 * 2 ** 30);
    assert.equal(wg.resultConfiguration.outputLocation, "s3://athena-results-bucket/results/");
    assert.equal(wg.resultConfiguration.encryptionConfiguration.encryptionOption, "SSE_KMS");
  });

  it("the table's location template, filled in with a key's parts, is where lib's key formatter puts that key", () => {
    const table = one("aws:glue/catalogTable:CatalogTable").inputs;
    const template: string = table.parameters["storage.location.template"];
    for (const namespace of ["payments", "team-a", "kube-system"]) {
      for (const tier of TIERS) {
        const key = formatObjectKey({
          prefix: "logs",
          tier,
          namespace,
          dt: "2026-12-07",
          hour: "09",
          node: "ip-10-0-0-1",
          epoch: "0123abcd",
          seq: 7,
        });
        const location = template
          .replace("${tier}", tier)
          .replace("${namespace}", namespace)
          .replace("${dt}", "2026-12-07")
          .replace("${hour}", "09");
        assert.ok(`s3://archive-bucket/${key}`.startsWith(location), `${key} is not under ${location}`);
        assert.ok(
          !key.slice(location.length - "s3://archive-bucket/".length).includes("/"),
          "the object sits directly in the partition",
        );
      }
    }
    assert.equal(table.storageDescriptor.location, "s3://archive-bucket/logs/");
    assert.deepEqual(
      table.partitionKeys.map((k: Loose) => k.name),
      ["tier", "namespace", "dt", "hour"],
    );
    assert.equal(one("aws:athena/namedQuery:NamedQuery").inputs.name, "error_rate");
  });
});

describe("GCP: buckets and transfer", () => {
  it("landing, state and source buckets are private; the state bucket is not the landing bucket", () => {
    const buckets = ofType("gcp:storage/bucket:Bucket");
    assert.deepEqual(buckets.map((b) => b.name).sort(), ["landing", "loader-source", "loader-state"]);
    for (const b of buckets) {
      assert.equal(b.inputs.uniformBucketLevelAccess, true, b.name);
      assert.equal(b.inputs.publicAccessPrevention, "enforced", b.name);
    }
    const landing = one("gcp:storage/bucket:Bucket", "landing");
    assert.deepEqual(landing.inputs.lifecycleRules, [{ action: { type: "Delete" }, condition: { age: 7 } }]);
    const env = one("gcp:cloudfunctionsv2/function:Function", "loader-finalize").inputs.serviceConfig
      .environmentVariables;
    assert.equal(env.LOGARCHIVE_LANDING_BUCKET, "landing-gcs");
    assert.equal(env.LOGARCHIVE_STATE_BUCKET, "loader-state-gcs");
    assert.notEqual(env.LOGARCHIVE_STATE_BUCKET, env.LOGARCHIVE_LANDING_BUCKET);
  });

  it("the state bucket keeps claims and done a year or more, batches 7 days, tables forever", () => {
    const rules = one("gcp:storage/bucket:Bucket", "loader-state").inputs.lifecycleRules;
    assert.deepEqual(rules, [
      {
        action: { type: "Delete" },
        condition: {
          age: 400,
          matchesPrefixes: [
            "_logarchive/loader/claims/",
            "_logarchive/loader/done/",
            "_logarchive/loader/quarantined/",
            "_logarchive/loader/conflicts/",
          ],
        },
      },
      { action: { type: "Delete" }, condition: { age: 7, matchesPrefixes: ["_logarchive/loader/batches/"] } },
    ]);
  });

  it("the transfer job is event-driven from the queue, with the transfer role, into the landing bucket", () => {
    const job = one("gcp:storage/transferJob:TransferJob").inputs;
    assert.equal(job.eventStream.name, `arn:aws:sqs:us-east-1:${ACCOUNT}:events`);
    assert.equal(job.transferSpec.awsS3DataSource.roleArn, `arn:aws:iam::${ACCOUNT}:role/transfer`);
    assert.equal(job.transferSpec.awsS3DataSource.bucketName, "archive-bucket");
    assert.equal(job.transferSpec.gcsDataSink.bucketName, "landing-gcs");
    assert.deepEqual(job.transferSpec.objectConditions.includePrefixes, transferredPrefixes(policy));
    assert.equal(job.schedule, undefined);
  });
});

describe("GCP: loader", () => {
  it("both functions are gen2 nodejs24 from the uploaded package, each with its own service account", () => {
    const fns = ofType("gcp:cloudfunctionsv2/function:Function");
    assert.equal(fns.length, 2);
    const entryPoints = fns.map((f) => f.inputs.buildConfig.entryPoint).sort();
    assert.deepEqual(entryPoints, ["logarchiveFinalize", "logarchiveFlush"]);
    for (const f of fns) {
      assert.equal(f.inputs.buildConfig.runtime, "nodejs24");
      assert.equal(f.inputs.buildConfig.source.storageSource.object, "functions-package.zip");
    }
    const accounts = new Set(fns.map((f) => f.inputs.serviceConfig.serviceAccountEmail));
    assert.equal(accounts.size, 2);
    // Built by an account of their own, which may read the source and write logs and images only.
    const builder = "projects/my-project/serviceAccounts/la-test-build@my-project.iam.gserviceaccount.com";
    for (const f of fns) assert.equal(f.inputs.buildConfig.serviceAccount, builder);
    const member = "serviceAccount:la-test-build@my-project.iam.gserviceaccount.com";
    assert.deepEqual(
      registered
        .filter((r) => r.inputs.member === member)
        .map((r) => r.inputs.role)
        .sort(),
      [
        "roles/artifactregistry.writer",
        "roles/logging.logWriter",
        "roles/storage.objectAdmin",
        "roles/storage.objectViewer",
      ],
    );
    // The build downloads the source from Cloud Functions' own bucket, gcf-v2-sources-<number>-<region>;
    // it may read that bucket and no other (terraform-provider-google#20571).
    const sources = registered.filter(
      (r) => r.inputs.member === member && r.inputs.role === "roles/storage.objectViewer",
    );
    assert.equal(sources.length, 1);
    assert.equal(sources[0]!.type, "gcp:projects/iAMMember:IAMMember");
    assert.equal(sources[0]!.inputs.project, "my-project");
    assert.equal(
      sources[0]!.inputs.condition.expression,
      'resource.name == "projects/_/buckets/gcf-v2-sources-1234-us-central1" || resource.name.startsWith("projects/_/buckets/gcf-v2-sources-1234-us-central1/objects/")',
    );
    // The source bucket the stack uploads to is a different bucket, granted on the bucket itself.
    const upload = registered.find(
      (r) => r.inputs.member === member && r.inputs.role === "roles/storage.objectAdmin",
    )!;
    assert.equal(upload.type, "gcp:storage/bucketIAMMember:BucketIAMMember");
  });

  it("the finalize trigger is object finalize on the landing bucket, with retries on", () => {
    const trigger = one("gcp:cloudfunctionsv2/function:Function", "loader-finalize").inputs.eventTrigger;
    assert.equal(trigger.eventType, "google.cloud.storage.object.v1.finalized");
    assert.equal(trigger.retryPolicy, "RETRY_POLICY_RETRY");
    assert.deepEqual(trigger.eventFilters, [{ attribute: "bucket", value: "landing-gcs" }]);
    assert.equal(trigger.triggerRegion, "us");
  });

  it("a dead-letter topic exists, and pulumi up attaches it to the trigger's subscription with gcloud", () => {
    one("gcp:pubsub/topic:Topic");
    const expected =
      "gcloud pubsub subscriptions update projects/my-project/subscriptions/eventarc-us-finalize-sub --dead-letter-topic=projects/my-project/topics/loader-finalize-dead-letter --max-delivery-attempts=20";
    // attachDeadLetter is on by default: the command runs on create and on every change of its
    // inputs, a new subscription (a replaced trigger) among them; it stays an output for by-hand use.
    const attach = one("command:local:Command", "loader-finalize-dead-letter-attach").inputs;
    assert.equal(attach.create, expected);
    assert.equal(attach.update, expected);
    assert.equal(attach.delete, undefined);
    assert.deepEqual(attach.triggers, [TRIGGER_SUBSCRIPTION]);
    assert.equal(outputs.finalizeDeadLetterCommand, expected);
    assert.equal(outputs.finalizeTriggerSubscription, TRIGGER_SUBSCRIPTION);
  });

  it("the Scheduler's attempt deadline is the flush function's timeout, and it does not retry", () => {
    const flush = one("gcp:cloudfunctionsv2/function:Function", "loader-flush").inputs;
    const job = one("gcp:cloudscheduler/job:Job").inputs;
    assert.equal(job.attemptDeadline, `${flush.serviceConfig.timeoutSeconds}s`);
    assert.equal(job.retryConfig.retryCount, 0);
    assert.equal(job.schedule, "* * * * *");
    assert.equal(job.httpTarget.httpMethod, "POST");
    assert.equal(job.httpTarget.uri, "https://loader-flush.a.run.app");
    assert.equal(
      flush.serviceConfig.environmentVariables.LOGARCHIVE_FLUSH_FUNCTION_TIMEOUT,
      `${flush.serviceConfig.timeoutSeconds}s`,
    );
  });

  it("the functions' storage access: read landing, quarantine-only writes there, read/write state", () => {
    const grants = ofType("gcp:storage/bucketIAMMember:BucketIAMMember").filter((g) =>
      g.name.startsWith("loader-finalize-"),
    );
    const on = (bucket: string) =>
      grants
        .filter((g) => g.inputs.bucket === bucket)
        .map((g) => g.inputs.role)
        .sort();
    assert.deepEqual(on("landing-gcs"), [
      "roles/storage.legacyBucketReader",
      "roles/storage.objectCreator",
      "roles/storage.objectViewer",
    ]);
    assert.deepEqual(on("loader-state-gcs"), [
      "roles/storage.legacyBucketReader",
      "roles/storage.objectUser",
    ]);
    const creator = grants.find((g) => g.inputs.role === "roles/storage.objectCreator")!;
    assert.match(creator.inputs.condition.expression, /objects\/_logarchive\/quarantine\/"\)$/);
  });
});

describe("GCP: the loader accounts' grants, exactly", () => {
  const IAM_TYPES: Record<string, string> = {
    "gcp:projects/iAMMember:IAMMember": "project",
    "gcp:storage/bucketIAMMember:BucketIAMMember": "bucket",
    "gcp:bigquery/datasetIamMember:DatasetIamMember": "dataset",
    "gcp:bigquery/iamMember:IamMember": "table",
    "gcp:cloudrunv2/serviceIamMember:ServiceIamMember": "service",
    "gcp:pubsub/topicIAMMember:TopicIAMMember": "topic",
    "gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember": "subscription",
  };
  /** Every grant to the account, as "<kind> <resource> <role>[ if <condition>]", sorted. */
  const grantsOf = (account: string) =>
    registered
      .filter((r) => r.inputs.member === `serviceAccount:${account}@my-project.iam.gserviceaccount.com`)
      .map((r) => {
        const kind = IAM_TYPES[r.type];
        assert.ok(kind, `unexpected grant type ${r.type}`);
        const on =
          kind === "project"
            ? r.inputs.project
            : kind === "bucket"
              ? r.inputs.bucket
              : kind === "dataset"
                ? r.inputs.datasetId
                : kind === "table"
                  ? `${r.inputs.datasetId}.${r.inputs.tableId}`
                  : kind === "service"
                    ? r.inputs.name
                    : (r.inputs.topic ?? r.inputs.subscription);
        const condition = r.inputs.condition ? ` if ${r.inputs.condition.expression}` : "";
        return `${kind} ${on} ${r.inputs.role}${condition}`;
      })
      .sort();
  const QUARANTINE =
    'if resource.name.startsWith("projects/_/buckets/landing-gcs/objects/_logarchive/quarantine/")';

  it("finalize: read landing, quarantine-only writes there, read/write state, dataset metadata", () => {
    const grants = grantsOf("la-test-finalize");
    assert.equal(grants.length, 7);
    assert.deepEqual(grants, [
      "bucket landing-gcs roles/storage.legacyBucketReader",
      `bucket landing-gcs roles/storage.objectCreator ${QUARANTINE}`,
      "bucket landing-gcs roles/storage.objectViewer",
      "bucket loader-state-gcs roles/storage.legacyBucketReader",
      "bucket loader-state-gcs roles/storage.objectUser",
      "dataset finance roles/bigquery.metadataViewer",
      "dataset logarchive roles/bigquery.metadataViewer",
    ]);
  });

  it("flush: the same storage access, load jobs in the project, and write each dataset", () => {
    const grants = grantsOf("la-test-flush");
    assert.equal(grants.length, 8);
    assert.deepEqual(grants, [
      "bucket landing-gcs roles/storage.legacyBucketReader",
      `bucket landing-gcs roles/storage.objectCreator ${QUARANTINE}`,
      "bucket landing-gcs roles/storage.objectViewer",
      "bucket loader-state-gcs roles/storage.legacyBucketReader",
      "bucket loader-state-gcs roles/storage.objectUser",
      "dataset finance roles/bigquery.dataEditor",
      "dataset logarchive roles/bigquery.dataEditor",
      "project my-project roles/bigquery.jobUser",
    ]);
  });

  it("trigger: receive events and invoke the finalize function; scheduler: invoke the flush function", () => {
    assert.deepEqual(grantsOf("la-test-trigger"), [
      "project my-project roles/eventarc.eventReceiver",
      "service loader-finalize roles/run.invoker",
    ]);
    assert.deepEqual(grantsOf("la-test-scheduler"), ["service loader-flush roles/run.invoker"]);
  });

  it("build: write logs and images, read the uploaded package, read Cloud Functions' source bucket only", () => {
    const grants = grantsOf("la-test-build");
    assert.equal(grants.length, 4);
    assert.deepEqual(grants, [
      "bucket loader-source-gcs roles/storage.objectAdmin",
      "project my-project roles/artifactregistry.writer",
      "project my-project roles/logging.logWriter",
      'project my-project roles/storage.objectViewer if resource.name == "projects/_/buckets/gcf-v2-sources-1234-us-central1" || resource.name.startsWith("projects/_/buckets/gcf-v2-sources-1234-us-central1/objects/")',
    ]);
  });
});

describe("GCP: warehouse", () => {
  it("datasets in the landing bucket's location, physical billing", () => {
    const datasets = ofType("gcp:bigquery/dataset:Dataset");
    assert.deepEqual(datasets.map((d) => d.inputs.datasetId).sort(), ["finance", "logarchive"]);
    for (const d of datasets) {
      assert.equal(d.inputs.location, one("gcp:storage/bucket:Bucket", "landing").inputs.location);
      assert.equal(d.inputs.storageBillingModel, "PHYSICAL");
    }
  });

  it("tables carry the contract's schema, day partitions on timestamp, clustering and a required partition filter", () => {
    const tables = ofType("gcp:bigquery/table:Table");
    const expected = knownDestinations(policy, destinations(policy), ["team-a"]);
    assert.deepEqual(
      tables.map((t) => `${t.inputs.datasetId}.${t.inputs.tableId}`).sort(),
      expected.map((d) => `${d.dataset}.${d.table}`).sort(),
    );
    assert.ok(expected.some((d) => d.table === "logs_team_a"));
    for (const t of tables) {
      assert.deepEqual(JSON.parse(t.inputs.schema), bigQuerySchema());
      assert.equal(t.inputs.timePartitioning.type, BIGQUERY_TIME_PARTITIONING.type);
      assert.equal(t.inputs.timePartitioning.field, "timestamp");
      assert.equal(t.inputs.timePartitioning.expirationMs, 90 * 86_400_000);
      assert.deepEqual(t.inputs.clusterings, [...BIGQUERY_CLUSTERING.fields]);
      assert.equal(t.inputs.requirePartitionFilter, true);
    }
  });

  it("readers are granted per dataset or per table; the flush account may write every dataset", () => {
    const datasetGrants = ofType("gcp:bigquery/datasetIamMember:DatasetIamMember");
    assert.ok(
      datasetGrants.some(
        (g) =>
          g.inputs.member === "group:analysts@example.com" &&
          g.inputs.datasetId === "logarchive" &&
          g.inputs.role === "roles/bigquery.dataViewer",
      ),
    );
    const tableGrant = one("gcp:bigquery/iamMember:IamMember").inputs;
    assert.deepEqual(
      [tableGrant.datasetId, tableGrant.tableId, tableGrant.member],
      ["finance", "payments_logs", "group:finance@example.com"],
    );
    for (const ds of ["finance", "logarchive"]) {
      assert.ok(
        datasetGrants.some(
          (g) =>
            g.inputs.datasetId === ds &&
            g.inputs.role === "roles/bigquery.dataEditor" &&
            g.inputs.member === "serviceAccount:la-test-flush@my-project.iam.gserviceaccount.com",
        ),
      );
    }
  });
});

describe("security policies", () => {
  it("the stack passes every rule of infra/policies/security.ts, compliance mode required", () => {
    const resources = registered.map((r) => ({ type: r.type, name: r.name, props: r.props ?? r.inputs }));
    assert.deepEqual(publicAccessViolations(resources), []);
    assert.deepEqual(encryptionViolations(resources), []);
    assert.deepEqual(tlsOnlyViolations(resources), []);
    assert.deepEqual(wildcardActionViolations(resources), []);
    assert.deepEqual(destructiveActionViolations(resources), []);
    assert.deepEqual(objectLockViolations(resources, { requiredMode: "COMPLIANCE" }), []);
    // The rules looked at the buckets: they are named, so none was skipped.
    assert.equal(
      resources.filter((r) => r.type === "aws:s3/bucket:Bucket" && typeof r.props.bucket === "string").length,
      2,
    );
  });
});

describe("Kubernetes: the shipper DaemonSet", () => {
  it("is deployed with the stack's bucket and region, and its ServiceAccount is the one the IRSA role trusts", () => {
    const sa = one("kubernetes:core/v1:ServiceAccount").inputs.metadata;
    assert.equal(sa.annotations["eks.amazonaws.com/role-arn"], `arn:aws:iam::${ACCOUNT}:role/shipper`);
    const trust = policyOf(one("aws:iam/role:Role", "shipper")).Statement[0];
    assert.equal(
      trust.Condition.StringEquals["oidc.eks.us-east-1.amazonaws.com/id/ABCDEF:sub"],
      `system:serviceaccount:${sa.namespace}:${sa.name}`,
    );
    const ds = one("kubernetes:apps/v1:DaemonSet").inputs;
    assert.equal(ds.metadata.namespace, "logging");
    assert.equal(ds.spec.template.spec.containers[0].image, "registry.example.com/logarchive-shipper:test");
    const shipperYaml = one("kubernetes:core/v1:ConfigMap").inputs.data["shipper.yaml"];
    assert.match(shipperYaml, /bucket: archive-bucket/);
    // The bucket always has Object Lock: the shipper's lock headers carry its mode. Compaction is
    // off in this stack, so archive objects keep the bucket's default retention.
    assert.match(shipperYaml, /^object_lock_mode: COMPLIANCE$/m);
    assert.match(shipperYaml, /^landing_days: 0$/m);
    const env = ds.spec.template.spec.containers[0].env as { name: string; value?: string }[];
    assert.ok(
      env.some((e) => e.name === "AWS_REGION" && e.value === "us-east-1"),
      JSON.stringify(env),
    );
  });
});

describe("archive compaction, off (archiveCompaction.enabled: false)", () => {
  it("no compactor role, CronJob or compacted lifecycle rule; the tiers keep their transitions", () => {
    assert.equal(config.archiveCompaction.enabled, false);
    assert.equal(ofType("kubernetes:batch/v1:CronJob").length, 0);
    assert.equal(ofType("logarchive:aws:CompactorRole").length, 0);
    const rules = one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "archive-lifecycle")
      .inputs.rules;
    assert.ok(!rules.some((r: Loose) => (r.filter.prefix ?? r.filter.and.prefix).includes("compacted")));
    assert.equal(outputs.compactorRoleArn, undefined);
  });
});

describe("outputs", () => {
  it("export the shipper's IRSA role ARN for the DaemonSet", () => {
    assert.equal(outputs.shipperRoleArn, `arn:aws:iam::${ACCOUNT}:role/shipper`);
    assert.equal(outputs.archiveBucketName, "archive-bucket");
  });
});
