import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { tlsOnlyBucketPolicy } from "../iam.ts";
import {
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
