// The local cloud: every service the pipeline talks to, started on this machine from
// npm packages and our own small servers, with state under one data directory.
//
//   S3 archive front ─▶ S3 (s3rver) ──bucket notification bridge──▶ SQS (fauxqs)
//   GCS (local/gcs, JSON API subset)            warehouse (DuckDB file)

import { join } from "node:path";
import { SQSClient } from "@aws-sdk/client-sqs";
import { Storage } from "@google-cloud/storage";
import { STACK_SETTINGS, type StackSettings, shipperLockOptions } from "../infra/config.ts";
import { destinations, type NamespacePolicy, notificationRules } from "../lib/policy/policy.ts";
import { type GcsObjectResource, type LocalGcs, startLocalGcs } from "./gcs/server.ts";
import { LOCAL_S3_CREDENTIALS, type LocalS3, startLocalS3 } from "./s3.ts";
import { type S3ArchiveFront, startS3ArchiveFront } from "./s3-archive/server.ts";
import type { BucketConfig, RestoreTier, RetentionMode } from "./s3-archive/state.ts";
import { NotificationBridge } from "./s3-notifications.ts";
import { LOCAL_SQS_CREDENTIALS, type LocalSqs, startLocalSqs } from "./sqs.ts";
import { type LocalWarehouse, openLocalWarehouse } from "./warehouse.ts";

/** A setting's default as `pulumi up` deploys it when the stack does not set it (infra/config.ts). */
function deployedDefault<K extends keyof StackSettings>(key: K): StackSettings[K] {
  const spec = STACK_SETTINGS.find((s) => s.key === key);
  if (spec === undefined) throw new Error(`infra/config.ts has no stack setting ${key}`);
  return spec.schema.parse(undefined) as StackSettings[K];
}

/**
 * The archive bucket as `pulumi up` makes it at the stack's defaults: Object Lock with the default
 * retention every version takes unless its PUT names one (objectLockMode, objectLockDays), for
 * `logarchive local --object-lock`.
 */
export function deployedArchiveBucket(): Omit<BucketConfig, "name"> {
  return {
    objectLock: true,
    defaultRetention: { mode: deployedDefault("objectLockMode"), days: deployedDefault("objectLockDays") },
  };
}

/** The shipper's lock options (object_lock_mode, landing_days) for an archive bucket, as the stack sets them. */
export type ShipperLockOptions = ReturnType<typeof shipperLockOptions>;

/**
 * What the stack tells the shipper about a bucket (infra's shipperLockOptions): lock headers in
 * the bucket's default retention mode, so stream objects get their short retention instead of the
 * default's; none for a bucket without a default retention (a plain bucket refuses them), which
 * is `object_lock_mode: off`. With `compaction` (archiveCompaction.enabled), archive originals get the
 * stack's default landing days.
 */
export function shipperLockFor(
  bucket: Omit<BucketConfig, "name"> | undefined,
  compaction = false,
): ShipperLockOptions | null {
  const retention = bucket?.defaultRetention;
  if (retention === undefined) return null;
  return shipperLockOptions({
    objectLockMode: retention.mode,
    archiveCompaction: { ...deployedDefault("archiveCompaction"), enabled: compaction },
  });
}

export interface LocalCloudOptions {
  /** Where every service keeps its state; reused across runs. */
  dataDir: string;
  /** Interface to listen on. Default 127.0.0.1. */
  host?: string;
  /** Ports; 0 (the default) picks a free one. */
  s3Port?: number;
  sqsPort?: number;
  gcsPort?: number;
  policy: NamespacePolicy;
  /** S3 bucket of the archive. */
  bucket?: string;
  /** Versioning and Object Lock of the archive bucket (docs/local-s3-archive.md); default plain. */
  archiveBucket?: Omit<BucketConfig, "name">;
  /**
   * Archive compaction on, as a stack with archiveCompaction.enabled: the shipper keeps archive
   * originals only the landing days (shipperLock). Needs an archive bucket with a default retention.
   */
  archiveCompaction?: boolean;
  /** The clock the archive front's restores and retention run on (tests move it). Default Date.now. */
  archiveClock?: () => number;
  /** Hours a restore job takes in the archive front; default the S3 user guide's upper ends. */
  restoreHours?: (storageClass: string, tier: RestoreTier) => number;
  /** GCS bucket the transfer copies analytics objects into. */
  gcsBucket?: string;
  queueName?: string;
  region?: string;
  /** Events of the services; names ending in `_error` or `_failed` are failures. */
  log?: (event: string, fields: Record<string, unknown>) => void;
}

export interface LocalCloudEndpoints {
  region: string;
  s3: {
    endpoint: string;
    bucket: string;
    accessKeyId: string;
    secretAccessKey: string;
    /** The archive bucket's Object Lock default retention, when it has one. */
    defaultRetention?: { mode: RetentionMode; days: number };
  };
  sqs: { endpoint: string; queueUrl: string; queueArn: string; accessKeyId: string; secretAccessKey: string };
  gcs: { apiEndpoint: string; bucket: string; projectId: string };
  warehouse: { path: string; tables: string[] };
}

export interface LocalCloud {
  endpoints: LocalCloudEndpoints;
  notifications: NotificationBridge;
  /**
   * The S3 endpoint's archive front: storage classes, restores, versions and Object Lock over
   * s3rver (docs/local-s3-archive.md). Tests drive it: setStorageClass, completeRestores.
   */
  s3Archive: S3ArchiveFront;
  /**
   * The lock options the shipper must be given for this archive bucket (shipperLockFor), or null
   * when it has no default retention (the shipper sends no lock headers).
   */
  shipperLock: ShipperLockOptions | null;
  warehouse: LocalWarehouse;
  /** Objects finalized in the local GCS, for the transfer/loader stages to subscribe to. */
  onGcsFinalize(listener: GcsFinalizeListener): void;
  stop(): Promise<void>;
}

export type GcsFinalizeListener = (object: GcsObjectResource) => void | Promise<void>;

export const LOCAL_GCS_PROJECT = "logarchive-local";

export async function startLocalCloud(options: LocalCloudOptions): Promise<LocalCloud> {
  const host = options.host ?? "127.0.0.1";
  const region = options.region ?? "us-east-1";
  const bucket = options.bucket ?? "logarchive-archive";
  const gcsBucket = options.gcsBucket ?? "logarchive-landing";
  const queueName = options.queueName ?? "logarchive-s3-events";
  // Tables of the default dataset live in DuckDB's main schema and are made now, so the
  // warehouse can be queried before the first load; the loader makes the others (routes to
  // other datasets, {namespace} tables) in their schemas before their first batch.
  if (options.archiveCompaction && options.archiveBucket?.defaultRetention === undefined) {
    throw new Error("archive compaction needs an archive bucket with an Object Lock default retention");
  }
  const tables = destinations(options.policy)
    .filter((d) => d.dataset === options.policy.warehouse.dataset)
    .map((d) => d.table);
  const stops: (() => Promise<void> | void)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop();
  };
  const finalizeListeners: GcsFinalizeListener[] = [];

  try {
    // s3rver stores the bodies and emits the events; the front on the S3 port adds what it
    // lacks (archive classes, restores, versions, Object Lock) and passes the rest through.
    const s3: LocalS3 = await startLocalS3({
      host,
      port: 0,
      dataDir: join(options.dataDir, "s3"),
      buckets: [bucket],
    });
    stops.push(() => s3.stop());
    const s3Archive = await startS3ArchiveFront({
      host,
      port: options.s3Port ?? 0,
      upstream: s3.endpoint,
      region,
      dataDir: join(options.dataDir, "s3-archive"),
      buckets: [{ name: bucket, ...options.archiveBucket }],
      ...(options.archiveClock ? { now: options.archiveClock } : {}),
      ...(options.restoreHours ? { restoreHours: options.restoreHours } : {}),
    });
    stops.push(() => s3Archive.stop());

    const sqs: LocalSqs = await startLocalSqs({
      host,
      port: options.sqsPort ?? 0,
      dataDir: join(options.dataDir, "sqs"),
      queueName,
      region,
    });
    stops.push(() => sqs.stop());

    const sqsClient = new SQSClient({ endpoint: sqs.endpoint, region, credentials: LOCAL_SQS_CREDENTIALS });
    stops.push(() => sqsClient.destroy());
    const notifications = new NotificationBridge({
      s3: s3.server,
      sqs: sqsClient,
      queueUrl: sqs.queueUrl,
      bucket,
      region,
      rules: notificationRules(options.policy),
      ...(options.log ? { log: options.log } : {}),
    });
    await notifications.start();
    stops.push(() => notifications.stop());

    const gcs: LocalGcs = await startLocalGcs({
      host,
      port: options.gcsPort ?? 0,
      dataDir: join(options.dataDir, "gcs"),
      // Into the run's log with everything else, instead of the server's console.error.
      ...(options.log
        ? {
            log: (message: string, error?: unknown) =>
              options.log?.("local_gcs_error", {
                message,
                ...(error === undefined ? {} : { error: String(error) }),
              }),
          }
        : {}),
      onFinalize: async (object) => {
        for (const listener of finalizeListeners) await listener(object);
      },
    });
    stops.push(() => gcs.stop());
    const storage = new Storage({ apiEndpoint: gcs.url, projectId: LOCAL_GCS_PROJECT });
    const [exists] = await storage.bucket(gcsBucket).exists();
    if (!exists) await storage.createBucket(gcsBucket);

    const warehouse = await openLocalWarehouse(join(options.dataDir, "warehouse.duckdb"), tables);
    stops.push(() => warehouse.close());

    return {
      endpoints: {
        region,
        s3: {
          endpoint: s3Archive.endpoint,
          bucket,
          ...LOCAL_S3_CREDENTIALS,
          ...(options.archiveBucket?.defaultRetention
            ? { defaultRetention: options.archiveBucket.defaultRetention }
            : {}),
        },
        sqs: {
          endpoint: sqs.endpoint,
          queueUrl: sqs.queueUrl,
          queueArn: sqs.queueArn,
          ...LOCAL_SQS_CREDENTIALS,
        },
        gcs: { apiEndpoint: gcs.url, bucket: gcsBucket, projectId: LOCAL_GCS_PROJECT },
        warehouse: { path: warehouse.path, tables: [...new Set(tables)] },
      },
      notifications,
      s3Archive,
      shipperLock: shipperLockFor(options.archiveBucket, options.archiveCompaction === true),
      warehouse,
      onGcsFinalize: (listener) => {
        finalizeListeners.push(listener);
      },
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
