// GCS as the loader's durable state. A stateless, concurrently running, retried function
// needs a place where "first writer wins" is atomic: object creation with
// ifGenerationMatch=0 succeeds only when no live version exists, and answers 412 otherwise.
// Every marker is a small JSON object under one prefix of the state bucket.

import { randomBytes } from "node:crypto";
import type { Bucket, File } from "@google-cloud/storage";

export interface StateStoreOptions {
  bucket: Bucket;
  /** Prefix of every marker, ending in `/`. */
  prefix: string;
}

function statusOf(error: unknown): number | undefined {
  const e = error as { code?: unknown; response?: { status?: unknown } };
  if (typeof e.code === "number") return e.code;
  if (typeof e.response?.status === "number") return e.response.status;
  return undefined;
}

export function isPreconditionFailed(error: unknown): boolean {
  return statusOf(error) === 412;
}

export function isNotFound(error: unknown): boolean {
  return statusOf(error) === 404;
}

/**
 * A marker as a listing gives it: its path under the prefix, creation time, generation and custom
 * metadata (objects.list returns each object's resource, `metadata` included, in its default
 * projection noAcl: https://cloud.google.com/storage/docs/json_api/v1/objects/list).
 */
export interface ListedMarker {
  path: string;
  created: number;
  generation: string;
  /** The listed generation's custom metadata; absent when it has none. */
  metadata?: Record<string, string>;
}

/** Options of a marker write. */
export interface MarkerWriteOptions {
  /**
   * Custom metadata written with the marker, in the same request: a write replaces the object,
   * so a generation carries exactly the metadata its own write gave it.
   */
  metadata?: Record<string, string> | undefined;
}

export class StateStore {
  readonly bucket: Bucket;
  readonly prefix: string;

  constructor(options: StateStoreOptions) {
    this.bucket = options.bucket;
    this.prefix = options.prefix.endsWith("/") ? options.prefix : `${options.prefix}/`;
  }

  file(path: string): File {
    return this.bucket.file(this.prefix + path);
  }

  /** Writes the marker unless one exists. True if this call created it. */
  async createIfAbsent(path: string, value: unknown, options: MarkerWriteOptions = {}): Promise<boolean> {
    try {
      await this.file(path).save(`${JSON.stringify(value)}\n`, {
        resumable: false,
        contentType: "application/json",
        ...customMetadata(options),
        preconditionOpts: { ifGenerationMatch: 0 },
      });
      return true;
    } catch (error) {
      if (isPreconditionFailed(error)) return false;
      throw error;
    }
  }

  /**
   * createIfAbsent for a marker whose creator must know it was first (it logs or counts):
   * the storage client retries a conditional write whose response was lost, and the retry
   * meets this call's own object as a 412. A random `writer` token in the marker tells the two apart.
   */
  async createOwned(path: string, value: object): Promise<boolean> {
    const writer = randomBytes(8).toString("hex");
    if (await this.createIfAbsent(path, { ...value, writer })) return true;
    const existing = await this.read<{ writer?: unknown }>(path);
    return existing?.writer === writer;
  }

  /**
   * Overwrites the marker (for state only its writer changes). Written under a precondition
   * all the same: @google-cloud/storage switches retries off for the whole client (and every
   * File made after) on a write without one, and the loader relies on its retries.
   */
  async put(path: string, value: unknown): Promise<void> {
    for (let tries = 0; tries < 10; tries++) {
      let generation = "0";
      try {
        const [meta] = await this.file(path).getMetadata();
        generation = String(meta.generation);
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
      const written =
        generation === "0"
          ? await this.createIfAbsent(path, value)
          : await this.replaceIfGeneration(path, value, generation);
      if (written) return;
    }
    throw new Error(`could not write ${this.prefix}${path}: too many concurrent writers`);
  }

  /** Writes the marker only if its live generation is `generation` (compare-and-swap). */
  async replaceIfGeneration(
    path: string,
    value: unknown,
    generation: string,
    options: MarkerWriteOptions = {},
  ): Promise<boolean> {
    try {
      await this.file(path).save(`${JSON.stringify(value)}\n`, {
        resumable: false,
        contentType: "application/json",
        ...customMetadata(options),
        preconditionOpts: { ifGenerationMatch: generation },
      });
      return true;
    } catch (error) {
      if (isPreconditionFailed(error)) return false;
      throw error;
    }
  }

  /**
   * replaceIfGeneration that hands back the generation it wrote (null when the marker moved
   * on), for a writer that updates the same marker again under a precondition.
   */
  async swap(path: string, value: unknown, generation: string): Promise<string | null> {
    const file = this.file(path);
    try {
      await file.save(`${JSON.stringify(value)}\n`, {
        resumable: false,
        contentType: "application/json",
        preconditionOpts: { ifGenerationMatch: generation },
      });
    } catch (error) {
      if (isPreconditionFailed(error)) return null;
      throw error;
    }
    const written = file.metadata.generation;
    if (written !== undefined) return String(written);
    const [meta] = await file.getMetadata();
    return String(meta.generation);
  }

  /** The marker and the generation it was read at, for a later compare-and-swap. */
  async readVersioned<T>(path: string): Promise<{ value: T; generation: string } | null> {
    try {
      const [meta] = await this.file(path).getMetadata();
      const generation = String(meta.generation);
      const [body] = await this.bucket.file(this.prefix + path, { generation }).download();
      return { value: JSON.parse(body.toString("utf8")) as T, generation };
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  async read<T>(path: string): Promise<T | null> {
    try {
      const [body] = await this.file(path).download();
      return JSON.parse(body.toString("utf8")) as T;
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  async exists(path: string): Promise<boolean> {
    const [exists] = await this.file(path).exists();
    return exists;
  }

  /** Deletes the marker; an absent one is fine (another instance got there first). */
  async remove(path: string): Promise<void> {
    try {
      await this.file(path).delete();
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  /**
   * Marker paths (relative to the prefix) under `path`, with their creation times, generations
   * and custom metadata (objects.list returns them all, at no extra cost); from
   * `startAt` on (a path, inclusive) when given, so a long history need not be listed; before
   * `bounds.endBefore` (exclusive) and at most `bounds.limit` of them when given.
   */
  async list(
    path: string,
    startAt?: string,
    bounds: { limit?: number; endBefore?: string } = {},
  ): Promise<ListedMarker[]> {
    const out: ListedMarker[] = [];
    const limit = bounds.limit ?? Number.POSITIVE_INFINITY;
    let pageToken: string | undefined;
    do {
      const [files, next] = await this.bucket.getFiles({
        prefix: this.prefix + path,
        autoPaginate: false,
        maxResults: Math.min(1000, limit - out.length),
        ...(startAt === undefined ? {} : { startOffset: this.prefix + startAt }),
        ...(bounds.endBefore === undefined ? {} : { endOffset: this.prefix + bounds.endBefore }),
        ...(pageToken ? { pageToken } : {}),
      });
      for (const f of files) {
        const custom = f.metadata.metadata as Record<string, string> | undefined;
        out.push({
          path: f.name.slice(this.prefix.length),
          created: Date.parse(String(f.metadata.timeCreated ?? "")) || 0,
          generation: String(f.metadata.generation ?? ""),
          ...(custom === undefined || custom === null ? {} : { metadata: custom }),
        });
      }
      pageToken = (next as { pageToken?: string } | null)?.pageToken;
    } while (pageToken && out.length < limit);
    return out;
  }

  /** Immediate child "directories" of `path` (GCS delimiter listing). */
  async listPrefixes(path: string): Promise<string[]> {
    const out: string[] = [];
    let pageToken: string | undefined;
    do {
      const [, next, response] = await this.bucket.getFiles({
        prefix: this.prefix + path,
        delimiter: "/",
        autoPaginate: false,
        maxResults: 1000,
        ...(pageToken ? { pageToken } : {}),
      });
      const prefixes = (response as { prefixes?: string[] } | undefined)?.prefixes ?? [];
      for (const p of prefixes) out.push(p.slice(this.prefix.length + path.length).replace(/\/$/, ""));
      pageToken = (next as { pageToken?: string } | null)?.pageToken;
    } while (pageToken);
    return out;
  }
}

function customMetadata(options: MarkerWriteOptions): { metadata?: { metadata: Record<string, string> } } {
  return options.metadata === undefined ? {} : { metadata: { metadata: options.metadata } };
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
