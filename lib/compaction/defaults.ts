// The compactor's defaults, in a module of their own so the CLI can show them in --help
// without loading the S3 client at startup.

/** Default largest compacted part: 1 GiB (the design brief's compaction.part_max_bytes). */
export const DEFAULT_PART_MAX_BYTES = 1024 ** 3;

/**
 * Default upload part ("chunk") of a compacted part's multipart upload: 32 MiB. Each is one
 * UploadPart request and one buffer in memory per part being written. At 32 MiB a full 1 GiB
 * part is 32 UploadParts (128 at the earlier 8 MiB: 4× fewer PUT-class requests, about $150 a
 * month less at the reference scale of docs/cost.md), for 24 MiB more memory per concurrent
 * compaction (DEFAULT_PENDING_CONCURRENCY of them in a run). S3's limits
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html): every upload part but the
 * last 5 MiB to 5 GiB, at most 10,000 of them; 32 MiB × 10,000 = 312.5 GiB, far above
 * DEFAULT_PART_MAX_BYTES, and part-writer.ts raises the chunk for a larger --part-max-bytes
 * (part-writer.test.ts checks both).
 */
export const DEFAULT_UPLOAD_CHUNK_BYTES = 32 * 1024 * 1024;

/**
 * Default wait after an hour ends before it is compacted. An archive batch never holds lines
 * of two hours, but one holding an hour's last lines is cut only at its batch age (up to the
 * policy's archive.batch_max_age, 1 h by default, lib/retrieval/arrival.ts) and then uploaded
 * (the shipper's upload_timeout per attempt), so most of an hour is in S3 about an hour after
 * it ends. Batches later than that go into a supplement generation, not lost.
 */
export const DEFAULT_SETTLE_MS = 75 * 60 * 1000;

/**
 * Default lookback of `compact --pending`: the hours it looks at for originals no manifest names,
 * for compacted originals to delete, and for originals to keep whole. Originals are never expired
 * by age; an original no manifest names gets the full lock (DEFAULT_LOCK_DAYS) in every run from
 * a day after its hour (pending.ts KEPT_WHOLE_AFTER_MS) while its hour is still in the lookback,
 * so the lookback must reach well past a day. A batch that lands after the
 * lookback has passed its hour is never seen by a run: it keeps its landing retention and stays
 * current (readers read it as an original); `compact --namespace --hour` compacts it by hand.
 */
export const DEFAULT_LOOKBACK_MS = 48 * 3_600_000;

/** Namespace-hours `compact --pending` compacts at once by default. */
export const DEFAULT_PENDING_CONCURRENCY = 4;

/**
 * Whether a stack compacts the archive unless its archiveCompaction setting says otherwise
 * (infra/config.ts), and whether `logarchive plan|cost` model compaction by default: one value,
 * so the bill the model prints is the design infra deploys.
 */
export const COMPACTION_ENABLED_BY_DEFAULT = true;

/** Days an original is kept once compaction is on (the shipper's landing_days; infra's archiveCompaction.landingDays). */
export const DEFAULT_LANDING_DAYS = 3;

/** Hours after an hour ends from which Athena's view reads it from the compacted parts (infra's archiveCompaction.athenaCutoffHours). */
export const DEFAULT_ATHENA_CUTOFF_HOURS = 6;

/** Days an original kept whole (never compacted) is locked from its LastModified: the bucket's default retention (infra objectLockDays). */
export const DEFAULT_LOCK_DAYS = 365;
