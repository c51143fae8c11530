// The finalize handler's work: decide what one new GCS object is, and queue it for its
// table's next load at most once. Duplicate events are normal (Eventarc and S3 deliver
// at least once, and an S3 overwrite re-transfers a key), so every step is idempotent and
// a retry after a crash at any point finishes the job instead of repeating it.

import type { Bucket } from "@google-cloud/storage";
import { type AnyObjectKey, KeyLayoutError, parseAnyObjectKey } from "../../lib/keys/layout.ts";
import type { StageLog } from "../../lib/log.ts";
import { fromUserMetadata, type ObjectMetadata } from "../../lib/object/metadata.ts";
import { classifyNamespace, type NamespacePolicy, streamNamespaceProblem } from "../../lib/policy/policy.ts";
import type { TableRef } from "../warehouse/port.ts";
import { SWEEP_DEFAULTS } from "./config.ts";
import { inspectObject } from "./inspect.ts";
import {
  type ClaimMarker,
  type DoneMarker,
  markerPaths,
  objectId,
  type PendingMarker,
  pendingMarkerMetadata,
  type QuarantineMarker,
  type SweepWatermark,
} from "./markers.ts";
import { forEachLimited, isNotFound, isPreconditionFailed, type StateStore } from "./state.ts";

/** The part of the GCS object resource (the finalize event's data) the loader reads. */
export interface FinalizedObject {
  bucket: string;
  name: string;
  generation: string;
  size?: string;
  metadata?: Record<string, string>;
}

export type EnqueueOutcome =
  | "queued"
  | "duplicate"
  | "excluded"
  | "ignored"
  | "quarantined"
  | "conflict"
  | "superseded";

export interface EnqueueResult {
  outcome: EnqueueOutcome;
  detail?: string;
  table?: TableRef;
}

export interface EnqueueContext {
  landing: Bucket;
  state: StateStore;
  policy: NamespacePolicy;
  statePrefix: string;
  quarantinePrefix: string;
  validateObjects: boolean;
  log: StageLog;
  now?: () => number;
}

export function gsUri(bucket: string, name: string): string {
  return `gs://${bucket}/${name}`;
}

/** Copies a bad object aside with the reason, records it, and drops it from the queue. */
export async function quarantineObject(
  ctx: Pick<EnqueueContext, "landing" | "state" | "quarantinePrefix" | "log" | "now">,
  object: { name: string; generation: string; sha256: string | null; queuedSha256?: string },
  reason: string,
  table?: TableRef,
): Promise<void> {
  const id = objectId(object.name);
  const quarantinedAs = ctx.quarantinePrefix + object.name;
  const at = new Date(ctx.now?.() ?? Date.now()).toISOString();
  try {
    const source = ctx.landing.file(object.name, { generation: object.generation });
    // Metadata given to a copy replaces the source's, so carry the source's along: the
    // copy keeps its content type and logarchive-* metadata, plus the reason.
    const [meta] = await source.getMetadata();
    const target = ctx.landing.file(quarantinedAs);
    // A precondition (the copy there now, or none) keeps the client's retries on; see StateStore.put.
    let targetGeneration = 0;
    try {
      targetGeneration = Number((await target.getMetadata())[0].generation);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    await source.copy(target, {
      preconditionOpts: { ifGenerationMatch: targetGeneration },
      contentType: meta.contentType,
      ...(meta.contentEncoding ? { contentEncoding: meta.contentEncoding } : {}),
      metadata: {
        ...((meta.metadata as Record<string, string> | undefined) ?? {}),
        "logarchive-quarantine-reason": reason.slice(0, 1024),
        "logarchive-quarantined-at": at,
        "logarchive-source-generation": object.generation,
      },
    });
  } catch (error) {
    // The source generation is gone (overwritten or deleted): there is nothing left to copy,
    // but the marker below still records why it was not loaded. A 412: another delivery of
    // the same object copied it at the same moment.
    if (!isNotFound(error) && !isPreconditionFailed(error)) throw error;
  }
  const marker: QuarantineMarker = {
    name: object.name,
    sha256: object.sha256,
    generation: object.generation,
    reason,
    quarantinedAs,
    at,
  };
  // Two deliveries of one bad object race here: the one that creates the marker reports it,
  // so a log-based counter counts the object once. A different body replaces the marker.
  let first = await ctx.state.createOwned(markerPaths.quarantined(id), marker);
  if (!first) {
    const existing = await ctx.state.read<QuarantineMarker>(markerPaths.quarantined(id));
    if (existing === null || existing.sha256 !== object.sha256 || object.sha256 === null) {
      await ctx.state.put(markerPaths.quarantined(id), marker);
      first = true;
    }
  }
  // The queue entry names the object by the SHA-256 it was queued with (its metadata's
  // when checks at enqueue are off), which can differ from what its bytes hash to.
  if (table !== undefined) await removePendingIf(ctx.state, table, id, object.queuedSha256 ?? object.sha256);
  if (!first) return;
  ctx.log("error", "object_quarantined", {
    object: object.name,
    generation: object.generation,
    reason,
    quarantined_as: quarantinedAs,
  });
}

/**
 * Takes an object out of a table's queue, unless the queued marker is for another body
 * (a fixed copy uploaded under the same name since).
 */
export async function removePendingIf(
  state: StateStore,
  table: TableRef,
  id: string,
  sha256: string | null,
): Promise<void> {
  const path = markerPaths.pending(table, id);
  const queued = await state.readVersioned<PendingMarker>(path);
  if (queued === null) return;
  if (sha256 !== null && queued.value.sha256 !== sha256) return;
  try {
    await state.file(path).delete({ ifGenerationMatch: queued.generation });
  } catch (error) {
    if (!isNotFound(error) && !isPreconditionFailed(error)) throw error;
  }
}

export async function enqueueObject(ctx: EnqueueContext, object: FinalizedObject): Promise<EnqueueResult> {
  const now = () => new Date(ctx.now?.() ?? Date.now()).toISOString();
  if (object.name.startsWith(ctx.statePrefix) || object.name.startsWith(ctx.quarantinePrefix)) {
    return { outcome: "ignored", detail: "loader state or quarantine object" };
  }
  let key: AnyObjectKey;
  try {
    key = parseAnyObjectKey(object.name);
  } catch (error) {
    if (!(error instanceof KeyLayoutError)) throw error;
    await quarantineObject(ctx, { ...object, sha256: null }, `not a logarchive object key: ${error.message}`);
    return { outcome: "quarantined", detail: error.message };
  }
  let table: TableRef;
  // A per-namespace object is checked against the policy by its key's namespace; a stream
  // object, whose key names only its table, by every record's namespace (inspected below).
  let namespaceCheck: string | ((namespace: string) => string | null);
  if (key.kind === "stream") {
    const streamTable = { dataset: key.dataset, table: key.table };
    table = streamTable;
    namespaceCheck = (namespace) => streamNamespaceProblem(ctx.policy, namespace, streamTable);
  } else {
    const classification = classifyNamespace(ctx.policy, key.namespace);
    if (!classification.archived || classification.destination === null) {
      const reason = classification.archived
        ? "not in analytics.include or in analytics.exclude"
        : classification.reason;
      ctx.log("info", "object_excluded", { object: object.name, namespace: key.namespace, reason });
      return { outcome: "excluded", detail: reason };
    }
    table = classification.destination;
    namespaceCheck = key.namespace;
  }
  const id = objectId(object.name);

  let metadata: ObjectMetadata | null = null;
  let metadataProblem: string | null = null;
  try {
    metadata = fromUserMetadata(object.metadata ?? {});
  } catch (error) {
    metadataProblem = (error as Error).message;
  }

  // A known sha256 lets a duplicate return before reading the body.
  if (metadata !== null) {
    const early = await checkKnown(ctx, id, object, metadata.sha256);
    if (early !== null) return early;
  }

  let sha256 = metadata?.sha256 ?? null;
  let records = metadata?.records ?? 0;
  // The namespaces of a stream object's records: known only by reading it, so it is
  // inspected whatever validate_objects says.
  let namespaces: string[] = [];
  if (ctx.validateObjects || metadata === null || key.kind === "stream") {
    const file = ctx.landing.file(object.name, { generation: object.generation });
    let inspection: Awaited<ReturnType<typeof inspectObject>>;
    try {
      inspection = await inspectObject(file, {
        namespace: namespaceCheck,
        ...(metadata === null
          ? {}
          : { sha256: metadata.sha256, records: metadata.records, batchId: metadata.batchId }),
      });
    } catch (error) {
      if (isNotFound(error)) {
        // A newer generation replaced this one; its own event decides what to do.
        ctx.log("warn", "object_superseded", { object: object.name, generation: object.generation });
        return { outcome: "superseded" };
      }
      throw error;
    }
    if (!inspection.ok) {
      const known = inspection.sha256 === null ? null : await checkKnown(ctx, id, object, inspection.sha256);
      if (known !== null) return known;
      await quarantineObject(ctx, { ...object, sha256: inspection.sha256 }, inspection.reason, table);
      return { outcome: "quarantined", detail: inspection.reason, table };
    }
    if (metadata === null) {
      const known = await checkKnown(ctx, id, object, inspection.sha256);
      if (known !== null) return known;
      // The body is fine but the object lacks our metadata (a copy that dropped it):
      // everything the loader needs was read from the body itself.
      ctx.log("warn", "object_metadata_missing", { object: object.name, problem: metadataProblem });
    }
    sha256 = inspection.sha256;
    records = inspection.records;
    namespaces = inspection.namespaces;
  }
  // Markers name the key's namespace, or for a stream object its records' namespaces, so
  // the flush can check them against the policy again.
  const namespaceFields =
    key.kind === "stream" ? { namespace: "", namespaces } : { namespace: key.namespace };
  if (sha256 === null) throw new Error("unreachable: sha256 is known after inspection");

  // Claim the name. The first event for it wins; a later one with the same body is a
  // duplicate and one with another body is a changed object, which is surfaced, never loaded.
  const claim: ClaimMarker = {
    name: object.name,
    sha256,
    generation: object.generation,
    table,
    ...namespaceFields,
    claimedAt: now(),
  };
  let claimed = await ctx.state.createIfAbsent(markerPaths.claim(id), claim);
  let claimTable = table;
  if (!claimed) {
    const existing = await ctx.state.read<ClaimMarker>(markerPaths.claim(id));
    if (existing !== null && existing.sha256 !== sha256) {
      const replaced = await replaceQuarantinedClaim(ctx, id, existing, claim);
      if (!replaced) return conflict(ctx, id, object, sha256, existing.sha256);
      claimed = true;
    }
    if (existing !== null && existing.sha256 === sha256) claimTable = existing.table;
  }

  // Claimed now or by an earlier attempt that may have crashed before queuing: make sure
  // the object is queued unless it is already loaded or quarantined.
  const pending: PendingMarker = {
    name: object.name,
    uri: gsUri(object.bucket, object.name),
    sha256,
    generation: object.generation,
    records,
    batchId: metadata?.batchId ?? "",
    ...namespaceFields,
    queuedAt: now(),
  };
  if (!claimed) {
    const settled = await checkKnown(ctx, id, object, sha256);
    if (settled !== null) return settled;
  }
  // The marker's fields go in its metadata too: the flush's listing then carries them.
  const created = await ctx.state.createIfAbsent(markerPaths.pending(claimTable, id), pending, {
    metadata: pendingMarkerMetadata(pending),
  });
  // The flusher writes done/ before it deletes pending/, so if a batch loaded this object
  // between our checks and our write, done/ is visible now: take our marker back.
  const done = await ctx.state.read<DoneMarker>(markerPaths.done(id));
  if (done !== null) {
    if (created) await ctx.state.remove(markerPaths.pending(claimTable, id));
    return { outcome: "duplicate", detail: `loaded by ${done.jobId}`, table: claimTable };
  }
  if (!created) {
    await followNewGeneration(ctx, markerPaths.pending(claimTable, id), pending);
    return { outcome: "duplicate", detail: "already queued", table: claimTable };
  }
  ctx.log("info", "object_queued", {
    object: object.name,
    table: `${claimTable.dataset}.${claimTable.table}`,
    records,
    sha256,
  });
  return { outcome: "queued", table: claimTable };
}

/**
 * The same body arrived again as a newer generation (an S3 overwrite re-transferred it): the
 * queued marker must name the live generation, or the flush would take it for a changed
 * object. Generations only move forward.
 */
async function followNewGeneration(ctx: EnqueueContext, path: string, pending: PendingMarker): Promise<void> {
  for (let tries = 0; tries < 5; tries++) {
    const queued = await ctx.state.readVersioned<PendingMarker>(path);
    if (queued === null || queued.value.sha256 !== pending.sha256) return;
    if (BigInt(queued.value.generation) >= BigInt(pending.generation)) return;
    const updated = { ...queued.value, generation: pending.generation };
    // The metadata the flush lists must name the new generation as the body does.
    const written = await ctx.state.replaceIfGeneration(path, updated, queued.generation, {
      metadata: pendingMarkerMetadata(updated),
    });
    if (written) {
      ctx.log("info", "object_regenerated", { object: pending.name, generation: pending.generation });
      return;
    }
  }
}

/** Already loaded or quarantined with this body → duplicate; loaded with another body → conflict. */
async function checkKnown(
  ctx: EnqueueContext,
  id: string,
  object: FinalizedObject,
  sha256: string,
): Promise<EnqueueResult | null> {
  const done = await ctx.state.read<DoneMarker>(markerPaths.done(id));
  if (done !== null) {
    if (done.sha256 === sha256)
      return { outcome: "duplicate", detail: `loaded by ${done.jobId}`, table: done.table };
    return conflict(ctx, id, object, sha256, done.sha256);
  }
  const quarantined = await ctx.state.read<QuarantineMarker>(markerPaths.quarantined(id));
  if (quarantined !== null && quarantined.sha256 === sha256) {
    return { outcome: "duplicate", detail: `quarantined: ${quarantined.reason}` };
  }
  return null;
}

/** A quarantined object may be replaced by a fixed one with the same name: it then loads. */
async function replaceQuarantinedClaim(
  ctx: EnqueueContext,
  id: string,
  existing: ClaimMarker,
  claim: ClaimMarker,
): Promise<boolean> {
  const quarantined = await ctx.state.read<QuarantineMarker>(markerPaths.quarantined(id));
  if (quarantined === null || quarantined.sha256 !== existing.sha256) return false;
  const [meta] = await ctx.state.file(markerPaths.claim(id)).getMetadata();
  try {
    await ctx.state.file(markerPaths.claim(id)).save(`${JSON.stringify(claim)}\n`, {
      resumable: false,
      contentType: "application/json",
      preconditionOpts: { ifGenerationMatch: Number(meta.generation) },
    });
    return true;
  } catch (error) {
    if (isPreconditionFailed(error)) return false;
    throw error;
  }
}

async function conflict(
  ctx: EnqueueContext,
  id: string,
  object: FinalizedObject,
  sha256: string,
  knownSha256: string,
): Promise<EnqueueResult> {
  const detail = `object changed after it was queued or loaded: body SHA-256 ${sha256}, first seen as ${knownSha256}; the new body is not loaded`;
  await ctx.state.createIfAbsent(markerPaths.conflict(id, sha256), {
    name: object.name,
    generation: object.generation,
    sha256,
    knownSha256,
    at: new Date(ctx.now?.() ?? Date.now()).toISOString(),
  });
  ctx.log("error", "object_conflict", {
    object: object.name,
    generation: object.generation,
    sha256,
    known_sha256: knownSha256,
  });
  return { outcome: "conflict", detail };
}

// The sweeper: finds landing objects whose finalize event never arrived. Eventarc retries
// only when the trigger has retries on, and Pub/Sub drops a message after 24 h without a
// dead-letter topic; a day-long outage or a bad config would otherwise lose objects for good.
// It walks the landing bucket's loadable tiers (analytics, and stream delivery's stream)
// hour by hour (the keys' hour), partition directory by directory (namespace=… or table=…,
// in one sorted list across both tiers), from a watermark in the state bucket, and hands every object that is neither
// loaded nor queued (no claim, or a claim without its queue entry) to the same enqueue as an event, so an
// event arriving later is a duplicate like any other.

export interface SweepSettings {
  /** Objects one run looks at, at most. */
  maxObjectsPerRun: number;
  /** objects.list calls one run makes, at most. */
  maxListsPerRun: number;
  /** An hour is swept once it ended this long ago: its objects' events have had time to arrive. */
  settleMs: number;
  /** Where a new watermark starts, before now (Eventarc keeps events 24 h). */
  initialLookbackMs: number;
  /** Flush runs closer together than this skip the sweep. */
  intervalMs: number;
}

/** The defaults; maxObjectsPerRun and intervalMs are settings (LOGARCHIVE_SWEEP_*, config.ts). */
export const DEFAULT_SWEEP_SETTINGS: SweepSettings = {
  maxObjectsPerRun: SWEEP_DEFAULTS.maxObjectsPerRun,
  maxListsPerRun: 500,
  settleMs: 30 * 60_000,
  initialLookbackMs: 24 * 3_600_000,
  intervalMs: SWEEP_DEFAULTS.intervalMs,
};

export interface SweepContext {
  landing: Bucket;
  state: StateStore;
  /** The loadable tiers' key prefixes in the landing bucket, e.g. `logs/analytics/` and `logs/stream/`. */
  tierPrefixes: string[];
  settings: SweepSettings;
  /** The finalize handler's own path. */
  enqueue: (object: FinalizedObject) => Promise<EnqueueResult>;
  log: StageLog;
  now?: () => number;
  /** The flush run's deadline (epoch ms): no listing starts after it, so the sweep's time counts against the run. */
  deadline?: number;
}

export interface SweepResult {
  /** swept: this run listed; skipped: too soon after the last; busy: another run holds the watermark. */
  status: "swept" | "skipped" | "busy";
  examined: number;
  enqueued: number;
  /** The hour the watermark is at after this run. */
  hour: string;
  /** The watermark reached the hours that have not settled yet. */
  caughtUp: boolean;
}

const HOUR_MS = 3_600_000;
const SWEEP_CONCURRENCY = 16;

function hourKey(ms: number): string {
  return new Date(ms).toISOString().slice(0, 13);
}

function hourStart(hour: string): number {
  return Date.parse(`${hour}:00:00Z`);
}

export async function sweepLanding(ctx: SweepContext): Promise<SweepResult> {
  const now = ctx.now ?? Date.now;
  const { settings } = ctx;
  const path = markerPaths.sweepWatermark();
  let current = await ctx.state.readVersioned<SweepWatermark>(path);
  if (current === null) {
    await ctx.state.createIfAbsent(path, {
      hour: hourKey(now() - settings.initialLookbackMs),
      sweptAt: new Date(0).toISOString(),
    } satisfies SweepWatermark);
    current = await ctx.state.readVersioned<SweepWatermark>(path);
    if (current === null) throw new Error(`sweep watermark ${path} vanished after it was created`);
  }
  const settled = (hour: string) => hourStart(hour) + HOUR_MS + settings.settleMs <= now();
  const result = (status: SweepResult["status"], examined = 0, enqueued = 0): SweepResult => ({
    status,
    examined,
    enqueued,
    hour: watermark.hour,
    caughtUp: !settled(watermark.hour),
  });
  let watermark = current.value;
  if (now() - Date.parse(watermark.sweptAt) < settings.intervalMs) return result("skipped");
  // Take the sweep for this run; every later step is a compare-and-swap on what this run wrote,
  // so two runs never walk the same stretch at once (and if they did, enqueue is idempotent).
  watermark = { ...watermark, sweptAt: new Date(now()).toISOString() };
  let generation = await ctx.state.swap(path, watermark, current.generation);
  if (generation === null) return result("busy");

  let lists = 0;
  let examined = 0;
  let enqueued = 0;
  let namespaceDirs: string[] | null = null;
  const beforeDeadline = () => ctx.deadline === undefined || now() < ctx.deadline;
  while (
    lists < settings.maxListsPerRun &&
    examined < settings.maxObjectsPerRun &&
    settled(watermark.hour) &&
    beforeDeadline()
  ) {
    if (namespaceDirs === null) {
      namespaceDirs = await listNamespaceDirs(ctx);
      lists += Math.max(1, Math.ceil(namespaceDirs.length / 1000));
    }
    const from = watermark.namespaceDir;
    const dir = namespaceDirs.find((d) => from === undefined || d >= from);
    let next: SweepWatermark;
    if (dir === undefined) {
      next = { hour: hourKey(hourStart(watermark.hour) + HOUR_MS), sweptAt: watermark.sweptAt };
    } else {
      const hour = watermark.hour;
      const after = dir === from ? watermark.after : undefined;
      const [files, page] = await ctx.landing.getFiles({
        prefix: `${dir}dt=${hour.slice(0, 10)}/hour=${hour.slice(11, 13)}/`,
        autoPaginate: false,
        maxResults: Math.min(1000, settings.maxObjectsPerRun - examined + (after === undefined ? 0 : 1)),
        ...(after === undefined ? {} : { startOffset: after }),
      });
      lists++;
      const fresh = files.filter((f) => f.name !== after);
      examined += fresh.length;
      await forEachLimited(fresh, SWEEP_CONCURRENCY, async (f) => {
        const id = objectId(f.name);
        // Loaded: nothing to do (the common case once an hour has settled, so one read).
        if (await ctx.state.exists(markerPaths.done(id))) return;
        // Claimed and queued: its event came and the flush has it. Claimed but not queued: a
        // finalize died between claims/ and pending/ and was not redelivered; enqueue finishes
        // its work (the same body is queued for the claim's table, another is a conflict).
        const claim = await ctx.state.read<ClaimMarker>(markerPaths.claim(id));
        if (claim !== null && (await ctx.state.exists(markerPaths.pending(claim.table, id)))) return;
        // A bad object is quarantined (before any claim, or at the flush): its event came.
        if (await ctx.state.exists(markerPaths.quarantined(id))) return;
        const meta = f.metadata;
        const object: FinalizedObject = {
          bucket: ctx.landing.name,
          name: f.name,
          generation: String(meta.generation),
          ...(meta.metadata ? { metadata: meta.metadata as Record<string, string> } : {}),
        };
        const outcome = await ctx.enqueue(object);
        // Not loaded by the policy (it changed since the object was written): no claim is
        // ever made, and enqueue has logged it; nothing was lost.
        if (outcome.outcome === "excluded" || outcome.outcome === "ignored") return;
        enqueued++;
        ctx.log("warn", "object_swept", {
          object: f.name,
          generation: object.generation,
          outcome: outcome.outcome,
          hint: "its finalize event never arrived: check the trigger's retries and dead-letter topic",
        });
      });
      const more = (page as { pageToken?: string } | null)?.pageToken !== undefined;
      const last = fresh.at(-1)?.name ?? after;
      if (more && last !== undefined) next = { ...watermark, namespaceDir: dir, after: last };
      else {
        const following = namespaceDirs.find((d) => d > dir);
        next =
          following === undefined
            ? { hour: hourKey(hourStart(watermark.hour) + HOUR_MS), sweptAt: watermark.sweptAt }
            : { hour: watermark.hour, namespaceDir: following, sweptAt: watermark.sweptAt };
      }
    }
    generation = await ctx.state.swap(path, next, generation);
    if (generation === null) return result("busy", examined, enqueued);
    watermark = next;
  }
  if (enqueued > 0 || examined > 0)
    ctx.log("info", "sweep_run", { examined, enqueued, hour: watermark.hour, lists });
  return result("swept", examined, enqueued);
}

/**
 * The partition directories of the loadable tiers, `<tier>namespace=<ns>/` and
 * `<stream>table=<dataset>.<table>/`, in one sorted list (the watermark names one of them).
 */
async function listNamespaceDirs(ctx: SweepContext): Promise<string[]> {
  const out: string[] = [];
  for (const prefix of ctx.tierPrefixes) {
    let pageToken: string | undefined;
    do {
      const [, next, response] = await ctx.landing.getFiles({
        prefix,
        delimiter: "/",
        autoPaginate: false,
        maxResults: 1000,
        ...(pageToken ? { pageToken } : {}),
      });
      out.push(...((response as { prefixes?: string[] } | undefined)?.prefixes ?? []));
      pageToken = (next as { pageToken?: string } | null)?.pageToken;
    } while (pageToken);
  }
  return out.sort();
}
