// Where the loader's state lives under the state prefix, and what each marker holds.
//
//   install.json                        random id, made once; part of every job ID
//   claims/<id>.json                    first event for an object name: its sha256 and table
//   pending/<dataset>.<table>/<id>.json queued for the table's next batch (its fields also in its
//                                       custom metadata, so the flush's listing carries them)
//   done/<id>.json                      loaded, by which job
//   quarantined/<id>.json               copied aside, with the reason
//   conflicts/<id>.<sha256>.json        a changed object under a loaded name (an error to surface)
//   batches/<dataset>.<table>/<seq>.json        a batch manifest (created once, ifGenerationMatch=0)
//   batches/<dataset>.<table>/<seq>.a<n>.json   attempt n: its job ID and source URIs
//   batches/<dataset>.<table>/<seq>.done|.failed
//   paused/<dataset>.<table>.json       a table that keeps failing; others go on
//   tables/<dataset>.<table>/head.json          the last batch number (kept for good)
//   tables/<dataset>.<table>/jobs-<day>.json    load jobs started that UTC day (quota guard)
//   sweep/landing.json                  how far the sweeper has listed the landing bucket
//
// <id> is the SHA-256 of the object name, so a name of any length makes a short, safe path.

import { createHash } from "node:crypto";
import type { TableRef } from "../warehouse/port.ts";

export function objectId(name: string): string {
  return createHash("sha256").update(name).digest("hex");
}

export function tableKey(t: TableRef): string {
  return `${t.dataset}.${t.table}`;
}

export function parseTableKey(key: string): TableRef | null {
  const dot = key.indexOf(".");
  if (dot <= 0 || dot === key.length - 1) return null;
  return { dataset: key.slice(0, dot), table: key.slice(dot + 1) };
}

const SEQ_DIGITS = 12;

export const markerPaths = {
  install: () => "install.json",
  claim: (id: string) => `claims/${id}.json`,
  pendingDir: (t: TableRef) => `pending/${tableKey(t)}/`,
  pending: (t: TableRef, id: string) => `pending/${tableKey(t)}/${id}.json`,
  done: (id: string) => `done/${id}.json`,
  quarantined: (id: string) => `quarantined/${id}.json`,
  conflict: (id: string, sha256: string) => `conflicts/${id}.${sha256}.json`,
  batchesDir: (t: TableRef) => `batches/${tableKey(t)}/`,
  manifest: (t: TableRef, seq: number) => `batches/${tableKey(t)}/${formatSeq(seq)}.json`,
  attempt: (t: TableRef, seq: number, n: number) => `batches/${tableKey(t)}/${formatSeq(seq)}.a${n}.json`,
  batchDone: (t: TableRef, seq: number) => `batches/${tableKey(t)}/${formatSeq(seq)}.done`,
  batchFailed: (t: TableRef, seq: number) => `batches/${tableKey(t)}/${formatSeq(seq)}.failed`,
  paused: (t: TableRef) => `paused/${tableKey(t)}.json`,
  /** The table's last batch number; never expires, so numbers are never reused. */
  tableHead: (t: TableRef) => `tables/${tableKey(t)}/head.json`,
  /** Load jobs started for the table on a UTC day, for the quota guard. */
  tableJobs: (t: TableRef, day: string) => `tables/${tableKey(t)}/jobs-${day}.json`,
  /** The sweeper's watermark (compare-and-swap). */
  sweepWatermark: () => "sweep/landing.json",
};

export function formatSeq(seq: number): string {
  return String(seq).padStart(SEQ_DIGITS, "0");
}

export type BatchFile =
  | { kind: "manifest"; seq: number }
  | { kind: "attempt"; seq: number; attempt: number }
  | { kind: "done"; seq: number }
  | { kind: "failed"; seq: number };

const BATCH_FILE = /^(\d{12})(?:\.a(\d+))?\.(json|done|failed)$/;

/** Parses a file name inside batches/<table>/; null for anything else. */
export function parseBatchFile(fileName: string): BatchFile | null {
  const m = BATCH_FILE.exec(fileName);
  if (m === null) return null;
  const seq = Number(m[1]);
  if (m[2] !== undefined) return m[3] === "json" ? { kind: "attempt", seq, attempt: Number(m[2]) } : null;
  if (m[3] === "json") return { kind: "manifest", seq };
  return m[3] === "done" ? { kind: "done", seq } : { kind: "failed", seq };
}

/** The first event for an object name. Later events with another sha256 are conflicts. */
export interface ClaimMarker {
  name: string;
  sha256: string;
  generation: string;
  table: TableRef;
  /** The key's namespace; empty for a stream object, whose records' are in `namespaces`. */
  namespace: string;
  /** A stream object's namespaces (its key names only the table). */
  namespaces?: string[];
  claimedAt: string;
}

export interface PendingMarker {
  name: string;
  uri: string;
  sha256: string;
  generation: string;
  records: number;
  batchId: string;
  /** The key's namespace; empty for a stream object, whose records' are in `namespaces`. */
  namespace: string;
  /** A stream object's namespaces (its key names only the table). */
  namespaces?: string[];
  queuedAt: string;
}

/**
 * The custom-metadata key under which a pending/ marker carries its own fields, so that the
 * flush's listing of pending/ (objects.list returns each object's `metadata` in its default
 * projection, https://cloud.google.com/storage/docs/json_api/v1/objects/list) gives it every
 * queued object's marker without a read per object.
 */
export const PENDING_METADATA_KEY = "logarchive-pending";

/**
 * GCS takes at most 4 KiB in one custom-metadata value and 8 KiB in all of an object's keys and
 * values (https://cloud.google.com/storage/docs/reference/rpc/google.storage.v1, ServiceConstants:
 * MAX_CUSTOM_METADATA_FIELD_VALUE_BYTES, MAX_CUSTOM_METADATA_TOTAL_SIZE_BYTES). A marker larger
 * than one value (a stream object with many namespaces) is written without it, and the flush
 * reads that marker's body instead.
 */
export const PENDING_METADATA_MAX_BYTES = 4096;

/**
 * The pending marker as custom metadata, or undefined when it does not fit in one value. Only
 * ASCII (other characters escaped as JSON \u sequences), as metadata also travels as HTTP headers.
 */
export function pendingMarkerMetadata(marker: PendingMarker): Record<string, string> | undefined {
  const json = JSON.stringify(marker).replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
  if (Buffer.byteLength(json, "utf8") > PENDING_METADATA_MAX_BYTES) return undefined;
  return { [PENDING_METADATA_KEY]: json };
}

/**
 * The pending marker a listing's metadata carries, or null when it carries none or a malformed
 * one (a marker written before this key existed, or too large for it): read the body then.
 */
export function pendingMarkerFromMetadata(
  metadata: Record<string, string> | undefined,
): PendingMarker | null {
  const json = metadata?.[PENDING_METADATA_KEY];
  if (json === undefined) return null;
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null) return null;
  const m = value as Record<string, unknown>;
  const strings = ["name", "uri", "sha256", "generation", "batchId", "namespace", "queuedAt"] as const;
  if (!strings.every((k) => typeof m[k] === "string")) return null;
  if (typeof m.records !== "number" || !Number.isInteger(m.records)) return null;
  if (
    m.namespaces !== undefined &&
    !(Array.isArray(m.namespaces) && m.namespaces.every((n) => typeof n === "string"))
  )
    return null;
  return value as PendingMarker;
}

export interface DoneMarker {
  name: string;
  sha256: string;
  table: TableRef;
  jobId: string;
  records: number;
  batchId: string;
  loadedAt: string;
}

export interface QuarantineMarker {
  name: string;
  sha256: string | null;
  generation: string;
  reason: string;
  quarantinedAs: string;
  at: string;
}

export interface ManifestEntry {
  id: string;
  name: string;
  uri: string;
  generation: string;
  sha256: string;
  records: number;
  batchId: string;
  /**
   * The GCS generation of the object's pending/ marker when the batch listed it. Once the job
   * loaded, that exact marker is deleted under ifGenerationMatch, without reading it back; a
   * marker rewritten since (another generation) stays, and the next flush clears it on its
   * done/ check. Absent in manifests written before it existed.
   */
  pendingGeneration?: string;
}

export interface BatchManifest {
  table: TableRef;
  seq: number;
  createdAt: string;
  objects: ManifestEntry[];
}

export interface AttemptFile {
  jobId: string;
  attempt: number;
  uris: string[];
  /** Failed jobs of this batch before this attempt that count toward max_attempts (quota failures do not). */
  failures?: number;
  /** Earliest time to insert the job (back-off after a quota or transient error). */
  notBefore?: string;
  createdAt: string;
  /** The flush run allowed to insert this attempt's job, until when (a compare-and-swap lease). */
  lease?: { holder: string; until: string };
  /** Set when an object changed before the job started: no run may insert it, n+1 replaces it. */
  abandonedAt?: string;
  /**
   * Objects of the manifest left out of this and earlier attempts because a newer generation with
   * the same body replaced them (they stay queued for a later batch): not loaded, not quarantined.
   */
  requeued?: number;
}

export interface BatchOutcome {
  jobId: string | null;
  rows: number;
  objects: number;
  quarantined: number;
  finishedAt: string;
  reason?: string;
}

export interface TableHead {
  seq: number;
  createdAt: string;
  /** The last pending marker the latest batch took: the next batch lists from after it, so a backlog is taken round-robin. */
  pendingCursor?: string;
}

export interface TableJobCount {
  jobs: number;
}

/**
 * How far the sweeper has listed the landing bucket: every object of the hours before `hour`
 * was looked at, and in `hour` those of the namespace directories before `namespaceDir`, and
 * in it those up to `after`.
 */
export interface SweepWatermark {
  /** UTC hour of the object keys, YYYY-MM-DDTHH. */
  hour: string;
  namespaceDir?: string;
  after?: string;
  /** When a run last took the sweep, so runs closer than the sweep interval skip it. */
  sweptAt: string;
}

export interface PausedMarker {
  reason: string;
  batch: number;
  pausedAt: string;
}
