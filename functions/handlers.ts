// The two Cloud Functions of the loader, registered with the functions-framework:
//   logarchiveFinalize  CloudEvent google.cloud.storage.object.v1.finalized (Eventarc,
//                       binary or structured mode): validate and queue one object.
//   logarchiveFlush     HTTP, called by Cloud Scheduler every flush_interval: load each
//                       table's queued objects with at most one load job per window.
// A thrown error makes the framework answer 500, and Eventarc retries (for up to 24 h);
// every step is idempotent, so a retry finishes the work instead of repeating it.

import { type CloudEvent, cloudEvent, http } from "@google-cloud/functions-framework";
import type { FinalizedObject } from "./loader/enqueue.ts";
import type { Loader } from "./loader/loader.ts";

export const FINALIZE_FUNCTION = "logarchiveFinalize";
export const FLUSH_FUNCTION = "logarchiveFlush";
export const FINALIZED_EVENT_TYPE = "google.cloud.storage.object.v1.finalized";

export function registerLoaderFunctions(getLoader: () => Promise<Loader>, log: (line: object) => void): void {
  cloudEvent<FinalizedObject>(FINALIZE_FUNCTION, async (event: CloudEvent<FinalizedObject>) => {
    if (event.type !== FINALIZED_EVENT_TYPE) {
      log({ severity: "WARNING", event: "event_ignored", type: event.type, id: event.id });
      return;
    }
    const data = event.data;
    if (data === undefined || typeof data.name !== "string" || typeof data.bucket !== "string") {
      // A malformed event can never succeed; retrying it for a day would only add noise.
      log({ severity: "ERROR", event: "event_malformed", id: event.id, subject: event.subject });
      return;
    }
    const loader = await getLoader();
    const result = await loader.handleFinalize({
      bucket: data.bucket,
      name: data.name,
      generation: String(data.generation),
      ...(data.metadata ? { metadata: data.metadata } : {}),
      ...(data.size === undefined ? {} : { size: String(data.size) }),
    });
    log({
      severity: result.outcome === "quarantined" || result.outcome === "conflict" ? "ERROR" : "INFO",
      event: `finalize_${result.outcome}`,
      object: data.name,
      generation: String(data.generation),
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
}
