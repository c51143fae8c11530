// The loader on GCP: two gen2 functions (nodejs24) from the package `npm run build:functions`
// writes, each with its own service account; the finalize function's Eventarc trigger on the
// landing bucket with retries on; a dead-letter topic, attached to the trigger's subscription by a
// local gcloud command; and the Cloud Scheduler job that calls the flush.
// docs/loader.md#deployment-settings lists what each setting must be and why.

import * as command from "@pulumi/command";
import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";
import { FINALIZE_FUNCTION, FINALIZED_EVENT_TYPE, FLUSH_FUNCTION } from "../../functions/handlers.ts";
import type { FlushSchedulerSettings } from "../../functions/loader/config.ts";
import { shellCommand } from "../shell.ts";
import { COMPONENT_PREFIX } from "./archive-bucket.ts";
import { PRIVATE_BUCKET } from "./gcs.ts";

/** The runtime the package is built for (its engines.node is Node 24). */
export const FUNCTION_RUNTIME = "nodejs24";
/** Eventarc redelivers a failed event only with this policy (https://cloud.google.com/functions/docs/bestpractices/retries). */
export const FINALIZE_RETRY_POLICY = "RETRY_POLICY_RETRY";

/** What each service account may do, as project roles and per-bucket roles. */
export const LOADER_ROLES = {
  /** Read the landing bucket's objects and its location (the startup check reads buckets.get). */
  landingRead: ["roles/storage.objectViewer", "roles/storage.legacyBucketReader"],
  /** Markers: create, read, list, overwrite with preconditions, delete. */
  stateReadWrite: ["roles/storage.objectUser", "roles/storage.legacyBucketReader"],
  /** Quarantine copies go under the quarantine prefix of the landing bucket, and nowhere else. */
  landingQuarantineWrite: "roles/storage.objectCreator",
  /** Start and follow load jobs (project-level: jobs belong to the project). */
  createJobs: "roles/bigquery.jobUser",
  /** The Eventarc trigger's identity: receive events and invoke the finalize function. */
  eventReceiver: "roles/eventarc.eventReceiver",
  invoker: "roles/run.invoker",
  /** The build account: write build logs and the built image. */
  buildProject: ["roles/logging.logWriter", "roles/artifactregistry.writer"],
  /** The build account: read the uploaded source. */
  buildSource: "roles/storage.objectAdmin",
  /**
   * The build account: fetch the copy of the source Cloud Functions keeps in its own bucket,
   * `gcf-v2-sources-<projectNumber>-<region>`, which the build downloads (granted on the project
   * with a condition naming that bucket, since Cloud Functions creates it on the first deploy).
   */
  buildFunctionSources: "roles/storage.objectViewer",
} as const;

/**
 * The bucket Cloud Functions (gen2) copies a function's source into and builds from, with
 * Google-managed encryption (https://cloud.google.com/functions/docs/building).
 */
export function functionSourcesBucket(projectNumber: string, region: string): string {
  return `gcf-v2-sources-${projectNumber}-${region}`;
}

/**
 * IAM condition that limits a project-level grant to one bucket and its objects: Cloud Storage
 * checks bucket permissions on `projects/_/buckets/<b>` and object permissions on
 * `projects/_/buckets/<b>/objects/<o>` (https://cloud.google.com/iam/docs/conditions-resource-attributes#resource-name).
 */
export function oneBucketCondition(bucket: string): string {
  const at = `projects/_/buckets/${bucket}`;
  return `resource.name == "${at}" || resource.name.startsWith("${at}/objects/")`;
}

/**
 * The gcloud command that gives the trigger's subscription its dead-letter policy
 * (https://cloud.google.com/sdk/gcloud/reference/pubsub/subscriptions/update): `subscription` and
 * `topic` are full resource names (`projects/…/subscriptions/…`, `projects/…/topics/…`), which
 * gcloud takes in place of IDs, so no `--project` is needed. Every value is shell-quoted.
 */
export function deadLetterAttachCommand(
  subscription: string,
  topic: string,
  maxDeliveryAttempts: number,
): string {
  return shellCommand(
    "gcloud",
    "pubsub",
    "subscriptions",
    "update",
    subscription,
    `--dead-letter-topic=${topic}`,
    `--max-delivery-attempts=${maxDeliveryAttempts}`,
  );
}

/**
 * How the command runs: the POSIX shell it is quoted for (also on a machine whose default would be
 * cmd.exe), and gcloud with prompts off, so a question fails the step instead of hanging `pulumi up`
 * (gcloud reads property core/disable_prompts from CLOUDSDK_CORE_DISABLE_PROMPTS).
 */
export const DEAD_LETTER_ATTACH_INTERPRETER = ["/bin/sh", "-c"];
export const DEAD_LETTER_ATTACH_ENVIRONMENT = { CLOUDSDK_CORE_DISABLE_PROMPTS: "1" };

export interface LoaderArgs {
  project: string;
  /** Project number, for the Pub/Sub and Cloud Storage service agents. */
  projectNumber: pulumi.Input<string>;
  region: string;
  /** The landing bucket's location; the trigger must be there to see its events. */
  triggerRegion: string;
  /** Service account ids start with this (6-30 characters in all). */
  accountIdPrefix: string;
  landingBucketName: pulumi.Input<string>;
  stateBucketName: pulumi.Input<string>;
  /** The loader's quarantine prefix in the landing bucket (LOGARCHIVE_QUARANTINE_PREFIX). */
  quarantinePrefix: string;
  /** Directory of the built functions package. */
  packageDir: string;
  environment: pulumi.Input<Record<string, pulumi.Input<string>>>;
  finalizeTimeoutSeconds: number;
  flushTimeoutSeconds: number;
  /** Memory of each function instance, a gen2 tier (lib/gcp-deploy.ts); its vCPU comes with it. */
  memory: string;
  /**
   * Max instances of the finalize function (infra/config.ts finalizeMaxInstances, default
   * lib/gcp-deploy.ts DEFAULT_FINALIZE_MAX_INSTANCES, which `logarchive plan` checks its load against).
   */
  finalizeMaxInstances: number;
  scheduler: FlushSchedulerSettings;
  deadLetterMaxDeliveryAttempts: number;
  /**
   * Run the attach command during `pulumi up` (needs gcloud, authenticated as the deployer, where
   * Pulumi runs); false leaves it to the operator, with the command as an output.
   */
  attachDeadLetter: boolean;
}

export class Loader extends pulumi.ComponentResource {
  readonly finalizeAccount: gcp.serviceaccount.Account;
  readonly flushAccount: gcp.serviceaccount.Account;
  readonly finalize: gcp.cloudfunctionsv2.Function;
  readonly flush: gcp.cloudfunctionsv2.Function;
  readonly schedule: gcp.cloudscheduler.Job;
  readonly deadLetterTopic: gcp.pubsub.Topic;
  /** The Eventarc-managed subscription that delivers finalize events. */
  readonly triggerSubscription: pulumi.Output<string>;
  /** The one command that attaches the dead-letter topic to that subscription (see docs/deploy.md). */
  readonly deadLetterCommand: pulumi.Output<string>;
  /** Runs deadLetterCommand during `pulumi up`; undefined when attachDeadLetter is off. */
  readonly deadLetterAttachment: command.local.Command | undefined;

  constructor(name: string, args: LoaderArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${COMPONENT_PREFIX}:gcp:Loader`, name, {}, opts);
    const parent = { parent: this };
    const account = (suffix: string, what: string) =>
      new gcp.serviceaccount.Account(
        `${name}-${suffix}`,
        {
          project: args.project,
          accountId: `${args.accountIdPrefix}-${suffix}`,
          displayName: `logarchive ${what}`,
        },
        parent,
      );
    this.finalizeAccount = account("finalize", "loader: finalize function");
    this.flushAccount = account("flush", "loader: flush function");
    const triggerAccount = account("trigger", "loader: Eventarc trigger of the finalize function");
    const schedulerAccount = account("scheduler", "loader: Cloud Scheduler caller of the flush function");
    const member = (a: gcp.serviceaccount.Account) => pulumi.interpolate`serviceAccount:${a.email}`;

    // ---------------------------------------------------------- storage grants, per function
    for (const [who, sa] of [
      ["finalize", this.finalizeAccount],
      ["flush", this.flushAccount],
    ] as const) {
      for (const role of LOADER_ROLES.landingRead) {
        new gcp.storage.BucketIAMMember(
          `${name}-${who}-landing-${role.split(".").at(-1)}`,
          { bucket: args.landingBucketName, role, member: member(sa) },
          parent,
        );
      }
      for (const role of LOADER_ROLES.stateReadWrite) {
        new gcp.storage.BucketIAMMember(
          `${name}-${who}-state-${role.split(".").at(-1)}`,
          { bucket: args.stateBucketName, role, member: member(sa) },
          parent,
        );
      }
      new gcp.storage.BucketIAMMember(
        `${name}-${who}-landing-quarantine`,
        {
          bucket: args.landingBucketName,
          role: LOADER_ROLES.landingQuarantineWrite,
          member: member(sa),
          condition: {
            title: "quarantine-prefix-only",
            description: "Create objects only under the loader's quarantine prefix",
            expression: pulumi.interpolate`resource.name.startsWith("projects/_/buckets/${args.landingBucketName}/objects/${args.quarantinePrefix}")`,
          },
        },
        parent,
      );
    }
    new gcp.projects.IAMMember(
      `${name}-flush-jobs`,
      { project: args.project, role: LOADER_ROLES.createJobs, member: member(this.flushAccount) },
      parent,
    );
    new gcp.projects.IAMMember(
      `${name}-trigger-receiver`,
      { project: args.project, role: LOADER_ROLES.eventReceiver, member: member(triggerAccount) },
      parent,
    );
    // Cloud Storage publishes bucket events through Pub/Sub as its service agent
    // (https://cloud.google.com/functions/docs/calling/storage#deploy).
    const gcsAgent = gcp.storage.getProjectServiceAccountOutput({ project: args.project }, parent);
    const gcsPublisher = new gcp.projects.IAMMember(
      `${name}-gcs-agent-publisher`,
      {
        project: args.project,
        role: "roles/pubsub.publisher",
        member: pulumi.interpolate`serviceAccount:${gcsAgent.emailAddress}`,
      },
      parent,
    );

    // ---------------------------------------------------------- source
    const sourceBucket = new gcp.storage.Bucket(
      `${name}-source`,
      { project: args.project, location: args.region, ...PRIVATE_BUCKET, forceDestroy: true },
      parent,
    );
    const sourceObject = new gcp.storage.BucketObject(
      `${name}-package`,
      {
        bucket: sourceBucket.name,
        name: "functions-package.zip",
        source: new pulumi.asset.FileArchive(args.packageDir),
      },
      parent,
    );
    // Cloud Build builds the functions as an account of their own, with what a source build needs
    // (https://cloud.google.com/run/docs/configuring/services/build-service-account): projects
    // created since July 2024 no longer give the default build account enough.
    const buildAccount = account("build", "loader: Cloud Build of the functions");
    const buildGrants = [
      ...LOADER_ROLES.buildProject.map(
        (role) =>
          new gcp.projects.IAMMember(
            `${name}-build-${role.split(".").at(-1)}`,
            { project: args.project, role, member: member(buildAccount) },
            parent,
          ),
      ),
      new gcp.storage.BucketIAMMember(
        `${name}-build-source`,
        { bucket: sourceBucket.name, role: LOADER_ROLES.buildSource, member: member(buildAccount) },
        parent,
      ),
      // Without it every build fails: "Access to bucket gcf-v2-sources-… denied. You must grant
      // Storage Object Viewer permission to <build account>" (terraform-provider-google#20571).
      new gcp.projects.IAMMember(
        `${name}-build-function-sources`,
        {
          project: args.project,
          role: LOADER_ROLES.buildFunctionSources,
          member: member(buildAccount),
          condition: {
            title: "function-sources-bucket-only",
            description: "Read only the bucket Cloud Functions builds this region's functions from",
            expression: pulumi
              .output(args.projectNumber)
              .apply((n) => oneBucketCondition(functionSourcesBucket(n, args.region))),
          },
        },
        parent,
      ),
    ];
    const buildConfig = (entryPoint: string) => ({
      runtime: FUNCTION_RUNTIME,
      entryPoint,
      serviceAccount: buildAccount.name,
      source: {
        storageSource: {
          bucket: sourceBucket.name,
          object: sourceObject.name,
          // A new upload has a new generation, which redeploys both functions.
          generation: sourceObject.generation,
        },
      },
    });
    const serviceConfig = (sa: gcp.serviceaccount.Account, timeoutSeconds: number) => ({
      serviceAccountEmail: sa.email,
      timeoutSeconds,
      availableMemory: args.memory,
      environmentVariables: args.environment,
      allTrafficOnLatestRevision: true,
    });

    // ---------------------------------------------------------- finalize: Eventarc, retries on
    this.finalize = new gcp.cloudfunctionsv2.Function(
      `${name}-finalize`,
      {
        project: args.project,
        location: args.region,
        description: "logarchive loader: validate and queue each object the transfer lands",
        buildConfig: buildConfig(FINALIZE_FUNCTION),
        serviceConfig: {
          ...serviceConfig(this.finalizeAccount, args.finalizeTimeoutSeconds),
          maxInstanceCount: args.finalizeMaxInstances,
        },
        eventTrigger: {
          eventType: FINALIZED_EVENT_TYPE,
          triggerRegion: args.triggerRegion,
          eventFilters: [{ attribute: "bucket", value: args.landingBucketName }],
          retryPolicy: FINALIZE_RETRY_POLICY,
          serviceAccountEmail: triggerAccount.email,
        },
      },
      { parent: this, dependsOn: [gcsPublisher, ...buildGrants] },
    );
    new gcp.cloudrunv2.ServiceIamMember(
      `${name}-finalize-invoker`,
      {
        project: args.project,
        location: args.region,
        name: this.finalize.name,
        role: LOADER_ROLES.invoker,
        member: member(triggerAccount),
      },
      parent,
    );

    // ---------------------------------------------------------- dead letters
    this.deadLetterTopic = new gcp.pubsub.Topic(
      `${name}-finalize-dead-letter`,
      { project: args.project },
      parent,
    );
    // Keeps dead letters a week for someone to read and re-send (each names the object).
    const deadLetterSubscription = new gcp.pubsub.Subscription(
      `${name}-finalize-dead-letter`,
      {
        project: args.project,
        topic: this.deadLetterTopic.id,
        messageRetentionDuration: "604800s",
        expirationPolicy: { ttl: "" },
      },
      parent,
    );
    const pubsubAgent = pulumi.interpolate`serviceAccount:service-${args.projectNumber}@gcp-sa-pubsub.iam.gserviceaccount.com`;
    const deadLetterPublisher = new gcp.pubsub.TopicIAMMember(
      `${name}-dead-letter-publisher`,
      {
        project: args.project,
        topic: this.deadLetterTopic.id,
        role: "roles/pubsub.publisher",
        member: pubsubAgent,
      },
      parent,
    );
    const trigger = gcp.eventarc.Trigger.get(
      `${name}-finalize-trigger`,
      this.finalize.eventTrigger.apply((t) => t?.trigger ?? ""),
      undefined,
      parent,
    );
    // @pulumi/gcp v9 types the transport as objects, transport.pubsub.subscription ("projects/{p}/
    // subscriptions/{s}", eventarc/trigger.d.ts), where Terraform writes transport[0].pubsub[0].
    this.triggerSubscription = trigger.transport.apply((t) => t.pubsub?.subscription ?? "");
    const triggerSubscriber = new gcp.pubsub.SubscriptionIAMMember(
      `${name}-trigger-subscriber`,
      {
        project: args.project,
        subscription: this.triggerSubscription,
        role: "roles/pubsub.subscriber",
        member: pubsubAgent,
      },
      parent,
    );
    this.deadLetterCommand = pulumi
      .all([this.triggerSubscription, this.deadLetterTopic.id])
      .apply(([subscription, topic]) =>
        deadLetterAttachCommand(subscription, topic, args.deadLetterMaxDeliveryAttempts),
      );
    // Eventarc creates and owns the subscription, and no provider resource can set its dead-letter
    // policy (terraform-provider-google#17697), so `pulumi up` runs the gcloud command itself. It
    // runs on create, and again (as update) whenever its inputs change: a replaced trigger has a new
    // subscription, named in the triggers. Delete does nothing: the subscription goes with its
    // trigger. It waits for the grants dead-lettering needs and for the dead-letter subscription,
    // without which a dead-lettered message is kept nowhere.
    this.deadLetterAttachment = args.attachDeadLetter
      ? new command.local.Command(
          `${name}-finalize-dead-letter-attach`,
          {
            create: this.deadLetterCommand,
            update: this.deadLetterCommand,
            triggers: [this.triggerSubscription],
            interpreter: DEAD_LETTER_ATTACH_INTERPRETER,
            environment: DEAD_LETTER_ATTACH_ENVIRONMENT,
          },
          {
            parent: this,
            dependsOn: [deadLetterSubscription, deadLetterPublisher, triggerSubscriber],
          },
        )
      : undefined;

    // ---------------------------------------------------------- flush: HTTP, called by Scheduler
    this.flush = new gcp.cloudfunctionsv2.Function(
      `${name}-flush`,
      {
        project: args.project,
        location: args.region,
        description: "logarchive loader: load each table's queued objects, one job per window",
        buildConfig: buildConfig(FLUSH_FUNCTION),
        serviceConfig: serviceConfig(this.flushAccount, args.flushTimeoutSeconds),
      },
      { parent: this, dependsOn: buildGrants },
    );
    const flushInvoker = new gcp.cloudrunv2.ServiceIamMember(
      `${name}-flush-invoker`,
      {
        project: args.project,
        location: args.region,
        name: this.flush.name,
        role: LOADER_ROLES.invoker,
        member: member(schedulerAccount),
      },
      parent,
    );
    this.schedule = new gcp.cloudscheduler.Job(
      `${name}-flush-schedule`,
      {
        project: args.project,
        region: args.region,
        description: "logarchive loader: call the flush function every flush_interval",
        schedule: args.scheduler.schedule,
        timeZone: args.scheduler.timeZone,
        attemptDeadline: args.scheduler.attemptDeadline,
        retryConfig: { retryCount: args.scheduler.retryCount },
        httpTarget: {
          uri: this.flush.url,
          httpMethod: args.scheduler.httpMethod,
          oidcToken: { serviceAccountEmail: schedulerAccount.email, audience: this.flush.url },
        },
      },
      { parent: this, dependsOn: [flushInvoker] },
    );
    this.registerOutputs({
      finalizeFunction: this.finalize.name,
      flushFunction: this.flush.name,
      deadLetterTopic: this.deadLetterTopic.id,
      deadLetterCommand: this.deadLetterCommand,
    });
  }
}
