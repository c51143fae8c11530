// A local Google Cloud Storage server speaking the subset of the GCS JSON API that @google-cloud/storage uses,
// on the real wire format, so the official client works against it unchanged:
//   new Storage({ apiEndpoint: gcs.url, projectId: "local" })
// Objects are durable under dataDir (see store.ts). There is one live generation per object (no versioning),
// no auth, no ACLs/IAM, no compose, and rewrites always finish in one call. Object requests are in objects.ts,
// uploads in uploads.ts and resumable.ts.

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { keepIdleConnections } from "../keep-alive.ts";
import { invalid, methodNotAllowed, routeNotFound } from "./errors.ts";
import type { Context } from "./http.ts";
import { queryOf, readJsonObject, sendEmpty, sendError, sendJson } from "./http.ts";
import { compareNames, parseMaxResults } from "./listing.ts";
import { download, objectsApi } from "./objects.ts";
import type { GcsObjectResource, StoredBucket } from "./resources.ts";
import { renderBucket, renderObject } from "./resources.ts";
import { ResumableUploads } from "./resumable.ts";
import { Store } from "./store.ts";
import { mediaUpload, multipartUpload } from "./uploads.ts";

export type { GcsObjectResource } from "./resources.ts";

export interface LocalGcsOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  dataDir: string;
  /**
   * Called once per committed object (upload, copy, rewrite), after it is durable and before the response is
   * sent, without being awaited: like GCS notifications it never delays or fails the write. Errors are logged.
   */
  onFinalize?: (object: GcsObjectResource) => void | Promise<void>;
  /** Where failures of onFinalize and of the server itself are reported. Default console.error. */
  log?: (message: string, error?: unknown) => void;
}

export interface LocalGcs {
  url: string;
  port: number;
  stop(): Promise<void>;
}

export async function startLocalGcs(options: LocalGcsOptions): Promise<LocalGcs> {
  const host = options.host ?? "127.0.0.1";
  const log = options.log ?? ((message: string, error?: unknown) => console.error(message, error ?? ""));
  const store = await Store.open(options.dataDir, log);
  let url = "";
  const finalizing = new Set<Promise<void>>();
  const ctx: Context = {
    store,
    log,
    origin: (req) => (req.headers.host ? `http://${req.headers.host}` : url),
    finalized(object) {
      const onFinalize = options.onFinalize;
      if (onFinalize === undefined) return;
      const resource = renderObject(object, url);
      const delivery: Promise<void> = (async () => onFinalize(resource))()
        .catch((error: unknown) =>
          log(`local GCS: onFinalize failed for ${object.bucket}/${object.name}`, error),
        )
        .finally(() => finalizing.delete(delivery));
      finalizing.add(delivery);
    },
  };
  const uploads = new ResumableUploads(ctx);
  const inflight = new Set<Promise<void>>();
  // No request timeout: large uploads from a slow producer are legitimate, and stop() closes sockets itself.
  const server = createServer({ requestTimeout: 0 }, (req, res) => {
    const handling: Promise<void> = route(ctx, uploads, req, res)
      .catch((error: unknown) => sendError(res, error, log))
      .finally(() => inflight.delete(handling));
    inflight.add(handling);
  });
  keepIdleConnections(server);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      // Let interrupted handlers unwind, so nothing touches dataDir once stop() resolves.
      await Promise.allSettled([...inflight]);
      await uploads.close();
      await Promise.allSettled([...finalizing]);
    })();
    return stopping;
  };
  return { url, port, stop };
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw invalid(`Invalid URL path segment: ${segment}`);
  }
}

async function route(ctx: Context, uploads: ResumableUploads, req: IncomingMessage, res: ServerResponse) {
  const rawUrl = req.url ?? "/";
  const q = queryOf(req);
  const queryAt = rawUrl.indexOf("?");
  // Split before decoding: an object name's slashes arrive as %2F and must not split it.
  const segments = (queryAt < 0 ? rawUrl : rawUrl.slice(0, queryAt)).split("/").slice(1).map(decodeSegment);
  const method = req.method ?? "GET";
  const [a, b, c, d] = segments;
  if (a === "storage" && b === "v1" && c === "b") return api(ctx, req, res, method, segments.slice(3), q);
  if (b === "storage" && c === "v1" && d === "b") {
    const [bucket, o, ...rest] = segments.slice(4);
    if (a === "upload" && bucket !== undefined && o === "o" && rest.length === 0) {
      return upload(ctx, uploads, req, res, method, bucket, q);
    }
    if (a === "download" && bucket !== undefined && o === "o" && rest.length > 0) {
      if (method !== "GET") throw methodNotAllowed();
      return download(ctx, req, res, bucket, rest.join("/"), q);
    }
  }
  throw routeNotFound();
}

async function upload(
  ctx: Context,
  uploads: ResumableUploads,
  req: IncomingMessage,
  res: ServerResponse,
  method: string,
  bucket: string,
  q: URLSearchParams,
) {
  const uploadId = q.get("upload_id");
  if (uploadId !== null) {
    if (method === "PUT" || method === "POST") return uploads.put(req, res, uploadId);
    if (method === "DELETE") return uploads.cancel(req, res, uploadId);
    throw methodNotAllowed();
  }
  if (method !== "POST") throw methodNotAllowed();
  const multipart = /^multipart\/related\b/i.test(req.headers["content-type"] ?? "");
  const uploadType = q.get("uploadType") ?? (multipart ? "multipart" : "media");
  if (uploadType === "media") return mediaUpload(ctx, req, res, bucket);
  if (uploadType === "multipart") return multipartUpload(ctx, req, res, bucket);
  if (uploadType === "resumable") return uploads.create(req, res, bucket);
  throw invalid(`Invalid uploadType: ${uploadType}`);
}

async function api(
  ctx: Context,
  req: IncomingMessage,
  res: ServerResponse,
  method: string,
  path: string[],
  q: URLSearchParams,
) {
  const origin = ctx.origin(req);
  const [bucket, o, ...rest] = path;
  if (bucket === undefined) {
    if (method === "GET") return sendJson(res, 200, listBuckets(ctx, q, origin));
    if (method === "POST") return sendJson(res, 200, renderBucket(await insertBucket(ctx, req), origin));
    throw methodNotAllowed();
  }
  if (o === undefined) {
    if (method === "GET") return sendJson(res, 200, renderBucket(ctx.store.getBucket(bucket), origin));
    if (method === "DELETE") {
      await ctx.store.deleteBucket(bucket);
      return sendEmpty(res, 204);
    }
    throw methodNotAllowed();
  }
  if (o !== "o") throw routeNotFound();
  return objectsApi(ctx, req, res, method, bucket, rest, q);
}

function listBuckets(ctx: Context, q: URLSearchParams, origin: string) {
  const prefix = q.get("prefix") ?? "";
  const after = q.get("pageToken");
  const maxResults = parseMaxResults(q.get("maxResults"));
  const matching = ctx.store
    .listBuckets()
    .filter((b) => b.name.startsWith(prefix) && (after === null || compareNames(b.name, after) > 0));
  const page = matching.slice(0, maxResults);
  const last = page.at(-1);
  return {
    kind: "storage#buckets",
    ...(page.length > 0 ? { items: page.map((b) => renderBucket(b, origin)) } : {}),
    ...(matching.length > maxResults && last !== undefined ? { nextPageToken: last.name } : {}),
  };
}

async function insertBucket(ctx: Context, req: IncomingMessage): Promise<StoredBucket> {
  const json = await readJsonObject(req);
  if (typeof json.name !== "string") throw invalid("Required field: name");
  const labels = json.labels;
  if (labels !== undefined && (labels === null || typeof labels !== "object" || Array.isArray(labels))) {
    throw invalid("Invalid value for labels");
  }
  return ctx.store.createBucket({
    name: json.name,
    location: typeof json.location === "string" ? json.location.toUpperCase() : "US",
    storageClass: typeof json.storageClass === "string" ? json.storageClass.toUpperCase() : "STANDARD",
    ...(labels === undefined
      ? {}
      : { labels: Object.fromEntries(Object.entries(labels).map(([k, v]) => [k, String(v)])) }),
  });
}
