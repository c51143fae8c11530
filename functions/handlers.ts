// The two Cloud Functions of the loader, registered with the functions-framework:
//   logarchiveFinalize  CloudEvent google.cloud.storage.object.v1.finalized (Eventarc,
//                       binary or structured mode): validate and queue one object.
//   logarchiveFlush     HTTP, called by Cloud Scheduler every flush_interval: load each
//                       table's queued objects with at most one load job per window.
// A thrown error makes the framework answer 500, and Eventarc retries (for up to 24 h);
// every step is idempotent, so a retry finishes the work instead of repeating it. So only
// transient failures (GCS or the state unreachable, a bad config being fixed) may throw:
// an event that can never succeed is answered 2xx, logged once and counted.

import { type CloudEvent, cloudEvent, http } from "@google-cloud/functions-framework";
import type { FinalizedObject } from "./loader/enqueue.ts";
import type { Loader } from "./loader/loader.ts";

export const FINALIZE_FUNCTION = "logarchiveFinalize";
export const FLUSH_FUNCTION = "logarchiveFlush";
export const FINALIZED_EVENT_TYPE = "google.cloud.storage.object.v1.finalized";

/** Finalize events the handler answered without any work: the cloud counts their log lines. */
export interface FinalizeCounters {
  /** Events whose data can never name an object (logged as `event_malformed`). */
  malformed: number;
  /** Events of another type (logged as `event_ignored`). */
  ignored: number;
}

const MAX_OBJECT_NAME_BYTES = 1024;
// GCS's bucket naming rules, loosely: what any real bucket name matches.
const BUCKET_NAME = /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/;
const GENERATION = /^[1-9][0-9]{0,18}$/;

/**
 * The object a finalize event's data names, or why no object can be read from it. GCS sends
 * its JSON API object resource; anything else (no data, text, a missing or mistyped field,
 * a name no object can have) will never succeed, however often it is retried.
 */
export function finalizedObjectOf(data: unknown): FinalizedObject | string {
  if (data === undefined || data === null) return "data is missing";
  if (typeof data !== "object" || Array.isArray(data) || Buffer.isBuffer(data))
    return "data is not a JSON object";
  const d = data as Record<string, unknown>;
  if (d.name === undefined) return "data.name is missing";
  if (typeof d.name !== "string" || d.name === "") return "data.name is not a non-empty string";
  if (!d.name.isWellFormed()) return "data.name is not valid UTF-8 (an unpaired surrogate)";
  if (/[\r\n]/.test(d.name)) return "data.name holds a newline, which no GCS object name can";
  if (Buffer.byteLength(d.name) > MAX_OBJECT_NAME_BYTES)
    return `data.name is longer than ${MAX_OBJECT_NAME_BYTES} bytes, which no GCS object name can be`;
  if (d.bucket === undefined) return "data.bucket is missing";
  if (typeof d.bucket !== "string" || !BUCKET_NAME.test(d.bucket))
    return `data.bucket ${JSON.stringify(d.bucket)} is not a bucket name`;
  if (d.generation === undefined) return "data.generation is missing";
  const generation = typeof d.generation === "number" ? String(d.generation) : d.generation;
  if (typeof generation !== "string" || !GENERATION.test(generation))
    return `data.generation ${JSON.stringify(d.generation)} is not a positive integer`;
  const metadata = d.metadata;
  if (
    metadata !== undefined &&
    metadata !== null &&
    (typeof metadata !== "object" ||
      Array.isArray(metadata) ||
      Object.values(metadata).some((v) => typeof v !== "string"))
  )
    return "data.metadata is not an object of strings";
  return {
    bucket: d.bucket,
    name: d.name,
    generation,
    ...(metadata ? { metadata: metadata as Record<string, string> } : {}),
    ...(typeof d.size === "string" || typeof d.size === "number" ? { size: String(d.size) } : {}),
  };
}

export function registerLoaderFunctions(
  getLoader: () => Promise<Loader>,
  log: (line: object) => void,
): FinalizeCounters {
  const counters: FinalizeCounters = { malformed: 0, ignored: 0 };
  cloudEvent<unknown>(FINALIZE_FUNCTION, async (event: CloudEvent<unknown>) => {
    if (event.type !== FINALIZED_EVENT_TYPE) {
      counters.ignored++;
      log({ severity: "WARNING", event: "event_ignored", type: event.type, id: event.id });
      return;
    }
    const object = finalizedObjectOf(event.data);
    if (typeof object === "string") {
      // It can never succeed: acknowledge it, or Eventarc would retry it for a day.
      counters.malformed++;
      log({
        severity: "ERROR",
        event: "event_malformed",
        problem: object,
        id: event.id,
        subject: event.subject,
      });
      return;
    }
    const loader = await getLoader();
    const result = await loader.handleFinalize(object);
    log({
      severity: result.outcome === "quarantined" || result.outcome === "conflict" ? "ERROR" : "INFO",
      event: `finalize_${result.outcome}`,
      object: object.name,
      generation: object.generation,
      event_id: event.id,
      ...(result.detail ? { detail: result.detail } : {}),
      ...(result.table ? { table: `${result.table.dataset}.${result.table.table}` } : {}),
    });
  });

  http(FLUSH_FUNCTION, async (req, res) => {
    const asked = req.query.force === "true" || (req.body as { force?: unknown } | undefined)?.force === true;
    try {
      const loader = await getLoader();
      // Each forced flush can cost a load job per table: only where the operator allows it.
      const force = asked && loader.config.allowForcedFlush;
      if (asked && !force)
        log({
          severity: "WARNING",
          event: "forced_flush_refused",
          hint: "set LOGARCHIVE_ALLOW_FORCED_FLUSH=true",
        });
      const tables = await loader.flush({ force });
      res.status(200).json({ plan: loader.plan, tables });
    } catch (error) {
      log({ severity: "ERROR", event: "flush_failed", error: (error as Error).message });
      res.status(500).json({ error: (error as Error).message });
    }
  });
  return counters;
}
