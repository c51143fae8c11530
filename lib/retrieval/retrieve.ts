// Compliance retrieval (`logarchive retrieve`, docs/retrieval.md): every record of one
// namespace in an exact time range, restored from the archive classes where needed, verified
// against the checksum the shipper wrote, filtered, in time order, with a manifest that says
// what was read and what the result proves. It only reads: it never deletes, overwrites or
// changes a lock in the archive (RestoreObject makes a temporary copy beside the object).

import { HeadObjectCommand, type S3Client, S3ServiceException } from "@aws-sdk/client-s3";
import { DEFAULT_GAP_MARGIN_HOURS } from "../../functions/loader/reconcile.ts";
import { forEachLimited } from "../../functions/loader/state.ts";
import type { PriceTable } from "../economics/prices.ts";
import { parseObjectKey } from "../keys/layout.ts";
import { longLivedTiers } from "../keys/tiers.ts";
import type { CompactedPart, CompactionMember } from "../object/compaction-manifest.ts";
import { compareInstants, formatRfc3339Nano } from "../record/timestamp.ts";
import { type HourManifests, type ReadManifest, readHourManifests, readPartMembers } from "./compacted.ts";
import { type ContinuityReport, checkContinuity } from "./continuity.ts";
import { type DownloadResult, downloadAndFilter, type KeptRecord, verifyAndFilter } from "./download.ts";
import {
  type InspectedVersion,
  inspectVersion,
  type ListedPrefix,
  type ListedVersion,
  listVersions,
  stateFromHead,
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
  | { kind: "listed"; versions: number; prefixes: number; compactedHours: number }
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
   * records: the version whose records were read (the newest that is not a delete marker, or
   * the member of a compacted part, `compacted` says where);
   * duplicate-write: an older version with the same ETag and checksum (a retried upload);
   * conflicting-version: an older version with other bytes; delete-marker: the key was deleted;
   * compacted-original: a version (or delete marker) of an original that a committed manifest
   * names, not read (its member's bytes are the original's, read from the part instead).
   */
  role: "records" | "duplicate-write" | "conflicting-version" | "delete-marker" | "compacted-original";
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
  /** Where a member's bytes were read: its manifest, part and byte range; null for an original. */
  compacted: {
    manifest: string;
    generation: number;
    part: string;
    partVersionId: string;
    offset: number;
    length: number;
  } | null;
}

/**
 * Where an hour's batches were read from, decided per batch at the start of the run: a batch a
 * committed manifest names from its part, every other original present as an original.
 */
export interface HourSource {
  /** YYYY-MM-DDTHH. */
  hour: string;
  /**
   * compacted: every batch from the parts its committed manifests name (every generation);
   * mixed: some from parts, others (not yet compacted) from their originals; originals: no
   * manifest, every batch from its original; none: nothing of the hour exists; unusable:
   * manifests exist but cannot be used (`problem`), so only the originals still present were
   * read and no part.
   */
  source: "compacted" | "mixed" | "originals" | "none" | "unusable";
  /** Original keys of the batches read from compacted parts (named by a committed manifest). */
  batchesFromParts: string[];
  /** Original keys of the batches read from their originals (named by no committed manifest). */
  batchesFromOriginals: string[];
  manifests: {
    key: string;
    versionId: string;
    generation: number;
    sha256: string;
    members: number;
    records: number;
  }[];
  parts: {
    key: string;
    versionId: string | null;
    generation: number;
    storageClass: string | null;
    bytes: number;
    /** The manifest's SHA-256 of the part, and the one computed over the bytes read. */
    manifestSha256: string;
    sha256: string | null;
    checksum: "verified" | "mismatch" | "not-read";
  }[];
  /** Versions (and delete markers) of originals a committed manifest names: not read, their member is. */
  originalsNotRead: number;
  problem: string | null;
}

/** A compacted part to read: its state (HeadObject) and the manifest that names it. */
interface PartSource extends InspectedVersion {
  kind: "part";
  part: CompactedPart;
  manifest: ReadManifest;
  members: CompactionMember[];
}

export interface RetrieveOutcome {
  status: "planned" | "waiting" | "done";
  plan: RestorePlan;
  restoresRequested: RestoreOutcome[];
  prefixes: ListedPrefix[];
  unparsableKeys: string[];
  /** Per hour of the range: which batches were read from compacted parts and which from originals. */
  hours: HourSource[];
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
    compacted: null,
  };
}

/**
 * The manifest's hours[] entry: the hour's manifests (or what made them unusable), which
 * batches were read from parts and which from originals.
 */
function hourSource(
  start: number,
  manifests: HourManifests | undefined,
  fromOriginals: readonly string[],
  originalsNotRead: number,
): HourSource {
  const hour = new Date(start).toISOString().slice(0, 13);
  const batchesFromOriginals = [...fromOriginals].sort();
  const read = manifests?.manifests ?? [];
  const batchesFromParts = read.flatMap((m) => m.manifest.members.map((member) => member.key)).sort();
  const source: HourSource["source"] =
    manifests !== undefined && manifests.problem !== null
      ? "unusable"
      : batchesFromParts.length > 0
        ? batchesFromOriginals.length > 0
          ? "mixed"
          : "compacted"
        : batchesFromOriginals.length > 0
          ? "originals"
          : "none";
  return {
    hour,
    source,
    batchesFromParts,
    batchesFromOriginals,
    manifests: read.map((m) => ({
      key: m.key,
      versionId: m.versionId,
      generation: m.manifest.generation,
      sha256: m.sha256,
      members: m.manifest.totals.members,
      records: m.manifest.totals.records,
    })),
    parts: read.flatMap((m) =>
      m.manifest.parts.map((p) => ({
        key: p.key,
        versionId: null,
        generation: m.manifest.generation,
        storageClass: null,
        bytes: p.bytes,
        manifestSha256: p.sha256,
        sha256: null,
        checksum: "not-read" as const,
      })),
    ),
    originalsNotRead,
    problem: manifests?.problem ?? null,
  };
}

/** HeadObject of a part's current version: its class, restore state and version, as for an original. */
async function inspectPart(
  s3: S3Client,
  bucket: string,
  manifest: ReadManifest,
  part: CompactedPart,
  hourStart: number,
): Promise<PartSource> {
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: part.key }));
  const members = manifest.manifest.members.filter((m) => m.part === part.part);
  // The listing fields an original has; a part's key is not an archive object key, so `parsed`
  // is its first member's (only used to group by node, which parts are not).
  const listed: ListedVersion = {
    key: part.key,
    parsed: parseObjectKey(members[0]!.key),
    versionId: head.VersionId ?? "null",
    isLatest: true,
    isDeleteMarker: false,
    size: head.ContentLength ?? part.bytes,
    etag: head.ETag ?? null,
    lastModified: head.LastModified?.toISOString() ?? null,
    hourStart,
  };
  return { ...stateFromHead(listed, head), kind: "part", part, manifest, members };
}

const isPart = (v: InspectedVersion): v is PartSource => (v as Partial<PartSource>).kind === "part";

export async function retrieve(input: RetrieveInput): Promise<RetrieveOutcome> {
  const { s3, bucket, query } = input;
  const emit = input.onEvent ?? (() => {});
  const problems: string[] = [];
  const warnings: string[] = [];
  // Per batch, decided before anything is read (docs/retrieval.md#compacted-hours): a batch a
  // committed manifest names is read from its part, every other original present as an
  // original. The originals are listed first and the manifests after: the compactor deletes
  // (a delete marker) only originals a manifest it already committed names, so an original
  // gone from the listing is named by a manifest read after it, and one listed but named only
  // by a manifest committed in between is read once, from its part.
  const hours = hourPartitions(query.from, query.to);
  const listing = await listVersions(s3, bucket, input.prefix, query);
  const compactedHours = new Map<number, HourManifests>();
  await forEachLimited(hours, 8, async (h) => {
    const read = await readHourManifests(s3, bucket, input.prefix, query.namespace, h.dt, h.hour);
    if (read.keys.length > 0) compactedHours.set(h.start, read);
  });
  emit({
    kind: "listed",
    versions: listing.versions.length,
    prefixes: listing.prefixes.length,
    compactedHours: compactedHours.size,
  });
  const namedBatches = new Set(
    [...compactedHours.values()].flatMap((h) =>
      h.manifests.flatMap((m) => m.manifest.members.map((member) => member.key)),
    ),
  );
  // A named original's bytes are its member's: its versions are listed, not read.
  const compactedOriginals = listing.versions.filter((v) => namedBatches.has(v.key));
  // Except when the key's current version is not the version its member copied: the key was
  // written again after compaction, with bytes no part holds. The member is still read (it is
  // the batch the manifest vouches for); the new version is reported, loudly, never dropped.
  const compactedVersions = new Map(
    [...compactedHours.values()].flatMap((h) =>
      h.manifests.flatMap((m) =>
        m.manifest.members.map((member) => [member.key, member.versionId ?? "null"]),
      ),
    ),
  );
  const rewritten = new Set<ListedVersion>();
  for (const v of compactedOriginals) {
    const compactedVersion = compactedVersions.get(v.key);
    if (!v.isLatest || v.isDeleteMarker || v.versionId === compactedVersion) continue;
    rewritten.add(v);
    problems.push(
      `${v.key}: key written again after compaction: version ${v.versionId} differs from the compacted version ${compactedVersion}; the compacted version was read from its part, version ${v.versionId} was not read`,
    );
  }
  const originals = listing.versions.filter((v) => !namedBatches.has(v.key));
  for (const [start, read] of compactedHours) {
    if (read.problem === null) continue;
    const hour = new Date(start).toISOString().slice(0, 13);
    problems.push(
      `hour ${hour} has compaction manifests that cannot be used (${read.problem}): no compacted part of it was read, only the originals still present, so batches whose originals are gone are missing`,
    );
  }
  const parts: PartSource[] = [];
  await forEachLimited(
    [...compactedHours].flatMap(([start, read]) =>
      read.manifests.flatMap((manifest) =>
        manifest.manifest.parts.map((part) => ({ start, manifest, part })),
      ),
    ),
    8,
    async ({ start, manifest, part }) => {
      try {
        parts.push(await inspectPart(s3, bucket, manifest, part, start));
      } catch (error) {
        const why = error instanceof S3ServiceException ? `${error.name}: ${error.message}` : String(error);
        const members = manifest.manifest.members.filter((m) => m.part === part.part).map((m) => m.key);
        problems.push(
          `part ${part.key} named by ${manifest.key} cannot be read (${why}): its members ${members.join(", ")} were not read`,
        );
      }
    },
  );
  parts.sort((a, b) => a.key.localeCompare(b.key));

  const inspected = new Map<ListedVersion, InspectedVersion>();
  await forEachLimited(
    originals.filter((v) => !v.isDeleteMarker),
    8,
    async (v) => {
      inspected.set(v, await inspectVersion(s3, bucket, v));
    },
  );
  emit({ kind: "inspected", versions: inspected.size });

  // Per key, the newest version with a body supplies the records; older ones are compared with it.
  const sources: InspectedVersion[] = [];
  const others: { version: ListedVersion; source: InspectedVersion | undefined }[] = [];
  for (const group of groupByKey(originals)) {
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
  const hourSources = hours.map((h) =>
    hourSource(
      h.start,
      compactedHours.get(h.start),
      sources.filter((v) => v.hourStart === h.start).map((v) => v.key),
      compactedOriginals.filter((v) => v.hourStart === h.start).length,
    ),
  );
  for (const h of hourSources) {
    if (h.source !== "mixed") continue;
    warnings.push(
      `hour ${h.hour}: ${h.batchesFromOriginals.length} batch(es) not yet compacted (named by no committed manifest), read from their originals; ${h.batchesFromParts.length} from compacted parts`,
    );
  }

  // A part is restored once, whatever the number of members it holds.
  const plan = planRestores([...sources, ...parts], input.restoreTier, input.restoreDays, input.prices);
  const base = {
    plan,
    prefixes: listing.prefixes,
    unparsableKeys: listing.unparsable,
    hours: hourSources,
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
  const restoresRequested = await startRestores(
    s3,
    bucket,
    [...sources, ...parts],
    input.restoreTier,
    input.restoreDays,
  );
  if (restoresRequested.length > 0) emit({ kind: "restores-requested", outcomes: restoresRequested });
  let readable: InspectedVersion[] = [...sources, ...parts].map((v) => {
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

  const readableParts = readable.filter(isPart);
  readable = readable.filter((v) => !isPart(v));

  // Download, verify and filter each source version, and each part's members.
  const matcher = new RecordMatcher(query);
  const results = new Map<string, DownloadResult>();
  const memberResults = new Map<CompactionMember, DownloadResult>();
  const partRead = new Map<string, { sha256: string; bytes: number } | string>();
  let done = 0;
  const total = readable.length + readableParts.length;
  await forEachLimited(readable, 4, async (v) => {
    results.set(`${v.key}\u0000${v.versionId}`, await downloadAndFilter(s3, bucket, v, matcher));
    emit({ kind: "downloaded", done: ++done, total });
  });
  await forEachLimited(readableParts, 2, async (p) => {
    try {
      const read = await readPartMembers(s3, bucket, p, p.members, ({ member, bytes, problem }) => {
        memberResults.set(
          member,
          bytes === null
            ? {
                sha256: "",
                checksumMatches: false,
                recordsTotal: 0,
                kept: [],
                problems: [problem ?? "not read"],
              }
            : verifyAndFilter(
                bytes,
                parseObjectKey(member.key),
                {
                  sha256: member.sha256,
                  source: `manifest ${p.manifest.key}`,
                  missing: `manifest ${p.manifest.key} gives no SHA-256`,
                  records: member.records,
                  batchId: null,
                },
                matcher,
              ),
        );
      });
      partRead.set(p.key, read);
    } catch (error) {
      const why = error instanceof S3ServiceException ? `${error.name}: ${error.message}` : String(error);
      partRead.set(p.key, why);
    }
    emit({ kind: "downloaded", done: ++done, total });
  });

  const objects: ObjectEntry[] = [];
  const perObjectRecords: KeptRecord[][] = [];
  const selectedMembers: { member: CompactionMember; part: PartSource; sha256: string | null }[] = [];
  for (const p of readableParts) {
    const read = partRead.get(p.key);
    const hour = hourSources.find((h) => h.hour === new Date(p.hourStart).toISOString().slice(0, 13));
    const listedPart = hour?.parts.find((x) => x.key === p.key);
    if (listedPart !== undefined) {
      listedPart.versionId = p.versionId;
      listedPart.storageClass = p.storageClass;
    }
    if (typeof read === "string" || read === undefined) {
      problems.push(
        `part ${p.key} (version ${p.versionId}) could not be read (${read ?? "not read"}): its members ${p.members.map((m) => m.key).join(", ")} were not read`,
      );
      continue;
    }
    if (listedPart !== undefined) {
      listedPart.sha256 = read.sha256;
      listedPart.checksum =
        read.sha256 === p.part.sha256 && read.bytes === p.part.bytes ? "verified" : "mismatch";
    }
    if (read.sha256 !== p.part.sha256 || read.bytes !== p.part.bytes) {
      problems.push(
        `part ${p.key} (version ${p.versionId}) is ${read.bytes} bytes with SHA-256 ${read.sha256}; manifest ${p.manifest.key} says ${p.part.bytes} bytes, ${p.part.sha256}`,
      );
    }
    for (const member of p.members) {
      const result = memberResults.get(member)!;
      const entry: ObjectEntry = {
        key: member.key,
        versionId: member.versionId ?? "null",
        isLatest: true,
        role: "records",
        storageClass: p.storageClass,
        restore: p.restore,
        lock: p.lock,
        size: member.length,
        etag: null,
        lastModified: null,
        metadataSha256: member.sha256,
        sha256: result.sha256 === "" ? null : result.sha256,
        checksum: result.sha256 === "" ? "not-read" : result.checksumMatches ? "verified" : "mismatch",
        recordsTotal: result.recordsTotal,
        recordsKept: result.kept.length,
        problems: result.problems,
        compacted: {
          manifest: p.manifest.key,
          generation: p.manifest.manifest.generation,
          part: p.key,
          partVersionId: p.versionId,
          offset: member.offset,
          length: member.length,
        },
      };
      objects.push(entry);
      perObjectRecords.push(result.kept);
      selectedMembers.push({ member, part: p, sha256: entry.sha256 });
      if (result.problems.length > 0) {
        problems.push(
          `${member.key} (member of part ${p.key} at bytes ${member.offset}-${member.offset + member.length - 1}): ${result.problems.join("; ")}`,
        );
      }
    }
  }
  for (const v of compactedOriginals) {
    if (!rewritten.has(v)) {
      objects.push(entryOf(v, "compacted-original"));
      continue;
    }
    const entry = entryOf(v, "conflicting-version");
    entry.problems.push(
      `key written again after compaction: version ${v.versionId} differs from the compacted version ${compactedVersions.get(v.key)}, whose records were read from its part`,
    );
    objects.push(entry);
  }
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
    (a, b) =>
      a.key.localeCompare(b.key) ||
      Number(b.role === "records") - Number(a.role === "records") ||
      a.versionId.localeCompare(b.versionId),
  );

  // Time order across objects; records with the same instant keep key order, then line order.
  const records = perObjectRecords.flat().sort((a, b) => compareInstants(a.at, b.at));

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
  const computed = new Map(
    objects.filter((o) => o.role === "records" && o.compacted === null).map((o) => [o.key, o.sha256]),
  );
  const lossSha = new Map(lossRecords.entries.map((e) => [e.key, e.sha256]));
  const continuity = await checkContinuity({
    s3,
    bucket,
    keyPrefix: input.prefix,
    namespace: query.namespace,
    // A member holds its original's batch number and bytes: continuity and the hour indexes'
    // SHA-256 check work on it as on the original, after the original has expired.
    selected: [
      ...readable.map((v) => ({
        key: v.key,
        parsed: v.parsed,
        storageClass: v.storageClass,
        sha256: computed.get(v.key) ?? null,
      })),
      ...selectedMembers.map(({ member, part, sha256 }) => ({
        key: member.key,
        parsed: parseObjectKey(member.key),
        storageClass: part.storageClass,
        sha256,
      })),
    ],
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

  const withObjects = new Set([...readable, ...readableParts].map((v) => v.hourStart));
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
  if (readable.length === 0 && selectedMembers.length === 0) {
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
