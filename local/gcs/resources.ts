// The JSON shapes the GCS JSON API returns, built from what the store persists. Links depend on the address a
// caller used, so they are computed per response instead of being stored.

import { invalid } from "./errors.ts";
import { isHeaderValue } from "./http.ts";

export interface GcsObjectResource {
  kind: "storage#object";
  id: string;
  selfLink: string;
  mediaLink: string;
  name: string;
  bucket: string;
  generation: string;
  metageneration: string;
  contentType: string;
  contentEncoding?: string;
  cacheControl?: string;
  contentDisposition?: string;
  contentLanguage?: string;
  size: string;
  md5Hash: string;
  crc32c: string;
  etag: string;
  timeCreated: string;
  updated: string;
  storageClass: string;
  metadata?: Record<string, string>;
}

/** Object fields a client may set on upload, patch, copy and rewrite. */
export interface WritableFields {
  contentType?: string;
  contentEncoding?: string;
  cacheControl?: string;
  contentDisposition?: string;
  contentLanguage?: string;
  metadata?: Record<string, string>;
}

export const WRITABLE_STRING_FIELDS = [
  "contentType",
  "contentEncoding",
  "cacheControl",
  "contentDisposition",
  "contentLanguage",
] as const;

export interface StoredObject extends WritableFields {
  bucket: string;
  name: string;
  generation: string;
  metageneration: string;
  contentType: string;
  size: string;
  md5Hash: string;
  crc32c: string;
  timeCreated: string;
  updated: string;
  storageClass: string;
}

export interface StoredBucket {
  name: string;
  timeCreated: string;
  updated: string;
  metageneration: string;
  location: string;
  storageClass: string;
  labels?: Record<string, string>;
}

// Real etags are base64 protobuf bytes: field 1 = generation, field 2 = metageneration, as varints.
function varint(value: string): number[] {
  let n = BigInt(value);
  const out: number[] = [];
  do {
    const low = Number(n & 0x7fn);
    n >>= 7n;
    out.push(n > 0n ? low | 0x80 : low);
  } while (n > 0n);
  return out;
}

export function objectEtag(generation: string, metageneration: string): string {
  return Buffer.from([0x08, ...varint(generation), 0x10, ...varint(metageneration)]).toString("base64");
}

export function renderObject(o: StoredObject, origin: string): GcsObjectResource {
  const path = `b/${encodeURIComponent(o.bucket)}/o/${encodeURIComponent(o.name)}`;
  const resource: GcsObjectResource = {
    kind: "storage#object",
    id: `${o.bucket}/${o.name}/${o.generation}`,
    selfLink: `${origin}/storage/v1/${path}`,
    mediaLink: `${origin}/download/storage/v1/${path}?generation=${o.generation}&alt=media`,
    name: o.name,
    bucket: o.bucket,
    generation: o.generation,
    metageneration: o.metageneration,
    contentType: o.contentType,
    storageClass: o.storageClass,
    size: o.size,
    md5Hash: o.md5Hash,
    crc32c: o.crc32c,
    etag: objectEtag(o.generation, o.metageneration),
    timeCreated: o.timeCreated,
    updated: o.updated,
  };
  for (const field of WRITABLE_STRING_FIELDS) {
    const value = o[field];
    if (field !== "contentType" && value !== undefined) resource[field] = value;
  }
  if (o.metadata !== undefined) resource.metadata = { ...o.metadata };
  return resource;
}

export function renderBucket(b: StoredBucket, origin: string): Record<string, unknown> {
  return {
    kind: "storage#bucket",
    selfLink: `${origin}/storage/v1/b/${encodeURIComponent(b.name)}`,
    id: b.name,
    name: b.name,
    projectNumber: "0",
    metageneration: b.metageneration,
    location: b.location,
    locationType: "multi-region",
    storageClass: b.storageClass,
    etag: Buffer.from([0x08, ...varint(b.metageneration)]).toString("base64"),
    timeCreated: b.timeCreated,
    updated: b.updated,
    ...(b.labels === undefined ? {} : { labels: { ...b.labels } }),
  };
}

/** A requested change to writable fields; `null` removes a field (or, inside `metadata`, one key). */
export type FieldUpdate = { [K in (typeof WRITABLE_STRING_FIELDS)[number]]?: string | null } & {
  metadata?: Record<string, string | null> | null;
};

/** Reads writable fields from a JSON request body, or returns a message describing the first bad value. */
export function parseFieldUpdate(body: Record<string, unknown>): FieldUpdate | string {
  const update: FieldUpdate = {};
  for (const field of WRITABLE_STRING_FIELDS) {
    const value = body[field];
    if (value === undefined) continue;
    if (value !== null && (typeof value !== "string" || !isHeaderValue(value)))
      return `Invalid value for ${field}`;
    update[field] = value;
  }
  const metadata = body.metadata;
  if (metadata === null) update.metadata = null;
  else if (metadata !== undefined) {
    if (typeof metadata !== "object" || Array.isArray(metadata)) return "Invalid value for metadata";
    const out: Record<string, string | null> = {};
    for (const [key, value] of Object.entries(metadata)) {
      if (value === null || typeof value === "string") out[key] = value;
      else if (typeof value === "number" || typeof value === "boolean") out[key] = String(value);
      else return `Invalid value for metadata.${key}`;
    }
    update.metadata = out;
  }
  return update;
}

/**
 * Applies an update to a set of fields. Patch merges `metadata` key by key; insert, copy and rewrite replace
 * it as a whole. An empty `metadata` map is dropped, as GCS omits it.
 */
export function applyFieldUpdate(base: WritableFields, update: FieldUpdate, merge: boolean): WritableFields {
  const out: WritableFields = { ...base };
  for (const field of WRITABLE_STRING_FIELDS) {
    const value = update[field];
    if (value === null) delete out[field];
    else if (value !== undefined) out[field] = value;
  }
  if (update.metadata === null) delete out.metadata;
  else if (update.metadata !== undefined) {
    const metadata: Record<string, string> = merge ? { ...base.metadata } : {};
    for (const [key, value] of Object.entries(update.metadata)) {
      if (value === null) delete metadata[key];
      else metadata[key] = value;
    }
    out.metadata = metadata;
  }
  if (out.metadata !== undefined && Object.keys(out.metadata).length === 0) delete out.metadata;
  const tooLarge = metadataSizeProblem(out.metadata);
  if (tooLarge !== null) throw invalid(tooLarge);
  return out;
}

/**
 * GCS's limits on an object's custom metadata, in UTF-8 bytes: a key at most 1 KiB, a value at
 * most 4 KiB, all keys and values together at most 8 KiB
 * (https://cloud.google.com/storage/docs/reference/rpc/google.storage.v1, ServiceConstants).
 */
export const CUSTOM_METADATA_LIMITS = { keyBytes: 1024, valueBytes: 4096, totalBytes: 8192 } as const;

/** Which of GCS's custom-metadata limits the map breaks, or null. */
export function metadataSizeProblem(metadata: Record<string, string> | undefined): string | null {
  if (metadata === undefined) return null;
  let total = 0;
  for (const [key, value] of Object.entries(metadata)) {
    const keyBytes = Buffer.byteLength(key, "utf8");
    const valueBytes = Buffer.byteLength(value, "utf8");
    if (keyBytes > CUSTOM_METADATA_LIMITS.keyBytes)
      return `Metadata key ${key.slice(0, 64)}… is ${keyBytes} bytes; at most ${CUSTOM_METADATA_LIMITS.keyBytes} are allowed.`;
    if (valueBytes > CUSTOM_METADATA_LIMITS.valueBytes)
      return `Metadata value of ${key} is ${valueBytes} bytes; at most ${CUSTOM_METADATA_LIMITS.valueBytes} are allowed.`;
    total += keyBytes + valueBytes;
  }
  if (total > CUSTOM_METADATA_LIMITS.totalBytes)
    return `Custom metadata is ${total} bytes; at most ${CUSTOM_METADATA_LIMITS.totalBytes} are allowed per object.`;
  return null;
}

export function pickWritable(o: WritableFields): WritableFields {
  const out: WritableFields = {};
  for (const field of WRITABLE_STRING_FIELDS) {
    const value = o[field];
    if (value !== undefined) out[field] = value;
  }
  if (o.metadata !== undefined) out.metadata = { ...o.metadata };
  return out;
}

/** The fields of a stored object that only the server sets. */
export type CoreFields = Omit<StoredObject, keyof WritableFields>;

const DEFAULT_CONTENT_TYPE = "application/octet-stream";

export function core(o: StoredObject): CoreFields {
  return {
    bucket: o.bucket,
    name: o.name,
    generation: o.generation,
    metageneration: o.metageneration,
    size: o.size,
    md5Hash: o.md5Hash,
    crc32c: o.crc32c,
    timeCreated: o.timeCreated,
    updated: o.updated,
    storageClass: o.storageClass,
  };
}

export function assemble(c: CoreFields, fields: WritableFields): StoredObject {
  return { ...c, ...pickWritable(fields), contentType: fields.contentType ?? DEFAULT_CONTENT_TYPE };
}
