// Compliance retrieval (`logarchive retrieve`, docs/retrieval.md): every record of one
// namespace in an exact time range, restored from the archive classes where needed, verified
// against the checksum the shipper wrote, filtered, in time order, with a manifest that says
// what was read and what the result proves. It only reads: it never deletes, overwrites or
// changes a lock in the archive (RestoreObject makes a temporary copy beside the object).

import type { S3Client } from "@aws-sdk/client-s3";
import { DEFAULT_GAP_MARGIN_HOURS } from "../../functions/loader/reconcile.ts";
import { forEachLimited } from "../../functions/loader/state.ts";
import type { PriceTable } from "../economics/prices.ts";
import { longLivedTiers } from "../keys/tiers.ts";
import { compareInstants, formatRfc3339Nano } from "../record/timestamp.ts";
import { type ContinuityReport, checkContinuity } from "./continuity.ts";
import { type DownloadResult, downloadAndFilter, type KeptRecord } from "./download.ts";
import {
  type InspectedVersion,
  inspectVersion,
  type ListedPrefix,
  type ListedVersion,
  listVersions,
} from "./find.ts";
import { describeLoss, findLossRecords, type LossEntry } from "./losses.ts";
import { planRestores, type RestorePlan, type RestoreTier } from "./plan.ts";
import { hourPartitions, RecordMatcher, type RetrievalQuery } from "./query.ts";
import { afterRestoreRequest, type RestoreOutcome, startRestores, waitForRestores } from "./restore.ts";

export interface RetrieveInput {
  s3: S3Client;
  bucket: string;
  /** The archive's key prefix (the policy's archive.prefix, or the shipper's `prefix`). */
  prefix: string;
  query: RetrievalQuery;
  restoreTier: RestoreTier;
  restoreDays: number;
  prices: PriceTable;
  /** Stop after the plan: nothing is restored or downloaded. */
  planOnly?: boolean;
  /** Wait for running restores (default); false starts them and returns "waiting". */
  wait?: boolean;
  pollIntervalMs: number;
  /** Waits between restore polls; default a timer. */
  sleep?: (ms: number) => Promise<void>;
  /**
   * Hours listed each side of the range for the continuity check where no hour index decides
   * (default reconcile's), and the most hour indexes are read past the range.
   */
  gapMarginHours?: number;
  /** Now, ms (default the clock): the hour it falls in has no index yet. */
  now?: number;
  onEvent?: (event: RetrieveEvent) => void;
}

export type RetrieveEvent =
  | { kind: "listed"; versions: number; prefixes: number }
  | { kind: "inspected"; versions: number }
  | { kind: "restores-requested"; outcomes: readonly RestoreOutcome[] }
  | { kind: "restore-progress"; ready: number; total: number }
  | { kind: "downloaded"; done: number; total: number };

/** What one object version contributed, for the manifest. */
export interface ObjectEntry {
  key: string;
  versionId: string;
  isLatest: boolean;
  /**
   * records: the version whose records were read (the newest that is not a delete marker);
   * duplicate-write: an older version with the same ETag and checksum (a retried upload);
   * conflicting-version: an older version with other bytes; delete-marker: the key was deleted.
   */
  role: "records" | "duplicate-write" | "conflicting-version" | "delete-marker";
  storageClass: string | null;
  restore: InspectedVersion["restore"] | null;
  lock: InspectedVersion["lock"] | null;
  size: number;
  etag: string | null;
  lastModified: string | null;
  /** The checksum in the metadata, and the one computed over the body read. */
  metadataSha256: string | null;
  sha256: string | null;
  checksum: "verified" | "mismatch" | "not-read";
  recordsTotal: number | null;
  recordsKept: number;
  problems: string[];
}

export interface RetrieveOutcome {
  status: "planned" | "waiting" | "done";
  plan: RestorePlan;
  restoresRequested: RestoreOutcome[];
  prefixes: ListedPrefix[];
  unparsableKeys: string[];
  objects: ObjectEntry[];
  /** Sorted by time; records of objects with problems are not here. */
  records: KeptRecord[];
  continuity: ContinuityReport | null;
  /** The loss records whose span overlaps the range (docs/shipper.md#loss-records). */
  losses: LossEntry[];
  /** Hours of the range with no object while an earlier and a later hour have some. */
  emptyHours: string[];
  problems: string[];
  warnings: string[];
}

function groupByKey(versions: readonly ListedVersion[]): ListedVersion[][] {
  const groups = new Map<string, ListedVersion[]>();
  for (const v of versions) {
    const list = groups.get(v.key) ?? [];
    list.push(v);
    groups.set(v.key, list);
  }
  return [...groups.values()];
}

function entryOf(v: ListedVersion, role: ObjectEntry["role"], inspected?: InspectedVersion): ObjectEntry {
  return {
    key: v.key,
    versionId: v.versionId,
    isLatest: v.isLatest,
    role,
    storageClass: inspected?.storageClass ?? null,
    restore: inspected?.restore ?? null,
    lock: inspected?.lock ?? null,
    size: inspected?.size ?? v.size,
    etag: inspected?.etag ?? v.etag,
    lastModified: v.lastModified,
    metadataSha256: inspected?.metadata?.sha256 ?? null,
    sha256: null,
    checksum: "not-read",
    recordsTotal: inspected?.metadata?.records ?? null,
    recordsKept: 0,
    problems: inspected?.metadataProblem ? [inspected.metadataProblem] : [],
  };
}

export async function retrieve(input: RetrieveInput): Promise<RetrieveOutcome> {
  const { s3, bucket, query } = input;
  const emit = input.onEvent ?? (() => {});
  const listing = await listVersions(s3, bucket, input.prefix, query);
  emit({ kind: "listed", versions: listing.versions.length, prefixes: listing.prefixes.length });

  const inspected = new Map<ListedVersion, InspectedVersion>();
  await forEachLimited(
    listing.versions.filter((v) => !v.isDeleteMarker),
    8,
    async (v) => {
      inspected.set(v, await inspectVersion(s3, bucket, v));
    },
  );
  emit({ kind: "inspected", versions: inspected.size });

  // Per key, the newest version with a body supplies the records; older ones are compared with it.
  const sources: InspectedVersion[] = [];
  const others: { version: ListedVersion; source: InspectedVersion | undefined }[] = [];
  const problems: string[] = [];
  const warnings: string[] = [];
  for (const group of groupByKey(listing.versions)) {
    const newest = group.find((v) => !v.isDeleteMarker);
    const source = newest === undefined ? undefined : inspected.get(newest);
    if (source !== undefined) sources.push(source);
    for (const v of group) if (v !== newest) others.push({ version: v, source });
    if (group[0]?.isDeleteMarker) {
      warnings.push(
        source === undefined
          ? `${group[0].key} was deleted and no version with a body is left`
          : `${group[0].key} was deleted (a delete marker is its current version); its records were read from version ${source.versionId}`,
      );
      if (source === undefined) problems.push(`${group[0].key}: deleted, no version with a body is left`);
    }
  }

  const plan = planRestores(sources, input.restoreTier, input.restoreDays, input.prices);
  const base = {
    plan,
    prefixes: listing.prefixes,
    unparsableKeys: listing.unparsable,
  };
  if (input.planOnly) {
    return {
      status: "planned",
      ...base,
      restoresRequested: [],
      objects: [],
      records: [],
      continuity: null,
      losses: [],
      emptyHours: [],
      problems,
      warnings,
    };
  }

  // Restores: request what is archived and not yet requested, then wait for every copy.
  const restoresRequested = await startRestores(s3, bucket, sources, input.restoreTier, input.restoreDays);
  if (restoresRequested.length > 0) emit({ kind: "restores-requested", outcomes: restoresRequested });
  let readable = sources.map((v) => {
    const outcome = restoresRequested.find((o) => o.key === v.key && o.versionId === v.versionId);
    return outcome === undefined ? v : afterRestoreRequest(v, outcome);
  });
  const pending = readable.some((v) => v.restore.state === "in-progress" || v.restore.state === "archived");
  if (pending && input.wait === false) {
    return {
      status: "waiting",
      ...base,
      restoresRequested,
      objects: [],
      records: [],
      continuity: null,
      losses: [],
      emptyHours: [],
      problems: [...problems, "restores are still running; run the same command again later to resume"],
      warnings,
    };
  }
  if (pending) {
    const waited = await waitForRestores(s3, bucket, readable, input.restoreTier, input.restoreDays, {
      intervalMs: input.pollIntervalMs,
      onProgress: (p) => emit({ kind: "restore-progress", ready: p.ready, total: p.total }),
      ...(input.sleep ? { sleep: input.sleep } : {}),
    });
    readable = waited.versions;
    restoresRequested.push(...waited.restarted);
  }

  // Download, verify and filter each source version.
  const matcher = new RecordMatcher(query);
  const results = new Map<string, DownloadResult>();
  let done = 0;
  await forEachLimited(readable, 4, async (v) => {
    results.set(`${v.key}\u0000${v.versionId}`, await downloadAndFilter(s3, bucket, v, matcher));
    emit({ kind: "downloaded", done: ++done, total: readable.length });
  });

  const objects: ObjectEntry[] = [];
  const perObjectRecords: KeptRecord[][] = [];
  for (const v of readable) {
    const entry = entryOf(v, "records", v);
    const result = results.get(`${v.key}\u0000${v.versionId}`) as DownloadResult;
    entry.sha256 = result.sha256;
    entry.checksum = result.checksumMatches ? "verified" : "mismatch";
    entry.recordsTotal = result.recordsTotal;
    entry.recordsKept = result.kept.length;
    entry.problems = result.problems;
    objects.push(entry);
    perObjectRecords.push(result.kept);
    if (!result.checksumMatches) problems.push(`${v.key} (version ${v.versionId}): ${result.problems[0]}`);
    else if (result.problems.length > 0) {
      problems.push(`${v.key} (version ${v.versionId}): ${result.problems.join("; ")}`);
    }
  }
  for (const { version, source } of others) {
    if (version.isDeleteMarker) {
      objects.push(entryOf(version, "delete-marker"));
      continue;
    }
    const own = inspected.get(version);
    const same =
      source !== undefined &&
      own?.etag === source.etag &&
      own?.metadata?.sha256 !== undefined &&
      own.metadata.sha256 === source.metadata?.sha256;
    const entry = entryOf(version, same ? "duplicate-write" : "conflicting-version", own);
    if (!same) {
      entry.problems.push(
        `its ETag or checksum differs from version ${source?.versionId ?? "(none)"}, whose records were read`,
      );
      problems.push(
        `${version.key}: version ${version.versionId} holds other bytes than version ${source?.versionId ?? "(none)"}; the key was overwritten`,
      );
    }
    objects.push(entry);
  }
  objects.sort(
    (a, b) => a.key.localeCompare(b.key) || Number(b.role === "records") - Number(a.role === "records"),
  );

  // Time order across objects; records with the same instant keep key order, then line order.
  const records = perObjectRecords.flat().sort((a, b) => compareInstants(a.at, b.at));

  const hours = hourPartitions(query.from, query.to);
  const rangeStart = hours[0]?.start ?? 0;
  const rangeEnd = (hours.at(-1)?.start ?? 0) + 3_600_000;
  const lossRecords = await findLossRecords(
    s3,
    bucket,
    input.prefix,
    query.namespace,
    instantMs(query.from),
    instantMs(query.to),
    input.gapMarginHours ?? DEFAULT_GAP_MARGIN_HOURS,
  );
  for (const loss of lossRecords.entries) {
    problems.push(
      loss.checksum === "mismatch"
        ? `${loss.key}: a loss record whose checksum does not match: ${loss.problems[0]}`
        : `lines lost on the node: ${describeLoss(loss)}`,
    );
  }
  const computed = new Map(objects.filter((o) => o.role === "records").map((o) => [o.key, o.sha256]));
  const lossSha = new Map(lossRecords.entries.map((e) => [e.key, e.sha256]));
  const continuity = await checkContinuity({
    s3,
    bucket,
    keyPrefix: input.prefix,
    namespace: query.namespace,
    selected: readable.map((v) => ({
      key: v.key,
      parsed: v.parsed,
      storageClass: v.storageClass,
      sha256: computed.get(v.key) ?? null,
    })),
    selectedLosses: lossRecords.listed.map((l) => ({ ...l, sha256: lossSha.get(l.key) ?? "" })),
    rangeStart,
    rangeEnd,
    from: instantMs(query.from),
    to: instantMs(query.to),
    ...(input.gapMarginHours === undefined ? {} : { marginHours: input.gapMarginHours }),
    ...(input.now === undefined ? {} : { now: input.now }),
  });
  for (const u of continuity.indexes.unusable) {
    const node = continuity.nodes.find((n) => n.node === u.node && n.epoch === u.epoch);
    const decided =
      u.node === null
        ? "its key names no node, so every node is decided by listing"
        : node !== undefined && node.batches.length === 0
          ? `node ${u.node} (epoch ${u.epoch}) is decided by listing, which cannot show a lost batch of this namespace for a node with no object of it in the range`
          : `node ${u.node} (epoch ${u.epoch}) is decided by listing`;
    warnings.push(`hour index ${u.key} is not used: ${u.problem}; ${decided}`);
  }
  const listedNodes = continuity.nodes.filter((n) => n.source === "listing");
  if (listedNodes.length > 0) {
    warnings.push(
      `${listedNodes.length} of ${continuity.nodes.length} node(s) were decided by listing every namespace's hours (${continuity.listed?.from} → ${continuity.listed?.to}), not by the shipper's hour indexes (continuity.nodes[].fallback says why): ${listedNodes
        .slice(0, 3)
        .map((n) => `${n.node}: ${n.fallback}`)
        .join("; ")}${listedNodes.length > 3 ? "; …" : ""}`,
    );
  }
  for (const node of continuity.nodes) {
    const where = `node ${node.node} (epoch ${node.epoch})`;
    for (const p of node.indexProblems) {
      if (p.kind !== "chain") problems.push(`${where}: ${p.detail}`);
    }
    for (const p of node.problems) {
      const numbers = p.first === p.last ? `batch ${p.first}` : `batches ${p.first}-${p.last}`;
      if (p.kind === "missing") problems.push(`${where}: ${numbers} missing between ${p.keys.join(" and ")}`);
      else if (p.kind === "reused")
        problems.push(`${where}: ${numbers} used by more than one object: ${p.keys.join(", ")}`);
      else {
        warnings.push(
          `${where}: ${numbers}, just below ${p.keys[0]}, is not in the hours listed (${continuity.listed?.from} → ${continuity.listed?.to}); it cannot be decided without listing further back`,
        );
      }
    }
  }

  const withObjects = new Set(readable.map((v) => v.hourStart));
  const emptyHours = hours
    .filter((h) => !withObjects.has(h.start))
    .filter((h) => hours.some((o) => o.start < h.start && withObjects.has(o.start)))
    .filter((h) => hours.some((o) => o.start > h.start && withObjects.has(o.start)))
    .map((h) => `${h.dt}T${h.hour}`);
  for (const hour of emptyHours) {
    warnings.push(
      `hour ${hour} has no object of namespace ${query.namespace} while hours before and after it do`,
    );
  }
  if (listing.unparsable.length > 0) {
    warnings.push(
      `${listing.unparsable.length} key(s) under the listed prefixes are not archive objects and were not read`,
    );
  }
  if (readable.length === 0) {
    problems.push(
      `no archived object of namespace ${query.namespace} in ${formatRfc3339Nano(query.from)} → ${formatRfc3339Nano(query.to)} under ${longLivedTiers().join(" or ")}: nothing shows whether the namespace logged then`,
    );
  }
  return {
    status: "done",
    ...base,
    restoresRequested,
    objects,
    records,
    continuity,
    losses: lossRecords.entries,
    emptyHours,
    problems,
    warnings,
  };
}

function instantMs(t: { epochSeconds: number; nanos: number }): number {
  return t.epochSeconds * 1000 + t.nanos / 1e6;
}
