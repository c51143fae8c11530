// The stack's settings: one list with each key's schema, default, unit and one line of docs.
// docs/deploy.md's config table and Pulumi.dev.yaml are generated from it (infra/config.test.ts
// checks they agree), and a bad value stops `pulumi up` with one line naming the key.
//
// No Pulumi import: infra/index.ts reads the raw strings from pulumi.Config and hands them here.
// Everything a setting can be wrong about is checked here, the namespace policy file read and the
// shipper's manifests rendered once, so that no bad value is found after `pulumi up` has started
// registering resources (the Object Lock bucket among the first).

import { readFileSync } from "node:fs";
import { z } from "zod";
import {
  type FlushSchedulerSettings,
  flushSchedulerSettings,
  GEN2_EVENT_FUNCTION_MAX_TIMEOUT_MS,
  LOADER_OPTIONS,
  type LoaderConfig,
  loaderEnvOf,
  resolveLoaderConfig,
} from "../functions/loader/config.ts";
import {
  DEFAULT_ARCHIVE_RETENTION_DAYS,
  DEFAULT_ARCHIVE_TIER_DAYS,
  DEFAULT_TRANSITION_SIZES,
  TRANSITION_SIZES,
} from "../lib/archive-lifecycle.ts";
import {
  COMPACTION_ENABLED_BY_DEFAULT,
  DEFAULT_ATHENA_CUTOFF_HOURS,
  DEFAULT_LANDING_DAYS,
  DEFAULT_PART_MAX_BYTES,
  DEFAULT_SETTLE_MS,
} from "../lib/compaction/defaults.ts";
import { MIN_UPLOAD_PART_BYTES } from "../lib/compaction/part-writer.ts";
import { MAX_SHARD_COUNT } from "../lib/compaction/shard.ts";
import { ConfigError } from "../lib/config/errors.ts";
import { checkDuration, parseSize } from "../lib/config/units.ts";
import {
  COMPACTOR_LOOKBACK_MARGIN_HOURS,
  compactorLookbackHours,
  DEFAULT_COMPACTOR_SHARDS,
  MAX_COMPACTOR_LOOKBACK_HOURS,
} from "../lib/economics/compactor.ts";
import {
  BIGQUERY_STORAGE_BILLING_MODELS,
  DEFAULT_BIGQUERY_PARTITION_EXPIRATION_DAYS,
  DEFAULT_BIGQUERY_STORAGE_BILLING,
  DEFAULT_FINALIZE_MAX_INSTANCES,
  DEFAULT_FUNCTION_MEMORY,
  FUNCTION_MEMORY_CHOICES,
  functionSize,
} from "../lib/gcp-deploy.ts";
import { knownDestinations, policyDatasets } from "../lib/infra-contract.ts";
import { destinations, type NamespacePolicy, parsePolicy } from "../lib/policy/policy.ts";
import { s3BucketNameProblem } from "../lib/s3-bucket-name.ts";
import { shipperManifests } from "../shipper/deploy/daemonset.ts";
import { checkManifestSettings, type ManifestSettingsFile } from "../shipper/deploy/settings.ts";
import { firstTransitionDay } from "./components/s3-lifecycle.ts";

/** Pulumi's config namespace for this project's keys: `logarchive:<key>` (the project name in Pulumi.yaml). */
export const CONFIG_NAMESPACE = "logarchive";

export class StackConfigError extends Error {
  override name = "StackConfigError";
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(problems.join("\n"));
    this.problems = problems;
  }
}

const days = (min: number, max = 36_500) =>
  z
    .number()
    .int("must be a whole number of days")
    .min(min, `must be at least ${min} days`)
    .max(max, `must be at most ${max} days`);

const size = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const n = parseSize(v);
  if (n === null) {
    ctx.addIssue({ code: "custom", message: `is not a size like "10GiB" (got ${JSON.stringify(v)})` });
    return z.NEVER;
  }
  return n;
});

const duration = (maxMs: number) =>
  z.string().transform((v, ctx) => {
    const checked = checkDuration(v, { min: 1000, max: maxMs });
    if (!("ms" in checked)) {
      ctx.addIssue({ code: "custom", message: checked.problem });
      return z.NEVER;
    }
    return checked.ms;
  });

/** Settings of `logarchive manifests --config` the stack sets itself, from the archive it creates. */
export const STACK_MANAGED_SHIPPER_SETTINGS = [
  "bucket",
  "region",
  "prefix",
  "roleArn",
  "s3Endpoint",
] as const;

/** shipper.yaml options the stack sets itself (shipperLockOptions), from the bucket and archiveCompaction. */
export const STACK_MANAGED_SHIPPER_OPTIONS = ["object_lock_mode", "landing_days"] as const;

export const EXAMPLE_SHIPPER_IMAGE = "registry.example.com/logarchive-shipper:0.1.0";

/** The shipper DaemonSet's settings, checked by the manifests' own schema, problems named by key. */
const shipperSettings = z
  .unknown()
  .default({})
  .transform((value, ctx) => {
    let settings: ManifestSettingsFile;
    try {
      settings = checkManifestSettings(value, `${CONFIG_NAMESPACE}:shipper`);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      for (const problem of error.problems) {
        // "resources.limits.cpu: …" names a field under the key; "(top level): …" the key itself.
        const at = problem.indexOf(": ");
        const field = problem.slice(0, at);
        ctx.addIssue({
          code: "custom",
          path: field === "(top level)" ? [] : [field],
          message: problem.slice(at + 2),
        });
      }
      return z.NEVER;
    }
    for (const key of STACK_MANAGED_SHIPPER_SETTINGS) {
      if (settings[key] !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: [key],
          message: "is set by the stack from the archive it creates",
        });
      }
    }
    for (const key of STACK_MANAGED_SHIPPER_OPTIONS) {
      if (settings.shipperConfig?.[key] !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["shipperConfig", key],
          message: "is set by the stack from objectLockMode and archiveCompaction",
        });
      }
    }
    return settings;
  });

/** How often the compactor CronJob runs, in minutes (its schedule, infra/k8s/compactor-cronjob.ts). */
export const COMPACTOR_PERIOD_MINUTES = 60;
/** S3's largest object (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html). */
const S3_MAX_OBJECT_BYTES = 5 * 1024 ** 4;

const YMD = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/;
const OIDC_PROVIDER_ARN = /^arn:aws[a-z-]*:iam::\d{12}:oidc-provider\/[^\s]+$/;
const AWS_PRINCIPAL_ARN = /^arn:aws[a-z-]*:(iam|sts)::\d{12}:[^\s]+$/;
const IAM_MEMBER = /^(user|group|serviceAccount|domain):\S+$/;
const BQ_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,1023}$/;
const K8S_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** Loader options the infra sets itself; the rest may be tuned under `logarchive:loader`. */
export const INFRA_MANAGED_LOADER_OPTIONS = [
  "landing_bucket",
  "state_bucket",
  "policy_file",
  "policy_yaml",
  "warehouse",
  "bigquery_project",
  "bigquery_location",
  "duckdb_path",
  "gcs_endpoint",
  "allow_forced_flush",
] as const;

const tunableLoaderKeys = LOADER_OPTIONS.map((o): string => o.key).filter(
  (k) => !(INFRA_MANAGED_LOADER_OPTIONS as readonly string[]).includes(k),
);

interface SettingSpec {
  key: string;
  /** JSON-typed settings are parsed from Pulumi's config text; strings are taken as they are. */
  json: boolean;
  schema: z.ZodType;
  /** The default as Pulumi.dev.yaml shows it; undefined: required. */
  example: unknown;
  defaultText: string;
  unit: string;
  description: string;
}

function setting<K extends string, S extends z.ZodType>(
  key: K,
  schema: S,
  o: { json?: boolean; example?: unknown; defaultText?: string; unit: string; description: string },
): SettingSpec & { key: K; schema: S } {
  return {
    key,
    json: o.json ?? false,
    schema,
    example: o.example,
    defaultText: o.defaultText ?? (o.example === undefined ? "required" : `\`${JSON.stringify(o.example)}\``),
    unit: o.unit,
    description: o.description,
  };
}

export const STACK_SETTINGS = [
  // ------------------------------------------------------------ policy
  setting("policyFile", z.string().min(1).default("namespaces.yaml"), {
    example: "namespaces.yaml",
    unit: "path",
    description:
      "The namespace policy, relative to the repository root: the same file the shipper reads; prefixes, notification rules, tables and the loader's routing all come from it.",
  }),
  // ------------------------------------------------------------ AWS: archive bucket
  setting(
    "archiveBucketName",
    z
      .string()
      .superRefine((name, ctx) => {
        const problem = s3BucketNameProblem(name);
        if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
      })
      .optional(),
    {
      defaultText: "auto-named",
      unit: "string",
      description:
        "Name of the archive bucket, checked against S3's naming rules; unset lets Pulumi pick a unique name from `logarchive-archive`.",
    },
  ),
  setting("objectLockMode", z.enum(["GOVERNANCE", "COMPLIANCE"]).default("GOVERNANCE"), {
    example: "GOVERNANCE",
    unit: "GOVERNANCE | COMPLIANCE",
    description:
      "Object Lock mode of the default retention. COMPLIANCE: nobody, root included, can delete or shorten it; GOVERNANCE: callers with s3:BypassGovernanceRetention can. Object Lock itself is switched on when the bucket is created and cannot be removed.",
  }),
  setting("objectLockDays", days(1).default(365), {
    json: true,
    example: 365,
    unit: "days",
    description: "Default retention every new object version gets; at most retentionDays.",
  }),
  setting("retentionDays", days(1).default(DEFAULT_ARCHIVE_RETENTION_DAYS), {
    json: true,
    example: DEFAULT_ARCHIVE_RETENTION_DAYS,
    unit: "days",
    description:
      "Age at which archived objects expire (the end of retention); after the last tier plus its minimum storage duration.",
  }),
  setting(
    "archiveTiers",
    z
      .strictObject({
        standardIa: days(30).nullable().default(DEFAULT_ARCHIVE_TIER_DAYS.standardIa),
        glacierIr: days(0).nullable().default(DEFAULT_ARCHIVE_TIER_DAYS.glacierIr),
        deepArchive: days(0).nullable().default(DEFAULT_ARCHIVE_TIER_DAYS.deepArchive),
      })
      .prefault({}),
    {
      json: true,
      example: { ...DEFAULT_ARCHIVE_TIER_DAYS },
      unit: "days per class, null skips",
      description:
        "Age at which objects move to Standard-IA, Glacier Instant Retrieval and Deep Archive; each later than the one before, Standard-IA at 30 days or more (S3's minimum).",
    },
  ),
  setting("archiveTransitionSizes", z.enum(TRANSITION_SIZES).default(DEFAULT_TRANSITION_SIZES), {
    example: DEFAULT_TRANSITION_SIZES,
    unit: TRANSITION_SIZES.join(" | "),
    description:
      "break-even: each archiveTiers transition applies only to objects big enough that its request costs less than the storage it saves (sizes from list prices, the tier days and retentionDays; lib/archive-lifecycle.ts), smaller objects stay in the class they are in; off: every object moves by age alone (S3's default still keeps objects under 128 KB in place).",
  }),
  setting("noncurrentVersionDays", days(1).default(30), {
    json: true,
    example: 30,
    unit: "days",
    description:
      "Age after which an overwritten (noncurrent) version is deleted, once its Object Lock retention allows.",
  }),
  setting("abortIncompleteUploadDays", days(1).default(7), {
    json: true,
    example: 7,
    unit: "days",
    description: "Age after which parts of an unfinished multipart upload are deleted.",
  }),
  setting("transferWindowDays", days(1).default(14), {
    json: true,
    example: 14,
    unit: "days",
    description:
      "Objects the transfer copies stay out of Deep Archive (which Storage Transfer reads only once restored) at least this long; 14 matches the event queue's retention, after which an event is gone anyway. With Deep Archive on, at most retentionDays minus 181 (its 180-day minimum storage duration).",
  }),
  setting(
    "archiveCompaction",
    z
      .strictObject({
        enabled: z.boolean().default(COMPACTION_ENABLED_BY_DEFAULT),
        // At least 2: the compactor extends the lock of an original it could not compact once its
        // hour ended 24 hours ago (lib/compaction/pending.ts), which must fall inside its lookback
        // (landingDays × 24 − 12 hours) before the landing lock ends.
        landingDays: days(2, 365).default(DEFAULT_LANDING_DAYS),
        settleMinutes: z
          .number()
          .int("must be a whole number of minutes")
          .min(1, "must be at least 1 minute")
          .default(DEFAULT_SETTLE_MS / 60_000),
        partMaxBytes: size
          .prefault(DEFAULT_PART_MAX_BYTES)
          .pipe(
            z
              .number()
              .int()
              .min(MIN_UPLOAD_PART_BYTES, `must be at least ${MIN_UPLOAD_PART_BYTES} bytes (5MiB)`)
              .max(
                S3_MAX_OBJECT_BYTES,
                `must be at most ${S3_MAX_OBJECT_BYTES} bytes (5TiB, S3's largest object)`,
              ),
          ),
        athenaCutoffHours: z
          .number()
          .int("must be a whole number of hours")
          .min(1, "must be at least 1 hour")
          .default(DEFAULT_ATHENA_CUTOFF_HOURS),
        shards: z
          .number()
          .int("must be a whole number of pods")
          .min(1, "must be at least 1 pod")
          .max(MAX_SHARD_COUNT, `must be at most ${MAX_SHARD_COUNT} pods`)
          .default(DEFAULT_COMPACTOR_SHARDS),
      })
      .prefault({}),
    {
      json: true,
      example: {
        enabled: COMPACTION_ENABLED_BY_DEFAULT,
        landingDays: DEFAULT_LANDING_DAYS,
        settleMinutes: DEFAULT_SETTLE_MS / 60_000,
        partMaxBytes: DEFAULT_PART_MAX_BYTES,
        athenaCutoffHours: DEFAULT_ATHENA_CUTOFF_HOURS,
        shards: DEFAULT_COMPACTOR_SHARDS,
      },
      unit: "map: boolean, days, minutes, bytes, hours, pods",
      description:
        "Archive compaction (docs/design/compaction.md). enabled: an hourly Kubernetes CronJob (`logarchive compact --pending`, the shipper's image, its own IRSA role) concatenates each namespace-hour's archive objects into parts of at most partMaxBytes under `<prefix>/compacted/`, settleMinutes after the hour ends; the parts take archiveTiers and retentionDays. The originals are PUT with a retention of landingDays (shipper option landing_days); the compactor puts a delete marker on each original a committed manifest names once its hour ended athenaCutoffHours ago (the version goes a day after its retention), and extends an original it could not compact to the bucket's objectLockDays, where it keeps the tier rules. landingDays must be less than the first archiveTiers day. athenaCutoffHours: hours after its end from which Athena reads an hour from the parts. shards: pods of each run (an Indexed Job, pod i runs `--shard i/shards`, namespaces split by a stable hash), each requesting 1 CPU and 1Gi; one pod compacts about 1 GB per 11 CPU-seconds, so the default 4 fits the reference scale's hour in the run with 2× headroom (`logarchive plan` checks yours). Each run looks back (landingDays × 24 − 12) hours, at most 48, which must exceed athenaCutoffHours by a run. Needs deployShipper.",
    },
  ),
  // ------------------------------------------------------------ AWS: queue, roles
  setting("queueMaxReceiveCount", z.number().int().min(1).max(1000).default(10), {
    json: true,
    example: 10,
    unit: "receives",
    description: "Deliveries of one event to Storage Transfer before SQS moves it to the dead-letter queue.",
  }),
  setting(
    "eksOidcProviderArn",
    z
      .string()
      .regex(
        OIDC_PROVIDER_ARN,
        "is not an IAM OIDC provider ARN (arn:aws:iam::<account>:oidc-provider/<issuer>)",
      ),
    {
      unit: "ARN",
      description:
        "The EKS cluster's IAM OIDC provider; the shipper's IRSA role trusts only its ServiceAccount through it.",
    },
  ),
  setting("deployShipper", z.boolean().default(true), {
    json: true,
    example: true,
    unit: "boolean",
    description:
      "Deploy the shipper DaemonSet (infra/k8s) to the cluster of the ambient kubeconfig or `kubernetes:context`; false for teams that apply `logarchive manifests` with kubectl, Helm or Argo.",
  }),
  setting("shipper", shipperSettings, {
    json: true,
    example: { image: EXAMPLE_SHIPPER_IMAGE },
    defaultText: "`{}`; `image` required when deployShipper",
    unit: "map",
    description:
      "The DaemonSet's settings, as in `logarchive manifests --config` (docs/shipper.md#deploy): image, namespace, resources, tolerations, runAs… The stack sets bucket, region, prefix and roleArn itself.",
  }),
  setting(
    "retrievalPrincipals",
    z
      .array(
        z
          .string()
          .regex(AWS_PRINCIPAL_ARN, "is not an IAM principal ARN")
          // Trusting the account root lets every principal of the account with sts:AssumeRole
          // on the role in: the compliance role must name who may use it.
          .refine((arn) => !/:root$/.test(arn), "must not be an account root; name the roles or users"),
        {
          error: (issue) =>
            issue.input === undefined
              ? "required: the role or user ARNs that may assume the retrieval role (the stack does not trust the whole account)"
              : undefined,
        },
      )
      .min(1, "must name at least one role or user ARN"),
    {
      json: true,
      unit: "ARNs",
      description:
        "IAM roles or users that alone may assume the retrieval role (read, restore, legal hold; never delete); required, and never an account root, so the role does not trust the whole account.",
    },
  ),
  // ------------------------------------------------------------ AWS: Athena
  setting("athenaProjectionStart", z.string().regex(YMD, "is not a date YYYY-MM-DD").default("2025-01-01"), {
    example: "2025-01-01",
    unit: "date",
    description: "First day the Athena table's dt projection covers; set it to the first day archived.",
  }),
  setting(
    "athenaBytesScannedCutoff",
    size.prefault("10GiB").pipe(z.number().min(10_000_000, "must be at least 10MB (Athena's minimum)")),
    {
      example: "10GiB",
      unit: "bytes",
      description:
        "Per-query scan limit of the workgroup; a query that would scan more is cancelled (Athena bills $5/TB).",
    },
  ),
  setting("athenaResultsDays", days(1).default(30), {
    json: true,
    example: 30,
    unit: "days",
    description: "Age at which Athena query results are deleted from the results bucket.",
  }),
  // ------------------------------------------------------------ GCP: buckets
  setting("landingLocation", z.string().min(2).default("US"), {
    example: "US",
    unit: "GCS location",
    description:
      "Location of the landing and state buckets and the finalize trigger; BigQuery loads only from its dataset's location.",
  }),
  setting("landingRetentionDays", days(1).default(7), {
    json: true,
    example: 7,
    unit: "days",
    description:
      "Age at which transferred copies in the landing bucket are deleted; the archive in S3 is the record.",
  }),
  setting("stateMarkerDays", days(365).default(400), {
    json: true,
    example: 400,
    unit: "days",
    description:
      "Age at which the loader's claims/, done/, quarantined/ and conflicts/ markers expire; at least a year, as long as an S3 overwrite could re-send an object.",
  }),
  setting("stateBatchDays", days(7).default(7), {
    json: true,
    example: 7,
    unit: "days",
    description:
      "Age at which batch manifests and attempts expire; at least 7 days, longer than Eventarc's 24 h of retries.",
  }),
  // ------------------------------------------------------------ GCP: loader functions
  setting("functionsPackageDir", z.string().min(1).default("dist/functions-package"), {
    example: "dist/functions-package",
    unit: "path",
    description:
      "The loader's package as `npm run build:functions` writes it; uploaded as the functions' source.",
  }),
  setting("functionRegion", z.string().min(2).optional(), {
    defaultText: "`gcp:region`",
    unit: "GCP region",
    description: "Region of the functions and the Scheduler job.",
  }),
  setting("finalizeTimeout", duration(GEN2_EVENT_FUNCTION_MAX_TIMEOUT_MS).prefault("300s"), {
    example: "300s",
    unit: "duration",
    description:
      "Timeout of the finalize function (event-driven gen2 functions allow up to 540s); one object is read and checked per call.",
  }),
  setting(
    "functionMemory",
    z
      .string()
      .refine(
        (v) => functionSize(v) !== null,
        `is not a Cloud Run functions memory tier (${FUNCTION_MEMORY_CHOICES})`,
      )
      .default(DEFAULT_FUNCTION_MEMORY),
    {
      example: DEFAULT_FUNCTION_MEMORY,
      unit: "Mi/Gi",
      description:
        "Memory of each function instance, one of the gen2 tiers; the vCPU is the one the tier comes with (512Mi: 0.333, https://cloud.google.com/functions/docs/configuring/memory). `logarchive cost` prices the same (--function-memory).",
    },
  ),
  setting(
    "finalizeMaxInstances",
    z
      .number()
      .int("must be a whole number")
      .min(1, "must be at least 1")
      .default(DEFAULT_FINALIZE_MAX_INSTANCES),
    {
      json: true,
      example: DEFAULT_FINALIZE_MAX_INSTANCES,
      unit: "instances",
      description:
        "Max instances of the finalize function (Cloud Run functions' default is 100); each checks one object at a time. Over the default, the region's Cloud Run CPU and memory quota bounds it (https://cloud.google.com/run/docs/configuring/max-instances-limits): see docs/scale.md. `logarchive plan` checks the same value (--finalize-max-instances).",
    },
  ),
  setting("deadLetterMaxDeliveryAttempts", z.number().int().min(5).max(100).default(20), {
    json: true,
    example: 20,
    unit: "attempts",
    description:
      "Deliveries of one finalize event before Pub/Sub moves it to the dead-letter topic (Pub/Sub allows 5-100).",
  }),
  setting("attachDeadLetter", z.boolean().default(true), {
    json: true,
    example: true,
    unit: "boolean",
    description:
      "Attach the dead-letter topic to the finalize trigger's Eventarc-owned subscription during `pulumi up`, by running `gcloud pubsub subscriptions update` where Pulumi runs (gcloud installed and logged in as the deployer, and a POSIX shell); false for deployers without gcloud, who run the `finalizeDeadLetterCommand` output by hand.",
  }),
  setting(
    "loader",
    z
      // `pulumi config set --path 'logarchive:loader.max_attempts' 5` stores a number: every value
      // is taken as its text, as the function's environment variable will hold it.
      .record(
        z.string(),
        z
          .union([z.string(), z.number(), z.boolean()], "must be a string, number or boolean")
          .transform(String),
      )
      .default({})
      .superRefine((value, ctx) => {
        for (const key of Object.keys(value)) {
          if (!tunableLoaderKeys.includes(key)) {
            ctx.addIssue({
              code: "custom",
              path: [key],
              message: (INFRA_MANAGED_LOADER_OPTIONS as readonly string[]).includes(key)
                ? "is set by the infra from the other settings"
                : `is not a loader option (one of ${tunableLoaderKeys.join(", ")})`,
            });
          }
        }
      }),
    {
      json: true,
      example: {},
      unit: "map",
      description:
        "Loader options of docs/loader.md (without LOGARCHIVE_, lowercase, e.g. flush_interval: 2m); checked at deploy time by the loader's own rules. The flush function's timeout is flush_function_timeout.",
    },
  ),
  // ------------------------------------------------------------ GCP: BigQuery
  setting("bigqueryLocation", z.string().min(2).optional(), {
    defaultText: "landingLocation",
    unit: "BigQuery location",
    description: "Location of the datasets; must equal landingLocation.",
  }),
  setting(
    "storageBillingModel",
    z.enum(BIGQUERY_STORAGE_BILLING_MODELS).default(DEFAULT_BIGQUERY_STORAGE_BILLING),
    {
      example: DEFAULT_BIGQUERY_STORAGE_BILLING,
      unit: BIGQUERY_STORAGE_BILLING_MODELS.join(" | "),
      description:
        "Dataset storage billing: PHYSICAL bills compressed bytes, and log rows compress well. `logarchive cost` adds up the same (--bigquery-billing).",
    },
  ),
  setting("partitionExpirationDays", days(1).nullable().default(DEFAULT_BIGQUERY_PARTITION_EXPIRATION_DAYS), {
    json: true,
    example: DEFAULT_BIGQUERY_PARTITION_EXPIRATION_DAYS,
    unit: "days, null never",
    description:
      "Age at which a table's day partitions are dropped from BigQuery; the S3 archive keeps the logs.",
  }),
  setting("warehouseNamespaces", z.array(z.string().regex(K8S_NAME, "is not a namespace name")).default([]), {
    json: true,
    example: [],
    unit: "namespaces",
    description:
      "Namespaces whose own table a `{namespace}` route needs, created here with the stack's settings (requirePartitionFilter); a namespace not listed gets its table from the loader before its first batch, with the dataset's partition expiration but no required partition filter.",
  }),
  setting(
    "warehouseReaders",
    z
      .array(
        z.strictObject({
          member: z
            .string()
            .regex(IAM_MEMBER, "is not an IAM member (group:…, user:…, serviceAccount:…, domain:…)"),
          dataset: z.string().regex(BQ_NAME, "is not a dataset name"),
          table: z.string().regex(BQ_NAME, "is not a table name").optional(),
        }),
      )
      .default([]),
    {
      json: true,
      example: [],
      unit: "list",
      description:
        "Who may read the logs in BigQuery: {member, dataset, table?}; a table narrows the grant from the dataset to that table.",
    },
  ),
  setting("deletionProtection", z.boolean().default(true), {
    json: true,
    example: true,
    unit: "boolean",
    description:
      "Refuse to delete the BigQuery tables on `pulumi destroy`; set false, `pulumi up`, then destroy.",
  }),
] as const;

type Spec = (typeof STACK_SETTINGS)[number];
export type StackSettings = { [S in Spec as S["key"]]: z.output<S["schema"]> };

export interface ProviderSettings {
  /** `aws:region`. */
  awsRegion: string;
  /** `gcp:project`. */
  gcpProject: string;
  /** `gcp:region`. */
  gcpRegion: string;
}

export interface StackConfig extends Omit<StackSettings, "functionRegion" | "bigqueryLocation"> {
  /**
   * The loader's options as the deployed functions will resolve them (bucket names are placeholders):
   * the flush timeout, deadline and interval the Scheduler job and the functions are sized from.
   */
  loaderConfig: LoaderConfig;
  /** The Cloud Scheduler job's settings, from loaderConfig. */
  flushScheduler: FlushSchedulerSettings;
  /** The namespace policy of policyFile, parsed, and its text (the shipper's and the functions' copy). */
  policy: NamespacePolicy;
  policyYaml: string;
  functionRegion: string;
  bigqueryLocation: string;
  providers: ProviderSettings;
}

function pathText(path: readonly PropertyKey[]): string {
  return path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("");
}

/** Reads the policy file; a path is relative to the working directory (Pulumi runs at the project root). */
export const readPolicyFile = (path: string): string => readFileSync(path, "utf8");

/**
 * Validates the stack's raw config text (what `pulumi config get` shows) and the providers'
 * settings, reads the namespace policy through `readPolicy`, and checks everything that depends
 * on it. Every problem is one line starting with the key: `logarchive:retentionDays: …`.
 */
export function parseStackConfig(
  raw: Readonly<Record<string, string | undefined>>,
  providers: Readonly<Record<"aws:region" | "gcp:project" | "gcp:region", string | undefined>>,
  readPolicy: (path: string) => string = readPolicyFile,
): StackConfig {
  const problems: string[] = [];
  const out: Record<string, unknown> = {};
  for (const spec of STACK_SETTINGS as readonly SettingSpec[]) {
    const name = `${CONFIG_NAMESPACE}:${spec.key}`;
    const text = raw[spec.key];
    let value: unknown = text;
    if (text !== undefined && spec.json) {
      try {
        value = JSON.parse(text);
      } catch {
        problems.push(`${name}: is not a YAML/JSON value (got ${JSON.stringify(text)})`);
        continue;
      }
    }
    const result = spec.schema.safeParse(value);
    if (result.success) out[spec.key] = result.data;
    else
      for (const issue of result.error.issues)
        problems.push(`${name}${pathText(issue.path)}: ${issue.message}`);
  }
  const known = new Set(STACK_SETTINGS.map((s) => s.key as string));
  for (const key of Object.keys(raw)) {
    if (!known.has(key))
      problems.push(
        `${CONFIG_NAMESPACE}:${key}: is not a setting of this stack (see docs/deploy.md#stack-config)`,
      );
  }
  for (const [key, value] of Object.entries(providers)) {
    if (value === undefined || value === "")
      problems.push(`${key}: required; set it with \`pulumi config set ${key} …\``);
  }
  if (problems.length === 0) problems.push(...crossChecks(out as StackSettings));
  let loader: { config: LoaderConfig; scheduler: FlushSchedulerSettings } | undefined;
  let policy: { policy: NamespacePolicy; yaml: string } | undefined;
  if (problems.length === 0) {
    const settings = out as StackSettings;
    const checked = checkLoaderSettings(settings, providers["gcp:project"] as string);
    if ("problems" in checked) problems.push(...checked.problems);
    else loader = checked;
    const loaded = loadPolicy(settings.policyFile, readPolicy);
    if ("problems" in loaded) problems.push(...loaded.problems);
    else {
      policy = loaded;
      problems.push(...checkShipperManifests(settings, policy.yaml, providers["aws:region"] as string));
      problems.push(...checkWarehouseReaders(settings, policy.policy));
    }
  }
  if (problems.length > 0 || loader === undefined || policy === undefined)
    throw new StackConfigError(problems);
  const settings = out as StackSettings;
  return {
    ...settings,
    loaderConfig: loader.config,
    flushScheduler: loader.scheduler,
    policy: policy.policy,
    policyYaml: policy.yaml,
    functionRegion: settings.functionRegion ?? (providers["gcp:region"] as string),
    bigqueryLocation: settings.bigqueryLocation ?? settings.landingLocation,
    providers: {
      awsRegion: providers["aws:region"] as string,
      gcpProject: providers["gcp:project"] as string,
      gcpRegion: providers["gcp:region"] as string,
    },
  };
}

/** Minimum storage duration of each tier's class (S3 bills an earlier exit as if it stayed). */
const MINIMUM_STORAGE_DAYS = {
  standardIa: { label: "Standard-IA", days: 30 },
  glacierIr: { label: "Glacier Instant Retrieval", days: 90 },
  deepArchive: { label: "Deep Archive", days: 180 },
} as const;

/** Rules that involve more than one key; each line names the key to change. */
function crossChecks(s: StackSettings): string[] {
  const problems: string[] = [];
  const key = (k: string) => `${CONFIG_NAMESPACE}:${k}`;
  if (s.objectLockDays > s.retentionDays) {
    problems.push(
      `${key("objectLockDays")}: must be at most retentionDays (${s.retentionDays}): objects cannot expire while locked`,
    );
  }
  const tiers = [
    ["standardIa", s.archiveTiers.standardIa],
    ["glacierIr", s.archiveTiers.glacierIr],
    ["deepArchive", s.archiveTiers.deepArchive],
  ] as const;
  let previous: { name: string; day: number } | undefined;
  for (const [name, day] of tiers) {
    if (day === null) continue;
    // S3 keeps an object 30 days in Standard-IA before it may move on (API_Transition).
    const gap = previous?.name === "standardIa" ? 30 : 1;
    if (previous !== undefined && day < previous.day + gap) {
      problems.push(
        `${key("archiveTiers")}.${name}: must be at least ${previous.day + gap} (${gap} day(s) after ${previous.name})`,
      );
    }
    previous = { name, day };
  }
  // An object leaving a class before its minimum storage duration is billed for the rest anyway
  // (https://docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-transition-general-considerations.html):
  // expiring it then pays for days it was never stored.
  if (previous !== undefined) {
    const { label, days: minimum } = MINIMUM_STORAGE_DAYS[previous.name as keyof typeof MINIMUM_STORAGE_DAYS];
    if (s.retentionDays <= previous.day + minimum) {
      problems.push(
        `${key("retentionDays")}: must be more than ${previous.day + minimum} days: ${previous.name} at ${previous.day} days plus ${label}'s ${minimum}-day minimum storage duration`,
      );
    }
  }
  // Objects the transfer copies reach Deep Archive only after transferWindowDays (s3-lifecycle.ts):
  // that later transition must still leave Deep Archive's minimum before expiration.
  const deep = s.archiveTiers.deepArchive;
  const deepMinimum = MINIMUM_STORAGE_DAYS.deepArchive.days;
  if (deep !== null && s.transferWindowDays > deep && s.transferWindowDays + deepMinimum >= s.retentionDays) {
    problems.push(
      `${key("transferWindowDays")}: must be at most ${s.retentionDays - deepMinimum - 1}: it holds transferred objects out of Deep Archive until day ${s.transferWindowDays}, and they must spend Deep Archive's ${deepMinimum}-day minimum there before expiring at retentionDays (${s.retentionDays})`,
    );
  }
  const compaction = s.archiveCompaction;
  if (compaction.enabled) {
    if (!s.deployShipper) {
      problems.push(
        `${key("archiveCompaction")}.enabled: needs deployShipper true: the stack runs the compactor as a CronJob on the shipper's cluster, and without it no original would be compacted (compaction is on by default: set archiveCompaction {"enabled": false} for a stack without deployShipper)`,
      );
    }
    // An hour is committed at most settleMinutes plus one CronJob period (and a run) after it
    // ends; Athena must not switch to the parts before that.
    if (compaction.athenaCutoffHours * 60 <= compaction.settleMinutes + COMPACTOR_PERIOD_MINUTES) {
      problems.push(
        `${key("archiveCompaction")}.athenaCutoffHours: must be more than ${Math.ceil((compaction.settleMinutes + COMPACTOR_PERIOD_MINUTES) / 60)} hour(s): an hour is compacted up to settleMinutes (${compaction.settleMinutes}) plus the CronJob's ${COMPACTOR_PERIOD_MINUTES}-minute period after it ends, and Athena reads newer hours from the originals`,
      );
    }
    // Originals match the tier rules: those the compactor reads (up to landingDays after their
    // hour) must still be in Standard, readable without a restore.
    const first = firstTransitionDay(s.archiveTiers);
    if (first !== null && compaction.landingDays >= first) {
      problems.push(
        `${key("archiveCompaction")}.landingDays: must be less than the first archiveTiers transition (day ${first}): the originals also match the tier prefixes' transition rules and must stay in Standard while the compactor reads them`,
      );
    }
    // Each run looks back (landingDays × 24 − 12) hours, at most 48 (lib/economics/compactor.ts):
    // every hour must be in the window of at least two runs after it settles, so one failed or
    // skipped run does not leave it uncompacted until its originals expire.
    const lookbackMinutes = compactorLookbackHours(compaction.landingDays) * 60;
    const longestSettle = MAX_COMPACTOR_LOOKBACK_HOURS * 60 - 2 * COMPACTOR_PERIOD_MINUTES;
    if (compaction.settleMinutes > longestSettle) {
      problems.push(
        `${key("archiveCompaction")}.settleMinutes: must be at most ${longestSettle}: each run looks back at most ${MAX_COMPACTOR_LOOKBACK_HOURS} hours, which must cover settleMinutes plus two runs' ${COMPACTOR_PERIOD_MINUTES} minutes`,
      );
    } else if (lookbackMinutes - compaction.settleMinutes < 2 * COMPACTOR_PERIOD_MINUTES) {
      problems.push(
        `${key("archiveCompaction")}.landingDays: must be at least ${Math.ceil((compaction.settleMinutes + 2 * COMPACTOR_PERIOD_MINUTES + COMPACTOR_LOOKBACK_MARGIN_HOURS * 60) / 1440)} with settleMinutes ${compaction.settleMinutes}: each run looks back landingDays × 24 − ${COMPACTOR_LOOKBACK_MARGIN_HOURS} hours (${lookbackMinutes / 60}), which must cover settleMinutes plus two runs' ${COMPACTOR_PERIOD_MINUTES} minutes, or an hour may be left uncompacted until its originals expire`,
      );
    }
    // The compactor puts delete markers on an hour's compacted originals athenaCutoffHours after
    // it ends (--delete-after, so Athena, which reads hours newer than the cutoff from the
    // originals, still finds them), and only on hours in its lookback: at least one run must see
    // the hour after that, or its originals would stay beside the parts for the whole retention.
    const lookbackHours = compactorLookbackHours(compaction.landingDays);
    const latestDeleteAfter = lookbackHours - COMPACTOR_PERIOD_MINUTES / 60;
    if (compaction.athenaCutoffHours >= latestDeleteAfter) {
      problems.push(
        `${key("archiveCompaction")}.athenaCutoffHours: must be less than ${latestDeleteAfter}: the compactor removes an hour's compacted originals athenaCutoffHours after it ends, which must fall at least one run (${COMPACTOR_PERIOD_MINUTES} minutes) inside its lookback (${lookbackHours} hours, from landingDays)`,
      );
    }
    if (compaction.landingDays >= s.retentionDays) {
      problems.push(
        `${key("archiveCompaction")}.landingDays: must be less than retentionDays (${s.retentionDays})`,
      );
    }
  }
  if (s.deployShipper && s.shipper.image === undefined) {
    problems.push(
      `${key("shipper")}.image: required when deployShipper is true (an image built from shipper/deploy/Dockerfile); or set deployShipper to false`,
    );
  }
  const bqLocation = s.bigqueryLocation ?? s.landingLocation;
  if (bqLocation.toUpperCase() !== s.landingLocation.toUpperCase()) {
    problems.push(
      `${key("bigqueryLocation")}: must equal landingLocation (${s.landingLocation}): BigQuery loads a dataset only from a bucket in its own location`,
    );
  }
  return problems;
}

/**
 * Runs the loader's own option checks (functions/loader/config.ts) at deploy time, so a setting the
 * functions would refuse at cold start stops `pulumi up` instead. The bucket names are placeholders:
 * the real ones exist only after the buckets are created, and they are distinct resources.
 */
function checkLoaderSettings(
  s: StackSettings,
  project: string,
): { config: LoaderConfig; scheduler: FlushSchedulerSettings } | { problems: string[] } {
  try {
    const config = resolveLoaderConfig(
      {},
      {
        ...(s.loader as Record<(typeof LOADER_OPTIONS)[number]["key"], string>),
        landing_bucket: "landing-bucket-placeholder",
        state_bucket: "state-bucket-placeholder",
        policy_yaml: "{}",
        bigquery_project: project,
        bigquery_location: s.bigqueryLocation ?? s.landingLocation,
      },
    );
    // Throws a plain Error naming LOGARCHIVE_FLUSH_INTERVAL for an interval Cloud Scheduler cannot run.
    return { config, scheduler: flushSchedulerSettings(config) };
  } catch (error) {
    if (!(error instanceof Error)) throw error;
    const problems = error instanceof ConfigError ? error.problems : [error.message];
    if (!problems.every((p) => /^LOGARCHIVE_[A-Z_]+/.test(p))) throw error;
    // "LOGARCHIVE_FLUSH_DEADLINE: …" names the function's variable; the stack's key is loader.flush_deadline.
    return {
      problems: problems.map((p) =>
        p.replace(
          /LOGARCHIVE_([A-Z_]+)/g,
          (_m, k: string) => `${CONFIG_NAMESPACE}:loader.${k.toLowerCase()}`,
        ),
      ),
    };
  }
}

function loadPolicy(
  path: string,
  readPolicy: (path: string) => string,
): { policy: NamespacePolicy; yaml: string } | { problems: string[] } {
  const key = `${CONFIG_NAMESPACE}:policyFile`;
  let yaml: string;
  try {
    yaml = readPolicy(path);
  } catch (error) {
    return { problems: [`${key}: cannot read ${path} (${oneLine((error as Error).message)})`] };
  }
  try {
    return { policy: parsePolicy(yaml, path), yaml };
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return { problems: error.problems.map((p) => `${key}: ${path}: ${oneLine(p)}`) };
  }
}

const oneLine = (text: string) => text.replace(/\s*\n\s*/g, " ");

/**
 * Renders the shipper's manifests once, as the DaemonSet will (bucket and role are placeholders;
 * they exist only after `pulumi up` creates them), so a setting shipperManifests refuses (a bad
 * namespace, a CPU quantity, a shipper option) stops the run before anything is registered.
 */
function checkShipperManifests(s: StackSettings, policyYaml: string, awsRegion: string): string[] {
  const key = `${CONFIG_NAMESPACE}:shipper`;
  try {
    shipperManifests({
      ...s.shipper,
      shipperConfig: { ...s.shipper.shipperConfig, ...shipperLockOptions(s) },
      image: s.shipper.image ?? EXAMPLE_SHIPPER_IMAGE,
      bucket: "archive-bucket-placeholder",
      region: awsRegion,
      policyYaml,
      roleArn: "arn:aws:iam::123456789012:role/shipper-placeholder",
    });
    return [];
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.problems.map((problem) => {
      // "resources.limits.cpu: …" and "batch_max_age (in shipperConfig): …" name a field under the key.
      const inConfig = /^([\w.[\]-]+) \(in shipperConfig\): (.*)$/s.exec(problem);
      if (inConfig) return `${key}.shipperConfig.${inConfig[1]}: ${oneLine(inConfig[2]!)}`;
      const field = /^([\w.[\]-]+): (.*)$/s.exec(problem);
      if (field) return `${key}.${field[1]}: ${oneLine(field[2]!)}`;
      return `${key}: ${oneLine(problem)}`;
    });
  }
}

/**
 * The shipper options that follow from the bucket and compaction: lock headers in the bucket's
 * default mode (the bucket always has Object Lock), and landing originals' retention when
 * compaction is on (0: they keep the bucket's default retention).
 */
export function shipperLockOptions(s: Pick<StackSettings, "objectLockMode" | "archiveCompaction">): {
  object_lock_mode: StackSettings["objectLockMode"];
  landing_days: number;
} {
  return {
    object_lock_mode: s.objectLockMode,
    landing_days: s.archiveCompaction.enabled ? s.archiveCompaction.landingDays : 0,
  };
}

/** A reader's dataset must be one the policy routes to, and its table one the stack creates. */
function checkWarehouseReaders(s: StackSettings, policy: NamespacePolicy): string[] {
  const datasets = policyDatasets(policy);
  const tables = new Set(
    knownDestinations(policy, destinations(policy), s.warehouseNamespaces).map(
      (d) => `${d.dataset}.${d.table}`,
    ),
  );
  const problems: string[] = [];
  s.warehouseReaders.forEach((r, i) => {
    const at = `${CONFIG_NAMESPACE}:warehouseReaders[${i}]`;
    if (!datasets.includes(r.dataset)) {
      problems.push(
        `${at}.dataset: ${r.dataset} is not a dataset the policy routes to (${datasets.join(", ")})`,
      );
    } else if (r.table !== undefined && !tables.has(`${r.dataset}.${r.table}`)) {
      problems.push(
        `${at}.table: ${r.dataset}.${r.table} is not a table the stack creates (a fixed route's table, or a {namespace} route's for a namespace listed in warehouseNamespaces)`,
      );
    }
  });
  return problems;
}

/** The environment both loader functions get: the stack's loader options plus what the infra sets. */
export function loaderEnvironment(
  s: Pick<StackConfig, "loader" | "loaderConfig" | "bigqueryLocation" | "providers">,
  names: { landingBucket: string; stateBucket: string; policyYaml: string },
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(s.loader)) env[loaderEnvOf(k)] = v;
  env[loaderEnvOf("landing_bucket")] = names.landingBucket;
  env[loaderEnvOf("state_bucket")] = names.stateBucket;
  env[loaderEnvOf("policy_yaml")] = names.policyYaml;
  env[loaderEnvOf("bigquery_project")] = s.providers.gcpProject;
  env[loaderEnvOf("bigquery_location")] = s.bigqueryLocation;
  // The loader bounds flush_deadline by this; it must be the flush function's deployed timeout.
  env[loaderEnvOf("flush_function_timeout")] = `${Math.ceil(s.loaderConfig.flushFunctionTimeoutMs / 1000)}s`;
  return env;
}

// ---------------------------------------------------------------- docs and the example stack file

/** docs/deploy.md's config table. */
export function stackConfigMarkdownTable(): string {
  const rows = (STACK_SETTINGS as readonly SettingSpec[]).map(
    (s) =>
      `| \`${CONFIG_NAMESPACE}:${s.key}\` | ${s.defaultText} | ${s.unit.replaceAll("|", "\\|")} | ${s.description} |`,
  );
  return ["| Key | Default | Unit | Description |", "|---|---|---|---|", ...rows].join("\n");
}

/** Pulumi.dev.yaml: every setting with its default; required ones with an example, unset ones as comments. */
export function exampleStackYaml(): string {
  const lines = [
    "# An example stack: every setting of infra/config.ts with its default (docs/deploy.md#stack-config).",
    "# Copy it to Pulumi.<your-stack>.yaml, or set keys with `pulumi config set`.",
    "# Generated by `node infra/generate.ts`; infra/config.test.ts checks it is current.",
    "config:",
    "  # Providers (required).",
    "  aws:region: us-east-1",
    "  gcp:project: my-gcp-project",
    "  gcp:region: us-central1",
  ];
  for (const s of STACK_SETTINGS as readonly SettingSpec[]) {
    lines.push(`  # ${s.description}`);
    const key = `${CONFIG_NAMESPACE}:${s.key}`;
    if (s.key === "eksOidcProviderArn") {
      lines.push(`  ${key}: ${EXAMPLE_OIDC_PROVIDER_ARN} # required`);
    } else if (s.key === "retrievalPrincipals") {
      lines.push(`  ${key}: ${flowYaml([EXAMPLE_RETRIEVAL_PRINCIPAL])} # required`);
    } else if (s.key === "shipper") {
      lines.push(`  ${key}: ${flowYaml(s.example)} # image required`);
    } else if (s.example === undefined) {
      lines.push(`  # ${key}:  (default: ${s.defaultText.replaceAll("`", "")})`);
    } else {
      lines.push(...flowYamlSetting(key, s.example));
    }
  }
  return `${lines.join("\n")}\n`;
}

/** The repository formatter's (biome's) line width: a longer flow mapping is written one entry a line. */
const FORMATTER_LINE_WIDTH = 110;

/**
 * A setting's line in flow style, or, when that is wider than the formatter allows and the value
 * is a mapping, the mapping on its own lines, one entry each with a trailing comma, as biome
 * writes it (so `npm run lint` accepts the generated file as it is).
 */
function flowYamlSetting(key: string, value: unknown): string[] {
  const line = `  ${key}: ${flowYaml(value)}`;
  if (
    line.length <= FORMATTER_LINE_WIDTH ||
    typeof value !== "object" ||
    value === null ||
    Array.isArray(value)
  )
    return [line];
  const entries = Object.entries(value).map(([k, v]) => `      ${JSON.stringify(k)}: ${flowYaml(v)},`);
  return [`  ${key}:`, "    {", ...entries, "    }"];
}

/** A value in YAML flow style, spaced as the repository's formatter (biome) writes it. */
function flowYaml(value: unknown): string {
  if (Array.isArray(value)) return value.length === 0 ? "[]" : `[${value.map(flowYaml).join(", ")}]`;
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${flowYaml(v)}`);
    return entries.length === 0 ? "{}" : `{ ${entries.join(", ")} }`;
  }
  return JSON.stringify(value);
}

export const EXAMPLE_RETRIEVAL_PRINCIPAL = "arn:aws:iam::123456789012:role/compliance-retrieval";

export const EXAMPLE_OIDC_PROVIDER_ARN =
  "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE0123456789";
