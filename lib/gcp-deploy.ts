// What `pulumi up` gives the loader's functions and the BigQuery datasets, where it changes the
// bill or a quota. One source for both infra/config.ts's defaults (what is deployed) and
// lib/economics (what `logarchive plan` and `logarchive cost` model when told nothing else), as
// lib/archive-lifecycle.ts is for the archive's lifecycle. infra/economics.test.ts deploys the
// stack under mocks and checks the resources carry these values and the model reads them.
// Pure: no Pulumi, no cloud client, so the shipper's image (cli/ and lib/) can load it.

/** BigQuery dataset storage billing models (https://cloud.google.com/bigquery/docs/datasets-intro, priced at https://cloud.google.com/bigquery/pricing#storage). */
export const BIGQUERY_STORAGE_BILLING_MODELS = ["PHYSICAL", "LOGICAL"] as const;
export type BigQueryStorageBilling = (typeof BIGQUERY_STORAGE_BILLING_MODELS)[number];

/**
 * Physical: the rows' repeated metadata columns and messages compress well, so compressed bytes
 * at twice the per-GiB price bill less than logical ones (docs/cost.md has both at the reference
 * scenario).
 */
export const DEFAULT_BIGQUERY_STORAGE_BILLING: BigQueryStorageBilling = "PHYSICAL";

/** Age in days at which a table's day partitions are dropped; the S3 archive keeps the logs. */
export const DEFAULT_BIGQUERY_PARTITION_EXPIRATION_DAYS = 90;

/**
 * Cloud Run functions (gen2) memory tiers and the vCPU each comes with when no CPU is set, as
 * https://cloud.google.com/functions/docs/configuring/memory lists them ("If you don't specify
 * the vCPU, it's determined automatically based on the memory you select"). infra sets only the
 * memory, so these are the CPUs that run and are billed.
 */
export const FUNCTION_MEMORY_TIERS: readonly { memory: string; mebibytes: number; vcpu: number }[] = [
  { memory: "128Mi", mebibytes: 128, vcpu: 0.083 },
  { memory: "256Mi", mebibytes: 256, vcpu: 0.167 },
  { memory: "512Mi", mebibytes: 512, vcpu: 0.333 },
  { memory: "1Gi", mebibytes: 1024, vcpu: 0.583 },
  { memory: "2Gi", mebibytes: 2048, vcpu: 1 },
  { memory: "4Gi", mebibytes: 4096, vcpu: 2 },
  { memory: "8Gi", mebibytes: 8192, vcpu: 2 },
  { memory: "16Gi", mebibytes: 16_384, vcpu: 4 },
  { memory: "32Gi", mebibytes: 32_768, vcpu: 8 },
];

/** Memory of each loader function instance (finalize and flush alike). */
export const DEFAULT_FUNCTION_MEMORY = "512Mi";

export interface FunctionSize {
  /** As the stack writes it: `512Mi`. */
  memory: string;
  memoryGiB: number;
  vcpu: number;
}

/**
 * The size a memory setting deploys: `512Mi` or `1024Mi`, `1Gi`; null when it is not one of
 * the documented tiers (the vCPU of anything else is not documented).
 */
export function functionSize(memory: string): FunctionSize | null {
  const m = /^(\d+)(Mi|Gi)$/.exec(memory);
  if (m === null) return null;
  const mebibytes = Number(m[1]) * (m[2] === "Gi" ? 1024 : 1);
  const tier = FUNCTION_MEMORY_TIERS.find((t) => t.mebibytes === mebibytes);
  return tier === undefined ? null : { memory, memoryGiB: mebibytes / 1024, vcpu: tier.vcpu };
}

/** The tiers as a message lists them. */
export const FUNCTION_MEMORY_CHOICES = FUNCTION_MEMORY_TIERS.map((t) => t.memory).join(", ");

/**
 * Max instances Cloud Run functions (gen2) gives a function that sets none
 * (https://cloud.google.com/functions/docs/configuring/max-instances).
 */
export const CLOUD_RUN_FUNCTIONS_DEFAULT_MAX_INSTANCES = 100;

/**
 * Max instances of the finalize function. One instance checks one object at a time
 * (concurrency 1, the default infra keeps), so this caps how many objects are checked at once.
 * The reference scenario (docs/scale.md: 10,000 nodes, stream delivery) keeps about 235 busy;
 * 500 leaves 2× headroom for it. Over the default of 100, the limit that applies is the
 * region's Cloud Run CPU and memory quota divided by the instance's size
 * (https://cloud.google.com/run/docs/configuring/max-instances-limits): 500 × 0.333 vCPU and
 * 0.5 GiB is 166.5 vCPU and 250 GiB, under that page's example baseline of 1,000 vCPU and
 * 2,000 GiB; a project whose regional quota is lower needs an increase (docs/scale.md).
 */
export const DEFAULT_FINALIZE_MAX_INSTANCES = 500;

/**
 * The example baseline of a region's Cloud Run quota that
 * https://cloud.google.com/run/docs/configuring/max-instances-limits works with: a service's max
 * instances may be at most the regional CPU quota over its vCPU and the memory quota over its
 * memory. Each project's real baseline is on its quotas page; this is the documented example.
 */
export const CLOUD_RUN_EXAMPLE_REGIONAL_QUOTA = { vcpu: 1000, memoryGiB: 2000 } as const;
