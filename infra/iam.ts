// IAM policy documents of the AWS side, as pure functions of ARNs and the policy's prefixes, so
// the exact action lists are one constant each and tests assert them as they are deployed.
// docs/deploy.md#permissions explains every action.

/**
 * The shipper uploads with PutObject (If-None-Match, SHA-256 checksum and user metadata need no
 * other permission) and, only after a 412, HEADs the key to compare checksums: s3:GetObject is
 * what authorizes HeadObject (there is no s3:HeadObject action). docs/shipper.md#permissions.
 */
export const SHIPPER_S3_ACTIONS = ["s3:GetObject", "s3:PutObject"] as const;
/** SSE-KMS uploads need a data key; single PUTs (no multipart) need no kms:Decrypt. */
export const SHIPPER_KMS_ACTIONS = ["kms:GenerateDataKey"] as const;

/**
 * What Storage Transfer needs to drain the event queue and copy the objects it names
 * (https://cloud.google.com/storage-transfer/docs/event-driven-aws).
 */
export const TRANSFER_SQS_ACTIONS = [
  "sqs:ChangeMessageVisibility",
  "sqs:DeleteMessage",
  "sqs:ReceiveMessage",
] as const;
export const TRANSFER_S3_OBJECT_ACTIONS = ["s3:GetObject"] as const;
export const TRANSFER_S3_BUCKET_ACTIONS = ["s3:ListBucket"] as const;
/**
 * Google lists s3:GetBucketLocation as always required, for a federated-identity role too
 * (https://cloud.google.com/storage-transfer/docs/source-amazon-s3#required_permissions).
 */
export const TRANSFER_S3_LOCATION_ACTIONS = ["s3:GetBucketLocation"] as const;
/** Reading SSE-KMS objects decrypts their data key. */
export const TRANSFER_KMS_ACTIONS = ["kms:Decrypt"] as const;

/**
 * Compliance retrieval: find versions, read them and their lock state, restore archived ones and
 * set legal holds. Never delete, never shorten retention, never bypass governance mode.
 */
export const RETRIEVAL_S3_OBJECT_ACTIONS = [
  "s3:GetObject",
  "s3:GetObjectAttributes",
  "s3:GetObjectLegalHold",
  "s3:GetObjectRetention",
  "s3:GetObjectVersion",
  "s3:GetObjectVersionAttributes",
  "s3:PutObjectLegalHold",
  "s3:RestoreObject",
] as const;
export const RETRIEVAL_S3_BUCKET_ACTIONS = ["s3:ListBucket", "s3:ListBucketVersions"] as const;
export const RETRIEVAL_KMS_ACTIONS = ["kms:Decrypt"] as const;

/**
 * Actions that remove or unprotect archived data, or could have the lifecycle remove it (tags:
 * a lifecycle rule may select objects by tag). No role of ours may be allowed them, with the
 * exceptions the security policy pack checks (infra/policies/security.ts), each on named key
 * prefixes only: s3:PutObjectRetention under a condition capping the retention it can set
 * (RETENTION_DAYS_CONDITION_KEY, boundedRetentionGrant), which is how the shipper gives stream
 * copies and, with compaction, originals a retention shorter than the bucket default, and how the
 * compactor extends an original it could not compact to the bucket default; and s3:DeleteObject
 * on the long-lived tiers' prefixes alone (deleteMarkerGrant), which in a versioned bucket only
 * puts a delete marker, how the compactor retires the originals it compacted. Never
 * s3:DeleteObjectVersion, never tagging (docs/deploy.md#permissions).
 */
export const DESTRUCTIVE_S3_ACTIONS = [
  "s3:BypassGovernanceRetention",
  "s3:DeleteObject",
  "s3:DeleteObjectVersion",
  "s3:PutBucketObjectLockConfiguration",
  "s3:PutLifecycleConfiguration",
  "s3:PutObjectRetention",
  "s3:PutObjectTagging",
  "s3:PutObjectVersionTagging",
] as const;

/**
 * A PutObject carrying x-amz-object-lock-mode and -retain-until-date places a retention, which
 * AWS's Object Lock permission table lists under s3:PutObjectRetention ("Create or modify an
 * object version's retention mode and period"); the shipper holds it only on the prefixes it
 * sends those headers for, capped by RETENTION_DAYS_CONDITION_KEY.
 */
export const SHIPPER_RETENTION_ACTIONS = ["s3:PutObjectRetention"] as const;
/**
 * The days from the request to the retain-until date it asks for; "You can set minimum and
 * maximum allowable retention periods … using the s3:object-lock-remaining-retention-days
 * condition key" (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock-managing.html#object-lock-managing-retention-limits).
 */
export const RETENTION_DAYS_CONDITION_KEY = "s3:object-lock-remaining-retention-days";
/**
 * Slack over the longest retention a role sets: the shipper's (stream_expiration_days or
 * landing_days) ends that many days after the end of the object's hour, so a PUT may ask for up
 * to an hour more than the days, and the key's count may round up; the compactor's (the bucket
 * default, objectLockDays after the original's creation) is asked for after the creation.
 */
export const RETENTION_CAP_SLACK_DAYS = 2;

/**
 * The compactor (logarchive compact --pending): finds an hour's originals, hour indexes and
 * existing manifests and parts by listing, reads them (by version where a manifest names one),
 * and writes parts and manifests. CreateMultipartUpload, UploadPart and CompleteMultipartUpload
 * are authorized by s3:PutObject; aborting its own unfinished upload needs s3:AbortMultipartUpload
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html#mpuAndPermissions).
 */
export const COMPACTOR_S3_READ_ACTIONS = ["s3:GetObject", "s3:GetObjectVersion"] as const;
export const COMPACTOR_S3_LIST_ACTIONS = ["s3:ListBucket", "s3:ListBucketVersions"] as const;
export const COMPACTOR_S3_WRITE_ACTIONS = ["s3:AbortMultipartUpload", "s3:PutObject"] as const;
/**
 * Retiring a compacted original: a DeleteObject without a version id, which in a versioned
 * bucket (Object Lock enables versioning) only adds a delete marker, allowed on a locked version
 * ("Although you can't delete a protected object version, you can still create a delete marker
 * for that object", object-lock-managing.html#object-lock-managing-lifecycle). Removing a version
 * needs s3:DeleteObjectVersion, which the compactor never holds.
 */
export const COMPACTOR_DELETE_ACTIONS = ["s3:DeleteObject"] as const;
/**
 * Keeping an original the compactor could not compact for the bucket's full retention: a
 * PutObjectRetention with a later retain-until date ("Any user with permissions to place an
 * object retention period can extend a retention period for an object version locked in either
 * mode", Object Lock overview, retention periods), capped at objectLockDays plus
 * RETENTION_CAP_SLACK_DAYS.
 */
export const COMPACTOR_RETENTION_ACTIONS = ["s3:PutObjectRetention"] as const;
/**
 * The compactor learns an original's lock mode and retain-until from its HEAD, which returns them
 * only to a caller allowed s3:GetObjectRetention: "If you GET or HEAD an object version but don't
 * have the necessary permissions to view its lock status, the request succeeds. However, it
 * doesn't return information that you don't have permission to view"
 * (object-lock-managing.html#object-lock-managing-view). Without it every original would look
 * unlocked and none would be extended.
 */
export const COMPACTOR_LOCK_READ_ACTIONS = ["s3:GetObjectRetention"] as const;
/**
 * Reading SSE-KMS originals decrypts their data keys; writing parts needs a data key, and a
 * multipart upload under SSE-KMS needs kms:Decrypt as well (mpuoverview.html#mpuAndPermissions).
 */
export const COMPACTOR_KMS_ACTIONS = ["kms:Decrypt", "kms:GenerateDataKey"] as const;

export interface PolicyStatement {
  Sid?: string;
  Effect: "Allow" | "Deny";
  Principal?: unknown;
  Action: string | string[];
  Resource?: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

export interface PolicyDocument {
  Version: "2012-10-17";
  Statement: PolicyStatement[];
}

const doc = (statements: PolicyStatement[]): PolicyDocument => ({
  Version: "2012-10-17",
  Statement: statements,
});

/** `arn:aws:s3:::bucket/prefix*` for each key prefix. */
export function objectArns(bucketArn: string, prefixes: readonly string[]): string[] {
  return prefixes.map((p) => `${bucketArn}/${p}*`);
}

/** Where the shipper sets its own Object Lock retention, and the longest it may set, in days. */
export interface ShipperRetentionGrant {
  prefixes: readonly string[];
  maxDays: number;
}

export function shipperPolicy(a: {
  bucketArn: string;
  writePrefixes: readonly string[];
  keyArn: string;
  /** Absent or with no prefixes: the shipper sends no lock headers and gets no retention grant. */
  retention?: ShipperRetentionGrant;
}): PolicyDocument {
  const retention = a.retention;
  return doc([
    {
      Sid: "WriteArchiveObjects",
      Effect: "Allow",
      Action: [...SHIPPER_S3_ACTIONS],
      Resource: objectArns(a.bucketArn, a.writePrefixes),
    },
    ...(retention === undefined || retention.prefixes.length === 0
      ? []
      : [
          {
            Sid: "SetShortRetention",
            Effect: "Allow" as const,
            Action: [...SHIPPER_RETENTION_ACTIONS],
            Resource: objectArns(a.bucketArn, retention.prefixes),
            Condition: {
              NumericLessThanEquals: { [RETENTION_DAYS_CONDITION_KEY]: String(retention.maxDays) },
            },
          },
        ]),
    { Sid: "EncryptWithArchiveKey", Effect: "Allow", Action: [...SHIPPER_KMS_ACTIONS], Resource: a.keyArn },
  ]);
}

/**
 * Where the compactor retires originals and keeps uncompacted ones locked (the long-lived tiers'
 * prefixes), and the longest retention it may set there (objectLockDays + RETENTION_CAP_SLACK_DAYS).
 */
export interface CompactorOriginalsGrant {
  originalPrefixes: readonly string[];
  maxRetentionDays: number;
}

/**
 * The compactor's grant: read and list the prefixes it compacts from (the tiers, the hour
 * indexes) and its own (to find a twin run's parts and manifests), write only under its own; on
 * the tier prefixes alone, put delete markers on the originals it compacted and extend the
 * retention of those it could not, up to the bucket default. Never a version delete, a governance
 * bypass or a lock or lifecycle change.
 */
export function compactorPolicy(
  a: {
    bucketArn: string;
    readPrefixes: readonly string[];
    compactedPrefix: string;
    keyArn: string;
  } & CompactorOriginalsGrant,
): PolicyDocument {
  if (a.originalPrefixes.length === 0) throw new Error("compactorPolicy: no original prefixes");
  const read = [...a.readPrefixes, a.compactedPrefix];
  return doc([
    {
      Sid: "ReadOriginalsAndIndexes",
      Effect: "Allow",
      Action: [...COMPACTOR_S3_READ_ACTIONS],
      Resource: objectArns(a.bucketArn, read),
    },
    {
      Sid: "ListOriginalsAndIndexes",
      Effect: "Allow",
      Action: [...COMPACTOR_S3_LIST_ACTIONS],
      Resource: a.bucketArn,
      Condition: { StringLike: { "s3:prefix": read.map((p) => `${p}*`) } },
    },
    {
      Sid: "WriteCompactedParts",
      Effect: "Allow",
      Action: [...COMPACTOR_S3_WRITE_ACTIONS],
      Resource: objectArns(a.bucketArn, [a.compactedPrefix]),
    },
    {
      Sid: "MarkCompactedOriginalsDeleted",
      Effect: "Allow",
      Action: [...COMPACTOR_DELETE_ACTIONS],
      Resource: objectArns(a.bucketArn, a.originalPrefixes),
    },
    {
      Sid: "ReadOriginalsLockState",
      Effect: "Allow",
      Action: [...COMPACTOR_LOCK_READ_ACTIONS],
      Resource: objectArns(a.bucketArn, a.originalPrefixes),
    },
    {
      Sid: "KeepUncompactedOriginalsLocked",
      Effect: "Allow",
      Action: [...COMPACTOR_RETENTION_ACTIONS],
      Resource: objectArns(a.bucketArn, a.originalPrefixes),
      Condition: {
        NumericLessThanEquals: { [RETENTION_DAYS_CONDITION_KEY]: String(a.maxRetentionDays) },
      },
    },
    { Sid: "UseArchiveKey", Effect: "Allow", Action: [...COMPACTOR_KMS_ACTIONS], Resource: a.keyArn },
  ]);
}

/** IRSA: only the named ServiceAccount, through the cluster's OIDC provider, may assume the role. */
export function irsaTrustPolicy(a: {
  oidcProviderArn: string;
  namespace: string;
  serviceAccount: string;
}): PolicyDocument {
  const issuer = oidcIssuerOf(a.oidcProviderArn);
  return doc([
    {
      Effect: "Allow",
      Principal: { Federated: a.oidcProviderArn },
      Action: "sts:AssumeRoleWithWebIdentity",
      Condition: {
        StringEquals: {
          [`${issuer}:sub`]: `system:serviceaccount:${a.namespace}:${a.serviceAccount}`,
          [`${issuer}:aud`]: "sts.amazonaws.com",
        },
      },
    },
  ]);
}

/** The issuer host/path an IRSA condition key starts with: the OIDC provider ARN's resource part. */
export function oidcIssuerOf(oidcProviderArn: string): string {
  const marker = ":oidc-provider/";
  const at = oidcProviderArn.indexOf(marker);
  if (at < 0) throw new Error(`${oidcProviderArn} is not an IAM OIDC provider ARN`);
  return oidcProviderArn.slice(at + marker.length);
}

export function transferPolicy(a: {
  bucketArn: string;
  readPrefixes: readonly string[];
  queueArn: string;
  keyArn: string;
}): PolicyDocument {
  return doc([
    { Sid: "DrainEventQueue", Effect: "Allow", Action: [...TRANSFER_SQS_ACTIONS], Resource: a.queueArn },
    {
      Sid: "ReadTransferredObjects",
      Effect: "Allow",
      Action: [...TRANSFER_S3_OBJECT_ACTIONS],
      Resource: objectArns(a.bucketArn, a.readPrefixes),
    },
    {
      Sid: "ListArchiveBucket",
      Effect: "Allow",
      Action: [...TRANSFER_S3_BUCKET_ACTIONS],
      Resource: a.bucketArn,
      // Storage Transfer lists under the job's includePrefixes, which are these prefixes: it may
      // see no other key of the archive
      // (https://docs.aws.amazon.com/AmazonS3/latest/userguide/amazon-s3-policy-keys.html).
      Condition: { StringLike: { "s3:prefix": a.readPrefixes.map((p) => `${p}*`) } },
    },
    {
      Sid: "LocateArchiveBucket",
      Effect: "Allow",
      Action: [...TRANSFER_S3_LOCATION_ACTIONS],
      Resource: a.bucketArn,
    },
    { Sid: "DecryptArchiveObjects", Effect: "Allow", Action: [...TRANSFER_KMS_ACTIONS], Resource: a.keyArn },
  ]);
}

/**
 * Storage Transfer assumes the role as its project's Google service account: the web identity is
 * accounts.google.com and `sub` is that account's subjectId
 * (https://cloud.google.com/storage-transfer/docs/source-amazon-s3#federated_identity).
 */
export function transferTrustPolicy(a: { googleSubjectId: string }): PolicyDocument {
  return doc([
    {
      Effect: "Allow",
      Principal: { Federated: "accounts.google.com" },
      Action: "sts:AssumeRoleWithWebIdentity",
      Condition: { StringEquals: { "accounts.google.com:sub": a.googleSubjectId } },
    },
  ]);
}

/**
 * The compliance role (retrieve, hold, reconcile): the same object actions on every prefix it
 * reads and holds (retrievalPrefixes(policy) in lib/infra-contract.ts: the tiers, loss records,
 * hour indexes and compacted parts and manifests), listing on the bucket, and an explicit Deny
 * of every destructive action on the whole bucket.
 */
export function retrievalPolicy(a: {
  bucketArn: string;
  keyArn: string;
  objectPrefixes: readonly string[];
}): PolicyDocument {
  if (a.objectPrefixes.length === 0) throw new Error("retrievalPolicy: no object prefixes");
  return doc([
    {
      Sid: "ReadRestoreAndHoldArchive",
      Effect: "Allow",
      Action: [...RETRIEVAL_S3_OBJECT_ACTIONS],
      Resource: objectArns(a.bucketArn, a.objectPrefixes),
    },
    {
      Sid: "ListArchiveVersions",
      Effect: "Allow",
      Action: [...RETRIEVAL_S3_BUCKET_ACTIONS],
      Resource: a.bucketArn,
    },
    { Sid: "DecryptArchiveObjects", Effect: "Allow", Action: [...RETRIEVAL_KMS_ACTIONS], Resource: a.keyArn },
    // Belt and braces: even if someone attaches a broader policy to this role, it cannot delete.
    {
      Sid: "NeverDelete",
      Effect: "Deny",
      Action: [...DESTRUCTIVE_S3_ACTIONS],
      Resource: [a.bucketArn, `${a.bucketArn}/*`],
    },
  ]);
}

export function retrievalTrustPolicy(a: { principals: readonly string[] }): PolicyDocument {
  return doc([{ Effect: "Allow", Principal: { AWS: [...a.principals] }, Action: "sts:AssumeRole" }]);
}

/** Every request to a data bucket must use TLS (https://repost.aws/knowledge-center/s3-bucket-policy-for-config-rule). */
export function denyInsecureTransport(bucketArn: string): PolicyStatement {
  return {
    Sid: "DenyInsecureTransport",
    Effect: "Deny",
    Principal: "*",
    Action: "s3:*",
    Resource: [bucketArn, `${bucketArn}/*`],
    Condition: { Bool: { "aws:SecureTransport": "false" } },
  };
}

export function tlsOnlyBucketPolicy(bucketArn: string): PolicyDocument {
  return doc([denyInsecureTransport(bucketArn)]);
}

/** Only this bucket, in this account, may send the queue its events. */
export function queuePolicy(a: { queueArn: string; bucketArn: string; accountId: string }): PolicyDocument {
  return doc([
    {
      Sid: "ArchiveBucketEvents",
      Effect: "Allow",
      Principal: { Service: "s3.amazonaws.com" },
      Action: "sqs:SendMessage",
      Resource: a.queueArn,
      Condition: {
        ArnLike: { "aws:SourceArn": a.bucketArn },
        StringEquals: { "aws:SourceAccount": a.accountId },
      },
    },
  ]);
}
