// Runs a DuckDB pack query over the archive objects themselves, as Athena would, without the
// warehouse: the objects of the hours and namespaces the parameters select are listed by
// their key prefix (lib/keys/layout.ts), read from a local folder (a downloaded slice of the
// bucket) or fetched through the S3 API into a temporary folder, and read by DuckDB's
// read_json with the record contract's column types as the pack's `container_logs`.
//
// Only the long-lived tiers are read (lib/keys/tiers.ts): a short-lived delivery tier repeats
// lines that are also archived, and reading it would count them twice. DuckDB's httpfs is not
// used: it is an extension downloaded at run time, and this must work offline.
//
// Compacted hours (docs/queries.md#reads-and-compaction): the run decides per batch, before
// reading anything, where its lines come from. A batch (original key) named by a committed
// compaction manifest (any generation) is read from the part holding it, and its original, if
// still stored, is not read; every other original present (a late batch not yet in a
// supplement, or one whose hour's compaction was refused, which the compactor keeps whole) is
// read as an original. Never both for a batch (a member is its original's bytes), and never a
// part no manifest names (a crashed compactor's part is not committed). A part is a
// multi-member gzip file (RFC 1952 §2.2) that DuckDB reads to its end (docs/queries.md).

import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { PassThrough, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { DuckDBInstance } from "@duckdb/node-api";
import { UserError } from "../lib/config/errors.ts";
import {
  compactedHourPrefix,
  compactionManifestsPrefix,
  formatCompactedPartKey,
  formatObjectKey,
  OBJECT_SUFFIX,
  parseCompactedKey,
  parseObjectKey,
  partitionPrefix,
  prefixProblem,
} from "../lib/keys/layout.ts";
import { longLivedTiers } from "../lib/keys/tiers.ts";
import {
  type CompactionManifest,
  manifestHour,
  manifestSha256,
  parseCompactionManifest,
} from "../lib/object/compaction-manifest.ts";
import { DEFAULT_TABLE, duckDbDdl, duckDbSelectRecords } from "../lib/record/ddl.ts";
import { listObjectPages, listPrefixVersions, versionParam } from "../lib/retrieval/find.ts";
import { installDuckDbDefinitions, type QueryResult, runDuckDbQuery } from "./duckdb-runner.ts";
import { normaliseTimestamp, type PackQuery, type ParamValue } from "./pack.ts";

export type ArchiveSource =
  | { readonly kind: "s3"; readonly client: S3Client; readonly bucket: string; readonly prefix: string }
  /** The archive root as the bucket has it under its prefix: `<tier>/namespace=…/dt=…/hour=…/` and `compacted/…`. */
  | { readonly kind: "dir"; readonly root: string };

export interface ArchiveSelection {
  readonly namespaces: readonly string[];
  /** `YYYY-MM-DD HH:MM:SS[.ffffff]`, UTC, as the pack normalises it. */
  readonly from: string;
  readonly to: string;
  readonly lookbackHours: number;
}

export interface ArchiveResult extends QueryResult {
  /** Original archive objects read: every original no committed manifest names. */
  objects: number;
  /** Compacted parts read, and the namespace-hours they were read for (hours with a committed manifest). */
  parts: number;
  compactedHours: number;
  /** Of `objects`, the originals of compacted hours: batches not yet compacted. */
  uncompactedBatches: number;
  /** Stored (gzip) bytes of everything read. */
  bytes: number;
}

/** A stored archive file is not what the manifest that names it says (or is missing): the archive, not the query, is wrong. */
export class ArchiveReadError extends Error {
  override name = "ArchiveReadError";
}

/** One object to read: its key under the source, its size, and for a compacted part what its manifest says it is. */
interface ArchiveFile {
  readonly key: string;
  readonly size: number;
  /** An original's version as listed (S3), read by it: a delete marker put after the listing does not hide it. */
  readonly versionId?: string;
  readonly part?: { readonly sha256: string; readonly manifestKey: string };
}

/** Where one namespace-hour's lines come from, decided per batch before anything is read. */
export interface HourPlan {
  readonly namespace: string;
  readonly dt: string;
  readonly hour: string;
  /**
   * compacted: every batch from the parts its committed manifests name; mixed: those and the
   * originals no manifest names (batches not yet compacted); originals: no manifest.
   */
  readonly from: "compacted" | "mixed" | "originals";
  /** The committed manifests' keys, generation 0 first (empty for originals). */
  readonly manifests: readonly string[];
  /** The parts (each with `part`) and then the originals no manifest names. */
  readonly files: readonly ArchiveFile[];
  /** Originals stored but not read: a manifest names their batch, read from its part. */
  readonly supersededOriginals: number;
  /** Every batch (original key, as this source stores it) a committed manifest names. */
  readonly namedBatches: ReadonlySet<string>;
}

const HOUR_MS = 3_600_000;
const LIST_CONCURRENCY = 16;
const FETCH_CONCURRENCY = 8;
/** More hours than this (about 3 months) is a mistake more often than a question: say so. */
const MAX_HOURS = 24 * 93;

/** `s3://bucket/prefix` or a folder, as --archive gives it. */
export function parseArchiveLocation(text: string): { bucket: string; prefix: string } | { root: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(text);
  if (m === null) return { root: text };
  const prefix = m[2]!;
  const problem = prefixProblem(prefix);
  if (problem !== undefined) throw new UserError(`--archive ${text}: the key prefix ${problem}`);
  return { bucket: m[1]!, prefix };
}

/** The namespaces and range a query's parameters select; every pack query has them. */
export function archiveSelection(
  query: PackQuery,
  values: ReadonlyMap<string, ParamValue>,
): ArchiveSelection {
  const list = values.get("namespaces") ?? values.get("namespace");
  const from = values.get("from");
  const to = values.get("to");
  if (list === undefined || typeof from !== "string" || typeof to !== "string") {
    throw new UserError(
      `--engine archive: query ${query.name} needs a namespace or namespaces parameter and from and to, to choose the objects to read`,
    );
  }
  // A headerless --sql file gives its parameters as text: a comma-separated list, a time as typed.
  const namespaces =
    typeof list === "string" ? list.split(",").map((n) => n.trim()) : (list as readonly string[]);
  const time = (name: string, text: string) => {
    const normalised = normaliseTimestamp(text);
    if (normalised === undefined) {
      throw new UserError(`--param ${name}=${text}: expected a UTC time, YYYY-MM-DD[ HH:MM[:SS[.ffffff]]]`);
    }
    return normalised;
  };
  return {
    namespaces,
    from: time("from", from),
    to: time("to", to),
    lookbackHours: query.lookbackHours,
  };
}

/** The UTC hours `[from - lookback, to)` touches, as key partitions. */
export function archiveHours(selection: ArchiveSelection): { dt: string; hour: string }[] {
  const millis = (text: string) => Date.parse(`${text.replace(" ", "T")}Z`);
  const start = Math.floor(millis(selection.from) / HOUR_MS) * HOUR_MS - selection.lookbackHours * HOUR_MS;
  const end = millis(selection.to);
  if (end - start > MAX_HOURS * HOUR_MS) {
    throw new UserError(
      `--param from/to: the archive engine reads at most ${MAX_HOURS} hours of objects per query; split the range, or use --engine athena`,
    );
  }
  const hours: { dt: string; hour: string }[] = [];
  for (let t = start; t < end; t += HOUR_MS) {
    const iso = new Date(t).toISOString();
    hours.push({ dt: iso.slice(0, 10), hour: iso.slice(11, 13) });
  }
  return hours;
}

/** The namespace-hours a selection reads, in (namespace, hour) order. */
export function archiveNamespaceHours(
  selection: ArchiveSelection,
): { namespace: string; dt: string; hour: string }[] {
  const hours = archiveHours(selection);
  return selection.namespaces.flatMap((namespace) => hours.map((h) => ({ namespace, ...h })));
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * The originals under a key prefix (S3: each key's current version, from ListObjectVersions,
 * one request per 1,000 versions as ListObjectsV2 per 1,000 keys; a key whose current version
 * is a delete marker is not listed), or in the folder the prefix names (dir), in key order.
 */
async function listOriginals(
  source: ArchiveSource,
  prefix: string,
): Promise<{ key: string; size: number; versionId?: string }[]> {
  if (source.kind !== "s3") return listKeys(source, prefix);
  const out: { key: string; size: number; versionId: string }[] = [];
  for await (const v of listPrefixVersions(source.client, source.bucket, prefix)) {
    if (v.isLatest && !v.isDeleteMarker) out.push({ key: v.key, size: v.size, versionId: v.versionId });
  }
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** Keys and sizes under a key prefix (S3) or in the folder the prefix names (dir), in key order. */
async function listKeys(source: ArchiveSource, prefix: string): Promise<{ key: string; size: number }[]> {
  if (source.kind === "s3") {
    const out: { key: string; size: number }[] = [];
    for await (const contents of listObjectPages(source.client, source.bucket, prefix)) {
      for (const o of contents) if (o.Key !== undefined) out.push({ key: o.Key, size: o.Size ?? 0 });
    }
    return out;
  }
  // A prefix ends in `/` (a folder) or in the start of a file name (`…/manifest-`).
  const folder = prefix.slice(0, prefix.lastIndexOf("/") + 1);
  const start = prefix.slice(folder.length);
  let names: string[];
  try {
    names = await readdir(join(source.root, folder));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  const files = names.filter((n) => n.startsWith(start)).sort();
  return mapLimit(files, LIST_CONCURRENCY, async (name) => ({
    key: folder + name,
    size: (await stat(join(source.root, folder, name))).size,
  }));
}

async function readSmallObject(source: ArchiveSource, key: string): Promise<Buffer> {
  if (source.kind === "dir") return readFile(join(source.root, key));
  const object = await source.client.send(new GetObjectCommand({ Bucket: source.bucket, Key: key }));
  return Buffer.from(await object.Body!.transformToByteArray());
}

/**
 * Where one namespace-hour's lines come from, per batch. The hour's originals are listed
 * first, then its manifests: the compactor deletes only originals named by a manifest it has
 * committed, so an original missing from the listing is named by a manifest listed after it
 * (listing the other way round could miss a batch deleted in between). Every batch a committed
 * manifest names is read from its part, every other original listed as an original. The
 * manifests must be generations 0, 1, … each naming the one before by its SHA-256: a gap or a
 * broken chain would silently drop or double a supplement's lines, so it is an error, not a
 * guess.
 */
export async function planArchiveHour(
  source: ArchiveSource,
  prefix: string,
  namespace: string,
  dt: string,
  hour: string,
): Promise<HourPlan> {
  const originals = (
    await Promise.all(
      longLivedTiers().map((tier) =>
        listOriginals(source, partitionPrefix(prefix, tier, namespace, dt, hour)),
      ),
    )
  )
    .flat()
    .filter((o) => o.key.endsWith(OBJECT_SUFFIX));
  const listed = await listKeys(source, compactionManifestsPrefix(prefix, namespace, dt, hour));
  const manifestKeys: { key: string; generation: number }[] = [];
  for (const { key } of listed) {
    let parsed: ReturnType<typeof parseCompactedKey>;
    try {
      parsed = parseCompactedKey(key);
    } catch {
      continue; // not a manifest's name (a stray file beside them): never read.
    }
    if (parsed.kind === "manifest") manifestKeys.push({ key, generation: parsed.generation });
  }
  if (manifestKeys.length === 0) {
    return {
      namespace,
      dt,
      hour,
      from: "originals",
      manifests: [],
      files: originals,
      supersededOriginals: 0,
      namedBatches: new Set(),
    };
  }
  manifestKeys.sort((a, b) => a.generation - b.generation);
  const where = `compacted hour ${namespace} ${dt}T${hour}`;
  const files: ArchiveFile[] = [];
  /** The members' original keys as this source stores them (a folder has no bucket prefix). */
  const named = new Map<string, { versionId: string; manifestKey: string }>();
  let previous: Buffer | undefined;
  for (const [i, { key, generation }] of manifestKeys.entries()) {
    if (generation !== i) {
      throw new ArchiveReadError(
        `${where}: manifests of generations ${manifestKeys.map((m) => m.generation).join(", ")} are stored, generation ${i} is missing (${compactedHourPrefix(prefix, namespace, dt, hour)})`,
      );
    }
    const body = await readSmallObject(source, key);
    let manifest: CompactionManifest;
    try {
      manifest = parseCompactionManifest(body);
    } catch (error) {
      throw new ArchiveReadError(`${key}: ${(error as Error).message}`);
    }
    if (manifest.namespace !== namespace || manifest.hour !== manifestHour({ dt, hour })) {
      throw new ArchiveReadError(
        `${key}: the manifest is of ${manifest.namespace} ${manifest.hour}, not of its key's hour`,
      );
    }
    if (manifest.generation !== generation) {
      throw new ArchiveReadError(`${key}: the manifest says generation ${manifest.generation}`);
    }
    if (previous !== undefined && manifest.previous?.sha256 !== manifestSha256(previous)) {
      throw new ArchiveReadError(
        `${key}: previous.sha256 does not match the stored generation ${generation - 1}`,
      );
    }
    previous = body;
    for (const part of manifest.parts) {
      // The part's key as this source stores it: the manifest's key below the layout's prefix
      // (a downloaded folder holds the tree without the bucket's prefix).
      const parsedPart = parseCompactedKey(part.key);
      if (parsedPart.kind !== "part")
        throw new ArchiveReadError(`${key}: part ${part.part} is not a part key`);
      files.push({
        key: formatCompactedPartKey({ ...parsedPart, prefix }),
        size: part.bytes,
        part: { sha256: part.sha256, manifestKey: key },
      });
    }
    for (const member of manifest.members) {
      named.set(formatObjectKey({ ...parseObjectKey(member.key), prefix }), {
        versionId: member.versionId ?? "null",
        manifestKey: key,
      });
    }
  }
  // A named key whose current version is not the one its member copied was written again
  // after compaction, with bytes no part holds: reading only the member would silently drop
  // them, reading both could double lines. Neither is a guess to make: the archive is wrong.
  for (const o of originals) {
    const compacted = named.get(o.key);
    if (compacted === undefined || o.versionId === undefined || o.versionId === compacted.versionId) continue;
    throw new ArchiveReadError(
      `${o.key}: key written again after compaction: version ${o.versionId} differs from the compacted version ${compacted.versionId} (${compacted.manifestKey})`,
    );
  }
  const uncompacted = originals.filter((o) => !named.has(o.key));
  return {
    namespace,
    dt,
    hour,
    from: uncompacted.length === 0 ? "compacted" : "mixed",
    manifests: manifestKeys.map((m) => m.key),
    files: [...files, ...uncompacted],
    supersededOriginals: originals.length - uncompacted.length,
    namedBatches: new Set(named.keys()),
  };
}

/** A part's stored size (and, fetched, its SHA-256) must be what its manifest says: else the manifest's lines are not what is read. */
function checkPart(file: ArchiveFile, size: number, sha256?: string): void {
  if (file.part === undefined) return;
  if (size !== file.size) {
    throw new ArchiveReadError(
      `${file.key}: ${size} bytes stored, ${file.size} in its manifest ${file.part.manifestKey}`,
    );
  }
  if (sha256 !== undefined && sha256 !== file.part.sha256) {
    throw new ArchiveReadError(
      `${file.key}: SHA-256 ${sha256}, ${file.part.sha256} in its manifest ${file.part.manifestKey}`,
    );
  }
}

/**
 * Downloads the objects into `dir` under their keys; an object in an archive storage class is
 * named in the error. An original gone since it was listed (NoSuchKey, NoSuchVersion) is
 * returned in `vanished`, not read: the compactor may have committed a manifest naming it and
 * deleted it in between (the caller decides).
 */
async function fetchObjects(
  client: S3Client,
  bucket: string,
  objects: readonly ArchiveFile[],
  dir: string,
): Promise<{ paths: Map<ArchiveFile, string>; vanished: ArchiveFile[] }> {
  const unavailable: string[] = [];
  const vanished: ArchiveFile[] = [];
  const paths = new Map<ArchiveFile, string>();
  await mapLimit(objects, FETCH_CONCURRENCY, async (file) => {
    const path = join(dir, file.key);
    await mkdir(dirname(path), { recursive: true });
    try {
      const object = await client.send(
        new GetObjectCommand({
          Bucket: bucket,
          Key: file.key,
          ...(file.versionId === undefined ? {} : versionParam(file.versionId)),
        }),
      );
      const hash = createHash("sha256");
      let size = 0;
      const tap = new PassThrough();
      tap.on("data", (chunk: Buffer) => {
        hash.update(chunk);
        size += chunk.length;
      });
      await pipeline(object.Body as Readable, tap, createWriteStream(path));
      checkPart(file, size, hash.digest("hex"));
    } catch (error) {
      const name = (error as { name?: string }).name;
      // GetObject on GLACIER or DEEP_ARCHIVE without a finished restore: 403 InvalidObjectState.
      if (name === "InvalidObjectState") {
        unavailable.push(file.key);
        return path;
      }
      if (name === "NoSuchKey" && file.part !== undefined) {
        throw new ArchiveReadError(`${file.key}: named by ${file.part.manifestKey} but not stored`);
      }
      if ((name === "NoSuchKey" || name === "NoSuchVersion") && file.part === undefined) {
        vanished.push(file);
        await rm(path, { force: true });
        return;
      }
      throw error;
    }
    paths.set(file, path);
  });
  if (unavailable.length > 0) {
    throw new UserError(
      `--engine archive: ${unavailable.length} object(s) of the range are in an archive storage class and not restored (the first: s3://${bucket}/${unavailable.sort()[0]}); restore them first, or narrow the range`,
    );
  }
  return { paths, vanished };
}

/**
 * Fetches every plan's files. An original gone since its hour was planned (the compactor
 * committed a supplement naming it and put a delete marker on it in between) makes its hour
 * planned once more: if a committed manifest now names the batch, the hour's files are the new
 * plan's (the batch from its part, never also from an original already fetched); else the
 * original is missing and the error names it.
 */
async function fetchPlans(
  source: ArchiveSource & { kind: "s3" },
  prefix: string,
  plans: HourPlan[],
  dir: string,
): Promise<string[]> {
  const fetched = new Map<string, string>();
  const take = async (files: readonly ArchiveFile[]) => {
    const { paths, vanished } = await fetchObjects(source.client, source.bucket, files, dir);
    for (const [file, path] of paths) fetched.set(file.key, path);
    return vanished;
  };
  const vanished = await take(plans.flatMap((p) => p.files));
  if (vanished.length > 0) {
    const gone = new Set(vanished.map((f) => f.key));
    for (const [i, plan] of plans.entries()) {
      const lost = plan.files.filter((f) => gone.has(f.key)).map((f) => f.key);
      if (lost.length === 0) continue;
      const again = await planArchiveHour(source, prefix, plan.namespace, plan.dt, plan.hour);
      for (const key of lost) {
        if (!again.namedBatches.has(key)) {
          throw new ArchiveReadError(
            `${key}: listed, then gone before it was read (deleted), and no committed manifest of its hour names it: its lines cannot be read`,
          );
        }
      }
      plans[i] = again;
    }
    const still = await take(plans.flatMap((p) => p.files).filter((f) => !fetched.has(f.key)));
    if (still.length > 0) {
      throw new ArchiveReadError(
        `${still[0]!.key}: listed, then gone before it was read, twice: the archive is changing under the query; run it again`,
      );
    }
  }
  return plans.flatMap((p) => p.files).map((f) => fetched.get(f.key)!);
}

/** The folder's files for the objects, each part checked against its manifest's size. */
async function localFiles(root: string, objects: readonly ArchiveFile[]): Promise<string[]> {
  return mapLimit(objects, LIST_CONCURRENCY, async (file) => {
    const path = join(root, file.key);
    if (file.part !== undefined) {
      let size: number;
      try {
        size = (await stat(path)).size;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
        throw new ArchiveReadError(`${path}: named by ${file.part.manifestKey} but not in the folder`);
      }
      checkPart(file, size);
    }
    return path;
  });
}

/** Runs a DuckDB pack query over the selected archive objects (or, for compacted hours, their committed parts). */
export async function runArchiveQuery(
  query: PackQuery,
  values: ReadonlyMap<string, ParamValue>,
  source: ArchiveSource,
): Promise<ArchiveResult> {
  const selection = archiveSelection(query, values);
  const prefix = source.kind === "s3" ? source.prefix : "";
  // Every hour's source is decided before any line is read, once per run.
  const plans = await mapLimit(archiveNamespaceHours(selection), LIST_CONCURRENCY, (h) =>
    planArchiveHour(source, prefix, h.namespace, h.dt, h.hour),
  );
  let scratch: string | undefined;
  const instance = await DuckDBInstance.create(":memory:");
  const connection = await instance.connect();
  try {
    let files: string[];
    if (source.kind === "s3") {
      scratch = await mkdtemp(join(tmpdir(), "logarchive-archive-"));
      files = await fetchPlans(source, prefix, plans, scratch);
    } else {
      files = await localFiles(
        source.root,
        plans.flatMap((p) => p.files),
      );
    }
    // After the fetch: an hour planned again (an original gone meanwhile) reads its new plan's files.
    const listed = plans.flatMap((p) => p.files);
    const bytes = listed.reduce((sum, o) => sum + o.size, 0);
    // A view, not a table: DuckDB streams the files for each query instead of holding them.
    await connection.run(
      files.length === 0 ? duckDbDdl() : `CREATE VIEW "${DEFAULT_TABLE}" AS ${duckDbSelectRecords(files)}`,
    );
    await installDuckDbDefinitions(connection);
    const result = await runDuckDbQuery(connection, query, values);
    const parts = listed.filter((f) => f.part !== undefined).length;
    return {
      ...result,
      objects: listed.length - parts,
      parts,
      compactedHours: plans.filter((p) => p.from !== "originals").length,
      uncompactedBatches: plans
        .filter((p) => p.from === "mixed")
        .reduce((n, p) => n + p.files.filter((f) => f.part === undefined).length, 0),
      bytes,
    };
  } finally {
    connection.closeSync();
    instance.closeSync();
    if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
  }
}
