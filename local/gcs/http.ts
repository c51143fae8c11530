// Request and response helpers shared by the router and the upload handlers.

import type { IncomingMessage, ServerResponse } from "node:http";
import { GcsError, invalid } from "./errors.ts";
import type { StoredObject } from "./resources.ts";
import type { Log, Store } from "./store.ts";

/** What handlers need from the running server. */
export interface Context {
  store: Store;
  log: Log;
  /** Base URL as the caller addressed us, so links and session URIs we hand out are reachable by it. */
  origin(req: IncomingMessage): string;
  /** Reports a committed object to `onFinalize`. */
  finalized(object: StoredObject): void;
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
) {
  const data = Buffer.from(JSON.stringify(body));
  res.writeHead(status, {
    "Content-Type": "application/json; charset=UTF-8",
    "Content-Length": String(data.length),
    ...headers,
  });
  res.end(data);
}

export function sendEmpty(res: ServerResponse, status: number, headers: Record<string, string> = {}) {
  res.writeHead(status, { "Content-Length": "0", ...headers });
  res.end();
}

// How a request fails when its client goes away (or stop() closes the connection): nothing worth reporting.
const DISCONNECTED = new Set(["ECONNRESET", "EPIPE", "ECONNABORTED", "ERR_STREAM_PREMATURE_CLOSE"]);

export function sendError(res: ServerResponse, error: unknown, log: Log): void {
  const message = (error as Error | undefined)?.message ?? String(error);
  const gcsError =
    error instanceof GcsError ? error : new GcsError(500, "backendError", `Internal error: ${message}`);
  const disconnected = DISCONNECTED.has((error as NodeJS.ErrnoException | undefined)?.code ?? "");
  if (!(error instanceof GcsError) && !(disconnected && res.destroyed)) {
    log("local GCS: request failed", error);
  }
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  // A failed request may have a body we never read; closing the connection avoids parsing it as a new request.
  const headers = { ...gcsError.headers, ...(res.req.complete ? {} : { Connection: "close" }) };
  if (gcsError.code === 304) sendEmpty(res, 304, headers);
  else sendJson(res, gcsError.code, gcsError.toJSON(), headers);
}

/**
 * The query of a request. `new URL` throws a TypeError on request targets it cannot resolve (`//[`, an
 * absolute-form `http://[::1/`); that is the client's mistake, so it answers 400 as GCS does.
 */
export function queryOf(req: IncomingMessage): URLSearchParams {
  let params: URLSearchParams;
  try {
    params = new URL(req.url ?? "/", "http://localhost").searchParams;
  } catch {
    throw invalid(`Invalid URL: ${req.url}`);
  }
  // URLSearchParams keeps a malformed escape (`?prefix=%ZZ`) as literal text; GCS refuses it.
  const url = req.url ?? "/";
  const queryAt = url.indexOf("?");
  if (queryAt >= 0) {
    for (const part of url.slice(queryAt + 1).split("&")) {
      try {
        decodeURIComponent(part.replaceAll("+", " "));
      } catch {
        throw invalid(`Invalid query parameter: ${part}`);
      }
    }
  }
  return params;
}

// What Node can write into a header (it throws ERR_INVALID_CHAR on anything else): tab, printable ASCII and
// Latin-1. Object fields served as download headers are checked on the way in, so a download never fails.
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

export function isHeaderValue(value: string): boolean {
  return HEADER_VALUE.test(value);
}

/** Reads a whole (small) request body. */
export async function readBody(req: AsyncIterable<Buffer>, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) throw new GcsError(413, "uploadTooLarge", "The request body is too large.");
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

export async function readJsonObject(req: AsyncIterable<Buffer>): Promise<Record<string, unknown>> {
  const text = (await readBody(req, 1 << 20)).toString("utf8").trim();
  if (text === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalid("Parse Error");
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw invalid("The request body must be a JSON object.");
  }
  return value as Record<string, unknown>;
}

/** Consumes and discards what is left of a request body, so the connection can be reused. */
export async function drain(req: AsyncIterable<Buffer>): Promise<void> {
  for await (const _chunk of req) {
    // discard
  }
}

/** Parses an int64 query parameter into canonical decimal form (so "007" matches generation "7"). */
export function int64Param(q: URLSearchParams, name: string): string | undefined {
  const value = q.get(name);
  if (value === null) return undefined;
  if (!/^-?\d{1,19}$/.test(value)) throw invalid(`Invalid value for ${name}: ${value}`);
  return BigInt(value).toString();
}

export function requiredParam(q: URLSearchParams, name: string): string {
  const value = q.get(name);
  if (value === null || value === "") throw new GcsError(400, "required", `Required parameter: ${name}`);
  return value;
}

/** Whether the request accepts a gzip-coded response (an explicit `gzip` entry wins over `*`). */
export function acceptsGzip(header: string | undefined): boolean {
  if (header === undefined) return false;
  const entries = new Map<string, number>();
  for (const part of header.toLowerCase().split(",")) {
    const [coding = "", ...params] = part.split(";").map((s) => s.trim());
    const q = params.find((p) => p.startsWith("q="));
    entries.set(coding, q === undefined ? 1 : Number(q.slice(2)));
  }
  const weight = entries.get("gzip") ?? entries.get("x-gzip") ?? entries.get("*") ?? 0;
  return weight > 0;
}

/**
 * Parses a single-range `Range` header against an object size. Returns undefined to serve the whole object
 * (no header, a syntax we ignore, or an empty object), or "unsatisfiable" for a range past the end.
 */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | "unsatisfiable" | undefined {
  const match = header === undefined ? null : /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (match === null || size === 0) return undefined;
  const [, first = "", last = ""] = match;
  if (first === "") {
    if (last === "") return undefined;
    const suffix = Number(last);
    return suffix === 0 ? "unsatisfiable" : { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === "" ? size - 1 : Math.min(Number(last), size - 1);
  if (last !== "" && Number(last) < start) return undefined;
  return start >= size ? "unsatisfiable" : { start, end };
}
