// GCS buckets of the loader: the landing bucket Storage Transfer writes and the finalize trigger
// watches, the separate state bucket for the loader's markers, and the bucket holding the
// functions' source. All private (uniform bucket-level access, public access prevention enforced).

import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";
import { markerPaths } from "../../functions/loader/markers.ts";
import { COMPONENT_PREFIX } from "./archive-bucket.ts";

/**
 * Uniform bucket-level access (IAM only, no object ACLs) and public access prevention
 * (https://cloud.google.com/storage/docs/public-access-prevention): no object can be made public.
 */
export const PRIVATE_BUCKET = { uniformBucketLevelAccess: true, publicAccessPrevention: "enforced" } as const;

export interface LandingBucketArgs {
  location: string;
  /** Transferred copies are deleted after this many days; the S3 archive is the record. */
  retentionDays: number;
}

export class LandingBucket extends pulumi.ComponentResource {
  readonly bucket: gcp.storage.Bucket;
  readonly bucketName: pulumi.Output<string>;
  constructor(name: string, args: LandingBucketArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${COMPONENT_PREFIX}:gcp:LandingBucket`, name, {}, opts);
    this.bucket = new gcp.storage.Bucket(
      name,
      {
        location: args.location,
        ...PRIVATE_BUCKET,
        forceDestroy: true,
        lifecycleRules: [{ action: { type: "Delete" }, condition: { age: args.retentionDays } }],
      },
      { parent: this },
    );
    this.bucketName = this.bucket.name;
    this.registerOutputs({ bucketName: this.bucketName });
  }
}

export interface StateLifecycleRule {
  /** Absolute object-name prefixes in the state bucket. */
  prefixes: string[];
  ageDays: number;
}

/** The first path segment of a marker path: `claims/x.json` → `claims/`. */
function markerDir(path: string): string {
  return `${path.slice(0, path.indexOf("/"))}/`;
}

/**
 * docs/loader.md#state-in-gcs: claims/ and done/ (with quarantined/ and conflicts/, which answer
 * the same "was this object seen" question) live as long as an S3 overwrite could re-send an
 * object, at least a year; batches/ may go after 7 days; tables/, pending/, paused/, sweep/ and
 * install.json are kept for good (no rule).
 */
export function stateLifecycleRules(
  statePrefix: string,
  markerDays: number,
  batchDays: number,
): StateLifecycleRule[] {
  const table = { dataset: "d", table: "t" };
  const longLived = [
    markerPaths.claim("x"),
    markerPaths.done("x"),
    markerPaths.quarantined("x"),
    markerPaths.conflict("x", "y"),
  ];
  return [
    { prefixes: longLived.map((p) => statePrefix + markerDir(p)), ageDays: markerDays },
    { prefixes: [statePrefix + markerDir(markerPaths.batchesDir(table))], ageDays: batchDays },
  ];
}

export interface LoaderStateBucketArgs {
  location: string;
  rules: StateLifecycleRule[];
}

/**
 * The loader's markers and batch manifests. It must not be the landing bucket: GCS triggers cannot
 * filter by object name, so every marker written there would invoke the finalize function.
 */
export class LoaderStateBucket extends pulumi.ComponentResource {
  readonly bucket: gcp.storage.Bucket;
  readonly bucketName: pulumi.Output<string>;
  constructor(name: string, args: LoaderStateBucketArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${COMPONENT_PREFIX}:gcp:LoaderStateBucket`, name, {}, opts);
    this.bucket = new gcp.storage.Bucket(
      name,
      {
        location: args.location,
        ...PRIVATE_BUCKET,
        forceDestroy: false,
        lifecycleRules: args.rules.map((r) => ({
          action: { type: "Delete" },
          condition: { age: r.ageDays, matchesPrefixes: r.prefixes },
        })),
      },
      { parent: this },
    );
    this.bucketName = this.bucket.name;
    this.registerOutputs({ bucketName: this.bucketName });
  }
}
