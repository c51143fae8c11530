// AWS storage: the archive bucket (Object Lock, SSE-KMS, lifecycle tiers) and the private,
// encrypted, TLS-only bucket settings every S3 bucket of the stack shares.

import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { tlsOnlyBucketPolicy } from "../iam.ts";
import type { S3LifecycleRule } from "./s3-lifecycle.ts";

export const COMPONENT_PREFIX = "logarchive";

/**
 * What every S3 bucket of the stack gets: all four Block Public Access settings, ACLs off
 * (BucketOwnerEnforced), default SSE-KMS with the given key and S3 Bucket Keys on (fewer KMS
 * requests: https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-key.html), and a bucket
 * policy that denies any request not made over TLS.
 */
export function secureBucketSettings(
  name: string,
  bucket: aws.s3.Bucket,
  keyArn: pulumi.Input<string>,
  parent: pulumi.Resource,
  retainOnDelete = false,
): { policy: aws.s3.BucketPolicy; publicAccessBlock: aws.s3.BucketPublicAccessBlock } {
  const opts = { parent, retainOnDelete };
  const publicAccessBlock = new aws.s3.BucketPublicAccessBlock(
    `${name}-public-access`,
    {
      bucket: bucket.id,
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    },
    opts,
  );
  new aws.s3.BucketOwnershipControls(
    `${name}-ownership`,
    { bucket: bucket.id, rule: { objectOwnership: "BucketOwnerEnforced" } },
    opts,
  );
  new aws.s3.BucketServerSideEncryptionConfiguration(
    `${name}-encryption`,
    {
      bucket: bucket.id,
      rules: [
        {
          applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms", kmsMasterKeyId: keyArn },
          bucketKeyEnabled: true,
        },
      ],
    },
    opts,
  );
  const policy = new aws.s3.BucketPolicy(
    `${name}-policy`,
    { bucket: bucket.id, policy: bucket.arn.apply((arn) => JSON.stringify(tlsOnlyBucketPolicy(arn))) },
    // S3 refuses a bucket policy while Block Public Access is being set up if they race.
    { ...opts, dependsOn: [publicAccessBlock] },
  );
  return { policy, publicAccessBlock };
}

export interface ArchiveBucketArgs {
  /** Unset: Pulumi auto-names the bucket. */
  bucketName?: string;
  objectLock: { mode: "GOVERNANCE" | "COMPLIANCE"; days: number };
  /** From archiveLifecycleRules(lifecycleScopes(policy), settings). */
  lifecycleRules: S3LifecycleRule[];
  /**
   * Start of the key's alias, naming the project and stack (`alias/logarchive-<stack>-archive-`);
   * AWS appends a unique suffix. A fixed alias collides when two stacks share an account, and when
   * a stack is re-created: the key and its alias are retained on `pulumi destroy`.
   */
  keyAliasPrefix: string;
}

/**
 * The archive: versioned, Object Lock with a default retention, SSE-KMS under a customer-managed
 * key with yearly rotation, private and TLS-only, with lifecycle tiers per key-layout tier.
 *
 * Object Lock is enabled at creation (`objectLockEnabled`): it cannot be turned off, and changing
 * this argument replaces the bucket, which Pulumi cannot do while it holds locked objects.
 *
 * Every resource here is `retainOnDelete`: `pulumi destroy` leaves the archive, its key and its
 * settings in place (the objects may be locked for years, and without the key they are unreadable).
 * docs/deploy.md#teardown says how to remove them once retention allows.
 */
export class ArchiveBucket extends pulumi.ComponentResource {
  readonly bucket: aws.s3.Bucket;
  readonly key: aws.kms.Key;
  readonly bucketName: pulumi.Output<string>;
  readonly bucketArn: pulumi.Output<string>;
  readonly keyArn: pulumi.Output<string>;
  /** Resources a bucket notification must wait for, so S3 sees the final bucket configuration. */
  readonly ready: pulumi.Resource[];

  constructor(name: string, args: ArchiveBucketArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${COMPONENT_PREFIX}:aws:ArchiveBucket`, name, {}, opts);
    const parent = { parent: this, retainOnDelete: true };
    this.key = new aws.kms.Key(
      `${name}-key`,
      {
        description: "logarchive archive: SSE-KMS of the log objects",
        enableKeyRotation: true,
        deletionWindowInDays: 30,
      },
      parent,
    );
    new aws.kms.Alias(
      `${name}-key-alias`,
      { namePrefix: args.keyAliasPrefix, targetKeyId: this.key.keyId },
      parent,
    );
    this.bucket = new aws.s3.Bucket(
      name,
      {
        ...(args.bucketName === undefined ? {} : { bucket: args.bucketName }),
        objectLockEnabled: true,
        forceDestroy: false,
      },
      parent,
    );
    const versioning = new aws.s3.BucketVersioning(
      `${name}-versioning`,
      { bucket: this.bucket.id, versioningConfiguration: { status: "Enabled" } },
      parent,
    );
    const lock = new aws.s3.BucketObjectLockConfiguration(
      `${name}-object-lock`,
      {
        bucket: this.bucket.id,
        objectLockEnabled: "Enabled",
        rule: { defaultRetention: { mode: args.objectLock.mode, days: args.objectLock.days } },
      },
      { ...parent, dependsOn: [versioning] },
    );
    const secure = secureBucketSettings(name, this.bucket, this.key.arn, this, true);
    const lifecycle = new aws.s3.BucketLifecycleConfiguration(
      `${name}-lifecycle`,
      { bucket: this.bucket.id, rules: args.lifecycleRules },
      { ...parent, dependsOn: [versioning] },
    );
    this.bucketName = this.bucket.bucket;
    this.bucketArn = this.bucket.arn;
    this.keyArn = this.key.arn;
    this.ready = [versioning, lock, lifecycle, secure.policy];
    this.registerOutputs({ bucketName: this.bucketName, bucketArn: this.bucketArn, keyArn: this.keyArn });
  }
}

export interface AthenaResultsBucketArgs {
  expirationDays: number;
}

/**
 * Where Athena writes query results: private, TLS-only, emptied after a while, and encrypted
 * under a key of its own. Results are copies of log lines kept for weeks and destroyed with the
 * stack; the archive key is kept for years and decrypts the whole archive, so a principal
 * allowed to read results needs no grant on it, and this key can go when the stack goes.
 */
export class AthenaResultsBucket extends pulumi.ComponentResource {
  readonly bucket: aws.s3.Bucket;
  readonly key: aws.kms.Key;
  readonly keyArn: pulumi.Output<string>;
  constructor(name: string, args: AthenaResultsBucketArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${COMPONENT_PREFIX}:aws:AthenaResultsBucket`, name, {}, opts);
    this.key = new aws.kms.Key(
      `${name}-key`,
      {
        description: "logarchive Athena query results: SSE-KMS of the results bucket",
        enableKeyRotation: true,
        deletionWindowInDays: 7,
      },
      { parent: this },
    );
    this.keyArn = this.key.arn;
    this.bucket = new aws.s3.Bucket(name, { forceDestroy: true }, { parent: this });
    secureBucketSettings(name, this.bucket, this.key.arn, this);
    new aws.s3.BucketLifecycleConfiguration(
      `${name}-lifecycle`,
      {
        bucket: this.bucket.id,
        rules: [
          {
            id: "expire-query-results",
            status: "Enabled",
            filter: { prefix: "" },
            expiration: { days: args.expirationDays },
            abortIncompleteMultipartUpload: { daysAfterInitiation: 1 },
          },
        ],
      },
      { parent: this },
    );
    this.registerOutputs({ bucketName: this.bucket.bucket, keyArn: this.keyArn });
  }
}
