// Step 4 of a retrieval: start the restores the plan calls for, then poll until every
// restored copy is readable.
//
// Idempotent, so a run can be stopped and run again while jobs take hours: an object whose
// HeadObject shows a restore running or done is not requested again, and if one is requested
// anyway (another run raced this one) S3's answers say so: 202 a job started, 200 a restored
// copy already exists, 409 RestoreAlreadyInProgress
// (https://docs.aws.amazon.com/AmazonS3/latest/API/API_RestoreObject.html). The state lives in
// S3, not on this machine, so any later run resumes where the last left off.

import {
  HeadObjectCommand,
  RestoreObjectCommand,
  type S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { type InspectedVersion, parseRestoreHeader, versionParam } from "./find.ts";
import type { RestoreTier } from "./plan.ts";

/**
 * What restoring needs of an object version: an archive object, or a compacted part (one
 * restore serves every member it holds).
 */
export type Restorable = Pick<InspectedVersion, "key" | "versionId" | "storageClass" | "size" | "restore">;

export interface RestoreOutcome {
  key: string;
  versionId: string;
  /** What this run did: started a job, found one running or a copy already there. */
  result: "started" | "already-in-progress" | "already-restored";
}

export async function startRestores(
  s3: S3Client,
  bucket: string,
  versions: readonly Restorable[],
  tier: RestoreTier,
  days: number,
): Promise<RestoreOutcome[]> {
  const outcomes: RestoreOutcome[] = [];
  for (const v of versions) {
    if (v.restore.state !== "archived") continue;
    let result: RestoreOutcome["result"];
    try {
      const answer = await s3.send(
        new RestoreObjectCommand({
          Bucket: bucket,
          Key: v.key,
          ...versionParam(v.versionId),
          RestoreRequest: { Days: days, GlacierJobParameters: { Tier: tier } },
        }),
      );
      result = answer.$metadata.httpStatusCode === 200 ? "already-restored" : "started";
    } catch (error) {
      if (error instanceof S3ServiceException && error.name === "RestoreAlreadyInProgress") {
        result = "already-in-progress";
      } else {
        throw error;
      }
    }
    outcomes.push({ key: v.key, versionId: v.versionId, result });
  }
  return outcomes;
}

/** The version's state after a restore request answered `outcome`, without another HeadObject. */
export function afterRestoreRequest<T extends Restorable>(v: T, outcome: RestoreOutcome): T {
  return {
    ...v,
    restore:
      outcome.result === "already-restored" ? { state: "restored", expiry: null } : { state: "in-progress" },
  };
}

export interface RestoreProgress {
  ready: number;
  total: number;
  /** Objects still being restored. */
  waiting: readonly Restorable[];
}

export interface WaitOptions {
  intervalMs: number;
  /** Called after each round of HeadObject calls. */
  onProgress?: (progress: RestoreProgress) => void;
  /** Waits between rounds; tests pass a function that resolves when they move the clock. */
  sleep?: (ms: number) => Promise<void>;
  signal?: AbortSignal;
}

/**
 * HeadObject every version that is not readable yet until all are, then returns their fresh
 * states. A restored copy that expired while waiting (a very long wait with --restore-days 1)
 * reads as archived again and is requested again.
 */
export async function waitForRestores<T extends Restorable>(
  s3: S3Client,
  bucket: string,
  versions: readonly T[],
  tier: RestoreTier,
  days: number,
  options: WaitOptions,
): Promise<{ versions: T[]; restarted: RestoreOutcome[] }> {
  const restarted: RestoreOutcome[] = [];
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let current = [...versions];
  for (;;) {
    const waiting = current.filter(
      (v) => v.restore.state === "archived" || v.restore.state === "in-progress",
    );
    options.onProgress?.({ ready: current.length - waiting.length, total: current.length, waiting });
    if (waiting.length === 0) return { versions: current, restarted };
    restarted.push(...(await startRestores(s3, bucket, waiting, tier, days)));
    options.signal?.throwIfAborted();
    await sleep(options.intervalMs);
    options.signal?.throwIfAborted();
    const fresh = new Map<T, T>();
    for (const v of waiting) fresh.set(v, await restoreState(s3, bucket, v));
    current = current.map((v) => fresh.get(v) ?? v);
  }
}

/** The version with its storage class and restore status as HeadObject says them now. */
async function restoreState<T extends Restorable>(s3: S3Client, bucket: string, v: T): Promise<T> {
  const head = await s3.send(
    new HeadObjectCommand({ Bucket: bucket, Key: v.key, ...versionParam(v.versionId) }),
  );
  const storageClass = head.StorageClass ?? "STANDARD";
  return { ...v, storageClass, restore: parseRestoreHeader(storageClass, head.Restore) };
}
