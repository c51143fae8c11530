// The scheduled compactor's run (`logarchive compact --pending`, the hourly CronJob of
// infra/k8s/compactor-cronjob.ts): find every namespace-hour in the lookback that has settled
// and holds archive originals no committed manifest names, and compact each with
// compactNamespaceHour. One namespace-hour's failure (a refused original, an hour the indexes
// say is not complete, an S3 error) is reported and the others go on.
//
// The lookback must be shorter than the originals' landing days (the shipper's landing_days,
// infra archiveCompaction.landingDays, default 3 days, against a default lookback of 48 h):
// originals expire landing days after they land, so an hour looked at later than that may have
// lost some of them, and a manifest committed then would name only the survivors. A batch that
// lands more than the lookback after its hour is not found by this run; `logarchive compact
// --namespace --hour` compacts it by hand while its original lives.
//
// Enumeration, and why this way. The key layout puts the namespace before the hour
// (`<prefix>/<tier>/namespace=/dt=/hour=/…`, lib/keys/layout.ts), so no listing answers "which
// namespaces have objects in hour H". Per run, with N namespaces, W hours in the window and
// O originals in the window:
//   1. ListObjectsV2 with Delimiter "/" on each long-lived tier prefix: the `namespace=` common
//      prefixes, one request per 1,000 namespaces per tier (a page holds at most 1,000 keys and
//      common prefixes, https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html);
//   2. per namespace and tier it appears in, one paginated ListObjectsV2 starting after the
//      window's first hour prefix ("Amazon S3 starts listing after this specified key",
//      https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/s3/aws.sdk.kotlin.services.s3.model/-list-objects-v2-request/start-after.html;
//      keys come in UTF-8 binary order, which in this layout is time order) and left at the
//      first key past the last settled hour: about O / 1,000 + N × tiers requests;
//   3. per namespace with originals in the window, one ListObjectsV2 of its compacted keys from
//      the same hour (W × (parts + manifests), about 100 keys, one page), and one GetObject per
//      manifest of an hour with originals, to see whether every original is named.
// At the reference scale (10,000 nodes, 1,000 namespaces all active every hour, 7.44 million
// originals a day, W = 46 at the defaults): 2 + about 16,000 + 1,000 LISTs and about 46,000
// manifest GETs a run, about 12 million LISTs ($61) and 33 million GETs ($13) a month of hourly
// runs. Listing each namespace-hour's two tier prefixes and its manifests instead would be
// 3 × 1,000 × 46 = 138,000 LISTs a run (a LIST costs 12.5 GETs, https://aws.amazon.com/s3/pricing/).
// Only the pending hours then pay compactNamespaceHour's own listing (3 LISTs each).

// Sharding (`--shard i/N`, shard.ts): one process cannot compact an hour of the reference
// archive (about 425 GiB) inside the CronJob's run, so N runs share it by namespace. A shard
// still makes the tier listings of step 1 (a few requests), then lists, reads and compacts only
// its own namespaces; its hour-index keep() holds only its own pending namespace-hours' entries,
// so that memory falls with N. Every shard still GETs every node's index of the hours it needs
// (an index holds every namespace of its node): N × the index GETs below a run.

// Hour indexes: each index hour a pending hour needs (records' hour H reads H-1 to H+margin,
// readiness.ts) is read once per run, one LIST per 1,000 nodes and one GET per node, and shared
// by every namespace and every pending hour that needs it (CompactOptions.indexReading); it is
// dropped when the last of those hours is done. In the steady state one new hour is pending, so
// 4 index hours: 40,000 GETs a run at 10,000 nodes. Of each index only its node and number range
// are kept, and of its entries only the key and SHA-256 of batches of the pending
// namespace-hours (readIndexHourSummary): measured in benchmarks/compaction.bench.ts
// (docs/benchmarks.md#compaction).

import { GetObjectCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import { forEachLimited } from "../../functions/loader/state.ts";
import {
  compactedHourPrefix,
  compactedPrefix,
  type ObjectKey,
  parseCompactedKey,
  parseObjectKey,
  partitionPrefix,
  type Tier,
  tierPrefix,
} from "../keys/layout.ts";
import { longLivedTiers } from "../keys/tiers.ts";
import { parseCompactionManifest } from "../object/compaction-manifest.ts";
import { type CompactionOutcome, type CompactOptions, compactNamespaceHour } from "./compact.ts";
import { DEFAULT_LOOKBACK_MS, DEFAULT_PENDING_CONCURRENCY, DEFAULT_SETTLE_MS } from "./defaults.ts";
import { inShard, type Shard, WHOLE_ARCHIVE } from "./shard.ts";

export { DEFAULT_LOOKBACK_MS, DEFAULT_PENDING_CONCURRENCY };

import {
  batchGroup,
  type CompactionIndexes,
  DEFAULT_INDEX_MARGIN_HOURS,
  type IndexHourSummary,
  LaterIndexes,
  readIndexHourSummary,
} from "./readiness.ts";

const HOUR_MS = 3_600_000;
/** Namespaces enumerated (listed, their manifests read) at once. */
const ENUMERATION_CONCURRENCY = 16;

export interface PendingOptions
  extends Pick<
    CompactOptions,
    "s3" | "bucket" | "prefix" | "partMaxBytes" | "indexCheck" | "dryRun" | "uploadChunkBytes" | "toolVersion"
  > {
  settleMs?: number;
  /** How far back hours are looked at. Default DEFAULT_LOOKBACK_MS. */
  lookbackMs?: number;
  /** Namespace-hours compacted at once (across hours and namespaces). Default DEFAULT_PENDING_CONCURRENCY. */
  concurrency?: number;
  now?: () => Date;
  /**
   * Only the namespaces of this shard (shard.ts): their originals listed, their manifests read,
   * their entries of the hour indexes kept. Default WHOLE_ARCHIVE.
   */
  shard?: Shard;
  /** Each namespace-hour's result as it finishes. */
  onResult?: (result: PendingResult) => void;
}

export interface NamespaceHour {
  namespace: string;
  dt: string;
  hour: string;
}

export type PendingResult =
  | (NamespaceHour & { outcome: CompactionOutcome; error?: undefined })
  | (NamespaceHour & { outcome?: undefined; error: Error });

export interface PendingRun {
  /** First and last hour looked at (YYYY-MM-DDTHH), null when the window is empty. */
  window: { from: string; to: string } | null;
  /** The shard this run handled (WHOLE_ARCHIVE unless --shard). */
  shard: Shard;
  /** Namespaces found under the tier prefixes that are in the run's shard. */
  namespaces: number;
  /** The namespace-hours found pending, in hour then namespace order. */
  pending: NamespaceHour[];
  results: PendingResult[];
  requests: {
    /** ListObjectsV2 pages: namespaces (delimiter), originals and compacted keys in the window. */
    lists: number;
    /** Manifests read to decide whether an hour is pending. */
    manifestGets: number;
    /** Hour indexes: LIST pages and GETs (once per node and index hour). */
    indexLists: number;
    indexGets: number;
    /** GETs of single nodes' later index hours, for batches numbered after H+margin (readiness.ts LaterIndexes). */
    laterIndexGets: number;
  };
}

/** Whether a result counts as a failure of the run: refused, not ready, or an error. */
export function isFailure(result: PendingResult): boolean {
  return (
    result.error !== undefined || result.outcome.status === "refused" || result.outcome.status === "not-ready"
  );
}

/** The hours a run looks at: settled, and ending after now − lookback. Hour starts in ms. */
export function pendingWindow(now: Date, settleMs: number, lookbackMs: number): number[] {
  const last = Math.floor((now.getTime() - settleMs - HOUR_MS) / HOUR_MS) * HOUR_MS;
  const first = Math.floor((now.getTime() - lookbackMs) / HOUR_MS) * HOUR_MS;
  const hours: number[] = [];
  for (let h = first; h <= last; h += HOUR_MS) hours.push(h);
  return hours;
}

function hourFields(start: number): { dt: string; hour: string } {
  const iso = new Date(start).toISOString();
  return { dt: iso.slice(0, 10), hour: iso.slice(11, 13) };
}

function hourText(start: number): string {
  return new Date(start).toISOString().slice(0, 13);
}

function keyHourStart(k: { dt: string; hour: string }): number {
  return Date.parse(`${k.dt}T${k.hour}:00:00Z`);
}

export async function compactPending(o: PendingOptions): Promise<PendingRun> {
  const settleMs = o.settleMs ?? DEFAULT_SETTLE_MS;
  const lookbackMs = o.lookbackMs ?? DEFAULT_LOOKBACK_MS;
  const now = (o.now ?? (() => new Date()))();
  const hours = pendingWindow(now, settleMs, lookbackMs);
  const run: PendingRun = {
    window: hours.length === 0 ? null : { from: hourText(hours[0]!), to: hourText(hours.at(-1)!) },
    shard: o.shard ?? WHOLE_ARCHIVE,
    namespaces: 0,
    pending: [],
    results: [],
    requests: { lists: 0, manifestGets: 0, indexLists: 0, indexGets: 0, laterIndexGets: 0 },
  };
  if (hours.length === 0) return run;
  const found = await findPendingHours(o, hours[0]!, hours.at(-1)!, run);
  run.pending = found;

  const indexCheck = o.indexCheck !== false;
  const pendingGroups = new Set(found.map((p) => batchGroup(keyHourStart(p), p.namespace)));
  const indexes = new IndexHours({
    s3: o.s3,
    bucket: o.bucket,
    prefix: o.prefix,
    marginHours: DEFAULT_INDEX_MARGIN_HOURS,
    counts: run.requests,
    keep: (namespace, recordsHour) => pendingGroups.has(batchGroup(recordsHour, namespace)),
  });
  const laterIndexes = new LaterIndexes(o);
  const remaining = new Map<number, number>();
  for (const p of found) {
    const start = keyHourStart(p);
    if (!remaining.has(start) && indexCheck) indexes.need(start);
    remaining.set(start, (remaining.get(start) ?? 0) + 1);
  }
  await forEachLimited(found, o.concurrency ?? DEFAULT_PENDING_CONCURRENCY, async (p) => {
    const start = keyHourStart(p);
    let result: PendingResult;
    try {
      const indexReading = indexCheck ? await indexes.readingFor(start) : undefined;
      const outcome = await compactNamespaceHour({
        s3: o.s3,
        bucket: o.bucket,
        prefix: o.prefix,
        ...p,
        settleMs,
        now: () => now,
        indexCheck,
        ...(indexReading === undefined ? {} : { indexReading, laterIndexes }),
        ...(o.partMaxBytes === undefined ? {} : { partMaxBytes: o.partMaxBytes }),
        ...(o.dryRun === undefined ? {} : { dryRun: o.dryRun }),
        ...(o.uploadChunkBytes === undefined ? {} : { uploadChunkBytes: o.uploadChunkBytes }),
        ...(o.toolVersion === undefined ? {} : { toolVersion: o.toolVersion }),
      });
      result = { ...p, outcome };
    } catch (error) {
      result = { ...p, error: error instanceof Error ? error : new Error(String(error)) };
    }
    const left = (remaining.get(start) ?? 1) - 1;
    remaining.set(start, left);
    if (left === 0 && indexCheck) indexes.release(start);
    run.results.push(result);
    o.onResult?.(result);
  });
  run.requests.laterIndexGets = laterIndexes.gets;
  return run;
}

/**
 * Every namespace-hour in [first, last] (hour starts, ms) with an original no committed
 * manifest of the hour names, in hour then namespace order (see the header for the requests).
 */
async function findPendingHours(
  o: Pick<PendingOptions, "s3" | "bucket" | "prefix" | "shard">,
  first: number,
  last: number,
  run: PendingRun,
): Promise<NamespaceHour[]> {
  // 1. namespace=… segments per tier.
  const tiersOf = new Map<string, Tier[]>();
  for (const tier of longLivedTiers()) {
    const base = tierPrefix(o.prefix, tier);
    let token: string | undefined;
    do {
      const page = await o.s3.send(
        new ListObjectsV2Command({
          Bucket: o.bucket,
          Prefix: base,
          Delimiter: "/",
          ...(token === undefined ? {} : { ContinuationToken: token }),
        }),
      );
      run.requests.lists++;
      for (const cp of page.CommonPrefixes ?? []) {
        const segment = cp.Prefix?.slice(base.length);
        if (segment === undefined || !segment.startsWith("namespace=")) continue;
        tiersOf.set(segment, [...(tiersOf.get(segment) ?? []), tier]);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  // The namespaces, each checked against the layout's own formatting (a stray prefix is
  // skipped), and of those only the run's shard's: the others are never listed or read.
  const firstHour = hourFields(first);
  const shard = o.shard ?? WHOLE_ARCHIVE;
  const mine: [segment: string, namespace: string, tiers: Tier[]][] = [];
  for (const [segment, tiers] of tiersOf) {
    let ns: string;
    try {
      ns = decodeURIComponent(segment.slice("namespace=".length, -1));
      const probe = partitionPrefix(o.prefix, tiers[0]!, ns, firstHour.dt, firstHour.hour);
      if (!probe.startsWith(`${tierPrefix(o.prefix, tiers[0]!)}${segment}`)) continue;
    } catch {
      continue;
    }
    if (inShard(ns, shard)) mine.push([segment, ns, tiers]);
  }
  run.namespaces = mine.length;

  const pending: NamespaceHour[] = [];
  await forEachLimited(mine, ENUMERATION_CONCURRENCY, async ([segment, ns, tiers]) => {
    // 2. The namespace's originals in the window, by hour.
    const originals = new Map<number, Set<string>>();
    for (const tier of tiers) {
      const from = partitionPrefix(o.prefix, tier, ns, firstHour.dt, firstHour.hour);
      for await (const key of listFrom(o, `${tierPrefix(o.prefix, tier)}${segment}`, from, run)) {
        let parsed: ObjectKey;
        try {
          parsed = parseObjectKey(key);
        } catch {
          continue; // not an archive object: compactNamespaceHour names it if its hour is compacted
        }
        const start = keyHourStart(parsed);
        if (start > last) break;
        if (start < first) continue;
        originals.set(start, (originals.get(start) ?? new Set()).add(key));
      }
    }
    if (originals.size === 0) return;

    // 3. Its manifests in the window, by hour.
    const manifests = new Map<number, string[]>();
    const compactedFrom = compactedHourPrefix(o.prefix, ns, firstHour.dt, firstHour.hour);
    for await (const key of listFrom(o, `${compactedPrefix(o.prefix)}${segment}`, compactedFrom, run)) {
      let parsed: ReturnType<typeof parseCompactedKey>;
      try {
        parsed = parseCompactedKey(key);
      } catch {
        continue;
      }
      const start = keyHourStart(parsed);
      if (start > last) break;
      if (parsed.kind === "manifest" && start >= first) {
        manifests.set(start, [...(manifests.get(start) ?? []), key]);
      }
    }

    // 4. Pending: an original that no manifest of its hour names.
    for (const [start, keys] of originals) {
      const named = new Set<string>();
      let readable = true;
      for (const key of manifests.get(start) ?? []) {
        try {
          run.requests.manifestGets++;
          const response = await o.s3.send(new GetObjectCommand({ Bucket: o.bucket, Key: key }));
          const body = Buffer.from((await response.Body?.transformToByteArray()) ?? new Uint8Array());
          for (const m of parseCompactionManifest(body).members) named.add(m.key);
        } catch {
          // Unreadable: compactNamespaceHour reads it again and reports why.
          readable = false;
          break;
        }
      }
      if (!readable || [...keys].some((k) => !named.has(k))) {
        pending.push({ namespace: ns, ...hourFields(start) });
      }
    }
  });
  return pending.sort(
    (a, b) =>
      keyHourStart(a) - keyHourStart(b) ||
      (a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : 0),
  );
}

/**
 * Keys under `prefix` after `startAfter` (exclusive), page by page; the caller stops early by
 * leaving the loop, so pages past the window are never asked for.
 */
async function* listFrom(
  o: Pick<PendingOptions, "s3" | "bucket">,
  prefix: string,
  startAfter: string,
  run: PendingRun,
): AsyncGenerator<string> {
  let token: string | undefined;
  do {
    run.requests.lists++;
    const page = await o.s3.send(
      new ListObjectsV2Command({
        Bucket: o.bucket,
        Prefix: prefix,
        ...(token === undefined ? { StartAfter: startAfter } : { ContinuationToken: token }),
      }),
    );
    for (const object of page.Contents ?? []) if (object.Key !== undefined) yield object.Key;
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
}

interface IndexHoursOptions {
  s3: S3Client;
  bucket: string;
  prefix: string;
  marginHours: number;
  /** The run's request counts, which each index hour's reads are added to. */
  counts: PendingRun["requests"];
  /** Which index entries to keep: those of the pending namespace-hours. */
  keep: (namespace: string, recordsHourStart: number) => boolean;
}

/**
 * Each index hour read once and shared: need() counts the pending records' hours that will use
 * it, readingFor() reads what a records' hour needs (H-1 to H+margin, as readCompactionIndexes),
 * release() drops what no hour still needs.
 */
class IndexHours {
  readonly #hours = new Map<number, Promise<IndexHourSummary>>();
  readonly #users = new Map<number, number>();
  readonly #o: IndexHoursOptions;
  constructor(o: IndexHoursOptions) {
    this.#o = o;
  }

  #span(recordsHour: number): number[] {
    const hours: number[] = [];
    for (let h = recordsHour - HOUR_MS; h <= recordsHour + this.#o.marginHours * HOUR_MS; h += HOUR_MS)
      hours.push(h);
    return hours;
  }

  need(recordsHour: number): void {
    for (const h of this.#span(recordsHour)) this.#users.set(h, (this.#users.get(h) ?? 0) + 1);
  }

  release(recordsHour: number): void {
    for (const h of this.#span(recordsHour)) {
      const left = (this.#users.get(h) ?? 1) - 1;
      this.#users.set(h, left);
      if (left === 0) this.#hours.delete(h);
    }
  }

  async readingFor(recordsHour: number): Promise<CompactionIndexes> {
    return { hours: await Promise.all(this.#span(recordsHour).map((h) => this.#hour(h))) };
  }

  #hour(start: number): Promise<IndexHourSummary> {
    let reading = this.#hours.get(start);
    if (reading === undefined) {
      reading = (async () => {
        const r = await readIndexHourSummary(this.#o, start, this.#o.keep);
        this.#o.counts.indexLists += r.listCalls;
        this.#o.counts.indexGets += r.getCalls;
        return r;
      })();
      // Awaited by every hour that needs it; a failure is reported there, not as unhandled.
      reading.catch(() => {});
      this.#hours.set(start, reading);
    }
    return reading;
  }
}
