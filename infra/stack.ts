// The whole stack as one function of validated config and the namespace policy, so tests run it
// under pulumi.runtime.setMocks without a Pulumi.<stack>.yaml. infra/index.ts reads the config and
// calls this. Parts, in the order data flows: archive bucket → event queue → transfer → landing
// and state buckets → loader → warehouse; beside them the Athena catalog and the AWS roles, and
// with archive compaction on, the compactor (its role and its CronJob).

import * as aws from "@pulumi/aws";
import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";
import {
  knownDestinations,
  lifecycleScopes,
  policyDatasets,
  retrievalPrefixes,
  shipperWritePrefixes,
  transferredPrefixes,
} from "../lib/infra-contract.ts";
import { compactedPrefix, indexPrefix, tierPrefix } from "../lib/keys/layout.ts";
import { longLivedTiers } from "../lib/keys/tiers.ts";
import { destinations, lifecycleExpirationRules, notificationRules } from "../lib/policy/policy.ts";
import { DEFAULT_NAMESPACE, SHIPPER_NAME } from "../shipper/deploy/daemonset.ts";
import { ArchiveBucket } from "./components/archive-bucket.ts";
import { AthenaCatalog, type AthenaNamedQuery } from "./components/athena-catalog.ts";
import { EventQueue } from "./components/event-queue.ts";
import { LandingBucket, LoaderStateBucket, stateLifecycleRules } from "./components/gcs.ts";
import { Loader } from "./components/loader.ts";
import { CompactorRole, RetrievalRole, ShipperRole } from "./components/roles.ts";
import { archiveLifecycleRules, policyExpirationRules } from "./components/s3-lifecycle.ts";
import { TransferJob, TransferRole } from "./components/transfer.ts";
import { Warehouse } from "./components/warehouse.ts";
import { loaderEnvironment, type StackConfig, shipperLockOptions } from "./config.ts";
import { RETENTION_CAP_SLACK_DAYS, type ShipperRetentionGrant } from "./iam.ts";
import { COMPACTOR_NAME, CompactorCronJob } from "./k8s/compactor-cronjob.ts";
import { ShipperDaemonSet } from "./k8s/shipper-daemonset.ts";

export interface StackInputs {
  /** Validated settings, with the namespace policy (config.policy) and its text (config.policyYaml). */
  config: StackConfig;
  stackName: string;
  /** The Pulumi project's name (Pulumi.yaml `name`). */
  projectName: string;
  athenaQueries: readonly AthenaNamedQuery[];
}

/** A name fragment from the stack name: lowercase letters, digits and `sep`. */
function stackSlug(stackName: string, sep: string, max: number): string {
  return stackName
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, sep)
    .replace(new RegExp(`^${sep}+|${sep}+$`, "g"), "")
    .slice(0, max);
}

/**
 * Where the shipper PUTs objects with a retention of its own, shorter than the bucket's default,
 * and the cap its role's s3:PutObjectRetention carries: the stream copies of stream delivery
 * (stream_expiration_days after their hour) and, with compaction on, the landing originals of
 * the long-lived tiers (landingDays after their hour); undefined when it sets none.
 */
export function shipperRetentionGrant(config: StackConfig): ShipperRetentionGrant | undefined {
  const grants = lifecycleExpirationRules(config.policy).map((r) => ({
    prefixes: [r.prefix],
    days: r.expirationDays,
  }));
  if (config.archiveCompaction.enabled) {
    grants.push({ prefixes: compactedTierPrefixes(config), days: config.archiveCompaction.landingDays });
  }
  if (grants.length === 0) return undefined;
  return {
    prefixes: grants.flatMap((g) => g.prefixes),
    maxDays: Math.max(...grants.map((g) => g.days)) + RETENTION_CAP_SLACK_DAYS,
  };
}

/**
 * The prefixes of the originals archive compaction works on: with compaction on, the long-lived
 * tiers, where the shipper PUTs with its landing retention (shipper landing_days) and where the
 * compactor puts delete markers on what it compacted and extends the retention of what it could
 * not; none otherwise.
 */
export function compactedTierPrefixes(config: StackConfig): string[] {
  if (!config.archiveCompaction.enabled) return [];
  return longLivedTiers().map((tier) => tierPrefix(config.policy.archive.prefix, tier));
}

export function deployLogarchive(inputs: StackInputs) {
  const { config } = inputs;
  const { policy } = config;
  const account = aws.getCallerIdentityOutput();
  const accountId = account.accountId;

  // ------------------------------------------------------------------ AWS
  const tierSettings = {
    ...config.archiveTiers,
    retentionDays: config.retentionDays,
    noncurrentVersionDays: config.noncurrentVersionDays,
    abortIncompleteUploadDays: config.abortIncompleteUploadDays,
    transferWindowDays: config.transferWindowDays,
    transitionSizes: config.archiveTransitionSizes,
  };
  const compaction = config.archiveCompaction.enabled
    ? { ...config.archiveCompaction, compactedPrefix: compactedPrefix(policy.archive.prefix) }
    : undefined;
  const archive = new ArchiveBucket("archive", {
    ...(config.archiveBucketName === undefined ? {} : { bucketName: config.archiveBucketName }),
    objectLock: { mode: config.objectLockMode, days: config.objectLockDays },
    keyAliasPrefix: `alias/${stackSlug(inputs.projectName, "-", 40)}-${stackSlug(inputs.stackName, "-", 40)}-archive-`,
    lifecycleRules: [
      ...archiveLifecycleRules(lifecycleScopes(policy), tierSettings, undefined, compaction),
      ...policyExpirationRules(lifecycleExpirationRules(policy), tierSettings),
    ],
  });

  const events = new EventQueue("events", {
    bucketName: archive.bucketName,
    bucketArn: archive.bucketArn,
    accountId,
    rules: notificationRules(policy),
    maxReceiveCount: config.queueMaxReceiveCount,
    bucketReady: archive.ready,
  });

  const retentionGrant = shipperRetentionGrant(config);
  const shipperNamespace = config.shipper.namespace ?? DEFAULT_NAMESPACE;
  const shipper = new ShipperRole("shipper", {
    bucketArn: archive.bucketArn,
    keyArn: archive.keyArn,
    writePrefixes: shipperWritePrefixes(policy),
    ...(retentionGrant === undefined ? {} : { retention: retentionGrant }),
    oidcProviderArn: config.eksOidcProviderArn,
    // The DaemonSet's ServiceAccount, as shipper/deploy/daemonset.ts names it.
    namespace: shipperNamespace,
    serviceAccount: SHIPPER_NAME,
  });

  // ------------------------------------------------------------------ Kubernetes: the shipper DaemonSet
  const daemonSet = config.deployShipper
    ? new ShipperDaemonSet("shipper", {
        ...config.shipper,
        shipperConfig: { ...config.shipper.shipperConfig, ...shipperLockOptions(config) },
        image: config.shipper.image as string,
        bucket: archive.bucketName,
        region: config.providers.awsRegion,
        policyYaml: config.policyYaml,
        roleArn: shipper.roleArn,
      })
    : undefined;

  // ------------------------------------------------------------------ archive compaction
  // parseStackConfig refuses compaction without deployShipper: the CronJob runs beside the
  // DaemonSet, in its namespace, from its image.
  const compactorRole =
    compaction === undefined
      ? undefined
      : new CompactorRole("compactor", {
          bucketArn: archive.bucketArn,
          keyArn: archive.keyArn,
          readPrefixes: [
            ...longLivedTiers().map((tier) => tierPrefix(policy.archive.prefix, tier)),
            indexPrefix(policy.archive.prefix),
          ],
          compactedPrefix: compaction.compactedPrefix,
          // Delete markers on compacted originals; uncompacted ones extended to the bucket default.
          originalPrefixes: compactedTierPrefixes(config),
          maxRetentionDays: config.objectLockDays + RETENTION_CAP_SLACK_DAYS,
          oidcProviderArn: config.eksOidcProviderArn,
          namespace: shipperNamespace,
          serviceAccount: COMPACTOR_NAME,
        });
  const compactor =
    compaction === undefined || compactorRole === undefined || daemonSet === undefined
      ? undefined
      : new CompactorCronJob(
          "compactor",
          {
            image: config.shipper.image as string,
            bucket: archive.bucketName,
            region: config.providers.awsRegion,
            prefix: policy.archive.prefix,
            namespace: shipperNamespace,
            roleArn: compactorRole.roleArn,
            settleMinutes: compaction.settleMinutes,
            partMaxBytes: compaction.partMaxBytes,
            landingDays: compaction.landingDays,
            lockDays: config.objectLockDays,
            deleteAfterHours: compaction.athenaCutoffHours,
            shards: compaction.shards,
            ...(config.shipper.uid === undefined ? {} : { uid: config.shipper.uid }),
          },
          // The namespace is the DaemonSet's (created with it by default).
          { dependsOn: [daemonSet] },
        );

  const retrieval = new RetrievalRole("retrieval", {
    bucketArn: archive.bucketArn,
    keyArn: archive.keyArn,
    principals: [...config.retrievalPrincipals],
    objectPrefixes: retrievalPrefixes(policy),
  });

  const athena = new AthenaCatalog("athena", {
    databaseName: `logarchive_${stackSlug(inputs.stackName, "_", 40)}`,
    archiveBucketName: archive.bucketName,
    archivePrefix: policy.archive.prefix,
    projectionStart: config.athenaProjectionStart,
    bytesScannedCutoffPerQuery: config.athenaBytesScannedCutoff,
    resultsExpirationDays: config.athenaResultsDays,
    namedQueries: inputs.athenaQueries,
    compaction: config.archiveCompaction,
  });

  // ------------------------------------------------------------------ S3 → GCS
  const project = config.providers.gcpProject;
  const transferAgent = gcp.storage.getTransferProjectServiceAccountOutput({ project });
  const transferRole = new TransferRole("transfer", {
    bucketArn: archive.bucketArn,
    keyArn: archive.keyArn,
    queueArn: events.queueArn,
    readPrefixes: transferredPrefixes(policy),
    googleSubjectId: transferAgent.subjectId,
  });

  const landing = new LandingBucket("landing", {
    location: config.landingLocation,
    retentionDays: config.landingRetentionDays,
  });
  const state = new LoaderStateBucket("loader-state", {
    location: config.landingLocation,
    rules: stateLifecycleRules(
      config.loaderConfig.statePrefix,
      config.stateMarkerDays,
      config.stateBatchDays,
    ),
  });

  const transfer = new TransferJob("transfer", {
    project,
    sourceBucketName: archive.bucketName,
    roleArn: transferRole.roleArn,
    queueArn: events.queueArn,
    includePrefixes: transferredPrefixes(policy),
    landingBucketName: landing.bucketName,
    serviceAgentEmail: transferAgent.email,
    dependsOn: [transferRole.policy, events.notification],
  });

  // ------------------------------------------------------------------ GCP: loader and warehouse
  const projectNumber = gcp.organizations.getProjectOutput({ projectId: project }).number;
  const loader = new Loader("loader", {
    project,
    projectNumber,
    region: config.functionRegion,
    triggerRegion: config.landingLocation.toLowerCase(),
    accountIdPrefix: `la-${stackSlug(inputs.stackName, "-", 16)}`,
    landingBucketName: landing.bucketName,
    stateBucketName: state.bucketName,
    quarantinePrefix: config.loaderConfig.quarantinePrefix,
    packageDir: config.functionsPackageDir,
    environment: pulumi
      .all([landing.bucketName, state.bucketName])
      .apply(([landingBucket, stateBucket]) =>
        loaderEnvironment(config, { landingBucket, stateBucket, policyYaml: config.policyYaml }),
      ),
    finalizeTimeoutSeconds: Math.ceil(config.finalizeTimeout / 1000),
    flushTimeoutSeconds: Math.ceil(config.loaderConfig.flushFunctionTimeoutMs / 1000),
    memory: config.functionMemory,
    finalizeMaxInstances: config.finalizeMaxInstances,
    scheduler: config.flushScheduler,
    deadLetterMaxDeliveryAttempts: config.deadLetterMaxDeliveryAttempts,
    attachDeadLetter: config.attachDeadLetter,
  });

  const warehouse = new Warehouse("warehouse", {
    project,
    location: config.bigqueryLocation,
    datasets: policyDatasets(policy),
    tables: knownDestinations(policy, destinations(policy), config.warehouseNamespaces),
    storageBillingModel: config.storageBillingModel,
    partitionExpirationDays: config.partitionExpirationDays,
    deletionProtection: config.deletionProtection,
    loaderWriters: [pulumi.interpolate`serviceAccount:${loader.flushAccount.email}`],
    loaderCheckers: [pulumi.interpolate`serviceAccount:${loader.finalizeAccount.email}`],
    readers: config.warehouseReaders,
  });

  return {
    parts: {
      archive,
      events,
      shipper,
      daemonSet,
      compactorRole,
      compactor,
      retrieval,
      athena,
      transferRole,
      transfer,
      landing,
      state,
      loader,
      warehouse,
    },
    outputs: {
      archiveBucketName: archive.bucketName,
      archiveKeyArn: archive.keyArn,
      eventQueueArn: events.queueArn,
      eventDeadLetterQueueUrl: events.deadLetterQueue.url,
      transferRoleArn: transferRole.roleArn,
      transferJobName: transfer.job.name,
      landingBucketName: landing.bucketName,
      stateBucketName: state.bucketName,
      finalizeFunction: loader.finalize.name,
      flushFunctionUrl: loader.flush.url,
      finalizeDeadLetterTopic: loader.deadLetterTopic.id,
      finalizeDeadLetterCommand: loader.deadLetterCommand,
      finalizeTriggerSubscription: loader.triggerSubscription,
      bigqueryDatasets: [...warehouse.datasets.keys()],
      athenaWorkgroup: athena.workgroup.name,
      athenaResultsKeyArn: athena.resultsBucket.keyArn,
      athenaDatabase: athena.database.name,
      athenaTable: athena.table.name,
      shipperRoleArn: shipper.roleArn,
      shipperNamespace: daemonSet?.namespace ?? shipperNamespace,
      ...(compactorRole === undefined ? {} : { compactorRoleArn: compactorRole.roleArn }),
      retrievalRoleArn: retrieval.roleArn,
    },
  };
}
