// Step 6 of a retrieval: the bundle. `records.ndjson.gz` holds the kept lines exactly as
// archived, in time order; `manifest.json` says what was asked, every object version listed
// and what became of it, the continuity verdict per node, and what the result proves and
// what it cannot; `manifest.json.sha256` is the SHA-256 over the manifest's bytes, in the
// `sha256sum -c` format. A directory gets the three files; a `.tar.gz` gets them in one tar.

import { createHash } from "node:crypto";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { gzipSync } from "node:zlib";
import { describeQuery, type RetrievalQuery } from "./query.ts";
import type { RetrieveOutcome } from "./retrieve.ts";
import { tarFiles } from "./tar.ts";

export const MANIFEST_FORMAT = "logarchive-retrieval-manifest/1";
export const RECORDS_FILE = "records.ndjson.gz";
export const MANIFEST_FILE = "manifest.json";
export const MANIFEST_SHA_FILE = "manifest.json.sha256";

/** What a complete verdict rests on, and what no check here can show yet. */
export const PROVES = [
  "every object version under the namespace's hour prefixes of the range, in every long-lived tier, was listed (ListObjectVersions) and is named in objects[]",
  "each batch of the range was read from exactly one source, decided at the start (hours[].batchesFromParts and batchesFromOriginals): a batch named by a committed compaction manifest (every generation, in order, each chained to the one before by SHA-256) from its member in the part, every other original present from the original; never both, and never a compacted part no manifest names",
  "each object whose records are in the bundle has a body whose SHA-256 equals the logarchive-sha256 the shipper wrote before its first upload attempt (for a member of a compacted part: its byte range in the part hashes to the SHA-256 its manifest gives, and, through continuity, to the one the node's hour index gives), its line count equals the metadata's, and its seq runs 0..n-1",
  "no batch of this namespace in the range is missing or replaced: for a node decided by the shipper's hour indexes (continuity.nodes[].source index), every batch they name for this namespace and the range's hours is in objects[] with the SHA-256 they give, and the indexes read chain without a break; for a node decided by listing (source listing, fallback says why), no batch number is missing between its batches across every namespace in the listed hours",
  "the records kept are exactly those with a timestamp in [from, to) that pass the filters, in time order",
  "every loss the shipper detected (log_bytes_lost: rotation, truncation, corrupt_gzip) whose span overlaps the range is in lossRecords[], read from the archive and checked against its SHA-256; any makes the verdict incomplete",
];

export const CANNOT_PROVE = [
  "lines lost on the node in ways the shipper cannot detect: a file created and removed between two of its scans, lines a runtime never wrote (a full disk, a crashed container runtime), and losses on a node whose shipper state directory was lost before the loss record was committed",
  "batches numbered after the last hour index read (continuity.indexes.to), or, for a node decided by listing, after its last object in the range: they cannot be told from batches still open on the node; and, by listing, a batch number below a node's first object when it is outside the listed hours (continuity.nodes[].problems of kind unknown)",
  "nodes that never wrote an object of this namespace: a node whose every line of the range was lost leaves no trace in the archive",
  "that the metadata checksum itself was not rewritten along with the body by someone able to overwrite objects: that needs Object Lock (see each object's lock) or versioning, where an overwrite shows as a conflicting version",
];

export interface Manifest {
  format: string;
  tool: { name: "logarchive"; version: string };
  createdAt: string;
  query: Record<string, unknown> & { bucket: string; prefix: string; tiers: readonly string[] };
  listed: { prefixes: RetrieveOutcome["prefixes"]; unparsableKeys: string[] };
  /** Per hour of the range: compacted parts or originals, with the manifests and parts used. */
  hours: RetrieveOutcome["hours"];
  restore: {
    tier: string;
    days: number;
    estimatedHours: number;
    costUsd: number | null;
    requested: RetrieveOutcome["restoresRequested"];
  };
  objects: RetrieveOutcome["objects"];
  lossRecords: { available: true; records: RetrieveOutcome["losses"]; note: string };
  continuity: RetrieveOutcome["continuity"];
  emptyHours: string[];
  totals: {
    versions: number;
    objectsRead: number;
    bytesRead: number;
    recordsTotal: number;
    recordsKept: number;
  };
  records: { file: string; sha256: string; lines: number };
  verdict: {
    complete: boolean;
    problems: string[];
    warnings: string[];
    proves: readonly string[];
    cannotProve: readonly string[];
  };
}

export interface BundleContext {
  toolVersion: string;
  bucket: string;
  prefix: string;
  tiers: readonly string[];
  query: RetrievalQuery;
  now: Date;
}

export function buildBundle(
  outcome: RetrieveOutcome,
  context: BundleContext,
): { manifest: Manifest; files: { name: string; data: Buffer }[] } {
  const recordsData = gzipSync(Buffer.from(outcome.records.map((r) => `${r.line}\n`).join(""), "utf8"));
  const read = outcome.objects.filter((o) => o.role === "records");
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    tool: { name: "logarchive", version: context.toolVersion },
    createdAt: context.now.toISOString(),
    query: {
      ...describeQuery(context.query),
      bucket: context.bucket,
      prefix: context.prefix,
      tiers: context.tiers,
    },
    listed: { prefixes: outcome.prefixes, unparsableKeys: outcome.unparsableKeys },
    hours: outcome.hours,
    restore: {
      tier: outcome.plan.tier,
      days: outcome.plan.days,
      estimatedHours: outcome.plan.estimatedHours,
      costUsd: outcome.plan.costUsd,
      requested: outcome.restoresRequested,
    },
    objects: outcome.objects,
    lossRecords: {
      available: true,
      records: outcome.losses,
      note: "losses the shipper detected on the node whose span (last line read before the loss → its detection) overlaps the range; lines of the range may be among those lost",
    },
    continuity: outcome.continuity,
    emptyHours: outcome.emptyHours,
    totals: {
      versions: outcome.objects.length,
      objectsRead: read.length,
      bytesRead: read.reduce((sum, o) => sum + o.size, 0),
      recordsTotal: read.reduce((sum, o) => sum + (o.recordsTotal ?? 0), 0),
      recordsKept: outcome.records.length,
    },
    records: {
      file: RECORDS_FILE,
      sha256: createHash("sha256").update(recordsData).digest("hex"),
      lines: outcome.records.length,
    },
    verdict: {
      complete: outcome.status === "done" && outcome.problems.length === 0,
      problems: outcome.problems,
      warnings: outcome.warnings,
      proves: PROVES,
      cannotProve: CANNOT_PROVE,
    },
  };
  const manifestData = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, "utf8");
  const manifestSha = createHash("sha256").update(manifestData).digest("hex");
  return {
    manifest,
    files: [
      { name: RECORDS_FILE, data: recordsData },
      { name: MANIFEST_FILE, data: manifestData },
      { name: MANIFEST_SHA_FILE, data: Buffer.from(`${manifestSha}  ${MANIFEST_FILE}\n`, "utf8") },
    ],
  };
}

/** Whether `--out` names a tar.gz file rather than a directory. */
export function isTarGz(out: string): boolean {
  return /\.(tar\.gz|tgz)$/i.test(out);
}

/** Writes each file whole (a temporary name, then rename), so a stopped run leaves no half bundle. */
async function writeWhole(path: string, data: Buffer): Promise<void> {
  const temporary = `${path}.partial`;
  await writeFile(temporary, data);
  await rename(temporary, path);
}

export async function writeBundle(
  out: string,
  files: { name: string; data: Buffer }[],
  mtime: Date,
): Promise<string[]> {
  if (isTarGz(out)) {
    await mkdir(dirname(out), { recursive: true });
    await writeWhole(out, gzipSync(tarFiles(files, mtime)));
    return [out];
  }
  await mkdir(out, { recursive: true });
  // The manifest and its checksum last: a bundle with a manifest has its records.
  const paths: string[] = [];
  for (const file of files) {
    const path = join(out, file.name);
    await writeWhole(path, file.data);
    paths.push(path);
  }
  return paths;
}

/** Where `--plan` writes the plan JSON: in the directory, or beside the tar.gz. */
export function planPath(out: string): string {
  return isTarGz(out) ? out.replace(/\.(tar\.gz|tgz)$/i, ".plan.json") : join(out, "plan.json");
}
