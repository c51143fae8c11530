// pulumi.runtime.setMocks for the stack's tests: every registered resource is recorded with its
// inputs and the outputs the mock gives it, shaped as the providers shape them where a test or a
// downstream resource reads them (an S3 bucket's ID is its name, a topic's ID its full path).

import * as pulumi from "@pulumi/pulumi";

// Registered inputs are provider-shaped JSON; the tests say what each must hold.
// biome-ignore lint/suspicious/noExplicitAny: mock inputs are untyped JSON
export type Loose = any;

export interface Registered {
  type: string;
  name: string;
  inputs: Record<string, Loose>;
  /** Inputs and the mocked outputs: what a policy pack sees. */
  props?: Record<string, Loose>;
}

export const ACCOUNT = "123456789012";
export const STS_SUBJECT = "112233445566778899";
export const STS_EMAIL = "project-1234@storage-transfer-service.iam.gserviceaccount.com";

/** The name Eventarc gives the finalize trigger's Pub/Sub subscription, unless a test picks another. */
export const TRIGGER_SUBSCRIPTION = "projects/my-project/subscriptions/eventarc-us-finalize-sub";

export interface MockOptions {
  /** The subscription the mocked Eventarc trigger reports (transport.pubsub.subscription). */
  triggerSubscription?: string;
}

function mockState(
  type: string,
  name: string,
  inputs: Record<string, Loose>,
  options: MockOptions,
): Record<string, unknown> {
  switch (type) {
    case "aws:s3/bucket:Bucket": {
      const bucket = inputs.bucket ?? `${name}-bucket`;
      return { bucket, arn: `arn:aws:s3:::${bucket}` };
    }
    case "aws:sqs/queue:Queue":
      return {
        arn: `arn:aws:sqs:us-east-1:${ACCOUNT}:${name}`,
        url: `https://sqs.us-east-1.amazonaws.com/${ACCOUNT}/${name}`,
      };
    case "aws:kms/key:Key":
      return { arn: `arn:aws:kms:us-east-1:${ACCOUNT}:key/${name}`, keyId: name };
    case "aws:iam/role:Role":
      return { arn: `arn:aws:iam::${ACCOUNT}:role/${name}` };
    case "gcp:storage/bucket:Bucket":
      return { name: inputs.name ?? `${name}-gcs` };
    case "gcp:storage/bucketObject:BucketObject":
      return { generation: 1700000000000001 };
    case "gcp:serviceaccount/account:Account":
      return {
        email: `${inputs.accountId}@my-project.iam.gserviceaccount.com`,
        name: `projects/my-project/serviceAccounts/${inputs.accountId}@my-project.iam.gserviceaccount.com`,
      };
    case "gcp:cloudfunctionsv2/function:Function":
      return {
        name,
        url: `https://${name}.a.run.app`,
        ...(inputs.eventTrigger
          ? {
              eventTrigger: {
                ...inputs.eventTrigger,
                trigger: `projects/my-project/locations/us/triggers/${name}`,
              },
            }
          : {}),
      };
    case "gcp:eventarc/trigger:Trigger":
      return {
        transport: { pubsub: { subscription: options.triggerSubscription ?? TRIGGER_SUBSCRIPTION } },
      };
    default:
      return {};
  }
}

/** Replaces the Pulumi engine with mocks that append every registered resource to `registered`. */
export function installMocks(registered: Registered[], options: MockOptions = {}): void {
  pulumi.runtime.setMocks(
    {
      newResource(args) {
        const state = { ...args.inputs, ...mockState(args.type, args.name, args.inputs, options) };
        registered.push({ type: args.type, name: args.name, inputs: args.inputs, props: state });
        const id =
          args.type === "aws:s3/bucket:Bucket"
            ? String(state.bucket)
            : args.type === "gcp:pubsub/topic:Topic"
              ? `projects/my-project/topics/${args.name}`
              : `${args.name}-id`;
        return { id, state };
      },
      call(args) {
        switch (args.token) {
          case "aws:index/getCallerIdentity:getCallerIdentity":
            return { accountId: ACCOUNT, arn: `arn:aws:iam::${ACCOUNT}:user/ci`, userId: "ci" };
          case "aws:index/getPartition:getPartition":
            return { partition: "aws", dnsSuffix: "amazonaws.com" };
          case "gcp:storage/getTransferProjectServiceAccount:getTransferProjectServiceAccount":
            return { email: STS_EMAIL, subjectId: STS_SUBJECT, member: `serviceAccount:${STS_EMAIL}` };
          case "gcp:storage/getProjectServiceAccount:getProjectServiceAccount":
            return { emailAddress: "service-1234@gs-project-accounts.iam.gserviceaccount.com" };
          case "gcp:organizations/getProject:getProject":
            return { number: "1234", projectId: "my-project" };
          default:
            return {};
        }
      },
    },
    "logarchive",
    "test",
    false,
  );
}
