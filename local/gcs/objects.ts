// Object requests of the JSON API: list, get (metadata or media), patch, delete, copyTo and rewriteTo.
//
// Downloads of objects stored with Content-Encoding gzip follow GCS: the stored bytes are served as-is (with
// Content-Encoding: gzip, ranges honoured) when the request accepts gzip, which the Node client always does; a
// request that does not accept gzip gets the bytes decompressed ("decompressive transcoding", Range ignored)
// unless the object's Cache-Control has no-transform.

import type { IncomingMessage, ServerResponse } from "node:http";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { invalid, methodNotAllowed, rangeNotSatisfiable } from "./errors.ts";
import { GlobMatcher } from "./glob.ts";
import type { Context } from "./http.ts";
import { acceptsGzip, int64Param, parseRange, readJsonObject, sendEmpty, sendJson } from "./http.ts";
import { listPage, parseMaxResults } from "./listing.ts";
import { checkPreconditions, parsePreconditions } from "./preconditions.ts";
import { applyFieldUpdate, objectEtag, parseFieldUpdate, pickWritable, renderObject } from "./resources.ts";

/** Requests under /storage/v1/b/{bucket}/o; `rest` is the decoded path after `o`. */
export async function objectsApi(
  ctx: Context,
  req: IncomingMessage,
  res: ServerResponse,
  method: string,
  bucket: string,
  rest: string[],
  q: URLSearchParams,
) {
  const origin = ctx.origin(req);
  if (rest.length === 0) {
    if (method === "GET") return sendJson(res, 200, listObjects(ctx, bucket, q, origin));
    throw methodNotAllowed();
  }
  const [source, verb, b2, destBucket, o2, destName] = rest;
  if (
    rest.length === 6 &&
    (verb === "copyTo" || verb === "rewriteTo") &&
    b2 === "b" &&
    o2 === "o" &&
    method === "POST"
  ) {
    return copy(ctx, req, res, q, verb, bucket, source as string, destBucket as string, destName as string);
  }
  // Tolerate clients that leave the slashes in object names unencoded.
  const name = rest.join("/");
  const generation = int64Param(q, "generation");
  const pre = parsePreconditions(q);
  if (method === "GET") {
    if (q.get("alt") === "media") return download(ctx, req, res, bucket, name, q);
    const object = ctx.store.getObject(bucket, name, generation);
    checkPreconditions(object, pre, true);
    return sendJson(res, 200, renderObject(object, origin));
  }
  if (method === "PATCH") {
    const update = parseFieldUpdate(await readJsonObject(req));
    if (typeof update === "string") throw invalid(update);
    const object = await ctx.store.patchObject(bucket, name, generation, update, pre);
    return sendJson(res, 200, renderObject(object, origin));
  }
  if (method === "DELETE") {
    await ctx.store.deleteObject(bucket, name, generation, pre);
    return sendEmpty(res, 204);
  }
  throw methodNotAllowed();
}

function listObjects(ctx: Context, bucket: string, q: URLSearchParams, origin: string) {
  const glob = q.get("matchGlob");
  const page = listPage(ctx.store.listObjects(bucket), {
    prefix: q.get("prefix") ?? "",
    delimiter: q.get("delimiter") ?? "",
    startOffset: q.get("startOffset") ?? undefined,
    endOffset: q.get("endOffset") || undefined,
    matchGlob: glob === null ? undefined : new GlobMatcher(glob),
    includeTrailingDelimiter: q.get("includeTrailingDelimiter") === "true",
    maxResults: parseMaxResults(q.get("maxResults")),
    pageToken: q.get("pageToken") || undefined,
  });
  // GCS leaves out empty `items` and `prefixes` rather than sending [].
  return {
    kind: "storage#objects",
    ...(page.prefixes.length > 0 ? { prefixes: page.prefixes } : {}),
    ...(page.items.length > 0 ? { items: page.items.map((object) => renderObject(object, origin)) } : {}),
    ...(page.nextPageToken === undefined ? {} : { nextPageToken: page.nextPageToken }),
  };
}

export async function download(
  ctx: Context,
  req: IncomingMessage,
  res: ServerResponse,
  bucket: string,
  name: string,
  q: URLSearchParams,
) {
  const pre = parsePreconditions(q);
  const { object, handle } = await ctx.store.openObject(bucket, name, int64Param(q, "generation"));
  try {
    checkPreconditions(object, pre, true);
    const size = Number(object.size);
    const gzipped = object.contentEncoding === "gzip";
    const headers: Record<string, string> = {
      "Content-Type": object.contentType,
      // The client validates downloads against this, but only if x-goog-stored-content-encoding says the bytes
      // are served as stored.
      "x-goog-hash": `crc32c=${object.crc32c},md5=${object.md5Hash}`,
      "x-goog-generation": object.generation,
      "x-goog-metageneration": object.metageneration,
      "x-goog-stored-content-encoding": object.contentEncoding ?? "identity",
      "x-goog-stored-content-length": object.size,
      "x-goog-storage-class": object.storageClass,
      ETag: objectEtag(object.generation, object.metageneration),
      "Last-Modified": new Date(object.updated).toUTCString(),
      "Cache-Control": object.cacheControl ?? "private, max-age=0",
    };
    if (object.contentDisposition !== undefined) headers["Content-Disposition"] = object.contentDisposition;
    if (object.contentLanguage !== undefined) headers["Content-Language"] = object.contentLanguage;
    const noTransform = /(^|,)\s*no-transform\s*(,|$)/i.test(object.cacheControl ?? "");
    if (gzipped && !noTransform && !acceptsGzip(req.headers["accept-encoding"])) {
      res.writeHead(200, { ...headers, Warning: "214 UploadServer gunzipped" });
      await pipeline(handle.createReadStream({ autoClose: false }), createGunzip(), res);
      return;
    }
    if (object.contentEncoding !== undefined) headers["Content-Encoding"] = object.contentEncoding;
    headers["Accept-Ranges"] = "bytes";
    const range = parseRange(req.headers.range, size);
    if (range === "unsatisfiable") throw rangeNotSatisfiable(size);
    if (range === undefined) {
      res.writeHead(200, { ...headers, "Content-Length": String(size) });
      await pipeline(handle.createReadStream({ autoClose: false }), res);
      return;
    }
    res.writeHead(206, {
      ...headers,
      "Content-Length": String(range.end - range.start + 1),
      "Content-Range": `bytes ${range.start}-${range.end}/${size}`,
    });
    await pipeline(handle.createReadStream({ autoClose: false, start: range.start, end: range.end }), res);
  } finally {
    await handle.close();
  }
}

/**
 * objects.copy and objects.rewrite. The destination starts from the source's metadata; fields in the request
 * body override it (a `metadata` map replaces the source's map as a whole).
 */
async function copy(
  ctx: Context,
  req: IncomingMessage,
  res: ServerResponse,
  q: URLSearchParams,
  verb: "copyTo" | "rewriteTo",
  sourceBucket: string,
  sourceName: string,
  destBucket: string,
  destName: string,
) {
  const update = parseFieldUpdate(await readJsonObject(req));
  if (typeof update === "string") throw invalid(update);
  const destPre = parsePreconditions(q);
  const sourcePre = parsePreconditions(q, true);
  const source = ctx.store.getObject(sourceBucket, sourceName, int64Param(q, "sourceGeneration"));
  checkPreconditions(source, sourcePre);
  ctx.store.getBucket(destBucket);
  const body = await ctx.store.copyBody(source);
  const fields = applyFieldUpdate(pickWritable(source), update, false);
  const object = await ctx.store.insertObject(destBucket, destName, body, fields, destPre);
  ctx.finalized(object);
  const resource = renderObject(object, ctx.origin(req));
  if (verb === "copyTo") return sendJson(res, 200, resource);
  return sendJson(res, 200, {
    kind: "storage#rewriteResponse",
    totalBytesRewritten: object.size,
    objectSize: object.size,
    done: true,
    resource,
  });
}
