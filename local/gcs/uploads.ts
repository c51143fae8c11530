// Simple uploads (uploadType=media and multipart) and what all uploads share: bodies stream to a temp file
// while being hashed, and are committed only once complete and verified against any checksums the client sent.

import { createHash, type Hash } from "node:crypto";
import { open, rm } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { CRC32C } from "@google-cloud/storage";
import { writeAt } from "./durable.ts";
import { GcsError, invalid } from "./errors.ts";
import type { Context } from "./http.ts";
import { isHeaderValue, queryOf, readBody, requiredParam, sendJson } from "./http.ts";
import { MultipartReader } from "./multipart.ts";
import { type Preconditions, parsePreconditions } from "./preconditions.ts";
import type { StoredObject, WritableFields } from "./resources.ts";
import { applyFieldUpdate, parseFieldUpdate, renderObject } from "./resources.ts";
import type { ReceivedBody } from "./store.ts";

export interface Checksums {
  md5Hash?: string;
  crc32c?: string;
}

export class Hasher {
  readonly #md5: Hash = createHash("md5");
  readonly #crc32c = new CRC32C();
  size = 0;

  update(chunk: Buffer): void {
    this.#md5.update(chunk);
    this.#crc32c.update(chunk);
    this.size += chunk.length;
  }

  digest(): { size: number; md5Hash: string; crc32c: string } {
    return { size: this.size, md5Hash: this.#md5.digest("base64"), crc32c: this.#crc32c.toString() };
  }
}

/** Streams a body into a new file, fsyncs it and reports its size and hashes. */
async function receiveToFile(source: AsyncIterable<Buffer>, path: string): Promise<ReceivedBody> {
  const hasher = new Hasher();
  const handle = await open(path, "w");
  try {
    for await (const chunk of source) {
      await writeAt(handle, chunk, hasher.size);
      hasher.update(chunk);
    }
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(path, { force: true });
    throw error;
  }
  await handle.close();
  return { path, ...hasher.digest() };
}

/** `x-goog-hash: crc32c=...,md5=...`, possibly repeated (Node joins repeats with ", "). */
export function parseGoogHash(header: string | string[] | undefined): Checksums {
  const out: Checksums = {};
  for (const part of [header ?? []].flat().join(",").split(",")) {
    const eq = part.indexOf("=");
    const kind = part.slice(0, eq).trim().toLowerCase();
    if (kind === "crc32c") out.crc32c = part.slice(eq + 1).trim();
    if (kind === "md5") out.md5Hash = part.slice(eq + 1).trim();
  }
  return out;
}

function verifyChecksums(body: ReceivedBody, expected: Checksums): void {
  if (expected.crc32c !== undefined && expected.crc32c !== body.crc32c) {
    throw invalid(`Provided CRC32C "${expected.crc32c}" doesn't match calculated CRC32C "${body.crc32c}".`);
  }
  if (expected.md5Hash !== undefined && expected.md5Hash !== body.md5Hash) {
    throw invalid(
      `Provided MD5 hash "${expected.md5Hash}" doesn't match calculated MD5 hash "${body.md5Hash}".`,
    );
  }
}

export function checksumsFrom(json: Record<string, unknown>): Checksums {
  const out: Checksums = {};
  if (typeof json.md5Hash === "string") out.md5Hash = json.md5Hash;
  if (typeof json.crc32c === "string") out.crc32c = json.crc32c;
  return out;
}

export function fieldsFrom(json: Record<string, unknown>): WritableFields {
  const update = parseFieldUpdate(json);
  if (typeof update === "string") throw invalid(update);
  return applyFieldUpdate({}, update, false);
}

export async function commit(
  ctx: Context,
  bucket: string,
  name: string,
  body: ReceivedBody,
  fields: WritableFields,
  pre: Preconditions,
  expected: Checksums,
): Promise<StoredObject> {
  try {
    verifyChecksums(body, expected);
  } catch (error) {
    await rm(body.path, { force: true });
    throw error;
  }
  const object = await ctx.store.insertObject(bucket, name, body, fields, pre);
  ctx.finalized(object);
  return object;
}

export async function mediaUpload(ctx: Context, req: IncomingMessage, res: ServerResponse, bucket: string) {
  const q = queryOf(req);
  const name = requiredParam(q, "name");
  const pre = parsePreconditions(q);
  ctx.store.getBucket(bucket);
  const fields: WritableFields = {};
  const contentType = req.headers["content-type"];
  if (contentType) fields.contentType = contentType;
  const contentEncoding = q.get("contentEncoding");
  if (contentEncoding && !isHeaderValue(contentEncoding)) throw invalid("Invalid value for contentEncoding");
  if (contentEncoding) fields.contentEncoding = contentEncoding;
  const body = await receiveToFile(req, ctx.store.tmpPath());
  const object = await commit(
    ctx,
    bucket,
    name,
    body,
    fields,
    pre,
    parseGoogHash(req.headers["x-goog-hash"]),
  );
  sendJson(res, 200, renderObject(object, ctx.origin(req)));
}

function boundaryOf(contentType: string | undefined): string | undefined {
  const match = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType ?? "");
  return match?.[1] ?? match?.[2];
}

export async function multipartUpload(
  ctx: Context,
  req: IncomingMessage,
  res: ServerResponse,
  bucket: string,
) {
  const q = queryOf(req);
  const boundary = boundaryOf(req.headers["content-type"]);
  if (boundary === undefined) {
    throw invalid("Multipart upload requires a multipart/related body with a boundary.");
  }
  const pre = parsePreconditions(q);
  ctx.store.getBucket(bucket);
  const reader = new MultipartReader(req, boundary);
  await reader.skipPreamble();
  const metaPart = await reader.nextPart();
  if (metaPart === undefined) throw invalid("Multipart upload is missing its metadata part.");
  const metaText = (await readBody(metaPart.body, 1 << 20)).toString("utf8").trim();
  let json: Record<string, unknown> = {};
  try {
    if (metaText !== "") json = JSON.parse(metaText) as Record<string, unknown>;
  } catch {
    throw invalid("Metadata part is not valid JSON.");
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw invalid("Metadata must be an object.");
  }
  const name = q.get("name") || (typeof json.name === "string" ? json.name : "");
  if (name === "") throw new GcsError(400, "required", "Required parameter: name");
  const fields = fieldsFrom(json);
  const mediaPart = await reader.nextPart();
  if (mediaPart === undefined) throw invalid("Multipart upload is missing its media part.");
  const mediaType = mediaPart.headers.get("content-type");
  if (mediaType !== undefined && !isHeaderValue(mediaType)) throw invalid("Invalid value for contentType");
  if (fields.contentType === undefined && mediaType) fields.contentType = mediaType;
  const body = await receiveToFile(mediaPart.body, ctx.store.tmpPath());
  try {
    await reader.drainRest();
  } catch (error) {
    await rm(body.path, { force: true });
    throw error;
  }
  const object = await commit(ctx, bucket, name, body, fields, pre, checksumsFrom(json));
  sendJson(res, 200, renderObject(object, ctx.origin(req)));
}
