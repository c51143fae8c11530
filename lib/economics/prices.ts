// List prices the cost model uses: one dated table, a source per line, overridable from a
// file (`logarchive cost --prices FILE`). AWS prices are us-east-1, GCP prices us-east1 (a
// US region, where a dataset in the US multi-region can load from), both on-demand, before
// free tiers and discounts. Check the live pages before relying on them: prices change.

export const PRICES_AS_OF = "2026-12-02";

export interface Price {
  readonly value: number;
  readonly unit: string;
  readonly what: string;
  readonly source: string;
}

const S3 = "https://aws.amazon.com/s3/pricing/";
const GCS = "https://cloud.google.com/storage/pricing";
const BQ = "https://cloud.google.com/bigquery/pricing#storage";
const RUN = "https://cloud.google.com/run/pricing";

/** Every price the cost model reads, by id. Units are what `value` multiplies. */
export const DEFAULT_PRICES = {
  s3_standard_gb_month_first_50tb: {
    value: 0.023,
    unit: "$/GB-month",
    what: "S3 Standard storage, first 50 TB/month",
    source: S3,
  },
  s3_standard_gb_month_next_450tb: {
    value: 0.022,
    unit: "$/GB-month",
    what: "S3 Standard storage, next 450 TB/month",
    source: S3,
  },
  s3_standard_gb_month_over_500tb: {
    value: 0.021,
    unit: "$/GB-month",
    what: "S3 Standard storage, over 500 TB/month",
    source: S3,
  },
  s3_standard_ia_gb_month: {
    value: 0.0125,
    unit: "$/GB-month",
    what: "S3 Standard-IA storage (30-day minimum, 128 KB minimum billable size)",
    source: S3,
  },
  s3_glacier_ir_gb_month: {
    value: 0.004,
    unit: "$/GB-month",
    what: "S3 Glacier Instant Retrieval storage (90-day minimum, 128 KB minimum billable size)",
    source: S3,
  },
  s3_glacier_fr_gb_month: {
    value: 0.0036,
    unit: "$/GB-month",
    what: "S3 Glacier Flexible Retrieval storage (90-day minimum, +40 KB per object)",
    source: S3,
  },
  s3_deep_archive_gb_month: {
    value: 0.00099,
    unit: "$/GB-month",
    what: "S3 Glacier Deep Archive storage (180-day minimum, +40 KB per object)",
    source: S3,
  },
  s3_put_per_1k: {
    value: 0.005,
    unit: "$/1,000 requests",
    what: "S3 Standard PUT, COPY, POST, LIST",
    source: S3,
  },
  s3_get_per_1k: { value: 0.0004, unit: "$/1,000 requests", what: "S3 Standard GET, HEAD", source: S3 },
  s3_transition_standard_ia_per_1k: {
    value: 0.01,
    unit: "$/1,000 requests",
    what: "Lifecycle transition into Standard-IA",
    source: S3,
  },
  s3_transition_glacier_ir_per_1k: {
    value: 0.02,
    unit: "$/1,000 requests",
    what: "Lifecycle transition into Glacier Instant Retrieval",
    source: S3,
  },
  s3_transition_glacier_fr_per_1k: {
    value: 0.03,
    unit: "$/1,000 requests",
    what: "Lifecycle transition into Glacier Flexible Retrieval",
    source: S3,
  },
  s3_transition_deep_archive_per_1k: {
    value: 0.05,
    unit: "$/1,000 requests",
    what: "Lifecycle transition into Glacier Deep Archive (issue 9 quotes the same)",
    source: S3,
  },
  s3_restore_deep_archive_bulk_gb: {
    value: 0.0025,
    unit: "$/GB",
    what: "Deep Archive bulk retrieval (up to 48 h)",
    source: S3,
  },
  s3_restore_deep_archive_bulk_per_1k: {
    value: 0.025,
    unit: "$/1,000 requests",
    what: "Deep Archive bulk restore requests",
    source: S3,
  },
  s3_restore_glacier_fr_bulk_gb: {
    value: 0,
    unit: "$/GB",
    what: "Glacier Flexible Retrieval bulk retrieval (free)",
    source: S3,
  },
  s3_restore_glacier_fr_bulk_per_1k: {
    value: 0,
    unit: "$/1,000 requests",
    what: "Glacier Flexible Retrieval bulk restore requests (free)",
    source: S3,
  },
  s3_restore_glacier_fr_standard_gb: {
    value: 0.01,
    unit: "$/GB",
    what: "Glacier Flexible Retrieval standard retrieval (3-5 h), checked 2026-12-07",
    source: S3,
  },
  s3_restore_glacier_fr_standard_per_1k: {
    value: 0.05,
    unit: "$/1,000 requests",
    what: "Glacier Flexible Retrieval standard restore requests, checked 2026-12-07",
    source: S3,
  },
  s3_restore_glacier_fr_expedited_gb: {
    value: 0.03,
    unit: "$/GB",
    what: "Glacier Flexible Retrieval expedited retrieval (1-5 min, on-demand capacity), checked 2026-12-07",
    source: S3,
  },
  s3_restore_glacier_fr_expedited_per_1k: {
    value: 10,
    unit: "$/1,000 requests",
    what: "Glacier Flexible Retrieval expedited restore requests, checked 2026-12-07",
    source: S3,
  },
  s3_restore_deep_archive_standard_gb: {
    value: 0.02,
    unit: "$/GB",
    what: "Deep Archive standard retrieval (within 12 h), checked 2026-12-07",
    source: S3,
  },
  s3_restore_deep_archive_standard_per_1k: {
    value: 0.1,
    unit: "$/1,000 requests",
    what: "Deep Archive standard restore requests, checked 2026-12-07",
    source: S3,
  },
  s3_retrieval_glacier_ir_gb: {
    value: 0.03,
    unit: "$/GB",
    what: "Glacier Instant Retrieval data retrieval",
    source: S3,
  },
  s3_retrieval_standard_ia_gb: { value: 0.01, unit: "$/GB", what: "Standard-IA data retrieval", source: S3 },
  aws_egress_gb_first_10tb: {
    value: 0.09,
    unit: "$/GB",
    what: "Data transfer out of AWS to the internet (S3 → GCS), first 10 TB/month",
    source: "https://aws.amazon.com/ec2/pricing/on-demand/#Data_Transfer",
  },
  aws_egress_gb_next_40tb: {
    value: 0.085,
    unit: "$/GB",
    what: "Data transfer out to the internet, next 40 TB/month",
    source: "https://aws.amazon.com/ec2/pricing/on-demand/#Data_Transfer",
  },
  aws_egress_gb_next_100tb: {
    value: 0.07,
    unit: "$/GB",
    what: "Data transfer out to the internet, next 100 TB/month",
    source: "https://aws.amazon.com/ec2/pricing/on-demand/#Data_Transfer",
  },
  aws_egress_gb_over_150tb: {
    value: 0.05,
    unit: "$/GB",
    what: "Data transfer out to the internet, over 150 TB/month",
    source: "https://aws.amazon.com/ec2/pricing/on-demand/#Data_Transfer",
  },
  sqs_per_million: {
    value: 0.4,
    unit: "$/million requests",
    what: "SQS standard queue requests (each 64 KB chunk is one request)",
    source: "https://aws.amazon.com/sqs/pricing/",
  },
  athena_per_tb: {
    value: 5,
    unit: "$/TB scanned",
    what: "Athena SQL queries, 10 MB minimum per query",
    source: "https://aws.amazon.com/athena/pricing/",
  },
  fargate_vcpu_hour: {
    value: 0.04048,
    unit: "$/vCPU-hour",
    what: "Reserved node CPU, priced as Fargate's per-vCPU rate (a published split of CPU from memory)",
    source: "https://aws.amazon.com/fargate/pricing/",
  },
  fargate_gb_hour: {
    value: 0.004445,
    unit: "$/GB-hour",
    what: "Reserved node memory, priced as Fargate's per-GB rate",
    source: "https://aws.amazon.com/fargate/pricing/",
  },
  sts_agentless_gb: {
    value: 0,
    unit: "$/GB",
    what: "Storage Transfer Service, agentless transfer from S3 (no charge; source egress and operations apply)",
    source: "https://cloud.google.com/storage-transfer/pricing",
  },
  gcs_standard_gb_month: {
    value: 0.02,
    unit: "$/GB-month",
    what: "GCS Standard storage, us-east1",
    source: GCS,
  },
  gcs_class_a_per_1k: {
    value: 0.005,
    unit: "$/1,000 operations",
    what: "GCS Class A (insert, copy, rewrite, list, patch), Standard class in a region",
    source: GCS,
  },
  gcs_class_b_per_1k: {
    value: 0.0004,
    unit: "$/1,000 operations",
    what: "GCS Class B (get, getMetadata), Standard class in a region",
    source: GCS,
  },
  pubsub_tib: {
    value: 40,
    unit: "$/TiB",
    what: "Pub/Sub throughput (Eventarc's transport for Cloud Storage events), 1,000-byte minimum per message",
    source: "https://cloud.google.com/pubsub/pricing",
  },
  eventarc_google_source_per_million: {
    value: 0,
    unit: "$/million events",
    what: "Eventarc events from Google sources (no charge; the Pub/Sub transport is billed)",
    source: "https://cloud.google.com/eventarc/docs/run/pricing",
  },
  run_requests_per_million: {
    value: 0.4,
    unit: "$/million requests",
    what: "Cloud Run functions (gen2) invocations, request-based billing",
    source: RUN,
  },
  run_vcpu_second: {
    value: 0.000024,
    unit: "$/vCPU-second",
    what: "Cloud Run functions CPU, tier 1 region, request-based billing (rounded up to 100 ms)",
    source: RUN,
  },
  run_gib_second: {
    value: 0.0000025,
    unit: "$/GiB-second",
    what: "Cloud Run functions memory, tier 1 region, request-based billing",
    source: RUN,
  },
  s3_delete_per_1k: {
    value: 0,
    unit: "$/1,000 requests",
    what: 'S3 DELETE requests (free: the pricing page\'s request table, "DELETE and CANCEL requests are free"), checked 2026-12-07',
    source: S3,
  },
  scheduler_job_month: {
    value: 0.1,
    unit: "$/job-month",
    what: "Cloud Scheduler job (the flush trigger)",
    source: "https://cloud.google.com/scheduler/pricing",
  },
  bq_logical_active_gib_month: {
    value: 0.02,
    unit: "$/GiB-month",
    what: "BigQuery active logical storage",
    source: BQ,
  },
  bq_logical_long_term_gib_month: {
    value: 0.01,
    unit: "$/GiB-month",
    what: "BigQuery long-term logical storage (partition unmodified 90 days)",
    source: BQ,
  },
  bq_physical_active_gib_month: {
    value: 0.04,
    unit: "$/GiB-month",
    what: "BigQuery active physical storage (time travel and fail-safe billed too)",
    source: BQ,
  },
  bq_physical_long_term_gib_month: {
    value: 0.02,
    unit: "$/GiB-month",
    what: "BigQuery long-term physical storage",
    source: BQ,
  },
  bq_batch_load: {
    value: 0,
    unit: "$/GB",
    what: "BigQuery batch load jobs on the shared slot pool (free)",
    source: "https://cloud.google.com/bigquery/pricing#data_ingestion_pricing",
  },
} as const satisfies Record<string, Price>;

export type PriceId = keyof typeof DEFAULT_PRICES;
export type PriceTable = Record<PriceId, Price>;

export class PriceOverrideError extends Error {
  override name = "PriceOverrideError";
}

/**
 * The default table with the file's values applied. A file maps price ids to a number or to
 * `{ value, source? }`; every problem is reported at once, naming the id.
 */
export function applyPriceOverrides(overrides: unknown, base: PriceTable = DEFAULT_PRICES): PriceTable {
  if (overrides === null || typeof overrides !== "object" || Array.isArray(overrides)) {
    throw new PriceOverrideError("expected a map of price id → number or { value, source }");
  }
  const out: Record<string, Price> = { ...base };
  const problems: string[] = [];
  for (const [id, given] of Object.entries(overrides as Record<string, unknown>)) {
    const current = out[id];
    if (current === undefined) {
      problems.push(`${id}: unknown price id (see \`logarchive cost --format json\` for the ids)`);
      continue;
    }
    const value =
      typeof given === "number" ? given : ((given as { value?: unknown } | null)?.value ?? Number.NaN);
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
      problems.push(`${id}: expected a number ≥ 0 or { value: number, source: string }`);
      continue;
    }
    const source = (given as { source?: unknown } | null)?.source;
    out[id] = { ...current, value, source: typeof source === "string" ? source : "override file" };
  }
  if (problems.length > 0) throw new PriceOverrideError(problems.join("; "));
  return out as PriceTable;
}
