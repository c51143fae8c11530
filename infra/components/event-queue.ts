// The S3 → SQS half of the transfer: an encrypted queue with a dead-letter queue, a queue policy
// that admits only the archive bucket, and the bucket's one and only BucketNotification.

import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { NotificationRule } from "../../lib/policy/policy.ts";
import { queuePolicy } from "../iam.ts";
import { COMPONENT_PREFIX } from "./archive-bucket.ts";

/** SQS keeps a message at most 14 days (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html, MessageRetentionPeriod). */
export const SQS_MAX_RETENTION_SECONDS = 14 * 24 * 3600;

export interface EventQueueArgs {
  bucketName: pulumi.Input<string>;
  bucketArn: pulumi.Input<string>;
  accountId: pulumi.Input<string>;
  /** notificationRules(policy): the only place the notification's filters come from. */
  rules: readonly NotificationRule[];
  maxReceiveCount: number;
  /** The bucket's settings the notification must follow. */
  bucketReady?: pulumi.Input<pulumi.Resource>[];
}

/**
 * S3 allows one notification configuration per bucket, and a second `aws.s3.BucketNotification`
 * for the same bucket overwrites the first on every `pulumi up`
 * (https://www.pulumi.com/registry/packages/aws/api-docs/s3/bucketnotification/). So this is the
 * only place in the stack that creates one, with every rule of notificationRules(policy).
 */
export class EventQueue extends pulumi.ComponentResource {
  readonly queue: aws.sqs.Queue;
  readonly deadLetterQueue: aws.sqs.Queue;
  readonly notification: aws.s3.BucketNotification;
  readonly queueArn: pulumi.Output<string>;

  constructor(name: string, args: EventQueueArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${COMPONENT_PREFIX}:aws:EventQueue`, name, {}, opts);
    const parent = { parent: this };
    this.deadLetterQueue = new aws.sqs.Queue(
      `${name}-dlq`,
      { sqsManagedSseEnabled: true, messageRetentionSeconds: SQS_MAX_RETENTION_SECONDS },
      parent,
    );
    this.queue = new aws.sqs.Queue(
      name,
      {
        // SSE-SQS: encrypted at rest with no key policy for S3 to satisfy (FIFO queues are refused as S3 destinations).
        sqsManagedSseEnabled: true,
        messageRetentionSeconds: SQS_MAX_RETENTION_SECONDS,
        redrivePolicy: this.deadLetterQueue.arn.apply((deadLetterTargetArn) =>
          JSON.stringify({ deadLetterTargetArn, maxReceiveCount: args.maxReceiveCount }),
        ),
      },
      parent,
    );
    const policy = new aws.sqs.QueuePolicy(
      `${name}-policy`,
      {
        queueUrl: this.queue.url,
        policy: pulumi
          .all([this.queue.arn, args.bucketArn, args.accountId])
          .apply(([queueArn, bucketArn, accountId]) =>
            JSON.stringify(queuePolicy({ queueArn, bucketArn, accountId })),
          ),
      },
      parent,
    );
    this.notification = new aws.s3.BucketNotification(
      `${name}-notification`,
      {
        bucket: args.bucketName,
        queues: args.rules.map((rule) => ({
          id: rule.id,
          queueArn: this.queue.arn,
          events: rule.events,
          filterPrefix: rule.prefix,
          filterSuffix: rule.suffix,
        })),
      },
      // S3 tests the destination when the configuration is put: the queue policy must exist first.
      { parent: this, dependsOn: [policy, ...(args.bucketReady ?? [])] },
    );
    this.queueArn = this.queue.arn;
    this.registerOutputs({ queueArn: this.queueArn, deadLetterQueueArn: this.deadLetterQueue.arn });
  }
}
