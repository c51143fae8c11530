// The local S3 archive as tests start it: s3rver with the buckets, and the archive front before it
// giving the buckets that need them versioning and Object Lock. Tests drive it through a client of
// their own (some watch the client's requests), so none is made here.

import { join } from "node:path";
import { type LocalS3, startLocalS3 } from "../s3.ts";
import { type S3ArchiveFront, startS3ArchiveFront } from "./server.ts";
import type { BucketConfig } from "./state.ts";

/**
 * A bucket as the stack's archive bucket is deployed (infra objectLockDays): Object Lock with a
 * GOVERNANCE default retention of `days`, which a PUT that names no retention takes.
 */
export function objectLockBucket(name: string, days: number): BucketConfig {
  return { name, objectLock: true, defaultRetention: { mode: "GOVERNANCE", days } };
}

/** A bucket name is a plain (unversioned) bucket; a BucketConfig one the front versions or locks. */
export type ArchiveBucket = string | BucketConfig;

export interface LocalArchive {
  s3: LocalS3;
  front: S3ArchiveFront;
  /** Stops the front, then s3rver. */
  stop(): Promise<void>;
}

/**
 * The archive front over `s3`, keeping older versions under `<dir>/front`: started again over the
 * same `dir` and `buckets` it finds the versions, holds and tags the last one kept (a restart).
 * `now` is the clock default retention and restores run on (default Date.now).
 */
export function startTestArchiveFront(
  s3: LocalS3,
  dir: string,
  buckets: readonly ArchiveBucket[],
  now?: () => number,
): Promise<S3ArchiveFront> {
  return startS3ArchiveFront({
    host: "127.0.0.1",
    port: 0,
    upstream: s3.endpoint,
    region: "us-east-1",
    dataDir: join(dir, "front"),
    buckets: buckets.filter((b): b is BucketConfig => typeof b !== "string"),
    ...(now === undefined ? {} : { now }),
  });
}

/** s3rver under `<dir>/s3` with every bucket of `buckets`, and the archive front before it. */
export async function startLocalArchive(
  dir: string,
  buckets: readonly ArchiveBucket[],
  now?: () => number,
): Promise<LocalArchive> {
  const s3 = await startLocalS3({
    host: "127.0.0.1",
    port: 0,
    dataDir: join(dir, "s3"),
    buckets: buckets.map((b) => (typeof b === "string" ? b : b.name)),
  });
  const front = await startTestArchiveFront(s3, dir, buckets, now).catch(async (error: unknown) => {
    await s3.stop();
    throw error;
  });
  return {
    s3,
    front,
    async stop() {
      await front.stop();
      await s3.stop();
    },
  };
}
