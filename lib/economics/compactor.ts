// The compactor CronJob's deployed shape that both infra (infra/k8s/compactor-cronjob.ts,
// infra/config.ts) and the model (lib/economics) read: one source, in a module that imports only
// the compactor's defaults, so neither `logarchive plan|cost` loads Pulumi nor infra the model.

import { DEFAULT_LOOKBACK_MS } from "../compaction/defaults.ts";

/**
 * Pods of one hourly run (archiveCompaction.shards; an Indexed Job, each pod `compact --pending
 * --shard <index>/<shards>`, namespaces split by lib/compaction/shard.ts's stable hash). One
 * process compacts at about 1 GB per 11 CPU-seconds (docs/benchmarks.md "Compaction": 10.5-11.3
 * CPU-s/GB), about 5,100 s for the reference scale's 467 GB hour against the run's 3,300 s;
 * four pods take about 1,500 s each, 2.2× headroom (docs/scale.md#archive-compaction-as-deployed).
 */
export const DEFAULT_COMPACTOR_SHARDS = 4;

/**
 * Each compactor pod's requests, as infra deploys them and the model prices them.
 * docs/benchmarks.md "Compaction" (2026-12-07): one namespace-hour's compaction peaks at 237-252
 * MiB RSS and uses 10.5-11.3 CPU-seconds per GB on one core (SHA-256 and the S3 client: CPU-bound),
 * so a pod asks for the one core it uses. Memory: reading one pending hour's indexes at 10,000
 * nodes peaks at 384 MiB, and each of the 4 concurrent compactions (--concurrency's default) adds
 * about 120 MiB above the process's base, about 864 MiB a run: the request equals the 1 GiB limit
 * (infra's DEFAULT_COMPACTOR_LIMITS), so the scheduler places a pod only where its peak fits.
 */
export const COMPACTOR_REQUESTS = { cpu: "1", memory: "1Gi" } as const;

/** `compact --pending`'s own default lookback (48 hours), the cap below. */
export const MAX_COMPACTOR_LOOKBACK_HOURS = DEFAULT_LOOKBACK_MS / 3_600_000;

/**
 * Hours kept between the end of the lookback and the end of an original's landing retention
 * (landingDays after its hour): nothing expires an original by age any more (the compactor puts
 * delete markers only on originals a committed manifest names), but an original the compactor
 * could not compact must still be in a run's window while its short lock can be extended to the
 * full one (the "kept whole" step of `compact --pending`, lib/compaction/pending.ts); the window's
 * oldest hour starts up to an hour before now − lookback and a run lasts up to 55 minutes, so 2
 * hours are needed; the rest is a margin for clock skew and a run started late.
 */
export const COMPACTOR_LOOKBACK_MARGIN_HOURS = 12;

/**
 * The CronJob's --lookback for a landingDays: (landingDays × 24 − 12) hours, at most 48: every
 * original stays in some run's window until its landing lock is about to end, so it is either
 * compacted (and later deleted) or kept whole with the full lock; within that, 48 hours (the
 * CLI's default) bounds what each run lists and reads (the enumeration's LIST pages and manifest
 * GETs grow with the window) while still covering two days of failed runs.
 */
export function compactorLookbackHours(landingDays: number): number {
  return Math.min(MAX_COMPACTOR_LOOKBACK_HOURS, landingDays * 24 - COMPACTOR_LOOKBACK_MARGIN_HOURS);
}
