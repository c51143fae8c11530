import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compactorPolicy, retrievalPolicy, shipperPolicy, tlsOnlyBucketPolicy } from "../iam.ts";
import {
  boundedRetentionGrant,
  deleteMarkerGrant,
  destructiveActionViolations,
  encryptionViolations,
  objectLockViolations,
  publicAccessViolations,
  type ResourceLike,
  securityPolicies,
  tlsOnlyViolations,
  wildcardActionViolations,
} from "./security.ts";

const bucket = (name: string, extra: Record<string, unknown> = {}): ResourceLike => ({
  type: "aws:s3/bucket:Bucket",
  name,
  props: { bucket: name, ...extra },
});

/** A bucket with everything the rules ask for. */
function secureBucket(name: string, extra: Record<string, unknown> = {}): ResourceLike[] {
  return [
    bucket(name, extra),
    {
      type: "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
      name: `${name}-pab`,
      props: {
        bucket: name,
        blockPublicAcls: true,
        blockPublicPolicy: true,
        ignorePublicAcls: true,
        restrictPublicBuckets: true,
      },
    },
    {
      type: "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
      name: `${name}-sse`,
      props: {
        bucket: name,
        rules: [
          {
            applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms", kmsMasterKeyId: "arn:aws:kms:k" },
          },
        ],
      },
    },
    {
      type: "aws:s3/bucketPolicy:BucketPolicy",
      name: `${name}-policy`,
      props: { bucket: name, policy: JSON.stringify(tlsOnlyBucketPolicy(`arn:aws:s3:::${name}`)) },
    },
  ];
}

const without = (resources: ResourceLike[], type: string) => resources.filter((r) => !r.type.endsWith(type));
const messages = (vs: { message: string }[]) => vs.map((v) => v.message);

describe("no public buckets", () => {
  it("passes a bucket with all four Block Public Access settings and private GCS buckets", () => {
    const gcs: ResourceLike = {
      type: "gcp:storage/bucket:Bucket",
      name: "landing",
      props: { uniformBucketLevelAccess: true, publicAccessPrevention: "enforced" },
    };
    assert.deepEqual(publicAccessViolations([...secureBucket("a"), gcs]), []);
  });

  it("flags a missing or partial Block Public Access", () => {
    assert.match(
      messages(publicAccessViolations(without(secureBucket("a"), "BucketPublicAccessBlock")))[0]!,
      /^a: .*Block Public Access/,
    );
    const partial = secureBucket("a").map((r) =>
      r.type.endsWith("BucketPublicAccessBlock")
        ? { ...r, props: { ...r.props, restrictPublicBuckets: false } }
        : r,
    );
    assert.equal(publicAccessViolations(partial).length, 1);
  });

  it("flags public ACLs, an unconditional Allow to everyone, a GCS bucket without prevention, and allUsers grants", () => {
    const bad: ResourceLike[] = [
      { type: "aws:s3/bucketAcl:BucketAcl", name: "acl", props: { bucket: "a", acl: "public-read" } },
      {
        type: "aws:s3/bucketPolicy:BucketPolicy",
        name: "open",
        props: {
          bucket: "a",
          policy: JSON.stringify({
            Statement: [
              { Effect: "Allow", Principal: "*", Action: "s3:GetObject", Resource: "arn:aws:s3:::a/*" },
            ],
          }),
        },
      },
      {
        type: "gcp:storage/bucket:Bucket",
        name: "g",
        props: { uniformBucketLevelAccess: true, publicAccessPrevention: "inherited" },
      },
      {
        type: "gcp:storage/bucketIAMMember:BucketIAMMember",
        name: "pub",
        props: { member: "allUsers", role: "roles/storage.objectViewer" },
      },
      {
        type: "gcp:bigquery/datasetIamMember:DatasetIamMember",
        name: "bqpub",
        props: { member: "allAuthenticatedUsers" },
      },
    ];
    assert.deepEqual(
      publicAccessViolations(bad).map((v) => v.resource),
      ["acl", "open", "g", "pub", "bqpub"],
    );
  });
});

describe("encryption everywhere", () => {
  it("passes SSE-KMS buckets, SSE-SQS queues and an encrypting, enforcing workgroup", () => {
    const resources: ResourceLike[] = [
      ...secureBucket("a"),
      { type: "aws:sqs/queue:Queue", name: "q", props: { sqsManagedSseEnabled: true } },
      { type: "aws:sqs/queue:Queue", name: "q2", props: { kmsMasterKeyId: "alias/x" } },
      {
        type: "aws:athena/workgroup:Workgroup",
        name: "wg",
        props: {
          configuration: {
            enforceWorkgroupConfiguration: true,
            resultConfiguration: { encryptionConfiguration: { encryptionOption: "SSE_KMS" } },
          },
        },
      },
    ];
    assert.deepEqual(encryptionViolations(resources), []);
  });

  it("flags SSE-S3-only buckets, plain queues and unencrypted Athena results", () => {
    const sseS3 = secureBucket("a").map((r) =>
      r.type.endsWith("ServerSideEncryptionConfiguration")
        ? {
            ...r,
            props: {
              bucket: "a",
              rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" } }],
            },
          }
        : r,
    );
    const resources: ResourceLike[] = [
      ...sseS3,
      { type: "aws:sqs/queue:Queue", name: "q", props: {} },
      {
        type: "aws:athena/workgroup:Workgroup",
        name: "wg",
        props: { configuration: { resultConfiguration: {} } },
      },
    ];
    assert.deepEqual(
      encryptionViolations(resources).map((v) => v.resource),
      ["a", "q", "wg", "wg"],
    );
  });
});

describe("TLS only", () => {
  it("passes the stack's TLS-only bucket policy", () => {
    assert.deepEqual(tlsOnlyViolations(secureBucket("a")), []);
  });

  it("flags a bucket with no policy, or one that denies non-TLS for the objects only", () => {
    assert.equal(tlsOnlyViolations(without(secureBucket("a"), "BucketPolicy")).length, 1);
    const objectsOnly = secureBucket("a").map((r) =>
      r.type.endsWith("BucketPolicy")
        ? {
            ...r,
            props: {
              bucket: "a",
              policy: JSON.stringify({
                Statement: [
                  {
                    Effect: "Deny",
                    Principal: "*",
                    Action: "s3:*",
                    Resource: "arn:aws:s3:::a/*",
                    Condition: { Bool: { "aws:SecureTransport": "false" } },
                  },
                ],
              }),
            },
          }
        : r,
    );
    assert.equal(tlsOnlyViolations(objectsOnly).length, 1);
  });
});

describe("no wildcard actions on data buckets", () => {
  const rolePolicy = (name: string, statements: object[]): ResourceLike => ({
    type: "aws:iam/rolePolicy:RolePolicy",
    name,
    props: { policy: JSON.stringify({ Version: "2012-10-17", Statement: statements }) },
  });

  it("passes exact actions, and a Deny s3:* (the TLS rule)", () => {
    const ok = rolePolicy("ok", [
      { Effect: "Allow", Action: ["s3:PutObject", "s3:GetObject"], Resource: ["arn:aws:s3:::a/logs/*"] },
      { Effect: "Deny", Action: "s3:*", Resource: "arn:aws:s3:::a" },
      { Effect: "Allow", Action: "sqs:*", Resource: "arn:aws:sqs:us-east-1:1:q" },
    ]);
    assert.deepEqual(wildcardActionViolations([ok, ...secureBucket("a")]), []);
  });

  it("flags s3:*, s3:Get* and * on a bucket or on everything", () => {
    const bad = [
      rolePolicy("star", [{ Effect: "Allow", Action: "*", Resource: "*" }]),
      rolePolicy("s3star", [{ Effect: "Allow", Action: "s3:*", Resource: "arn:aws:s3:::a" }]),
      rolePolicy("get", [{ Effect: "Allow", Action: ["s3:Get*"], Resource: ["arn:aws:s3:::a/*"] }]),
    ];
    assert.deepEqual(
      wildcardActionViolations(bad).map((v) => v.resource),
      ["star", "s3star", "get"],
    );
  });
});

describe("no destructive actions", () => {
  const BUCKET = "arn:aws:s3:::archive";
  const KEY = "arn:aws:kms:us-east-1:1:key/k";
  const rolePolicy = (name: string, policy: object): ResourceLike => ({
    type: "aws:iam/rolePolicy:RolePolicy",
    name,
    props: { policy: JSON.stringify(policy) },
  });
  const statements = (name: string, st: object[]) =>
    rolePolicy(name, { Version: "2012-10-17", Statement: st });
  const retention = (extra: Record<string, unknown>) => ({
    Effect: "Allow",
    Action: ["s3:PutObjectRetention"],
    Resource: [`${BUCKET}/logs/stream/*`, `${BUCKET}/logs/analytics/*`],
    Condition: { NumericLessThanEquals: { "s3:object-lock-remaining-retention-days": "5" } },
    ...extra,
  });

  it("passes the roles as iam.ts builds them: the shipper's capped retention grant, the compactor's delete markers and capped retention, the retrieval role's Deny", () => {
    const shipper = shipperPolicy({
      bucketArn: BUCKET,
      keyArn: KEY,
      writePrefixes: ["logs/analytics/", "logs/stream/"],
      retention: { prefixes: ["logs/analytics/", "logs/stream/"], maxDays: 5 },
    });
    assert.ok(shipper.Statement.some((st) => [st.Action].flat().includes("s3:PutObjectRetention")));
    // No tagging of any kind: no lifecycle rule selects by tag any more.
    assert.ok(!JSON.stringify(shipper).includes("Tagging"));
    const compactor = compactorPolicy({
      bucketArn: BUCKET,
      keyArn: KEY,
      readPrefixes: ["logs/analytics/", "logs/archive/", "logs/index/"],
      compactedPrefix: "logs/compacted/",
      originalPrefixes: ["logs/analytics/", "logs/archive/"],
      maxRetentionDays: 367,
    });
    const deletes = compactor.Statement.filter((st) => [st.Action].flat().includes("s3:DeleteObject"));
    assert.equal(deletes.length, 1);
    assert.equal(deleteMarkerGrant(deletes[0]!), true);
    const extend = compactor.Statement.filter((st) => [st.Action].flat().includes("s3:PutObjectRetention"));
    assert.equal(extend.length, 1);
    assert.equal(boundedRetentionGrant(extend[0]!), true);
    const resources = [
      rolePolicy("shipper", shipper),
      rolePolicy("compactor", compactor),
      rolePolicy(
        "retrieval",
        retrievalPolicy({
          bucketArn: BUCKET,
          keyArn: KEY,
          objectPrefixes: ["logs/analytics/", "logs/archive/", "logs/compacted/"],
        }),
      ),
      ...secureBucket("archive"),
    ];
    assert.deepEqual(destructiveActionViolations(resources), []);
    assert.equal(boundedRetentionGrant(retention({})), true);
    assert.equal(
      boundedRetentionGrant(
        retention({ Condition: { NumericLessThan: { "s3:object-lock-remaining-retention-days": ["4"] } } }),
      ),
      true,
    );
  });

  it("flags s3:PutObjectRetention without the cap, on the whole bucket, with IfExists, with a non-numeric cap or beside NotResource", () => {
    const bad = [
      statements("unconditioned", [retention({ Condition: undefined })]),
      statements("other-condition", [
        retention({ Condition: { StringEquals: { "s3:object-lock-mode": "GOVERNANCE" } } }),
      ]),
      statements("lower-bound", [
        retention({ Condition: { NumericGreaterThan: { "s3:object-lock-remaining-retention-days": "1" } } }),
      ]),
      statements("whole-bucket", [retention({ Resource: `${BUCKET}/*` })]),
      statements("everything", [retention({ Resource: "*" })]),
      statements("prefix-wildcard", [retention({ Resource: `${BUCKET}/logs*/stream/*` })]),
      statements("if-exists", [
        retention({
          Condition: {
            NumericLessThanEquals: { "s3:object-lock-remaining-retention-days": "5" },
            NumericLessThanEqualsIfExists: { "s3:object-lock-remaining-retention-days": "5" },
          },
        }),
      ]),
      statements("not-a-number", [
        retention({
          Condition: { NumericLessThanEquals: { "s3:object-lock-remaining-retention-days": "${x}" } },
        }),
      ]),
      statements("not-resource", [retention({ Resource: undefined, NotResource: `${BUCKET}/other/*` })]),
    ];
    const found = destructiveActionViolations(bad);
    assert.deepEqual(
      found.map((v) => v.resource),
      bad.map((r) => r.name),
    );
    for (const v of found)
      assert.match(v.message, /s3:PutObjectRetention .*s3:object-lock-remaining-retention-days/);
  });

  it("flags every other destructive action, however capped or scoped, and wildcards and NotAction that cover them", () => {
    const bad = [
      statements("bypass", [
        retention({ Action: ["s3:PutObjectRetention", "s3:BypassGovernanceRetention"] }),
      ]),
      statements("delete-version", [
        { Effect: "Allow", Action: "s3:DeleteObjectVersion", Resource: `${BUCKET}/logs/stream/*` },
      ]),
      statements("delete-wildcard", [{ Effect: "Allow", Action: "s3:Delete*", Resource: `${BUCKET}/*` }]),
      statements("lifecycle-case", [
        { Effect: "Allow", Action: "S3:putLifecycleConfiguration", Resource: BUCKET },
      ]),
      statements("lock-config", [
        { Effect: "Allow", Action: "s3:PutBucketObjectLock?onfiguration", Resource: BUCKET },
      ]),
      statements("not-action", [{ Effect: "Allow", NotAction: "s3:GetObject", Resource: `${BUCKET}/*` }]),
      {
        type: "aws:s3/bucketPolicy:BucketPolicy",
        name: "bucket-policy",
        props: {
          bucket: "archive",
          policy: JSON.stringify({
            Statement: [
              {
                Effect: "Allow",
                Principal: { AWS: "arn:aws:iam::1:root" },
                Action: "s3:*",
                Resource: `${BUCKET}/*`,
              },
            ],
          }),
        },
      },
    ];
    const found = destructiveActionViolations(bad);
    assert.deepEqual(
      found.map((v) => v.resource),
      bad.map((r) => r.name),
    );
    assert.match(found[0]!.message, /s3:BypassGovernanceRetention/);
    assert.doesNotMatch(found[0]!.message, /s3:PutObjectRetention/);
    assert.match(found[2]!.message, /s3:DeleteObject, s3:DeleteObjectVersion/);
  });

  it("s3:DeleteObject only in a role's own policy, on the long-lived tiers' key prefixes: never the evidence, the parts, the stream copies, a whole bucket, a bucket policy, DeleteObjectVersion or a wildcard", () => {
    const deletes = (extra: Record<string, unknown>) => ({
      Effect: "Allow",
      Action: ["s3:DeleteObject"],
      Resource: [`${BUCKET}/logs/analytics/*`, `${BUCKET}/logs/archive/*`],
      ...extra,
    });
    assert.equal(deleteMarkerGrant(deletes({})), true);
    assert.equal(deleteMarkerGrant(deletes({ Resource: `${BUCKET}/k8s/logs/archive/*` })), true);
    assert.deepEqual(destructiveActionViolations([statements("ok", [deletes({})])]), []);
    const bad = [
      statements("whole-bucket", [deletes({ Resource: `${BUCKET}/*` })]),
      statements("everything", [deletes({ Resource: "*" })]),
      statements("index", [deletes({ Resource: [`${BUCKET}/logs/archive/*`, `${BUCKET}/logs/index/*`] })]),
      statements("losses", [deletes({ Resource: `${BUCKET}/logs/losses/*` })]),
      statements("compacted", [deletes({ Resource: `${BUCKET}/logs/compacted/*` })]),
      statements("stream", [deletes({ Resource: `${BUCKET}/logs/stream/*` })]),
      statements("under-a-tier", [deletes({ Resource: `${BUCKET}/logs/archive/namespace=web*` })]),
      statements("tier-wildcard", [deletes({ Resource: `${BUCKET}/logs/*/archive/*` })]),
      statements("no-prefix", [deletes({ Resource: `${BUCKET}/archive/*` })]),
      statements("not-resource", [deletes({ Resource: undefined, NotResource: `${BUCKET}/logs/index/*` })]),
      statements("version", [deletes({ Action: ["s3:DeleteObjectVersion"] })]),
      statements("both", [deletes({ Action: ["s3:DeleteObject", "s3:DeleteObjectVersion"] })]),
      statements("wildcard", [deletes({ Action: "s3:DeleteObject*" })]),
      statements("bypass", [deletes({ Action: ["s3:DeleteObject", "s3:BypassGovernanceRetention"] })]),
      // Last: the rule reports role policies before bucket policies.
      {
        type: "aws:s3/bucketPolicy:BucketPolicy",
        name: "bucket-policy",
        props: {
          bucket: "archive",
          policy: JSON.stringify({ Statement: [deletes({ Principal: { AWS: "arn:aws:iam::1:root" } })] }),
        },
      },
    ];
    const found = destructiveActionViolations(bad);
    assert.deepEqual(
      found.map((v) => v.resource),
      bad.map((r) => r.name),
    );
    for (const v of [...found.slice(0, 10), found[14]!])
      assert.match(
        v.message,
        /allows destructive action\(s\) s3:DeleteObject \(s3:DeleteObject only in a role's own policy, on key prefixes of the long-lived tiers \(analytics, archive\)\)$/,
      );
    // On the tiers, the DeleteObject of "both" and "wildcard" is the grant; the version delete is not.
    for (const v of found.slice(10, 13))
      assert.match(v.message, /allows destructive action\(s\) s3:DeleteObjectVersion$/);
    assert.match(found[13]!.message, /allows destructive action\(s\) s3:BypassGovernanceRetention$/);
  });

  it("s3:PutObjectTagging and s3:PutObjectVersionTagging are never allowed, however scoped or conditioned", () => {
    const tagging = (extra: Record<string, unknown>) => ({
      Effect: "Allow",
      Action: ["s3:PutObjectTagging"],
      Resource: [`${BUCKET}/logs/analytics/*`, `${BUCKET}/logs/archive/*`],
      Condition: {
        StringEquals: { "s3:RequestObjectTag/logarchive-landing": "1" },
        "ForAllValues:StringEquals": { "s3:RequestObjectTagKeys": ["logarchive-landing"] },
      },
      ...extra,
    });
    const bad = [
      statements("landing-tag", [tagging({})]),
      statements("unconditioned", [tagging({ Condition: undefined })]),
      statements("version-tagging", [tagging({ Action: ["s3:PutObjectVersionTagging"] })]),
      // A wildcard covering tagging and retention, under the retention cap only.
      statements("put-object-star", [retention({ Action: "s3:PutObject*" })]),
    ];
    const found = destructiveActionViolations(bad);
    assert.deepEqual(
      found.map((v) => v.resource),
      bad.map((r) => r.name),
    );
    assert.match(found[0]!.message, /allows destructive action\(s\) s3:PutObjectTagging$/);
    assert.match(found[1]!.message, /allows destructive action\(s\) s3:PutObjectTagging$/);
    assert.match(found[2]!.message, /s3:PutObjectVersionTagging$/);
    assert.match(found[3]!.message, /s3:PutObjectTagging, s3:PutObjectVersionTagging$/);
    assert.doesNotMatch(found[3]!.message, /s3:PutObjectRetention,/);
  });

  it("the compactor's retention grant is held to the tiers by the stack and capped: unconditioned or uncapped it is refused", () => {
    const compactor = compactorPolicy({
      bucketArn: BUCKET,
      keyArn: KEY,
      readPrefixes: ["logs/analytics/", "logs/archive/", "logs/index/"],
      compactedPrefix: "logs/compacted/",
      originalPrefixes: ["logs/analytics/", "logs/archive/"],
      maxRetentionDays: 367,
    });
    const extend = compactor.Statement.find((st) => st.Sid === "KeepUncompactedOriginalsLocked")!;
    assert.deepEqual(extend.Resource, [`${BUCKET}/logs/analytics/*`, `${BUCKET}/logs/archive/*`]);
    assert.deepEqual(extend.Condition, {
      NumericLessThanEquals: { "s3:object-lock-remaining-retention-days": "367" },
    });
    const uncapped = { ...extend, Condition: undefined };
    const found = destructiveActionViolations([statements("uncapped", [uncapped])]);
    assert.equal(found.length, 1);
    assert.match(found[0]!.message, /s3:PutObjectRetention \(s3:PutObjectRetention only on key prefixes/);
    assert.throws(
      () =>
        compactorPolicy({
          bucketArn: BUCKET,
          keyArn: KEY,
          readPrefixes: [],
          compactedPrefix: "logs/compacted/",
          originalPrefixes: [],
          maxRetentionDays: 367,
        }),
      /no original prefixes/,
    );
  });

  it("is a stack policy of the pack", () => {
    assert.ok(securityPolicies.some((p) => p.name === "logarchive-no-destructive-actions"));
  });
});

describe("Object Lock", () => {
  const lock = (mode: string): ResourceLike => ({
    type: "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
    name: "lock",
    props: { bucket: "archive", rule: { defaultRetention: { mode, days: 365 } } },
  });

  it("compliance required: passes a compliance-locked archive, flags governance and a missing lock", () => {
    const req = { requiredMode: "COMPLIANCE" } as const;
    assert.deepEqual(
      objectLockViolations([bucket("archive", { objectLockEnabled: true }), lock("COMPLIANCE")], req),
      [],
    );
    assert.match(
      messages(
        objectLockViolations([bucket("archive", { objectLockEnabled: true }), lock("GOVERNANCE")], req),
      )[0]!,
      /GOVERNANCE, COMPLIANCE is required/,
    );
    assert.match(
      messages(objectLockViolations([bucket("archive")], req))[0]!,
      /no S3 bucket has Object Lock/,
    );
    assert.equal(objectLockViolations([bucket("archive", { objectLockEnabled: true })], req).length, 1);
  });

  it("governance required: either mode passes; none: nothing is checked", () => {
    for (const mode of ["GOVERNANCE", "COMPLIANCE"]) {
      assert.deepEqual(
        objectLockViolations([bucket("archive", { objectLockEnabled: true }), lock(mode)], {
          requiredMode: "GOVERNANCE",
        }),
        [],
      );
    }
    assert.deepEqual(objectLockViolations([bucket("archive")], { requiredMode: "none" }), []);
  });
});

describe("the policies", () => {
  it("wrap the functions: a stack validation reports each violation with its resource's URN", async () => {
    const reported: [string, string | undefined][] = [];
    const noPublic = securityPolicies.find((p) => p.name === "logarchive-no-public-buckets")!;
    const resources = without(secureBucket("a"), "BucketPublicAccessBlock").map((r) => ({
      ...r,
      urn: `urn:${r.name}`,
    }));
    await noPublic.validateStack(
      {
        resources: resources as never,
        stackTags: new Map(),
        getConfig: () => ({}) as never,
        notApplicable: () => {
          throw new Error("not applicable");
        },
      },
      (message, urn) => reported.push([message, urn]),
    );
    assert.equal(reported.length, 1);
    assert.equal(reported[0]![1], "urn:a");
    assert.deepEqual(
      securityPolicies.map((p) => p.enforcementLevel),
      securityPolicies.map(() => "mandatory"),
    );
  });
});
