// Resumable upload sessions: a POST opens a session and returns its URI in Location; PUTs append bytes at the
// persisted offset (308 Resume Incomplete with a Range header until the object is complete), answer status
// queries, and commit the object once its last byte has arrived.

import { randomBytes } from "node:crypto";
import type { FileHandle } from "node:fs/promises";
import { open, rm } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { writeAt } from "./durable.ts";
import { GcsError, invalid } from "./errors.ts";
import type { Context } from "./http.ts";
import { drain, queryOf, readJsonObject, sendEmpty, sendJson } from "./http.ts";
import { type Preconditions, parsePreconditions } from "./preconditions.ts";
import type { StoredObject, WritableFields } from "./resources.ts";
import { renderObject } from "./resources.ts";
import { type Checksums, checksumsFrom, commit, fieldsFrom, Hasher, parseGoogHash } from "./uploads.ts";

interface Session {
  bucket: string;
  name: string;
  fields: WritableFields;
  pre: Preconditions;
  expected: Checksums;
  declaredSize: number | undefined;
  path: string;
  handle: FileHandle | undefined;
  hasher: Hasher;
  /** Bytes persisted so far; every request appends at exactly this offset. */
  received: number;
  result: StoredObject | undefined;
  failure: GcsError | undefined;
  queue: Promise<void>;
  touched: number;
}

type ContentRange =
  | { kind: "status"; total: number | undefined }
  | { kind: "data"; start: number; end: number | undefined; total: number | undefined };

// `bytes */N` and `bytes */*` ask for status (or finalize once N bytes are in); `bytes a-b/N` carries data,
// where b is `*` for "the rest of the body" and N is `*` while the total is unknown. The Node client sends
// `bytes 0--1/0` for an empty chunked upload. No header means the body is the whole object.
function parseContentRange(header: string | undefined): ContentRange {
  if (header === undefined) return { kind: "data", start: 0, end: undefined, total: undefined };
  const match = /^bytes (?:\*|(\d+)-(-1|\d+|\*))\/(\d+|\*)$/.exec(header.trim());
  if (match === null) throw invalid(`Invalid Content-Range header: ${header}`);
  const [, start, end, total] = match;
  const totalBytes = total === "*" ? undefined : Number(total);
  if (start === undefined) return { kind: "status", total: totalBytes };
  return {
    kind: "data",
    start: Number(start),
    end: end === "*" ? undefined : Number(end),
    total: totalBytes,
  };
}

const FINISHED_SESSION_TTL_MS = 60 * 60 * 1000;
const IDLE_SESSION_TTL_MS = 7 * 24 * 60 * 60 * 1000;

/**
 * Resumable sessions live in memory with their bytes in the tmp directory, which is wiped on start: a restart
 * abandons unfinished sessions (the client gets 404), it never commits a partial object.
 */
export class ResumableUploads {
  readonly #ctx: Context;
  readonly #sessions = new Map<string, Session>();

  constructor(ctx: Context) {
    this.#ctx = ctx;
  }

  async create(req: IncomingMessage, res: ServerResponse, bucket: string): Promise<void> {
    await this.#prune();
    const q = queryOf(req);
    const pre = parsePreconditions(q);
    this.#ctx.store.getBucket(bucket);
    const json = await readJsonObject(req);
    const name = q.get("name") || (typeof json.name === "string" ? json.name : "");
    if (name === "") throw new GcsError(400, "required", "Required parameter: name");
    const fields = fieldsFrom(json);
    // The Node client moves contentType out of the JSON body into this header.
    const headerType = req.headers["x-upload-content-type"];
    if (fields.contentType === undefined && typeof headerType === "string" && headerType !== "") {
      fields.contentType = headerType;
    }
    const declared = req.headers["x-upload-content-length"];
    if (declared !== undefined && (typeof declared !== "string" || !/^\d+$/.test(declared))) {
      throw invalid("Invalid X-Upload-Content-Length.");
    }
    const id = randomBytes(16).toString("hex");
    this.#sessions.set(id, {
      bucket,
      name,
      fields,
      pre,
      expected: checksumsFrom(json),
      declaredSize: declared === undefined ? undefined : Number(declared),
      path: this.#ctx.store.tmpPath(),
      handle: undefined,
      hasher: new Hasher(),
      received: 0,
      result: undefined,
      failure: undefined,
      queue: Promise.resolve(),
      touched: Date.now(),
    });
    const location =
      `${this.#ctx.origin(req)}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o` +
      `?uploadType=resumable&name=${encodeURIComponent(name)}&upload_id=${id}`;
    sendEmpty(res, 200, { Location: location, "X-GUploader-UploadID": id });
  }

  /** Handles one PUT to a session URI. Requests to the same session run one after another. */
  async put(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    const session = this.#sessions.get(id);
    if (session === undefined) throw new GcsError(404, "notFound", "No such upload session.");
    const run = session.queue.then(() => this.#put(session, req, res));
    session.queue = run.catch(() => {});
    await run;
  }

  async cancel(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    const session = this.#sessions.get(id);
    if (session === undefined) throw new GcsError(404, "notFound", "No such upload session.");
    await drain(req);
    this.#sessions.delete(id);
    await session.queue;
    await this.#discard(session);
    sendEmpty(res, 499);
  }

  async close(): Promise<void> {
    for (const session of this.#sessions.values()) await this.#discard(session);
    this.#sessions.clear();
  }

  async #put(session: Session, req: IncomingMessage, res: ServerResponse): Promise<void> {
    session.touched = Date.now();
    if (session.result !== undefined) {
      await drain(req);
      sendJson(res, 200, renderObject(session.result, this.#ctx.origin(req)));
      return;
    }
    if (session.failure !== undefined) throw session.failure;
    const range = parseContentRange(req.headers["content-range"]);
    if (range.kind === "status") {
      await drain(req);
      if (range.total !== undefined && range.total === session.received) {
        return this.#finish(session, req, res);
      }
      if (range.total !== undefined && range.total < session.received) {
        throw invalid(
          `Total size ${range.total} is smaller than the ${session.received} bytes already uploaded.`,
        );
      }
      return this.#incomplete(session, res);
    }
    if (range.start > session.received) {
      throw invalid(
        `Invalid request. According to the Content-Range header, the upload offset is ${range.start} byte(s), ` +
          `which exceeds already uploaded size of ${session.received} byte(s).`,
      );
    }
    // Bytes before `received` are a resend of data we already have.
    let skip = session.received - range.start;
    const limit = range.end === undefined ? Number.POSITIVE_INFINITY : range.end - range.start + 1;
    let seen = 0;
    session.handle ??= await open(session.path, "w");
    for await (const chunk of req as AsyncIterable<Buffer>) {
      let piece = chunk.subarray(0, Math.max(0, limit - seen));
      seen += chunk.length;
      const skipped = Math.min(skip, piece.length);
      piece = piece.subarray(skipped);
      skip -= skipped;
      if (piece.length > 0) {
        await writeAt(session.handle, piece, session.received);
        session.hasher.update(piece);
        session.received += piece.length;
      }
    }
    if (seen > limit) throw invalid("The request body is longer than its Content-Range says.");
    // `bytes a-*/*` means this request carries the rest of the object.
    const total = range.total ?? (range.end === undefined ? session.received : undefined);
    if (total !== undefined && session.received > total) {
      throw invalid(`Received ${session.received} bytes, more than the declared total of ${total}.`);
    }
    if (total === session.received) return this.#finish(session, req, res);
    return this.#incomplete(session, res);
  }

  #incomplete(session: Session, res: ServerResponse): void {
    // No Location header: fetch implementations would treat a 308 with one as a redirect.
    res.writeHead(308, "Resume Incomplete", {
      "Content-Length": "0",
      ...(session.received > 0 ? { Range: `bytes=0-${session.received - 1}` } : {}),
    });
    res.end();
  }

  async #finish(session: Session, req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      if (session.declaredSize !== undefined && session.declaredSize !== session.received) {
        throw invalid(
          `Upload is ${session.received} bytes but X-Upload-Content-Length was ${session.declaredSize}.`,
        );
      }
      const handle = session.handle ?? (await open(session.path, "w"));
      session.handle = undefined;
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
      const body = { path: session.path, ...session.hasher.digest() };
      const expected = { ...session.expected, ...parseGoogHash(req.headers["x-goog-hash"]) };
      session.result = await commit(
        this.#ctx,
        session.bucket,
        session.name,
        body,
        session.fields,
        session.pre,
        expected,
      );
    } catch (error) {
      // A session ends with its first commit attempt, as in GCS: later requests get the same answer.
      session.failure =
        error instanceof GcsError
          ? error
          : new GcsError(503, "backendError", "The upload could not be stored.");
      await this.#discard(session);
      throw error;
    }
    sendJson(res, 200, renderObject(session.result, this.#ctx.origin(req)));
  }

  async #discard(session: Session): Promise<void> {
    const handle = session.handle;
    session.handle = undefined;
    await handle?.close().catch(() => {});
    await rm(session.path, { force: true });
  }

  async #prune(): Promise<void> {
    const now = Date.now();
    for (const [id, session] of this.#sessions) {
      const finished = session.result !== undefined || session.failure !== undefined;
      if (now - session.touched > (finished ? FINISHED_SESSION_TTL_MS : IDLE_SESSION_TTL_MS)) {
        this.#sessions.delete(id);
        await this.#discard(session);
      }
    }
  }
}
