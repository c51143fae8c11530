// S3 → GCS: the AWS role Storage Transfer assumes, and the event-driven transfer job that
// drains the event queue into the landing bucket.

import * as aws from "@pulumi/aws";
import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";
import { transferPolicy, transferTrustPolicy } from "../iam.ts";
import { COMPONENT_PREFIX } from "./archive-bucket.ts";

export interface TransferRoleArgs {
  bucketArn: pulumi.Input<string>;
  keyArn: pulumi.Input<string>;
  queueArn: pulumi.Input<string>;
  /** transferredPrefixes(policy): the objects the notification selects. */
  readPrefixes: readonly string[];
  /** subjectId of the project's Storage Transfer service account (gcp.storage.getTransferProjectServiceAccount). */
  googleSubjectId: pulumi.Input<string>;
}

/**
 * The role Storage Transfer assumes with its Google identity (federated `accounts.google.com`,
 * `sub` = its service account's subjectId): no AWS access key exists anywhere
 * (https://cloud.google.com/storage-transfer/docs/event-driven-aws).
 */
export class TransferRole extends pulumi.ComponentResource {
  readonly role: aws.iam.Role;
  readonly roleArn: pulumi.Output<string>;
  /** The inline policy; the transfer job must wait for it, or its first reads are denied. */
  readonly policy: aws.iam.RolePolicy;
  constructor(name: string, args: TransferRoleArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${COMPONENT_PREFIX}:aws:TransferRole`, name, {}, opts);
    this.role = new aws.iam.Role(
      name,
      {
        description:
          "logarchive: Google Storage Transfer reads the analytics tier and drains the event queue",
        assumeRolePolicy: pulumi
          .output(args.googleSubjectId)
          .apply((googleSubjectId) => JSON.stringify(transferTrustPolicy({ googleSubjectId }))),
      },
      { parent: this },
    );
    this.policy = new aws.iam.RolePolicy(
      `${name}-read`,
      {
        role: this.role.id,
        policy: pulumi
          .all([args.bucketArn, args.keyArn, args.queueArn])
          .apply(([bucketArn, keyArn, queueArn]) =>
            JSON.stringify(transferPolicy({ bucketArn, keyArn, queueArn, readPrefixes: args.readPrefixes })),
          ),
      },
      { parent: this },
    );
    this.roleArn = this.role.arn;
    this.registerOutputs({ roleArn: this.roleArn });
  }
}

/**
 * What the Storage Transfer service agent needs on a Cloud Storage sink: storage.buckets.get,
 * storage.objects.create, .delete, .list and .get
 * (https://cloud.google.com/storage-transfer/docs/sink-cloud-storage).
 */
export const TRANSFER_SINK_ROLES = [
  "roles/storage.legacyBucketWriter",
  "roles/storage.objectViewer",
] as const;

export interface TransferJobArgs {
  project: string;
  sourceBucketName: pulumi.Input<string>;
  roleArn: pulumi.Input<string>;
  queueArn: pulumi.Input<string>;
  /** transferredPrefixes(policy): copy nothing the notification does not select. */
  includePrefixes: readonly string[];
  landingBucketName: pulumi.Input<string>;
  /** Storage Transfer's service agent email, granted the sink roles here. */
  serviceAgentEmail: pulumi.Input<string>;
  /** The AWS role's policy: the job must not start before it can read. */
  dependsOn?: pulumi.Input<pulumi.Resource>[];
}

/**
 * An event-driven transfer job: it reads the SQS queue S3 notifies and copies each new object
 * into the landing bucket, with no schedule and no expiry (it runs until stopped).
 */
export class TransferJob extends pulumi.ComponentResource {
  readonly job: gcp.storage.TransferJob;
  constructor(name: string, args: TransferJobArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${COMPONENT_PREFIX}:gcp:TransferJob`, name, {}, opts);
    const grants = TRANSFER_SINK_ROLES.map(
      (role) =>
        new gcp.storage.BucketIAMMember(
          `${name}-sink-${role.split(".").at(-1)}`,
          {
            bucket: args.landingBucketName,
            role,
            member: pulumi.interpolate`serviceAccount:${args.serviceAgentEmail}`,
          },
          { parent: this },
        ),
    );
    this.job = new gcp.storage.TransferJob(
      name,
      {
        project: args.project,
        description: "logarchive: S3 analytics tier to the GCS landing bucket, driven by S3 events",
        eventStream: { name: args.queueArn },
        transferSpec: {
          awsS3DataSource: { bucketName: args.sourceBucketName, roleArn: args.roleArn },
          gcsDataSink: { bucketName: args.landingBucketName },
          objectConditions: { includePrefixes: [...args.includePrefixes] },
          transferOptions: { overwriteWhen: "DIFFERENT", deleteObjectsFromSourceAfterTransfer: false },
        },
        status: "ENABLED",
      },
      { parent: this, dependsOn: [...grants, ...(args.dependsOn ?? [])] },
    );
    this.registerOutputs({ jobName: this.job.name });
  }
}
