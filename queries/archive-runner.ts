// Runs a DuckDB pack query over the archive objects themselves, as Athena would, without the
// warehouse: the objects of the hours and namespaces the parameters select are listed by
// their key prefix (lib/keys/layout.ts), read from a local folder (a downloaded slice of the
// bucket) or fetched through the S3 API into a temporary folder, and read by DuckDB's
// read_json with the record contract's column types as the pack's `container_logs`.
//
// Only the long-lived tiers are read (lib/keys/tiers.ts): a short-lived delivery tier repeats
// lines that are also archived, and reading it would count them twice. DuckDB's httpfs is not
// used: it is an extension downloaded at run time, and this must work offline.

import { createWriteStream } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { DuckDBInstance } from "@duckdb/node-api";
import { UserError } from "../lib/config/errors.ts";
import { OBJECT_SUFFIX, partitionPrefix, prefixProblem } from "../lib/keys/layout.ts";
import { longLivedTiers } from "../lib/keys/tiers.ts";
import { DEFAULT_TABLE, duckDbDdl, duckDbSelectRecords } from "../lib/record/ddl.ts";
import { listObjectPages } from "../lib/retrieval/find.ts";
import { installDuckDbDefinitions, type QueryResult, runDuckDbQuery } from "./duckdb-runner.ts";
import { normaliseTimestamp, type PackQuery, type ParamValue } from "./pack.ts";

export type ArchiveSource =
  | { readonly kind: "s3"; readonly client: S3Client; readonly bucket: string; readonly prefix: string }
  /** The archive root as the bucket has it under its prefix: `<tier>/namespace=…/dt=…/hour=…/`. */
  | { readonly kind: "dir"; readonly root: string };

export interface ArchiveSelection {
  readonly namespaces: readonly string[];
  /** `YYYY-MM-DD HH:MM:SS[.ffffff]`, UTC, as the pack normalises it. */
  readonly from: string;
  readonly to: string;
  readonly lookbackHours: number;
}

export interface ArchiveResult extends QueryResult {
  /** Objects read, and their stored (gzip) bytes. */
  objects: number;
  bytes: number;
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

/** Every key prefix (under the archive's prefix) the selection reads. */
export function archivePrefixes(selection: ArchiveSelection, prefix: string): string[] {
  const out: string[] = [];
  for (const tier of longLivedTiers())
    for (const namespace of selection.namespaces)
      for (const { dt, hour } of archiveHours(selection))
        out.push(partitionPrefix(prefix, tier, namespace, dt, hour));
  return out;
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

async function listS3(
  client: S3Client,
  bucket: string,
  prefix: string,
): Promise<{ key: string; size: number }[]> {
  const out: { key: string; size: number }[] = [];
  for await (const contents of listObjectPages(client, bucket, prefix)) {
    for (const o of contents) {
      if (o.Key?.endsWith(OBJECT_SUFFIX)) out.push({ key: o.Key, size: o.Size ?? 0 });
    }
  }
  return out;
}

async function listDir(root: string, prefix: string): Promise<{ key: string; size: number }[]> {
  let names: string[];
  try {
    names = await readdir(join(root, prefix));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  const files = names.filter((n) => n.endsWith(OBJECT_SUFFIX)).sort();
  return mapLimit(files, LIST_CONCURRENCY, async (name) => ({
    key: prefix + name,
    size: (await stat(join(root, prefix, name))).size,
  }));
}

/** Downloads the objects into `dir` under their keys; an object in an archive storage class is named in the error. */
async function fetchObjects(
  client: S3Client,
  bucket: string,
  keys: readonly string[],
  dir: string,
): Promise<string[]> {
  const unavailable: string[] = [];
  const files = await mapLimit(keys, FETCH_CONCURRENCY, async (key) => {
    const path = join(dir, key);
    await mkdir(dirname(path), { recursive: true });
    try {
      const object = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      await pipeline(object.Body as Readable, createWriteStream(path));
    } catch (error) {
      // GetObject on GLACIER or DEEP_ARCHIVE without a finished restore: 403 InvalidObjectState.
      if ((error as { name?: string }).name === "InvalidObjectState") {
        unavailable.push(key);
        return path;
      }
      throw error;
    }
    return path;
  });
  if (unavailable.length > 0) {
    throw new UserError(
      `--engine archive: ${unavailable.length} object(s) of the range are in an archive storage class and not restored (the first: s3://${bucket}/${unavailable.sort()[0]}); restore them first, or narrow the range`,
    );
  }
  return files;
}

/** Runs a DuckDB pack query over the selected archive objects. */
export async function runArchiveQuery(
  query: PackQuery,
  values: ReadonlyMap<string, ParamValue>,
  source: ArchiveSource,
): Promise<ArchiveResult> {
  const selection = archiveSelection(query, values);
  const prefix = source.kind === "s3" ? source.prefix : "";
  const prefixes = archivePrefixes(selection, prefix);
  const listed = (
    await mapLimit(prefixes, LIST_CONCURRENCY, (p) =>
      source.kind === "s3" ? listS3(source.client, source.bucket, p) : listDir(source.root, p),
    )
  ).flat();
  const bytes = listed.reduce((sum, o) => sum + o.size, 0);
  let scratch: string | undefined;
  const instance = await DuckDBInstance.create(":memory:");
  const connection = await instance.connect();
  try {
    let files: string[];
    if (source.kind === "s3") {
      scratch = await mkdtemp(join(tmpdir(), "logarchive-archive-"));
      files = await fetchObjects(
        source.client,
        source.bucket,
        listed.map((o) => o.key),
        scratch,
      );
    } else {
      files = listed.map((o) => join(source.root, o.key));
    }
    // A view, not a table: DuckDB streams the files for each query instead of holding them.
    await connection.run(
      files.length === 0 ? duckDbDdl() : `CREATE VIEW "${DEFAULT_TABLE}" AS ${duckDbSelectRecords(files)}`,
    );
    await installDuckDbDefinitions(connection);
    const result = await runDuckDbQuery(connection, query, values);
    return { ...result, objects: listed.length, bytes };
  } finally {
    connection.closeSync();
    instance.closeSync();
    if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
  }
}
