// The archive compactor on Kubernetes (logarchive:archiveCompaction, docs/design/compaction.md):
// an hourly CronJob running `logarchive compact --pending` from the shipper's image, with its
// own ServiceAccount for its own IRSA role (infra/components/roles.ts CompactorRole). The
// objects are plain data from compactorManifests, so tests check them without Pulumi; the
// component registers one typed resource per object, as ShipperDaemonSet does.

import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { COMPACTOR_REQUESTS, compactorLookbackHours } from "../../lib/economics/compactor.ts";
import { DEFAULT_NON_ROOT_UID, type KubernetesObject } from "../../shipper/deploy/daemonset.ts";

export const COMPACTOR_NAME = "logarchive-compactor";
/** The container's Kubernetes name. */
export const COMPACTOR_CONTAINER = "compactor";
/**
 * Minutes after an hour's settle delay has passed at which the run that compacts it starts: the
 * schedule's minute is settleMinutes past the hour plus this, so each hour is picked up by the
 * first run after it settles rather than up to an hour later.
 */
export const SCHEDULE_SLACK_MINUTES = 5;
/**
 * A run may take at most this long (activeDeadlineSeconds): with concurrencyPolicy Forbid a run
 * still going when the next is due makes Kubernetes skip that one, so a stuck run is ended
 * before the next hour's run is due.
 */
export const RUN_DEADLINE_SECONDS = 55 * 60;
/**
 * Each pod's requests: lib/economics/compactor.ts COMPACTOR_REQUESTS, the one source the model
 * prices too. From docs/benchmarks.md "Compaction" (2026-12-07): 10.5-11.3 CPU-seconds per GB on
 * one core (CPU-bound: SHA-256 and the S3 client), so 1 CPU; peak RSS 237-252 MiB per
 * namespace-hour and 384 MiB reading one pending hour's indexes at 10,000 nodes, plus about
 * 120 MiB per concurrent compaction (4 by default): about 864 MiB a run, so memory 1Gi, equal to
 * the limit below.
 */
export const DEFAULT_COMPACTOR_REQUESTS = COMPACTOR_REQUESTS;
/**
 * Memory limit = request (1Gi, see above: about 864 MiB estimated for a run at 10,000 nodes; the
 * benchmark's "a 1 GiB limit leaves room"). No CPU limit: a run is CPU-bound and throttling would
 * only push it toward its deadline.
 */
export const DEFAULT_COMPACTOR_LIMITS = { memory: "1Gi" } as const;

const SELECTOR = { "app.kubernetes.io/name": "logarchive", "app.kubernetes.io/component": "compactor" };
const LABELS = { ...SELECTOR, "app.kubernetes.io/part-of": "logarchive" };

/** What `logarchive compact --pending` is told. */
export interface CompactorCommandSettings {
  bucket: string;
  /** The policy's archive.prefix. */
  prefix: string;
  region: string;
  /** Minutes after an hour ends before it is compacted (archiveCompaction.settleMinutes). */
  settleMinutes: number;
  /** Largest part, bytes (archiveCompaction.partMaxBytes). */
  partMaxBytes: number;
  /**
   * The originals' landing retention in days after their hour (archiveCompaction.landingDays, the
   * shipper's landing_days): --landing-days, and the --lookback, which ends before it does.
   */
  landingDays: number;
  /** The bucket's default retention (objectLockDays): --lock-days, what an uncompacted original is extended to. */
  lockDays: number;
  /**
   * Hours after its end at which an hour's compacted originals get delete markers
   * (archiveCompaction.athenaCutoffHours): --delete-after, so Athena's cutoff view, which reads
   * newer hours from the originals, never misses one.
   */
  deleteAfterHours: number;
  /** Pods of one run (archiveCompaction.shards), each `--shard $(JOB_COMPLETION_INDEX)/<shards>`. */
  shards: number;
  s3Endpoint?: string;
}

/**
 * The pod's environment variable carrying its completion index. The Job controller also sets it
 * for Indexed Jobs, but the container's env defines it itself from the pod annotation
 * (https://kubernetes.io/docs/concepts/workloads/controllers/job/#completion-mode), so the
 * `$(JOB_COMPLETION_INDEX)` in args is always expanded: Kubernetes expands `$(VAR)` in args from
 * the container's env, and leaves a reference to an undefined variable as it is
 * (https://kubernetes.io/docs/tasks/inject-data-application/define-command-argument-container/#use-environment-variables-to-define-arguments).
 */
export const COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX";
/** The annotation the Job controller puts on each pod of an Indexed Job. */
export const COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index";

/** The CronJob's command line after the image's entrypoint (`node … cli/logarchive.js`): the one place it is written. */
export function compactorArgs(s: CompactorCommandSettings): string[] {
  return [
    "compact",
    "--pending",
    "--bucket",
    s.bucket,
    "--prefix",
    s.prefix,
    "--settle",
    `${s.settleMinutes}m`,
    "--part-max-bytes",
    String(s.partMaxBytes),
    "--lookback",
    `${compactorLookbackHours(s.landingDays)}h`,
    "--landing-days",
    String(s.landingDays),
    "--lock-days",
    String(s.lockDays),
    "--delete-after",
    `${s.deleteAfterHours}h`,
    "--shard",
    `$(${COMPLETION_INDEX_ENV})/${s.shards}`,
    "--region",
    s.region,
    ...(s.s3Endpoint === undefined ? [] : ["--s3-endpoint", s.s3Endpoint]),
  ];
}

/** Hourly, at the minute each hour has just settled (cron, in the cluster's time zone; only the minute is used). */
export function compactorSchedule(settleMinutes: number): string {
  return `${(settleMinutes + SCHEDULE_SLACK_MINUTES) % 60} * * * *`;
}

export interface CompactorManifestArgs extends CompactorCommandSettings {
  /** The shipper's image (shipper/deploy/Dockerfile), which carries the whole CLI. */
  image: string;
  /** The shipper's namespace; it must exist (the shipper's DaemonSet creates it by default). */
  namespace: string;
  /** IRSA: the compactor role's ARN. */
  roleArn: string;
  /** uid and gid to run as: the image's `node` user by default. */
  uid?: number;
}

/** The ServiceAccount and the CronJob, as `kubectl apply` would take them. */
export function compactorManifests(args: CompactorManifestArgs): KubernetesObject[] {
  const uid = args.uid ?? DEFAULT_NON_ROOT_UID;
  const meta = { name: COMPACTOR_NAME, namespace: args.namespace, labels: { ...LABELS } };
  const container = {
    name: COMPACTOR_CONTAINER,
    image: args.image,
    imagePullPolicy: "IfNotPresent",
    args: compactorArgs(args),
    env: [
      { name: "AWS_REGION", value: args.region },
      {
        name: COMPLETION_INDEX_ENV,
        valueFrom: { fieldRef: { fieldPath: `metadata.annotations['${COMPLETION_INDEX_ANNOTATION}']` } },
      },
    ],
    resources: { requests: { ...DEFAULT_COMPACTOR_REQUESTS }, limits: { ...DEFAULT_COMPACTOR_LIMITS } },
    securityContext: {
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ["ALL"] },
      runAsUser: uid,
      runAsGroup: uid,
      runAsNonRoot: true,
    },
    volumeMounts: [{ name: "tmp", mountPath: "/tmp" }],
    terminationMessagePolicy: "FallbackToLogsOnError",
  };
  return [
    {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { ...meta, annotations: { "eks.amazonaws.com/role-arn": args.roleArn } },
      // The compactor never calls the Kubernetes API; IRSA mounts its own token.
      automountServiceAccountToken: false,
    },
    {
      apiVersion: "batch/v1",
      kind: "CronJob",
      metadata: meta,
      spec: {
        schedule: compactorSchedule(args.settleMinutes),
        // Two runs at once would compact the same hours twice (harmless, the manifest commit is
        // idempotent, but twice the requests); a missed run's hours are pending for the next.
        concurrencyPolicy: "Forbid",
        startingDeadlineSeconds: 600,
        successfulJobsHistoryLimit: 3,
        failedJobsHistoryLimit: 3,
        jobTemplate: {
          metadata: { labels: { ...LABELS } },
          spec: {
            // One pod per shard, all at once: pod i runs --shard i/shards
            // (https://kubernetes.io/docs/concepts/workloads/controllers/job/#completion-mode;
            // a failed pod is replaced by one with the same index).
            completionMode: "Indexed",
            completions: args.shards,
            parallelism: args.shards,
            // backoffLimit counts failed pods of the whole Job and, once passed, ends the shards
            // still running: 2 retries per shard, as the one-pod Job had.
            backoffLimit: 2 * args.shards,
            activeDeadlineSeconds: RUN_DEADLINE_SECONDS,
            template: {
              metadata: { labels: { ...LABELS } },
              spec: {
                serviceAccountName: COMPACTOR_NAME,
                automountServiceAccountToken: false,
                restartPolicy: "Never",
                enableServiceLinks: false,
                nodeSelector: { "kubernetes.io/os": "linux" },
                securityContext: { seccompProfile: { type: "RuntimeDefault" } },
                containers: [container],
                volumes: [{ name: "tmp", emptyDir: { sizeLimit: "64Mi" } }],
              },
            },
          },
        },
      },
    },
  ];
}

export interface CompactorCronJobArgs {
  image: pulumi.Input<string>;
  bucket: pulumi.Input<string>;
  region: pulumi.Input<string>;
  prefix: pulumi.Input<string>;
  namespace: string;
  roleArn: pulumi.Input<string>;
  settleMinutes: number;
  partMaxBytes: number;
  landingDays: number;
  lockDays: number;
  deleteAfterHours: number;
  shards: number;
  s3Endpoint?: pulumi.Input<string>;
  uid?: number;
}

export class CompactorCronJob extends pulumi.ComponentResource {
  /** The objects as compactorManifests made them. */
  readonly objects: pulumi.Output<KubernetesObject[]>;
  readonly serviceAccount: k8s.core.v1.ServiceAccount;
  readonly cronJob: k8s.batch.v1.CronJob;
  readonly namespace: string;

  constructor(name: string, args: CompactorCronJobArgs, opts?: pulumi.ComponentResourceOptions) {
    super("logarchive:k8s:CompactorCronJob", name, {}, opts);
    this.namespace = args.namespace;
    this.objects = pulumi
      .all([args.image, args.bucket, args.region, args.prefix, args.roleArn, args.s3Endpoint])
      .apply(([image, bucket, region, prefix, roleArn, s3Endpoint]) =>
        compactorManifests({
          image,
          bucket,
          region,
          prefix,
          roleArn,
          namespace: args.namespace,
          settleMinutes: args.settleMinutes,
          partMaxBytes: args.partMaxBytes,
          landingDays: args.landingDays,
          lockDays: args.lockDays,
          deleteAfterHours: args.deleteAfterHours,
          shards: args.shards,
          ...(s3Endpoint === undefined ? {} : { s3Endpoint }),
          ...(args.uid === undefined ? {} : { uid: args.uid }),
        }),
      );
    const object = (kind: string) =>
      this.objects.apply((objects) => {
        const found = objects.find((o) => o.kind === kind);
        if (found === undefined) throw new Error(`CompactorCronJob: compactorManifests made no ${kind}`);
        return found;
      });
    const serviceAccount = object("ServiceAccount");
    const cronJob = object("CronJob");
    // Names are fixed (metadata.name), so a replacement must delete before it creates.
    const childOpts = { parent: this, deleteBeforeReplace: true };
    this.serviceAccount = new k8s.core.v1.ServiceAccount(
      `${name}-serviceaccount`,
      {
        metadata: serviceAccount.apply((o) => o.metadata),
        automountServiceAccountToken: serviceAccount.apply((o) => o.automountServiceAccountToken as boolean),
      },
      childOpts,
    );
    this.cronJob = new k8s.batch.v1.CronJob(
      `${name}-cronjob`,
      {
        metadata: cronJob.apply((o) => o.metadata),
        spec: cronJob.apply((o) => o.spec) as pulumi.Output<never>,
      },
      // Its pods run as the ServiceAccount, which must exist first.
      { ...childOpts, dependsOn: [this.serviceAccount] },
    );
    this.registerOutputs({ namespace: this.namespace, cronJobName: this.cronJob.metadata.name });
  }
}
