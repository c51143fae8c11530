// An HTTP front for the local S3 that adds what s3rver lacks and compliance retrieval needs:
// archive storage classes with RestoreObject, Object Lock (retention, legal hold) and versions,
// in the S3 REST wire format, so @aws-sdk/client-s3 parses every answer as it would AWS's.
//
// A front rather than a standalone server: every other call (ListObjects, multipart, the
// bucket notifications s3rver emits for the bridge) goes to s3rver byte for byte, with the
// client's own signature (the Host header is kept, so SigV4 still verifies), and the shipper,
// transfer and reconcile keep working against it unchanged. The front answers only:
//   POST ?restore, PUT/GET ?legal-hold, PUT/GET ?retention, PUT/GET/DELETE ?tagging,
//   GET bucket?versions, GET/HEAD ?versionId, and DELETE on a versioned bucket (with If-Match);
// and it adds headers to (or refuses) the GET/HEAD/PUT it passes on, and keeps the tags a PUT or
// CreateMultipartUpload names in x-amz-tagging and the Object Lock headers of either (s3rver
// ignores those headers); a read of a key waits while a write of it is being recorded. Its own state (storage
// class changes, restores, locks, tags, the version list) is saved to dataDir/state.json after each
// change and older versions' bodies kept under dataDir/versions, so a restarted stack finds them;
// s3rver keeps the current body of every key, as before.

import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import {
  Agent,
  createServer,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { listObjectPages } from "../../lib/retrieval/find.ts";
import { keepIdleConnections } from "../keep-alive.ts";
import { LOCAL_S3_CREDENTIALS } from "../s3.ts";
import {
  ARCHIVED_CLASSES,
  ArchiveState,
  type BucketConfig,
  defaultRestoreHours,
  type ObjectVersion,
  type RestoreTier,
} from "./state.ts";
import {
  element,
  invalidArgument,
  isoDate,
  malformedXml,
  missingLockConfiguration,
  noLockConfiguration,
  noSuchKey,
  noSuchVersion,
  type ObjectTag,
  parseTaggingDocument,
  parseTaggingHeader,
  S3_XMLNS,
  S3WireError,
  sendEmpty,
  sendError,
  sendXml,
  taggingDocument,
  xmlText,
} from "./wire.ts";

export interface S3ArchiveFrontOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** The s3rver endpoint every other call goes to, e.g. LocalS3.endpoint. */
  upstream: string;
  region: string;
  /** Older versions' bodies are kept here. */
  dataDir: string;
  /** Buckets with versioning or Object Lock; any other bucket is plain (unversioned). */
  buckets?: readonly BucketConfig[];
  /** The clock restores and retention run on, in ms since the epoch. Default Date.now. */
  now?: () => number;
  /** Hours a restore job takes; default the S3 user guide's upper ends. */
  restoreHours?: (storageClass: string, tier: RestoreTier) => number;
}

export interface S3ArchiveFront {
  endpoint: string;
  port: number;
  state: ArchiveState;
  /** Test control: a lifecycle transition of the version (default the latest) to `storageClass`. */
  setStorageClass(bucket: string, key: string, storageClass: string, versionId?: string): Promise<void>;
  /** Test control: finishes every running restore now; how many. */
  completeRestores(): number;
  stop(): Promise<void>;
}

const MAX_CONTROL_BODY = 1 << 20;
const HOP_BY_HOP = ["connection", "keep-alive", "transfer-encoding"];
const TIERS: ReadonlySet<string> = new Set(["Expedited", "Standard", "Bulk"]);

export async function startS3ArchiveFront(options: S3ArchiveFrontOptions): Promise<S3ArchiveFront> {
  const upstream = new URL(options.upstream);
  const versionsDir = join(options.dataDir, "versions");
  await mkdir(versionsDir, { recursive: true });
  const state = new ArchiveState(
    options.buckets ?? [],
    options.now ?? Date.now,
    options.restoreHours ?? defaultRestoreHours,
  );
  const statePath = join(options.dataDir, "state.json");
  try {
    state.load(JSON.parse(await readFile(statePath, "utf8")));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new Error(
        `${statePath}: cannot read the local S3 archive state (${String(error)}); delete it to start empty`,
      );
    }
  }
  // One write at a time, of the whole state (small); changes made during a write are coalesced
  // into one more. A rename keeps the file whole. A failed write is reported by stop().
  let saving: Promise<void> | undefined;
  let savedRevision = state.revision;
  let saveError: unknown;
  const save = (): Promise<void> => {
    if (!saving && state.revision !== savedRevision) {
      saving = (async () => {
        while (state.revision !== savedRevision) {
          savedRevision = state.revision;
          try {
            await writeFile(`${statePath}.tmp`, JSON.stringify(state.snapshot()));
            await rename(`${statePath}.tmp`, statePath);
          } catch (error) {
            saveError = error;
          }
        }
        saving = undefined;
      })();
    }
    return saving ?? Promise.resolve();
  };
  /**
   * What each multipart upload in progress was created with (CreateMultipartUpload's
   * x-amz-tagging and Object Lock headers), given to its object on CompleteMultipartUpload, as S3
   * does. In memory only: an upload started before a restart of the front completes without them
   * (its object then takes the bucket's default retention, if any).
   */
  const uploadRequests = new Map<string, UploadRequest>();
  /**
   * The write (PUT, CompleteMultipartUpload) of each key in progress. s3rver holds the body a
   * moment before the front has recorded the version with its lock and tags; a read or delete of
   * the key in that moment waits for the record, so it never sees (nor adopts as a version of its
   * own) an object without the lock it was written with: in S3 a new object appears whole. Writes
   * of one key go one at a time, so each version is recorded with its own body.
   */
  const writes = new Map<string, Promise<void>>();
  async function writing<T>(bucket: string, key: string, write: () => Promise<T>): Promise<T> {
    const id = `${bucket}/${key}`;
    const earlier = writes.get(id);
    let finished!: () => void;
    const mine = new Promise<void>((resolve) => {
      finished = resolve;
    });
    const queued = (earlier ?? Promise.resolve()).then(() => mine);
    writes.set(id, queued);
    try {
      await earlier;
      return await write();
    } finally {
      finished();
      if (writes.get(id) === queued) writes.delete(id);
    }
  }
  /** Waits until no write of the key is in progress. */
  async function settled(bucket: string, key: string): Promise<void> {
    for (let w = writes.get(`${bucket}/${key}`); w !== undefined; w = writes.get(`${bucket}/${key}`)) await w;
  }
  const agent = new Agent({ keepAlive: true });
  // Straight to s3rver: the front's own reads and writes must not come back through the front.
  const direct = new S3Client({
    endpoint: options.upstream,
    region: options.region,
    forcePathStyle: true,
    credentials: LOCAL_S3_CREDENTIALS,
    logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {} },
  });

  function forward(req: IncomingMessage): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const outgoing = request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
          agent,
        },
        resolve,
      );
      outgoing.on("error", reject);
      req.on("error", (error) => outgoing.destroy(error));
      req.pipe(outgoing);
    });
  }

  function relay(
    res: ServerResponse,
    from: IncomingMessage,
    extra: Record<string, string> = {},
    body?: Buffer,
  ) {
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(from.headers)) {
      if (value !== undefined && !HOP_BY_HOP.includes(name)) headers[name] = value;
    }
    if (body) headers["content-length"] = String(body.length);
    // The front's view of the class replaces what s3rver stored from the PUT.
    delete headers["x-amz-storage-class"];
    Object.assign(headers, extra);
    res.writeHead(from.statusCode ?? 500, headers);
    if (body) res.end(body);
    else {
      // A broken upstream body must cut the client's answer short, not take the process down.
      from.on("error", () => res.destroy());
      from.pipe(res);
    }
  }

  /** What s3rver holds for the key now, as a new version (its body copied for a versioned bucket). */
  async function snapshot(bucket: string, key: string): Promise<ObjectVersion | undefined> {
    const versioned = state.isVersioned(bucket);
    const versionId = versioned ? randomBytes(16).toString("hex") : "null";
    try {
      const output = versioned
        ? await direct.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
        : await direct.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      const headers: Record<string, string> = { "content-type": output.ContentType ?? "binary/octet-stream" };
      if (output.ContentEncoding) headers["content-encoding"] = output.ContentEncoding;
      for (const [name, value] of Object.entries(output.Metadata ?? {}))
        headers[`x-amz-meta-${name}`] = value;
      const version: ObjectVersion = {
        versionId,
        isDeleteMarker: false,
        lastModified: output.LastModified?.getTime() ?? state.clock(),
        storageClass: output.StorageClass ?? "STANDARD",
        etag: output.ETag ?? '""',
        size: output.ContentLength ?? 0,
        headers,
      };
      if ("Body" in output && output.Body) {
        version.bodyPath = join(versionsDir, versionId);
        await writeFile(version.bodyPath, await output.Body.transformToByteArray());
      }
      return version;
    } catch (error) {
      if (error instanceof S3ServiceException && error.$metadata.httpStatusCode === 404) return undefined;
      throw error;
    }
  }

  /** The front's record of the key, learning one s3rver already had (written before the front). */
  async function known(bucket: string, key: string): Promise<ObjectVersion[] | undefined> {
    await settled(bucket, key);
    const versions = state.versions(bucket, key);
    if (versions) return versions;
    const adopted = await snapshot(bucket, key);
    if (!adopted) return undefined;
    state.record(bucket, key, adopted);
    return state.versions(bucket, key);
  }

  async function target(bucket: string, key: string, versionId: string | undefined): Promise<ObjectVersion> {
    await known(bucket, key);
    return state.require(bucket, key, versionId);
  }

  function putObject(
    req: IncomingMessage,
    res: ServerResponse,
    bucket: string,
    key: string,
    query: URLSearchParams,
  ): Promise<void> {
    return writing(bucket, key, () => putObjectNow(req, res, bucket, key, query));
  }

  async function putObjectNow(
    req: IncomingMessage,
    res: ServerResponse,
    bucket: string,
    key: string,
    query: URLSearchParams,
  ) {
    // CompleteMultipartUpload (a POST) takes the tags and lock its upload was created with.
    const uploadId = req.method === "POST" ? (query.get("uploadId") ?? undefined) : undefined;
    const created = uploadId === undefined ? undefined : uploadRequests.get(uploadId);
    const tags = uploadId === undefined ? requestedTags(req) : (created?.tags ?? []);
    const lock = uploadId === undefined ? requestedLock(req) : (created?.lock ?? {});
    checkLockAllowed(bucket, lock);
    // S3 refuses a PUT that would lock the new version (its own retention or hold, or the
    // bucket's default retention) without an integrity check of the body. Not CompleteMultipartUpload
    // (a POST), whose parts carry theirs.
    const locks = Boolean(lock.retention || lock.legalHold || state.hasDefaultRetention(bucket));
    if (req.method === "PUT" && locks && !hasBodyChecksum(req)) {
      throw new S3WireError(
        400,
        "InvalidRequest",
        "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters",
      );
    }
    if (uploadId === undefined) checkRetainUntil(lock);
    const from = await forward(req);
    const body = await readAll(from, Number.POSITIVE_INFINITY);
    if ((from.statusCode ?? 500) >= 300) return relay(res, from, {}, body);
    if (uploadId !== undefined) uploadRequests.delete(uploadId);
    if (!state.isVersioned(bucket)) {
      // s3rver keeps the class given at PUT; the front records a plain bucket's key only once it has
      // state of its own (tags, a transition, a restore), which the new object replaces.
      state.remove(bucket, key, undefined);
      const tagged = tags.length > 0 ? await snapshot(bucket, key) : undefined;
      if (tagged) {
        tagged.tags = tags;
        state.record(bucket, key, tagged);
      }
      return relay(res, from, {}, body);
    }
    const version = await snapshot(bucket, key);
    if (!version) return relay(res, from, {}, body);
    const requestedClass = header(req, "x-amz-storage-class");
    if (requestedClass) version.storageClass = requestedClass;
    if (tags.length > 0) version.tags = tags;
    if (lock.legalHold) version.legalHold = lock.legalHold;
    const retention = state.newVersionRetention(bucket, lock.retention);
    if (retention) version.retention = retention;
    state.record(bucket, key, version);
    relay(res, from, state.isVersioned(bucket) ? { "x-amz-version-id": version.versionId } : {}, body);
  }

  /** S3 refuses lock headers for a bucket without Object Lock. */
  function checkLockAllowed(bucket: string, lock: UploadRequest["lock"]): void {
    if ((lock.retention || lock.legalHold) && !state.hasObjectLock(bucket)) {
      throw new S3WireError(400, "InvalidRequest", "Bucket is missing ObjectLockConfiguration");
    }
  }

  function checkRetainUntil(lock: UploadRequest["lock"]): void {
    if (lock.retention && lock.retention.until <= state.clock()) {
      throw invalidArgument(
        "The retain until date must be in the future!",
        "x-amz-object-lock-retain-until-date",
      );
    }
  }

  /**
   * CreateMultipartUpload: s3rver starts the upload; the front keeps its tags and Object Lock
   * headers (x-amz-object-lock-mode, -retain-until-date, -legal-hold, which S3's
   * CreateMultipartUpload takes as PutObject does) for the completion, checked now as S3 does.
   */
  async function createMultipartUpload(req: IncomingMessage, res: ServerResponse, bucket: string) {
    const tags = requestedTags(req);
    const lock = requestedLock(req);
    checkLockAllowed(bucket, lock);
    checkRetainUntil(lock);
    const from = await forward(req);
    const body = await readAll(from, MAX_CONTROL_BODY);
    const uploadId = xmlText(body.toString("utf8"), "UploadId");
    if (
      (from.statusCode ?? 500) < 300 &&
      uploadId !== undefined &&
      (tags.length > 0 || lock.retention || lock.legalHold)
    ) {
      uploadRequests.set(uploadId, { tags, lock });
    }
    relay(res, from, {}, body);
  }

  /** GetObjectTagging, PutObjectTagging (the whole set replaced), DeleteObjectTagging. */
  async function tagging(
    req: IncomingMessage,
    res: ServerResponse,
    bucket: string,
    key: string,
    query: URLSearchParams,
  ) {
    const body = (await readControlBody(req)).toString("utf8");
    const version = await target(bucket, key, requestedVersion(bucket, query));
    if (version.isDeleteMarker) {
      throw new S3WireError(
        405,
        "MethodNotAllowed",
        "The specified method is not allowed against this resource.",
      );
    }
    const versionHeader: Record<string, string> = state.isVersioned(bucket)
      ? { "x-amz-version-id": version.versionId }
      : {};
    if (req.method === "PUT") {
      state.setTags(version, parseTaggingDocument(body));
      return sendEmpty(res, 200, versionHeader);
    }
    if (req.method === "DELETE") {
      state.setTags(version, []);
      return sendEmpty(res, 204, versionHeader);
    }
    sendXml(res, 200, taggingDocument(version.tags ?? []), versionHeader);
  }

  async function read(
    req: IncomingMessage,
    res: ServerResponse,
    bucket: string,
    key: string,
    query: URLSearchParams,
  ) {
    const isGet = req.method === "GET";
    const versionId = requestedVersion(bucket, query);
    if (!state.isVersioned(bucket) && !state.versions(bucket, key)) return readPlain(req, res, isGet);
    const versions = await known(bucket, key);
    if (!versions) {
      if (versionId !== undefined) throw noSuchVersion(key, versionId);
      return relay(res, await forward(req));
    }
    const version = state.find(bucket, key, versionId);
    if (version?.isDeleteMarker) {
      const markerHeaders = { "x-amz-delete-marker": "true", "x-amz-version-id": version.versionId };
      if (versionId === undefined) throw noSuchKey(key, markerHeaders);
      throw new S3WireError(
        405,
        "MethodNotAllowed",
        "The specified method is not allowed against this resource.",
        {},
        markerHeaders,
      );
    }
    const found = state.require(bucket, key, versionId);
    if (isGet) state.checkReadable(found);
    const extra = state.objectHeaders(bucket, found);
    // GetObject tells how many tags the object has (GetObjectTagging lists them); HeadObject does not.
    if (isGet && found.tags) extra["x-amz-tagging-count"] = String(found.tags.length);
    if (versionId === undefined || found === versions[0] || !found.bodyPath) {
      return relay(res, await forward(req), extra);
    }
    req.resume();
    res.writeHead(200, {
      ...found.headers,
      etag: found.etag,
      "content-length": String(found.size),
      "last-modified": new Date(found.lastModified).toUTCString(),
      "accept-ranges": "bytes",
      ...extra,
    });
    if (isGet) {
      createReadStream(found.bodyPath)
        .on("error", () => res.destroy())
        .pipe(res);
    } else res.end();
  }

  /** A plain bucket's key the front has no state for: s3rver's answer, with the class it stored. */
  async function readPlain(req: IncomingMessage, res: ServerResponse, isGet: boolean) {
    const from = await forward(req);
    const storageClass = from.headers["x-amz-storage-class"];
    const archived = typeof storageClass === "string" && ARCHIVED_CLASSES.has(storageClass);
    if (isGet && from.statusCode === 200 && archived) {
      from.resume();
      throw new S3WireError(
        403,
        "InvalidObjectState",
        "The operation is not valid for the object's storage class",
        {
          StorageClass: storageClass,
        },
      );
    }
    // S3 sends x-amz-storage-class for every class except STANDARD.
    const extra: Record<string, string> =
      typeof storageClass === "string" && storageClass !== "STANDARD"
        ? { "x-amz-storage-class": storageClass }
        : {};
    relay(res, from, extra);
  }

  async function deleteObject(
    req: IncomingMessage,
    res: ServerResponse,
    bucket: string,
    key: string,
    query: URLSearchParams,
  ) {
    if (!state.isVersioned(bucket)) {
      const from = await forward(req);
      if ((from.statusCode ?? 500) < 300) state.remove(bucket, key, undefined);
      return relay(res, from);
    }
    const versionId = query.get("versionId") ?? undefined;
    const versions = await known(bucket, key);
    const ifMatch = header(req, "if-match");
    if (ifMatch !== undefined && versionId === undefined) {
      // A conditional delete is judged against the current version only: none (or a delete
      // marker) is NoSuchKey, another ETag is PreconditionFailed
      // (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-deletes.html).
      const current = versions?.[0];
      if (current === undefined || current.isDeleteMarker) {
        req.resume();
        throw noSuchKey(key);
      }
      const unquoted = (etag: string) => etag.replace(/^"|"$/g, "");
      if (ifMatch.trim() !== "*" && unquoted(ifMatch.trim()) !== unquoted(current.etag)) {
        req.resume();
        throw new S3WireError(
          412,
          "PreconditionFailed",
          "At least one of the pre-conditions you specified did not hold",
          {
            Condition: "If-Match",
          },
        );
      }
    }
    if (versionId === undefined) {
      // S3 keeps every version and tops the key with a delete marker; locks protect versions, not keys.
      const marker: ObjectVersion = {
        versionId: randomBytes(16).toString("hex"),
        isDeleteMarker: true,
        lastModified: state.clock(),
        storageClass: "STANDARD",
        etag: "",
        size: 0,
        headers: {},
      };
      const wasObject = versions?.[0] && !versions[0].isDeleteMarker;
      state.record(bucket, key, marker);
      if (wasObject) await direct.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
      req.resume();
      return sendEmpty(res, 204, { "x-amz-delete-marker": "true", "x-amz-version-id": marker.versionId });
    }
    req.resume();
    const version = versions?.find((v) => v.versionId === versionId);
    if (!version) return sendEmpty(res, 204, { "x-amz-version-id": versionId });
    state.checkDeletable(version, header(req, "x-amz-bypass-governance-retention") === "true");
    const wasLatest = version === versions![0];
    const latest = state.remove(bucket, key, versionId);
    if (version.bodyPath) await rm(version.bodyPath, { force: true });
    if (wasLatest) await showInS3rver(bucket, key, version, latest);
    sendEmpty(res, 204, {
      "x-amz-version-id": versionId,
      ...(version.isDeleteMarker ? { "x-amz-delete-marker": "true" } : {}),
    });
  }

  /** s3rver holds the current body of a key: after its latest version goes, the next one (or none). */
  async function showInS3rver(
    bucket: string,
    key: string,
    removed: ObjectVersion,
    latest: ObjectVersion | undefined,
  ) {
    if (latest && !latest.isDeleteMarker && latest.bodyPath) {
      const metadata: Record<string, string> = {};
      for (const [name, value] of Object.entries(latest.headers)) {
        if (name.startsWith("x-amz-meta-")) metadata[name.slice("x-amz-meta-".length)] = value;
      }
      await direct.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: await readFile(latest.bodyPath),
          ContentType: latest.headers["content-type"],
          ContentEncoding: latest.headers["content-encoding"],
          Metadata: metadata,
        }),
      );
    } else if (!removed.isDeleteMarker) {
      await direct.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    }
  }

  async function restoreObject(
    req: IncomingMessage,
    res: ServerResponse,
    bucket: string,
    key: string,
    query: URLSearchParams,
  ) {
    const body = (await readControlBody(req)).toString("utf8");
    const version = await target(bucket, key, requestedVersion(bucket, query));
    if (!body.includes("RestoreRequest")) throw malformedXml();
    const daysText = xmlText(body, "Days");
    const days = Number(daysText);
    if (daysText === undefined || !Number.isInteger(days) || days < 1) {
      throw invalidArgument("Days must be a positive integer for an archived object", "Days", daysText ?? "");
    }
    const tier = xmlText(body, "Tier") ?? "Standard";
    if (!TIERS.has(tier)) throw malformedXml();
    const status = state.restore(version, days, tier as RestoreTier);
    sendEmpty(res, status);
  }

  async function legalHold(
    req: IncomingMessage,
    res: ServerResponse,
    bucket: string,
    key: string,
    query: URLSearchParams,
  ) {
    const body = (await readControlBody(req)).toString("utf8");
    if (!state.hasObjectLock(bucket)) throw missingLockConfiguration();
    const version = await target(bucket, key, query.get("versionId") ?? undefined);
    if (req.method === "PUT") {
      const status = xmlText(body, "Status");
      if (status === undefined) throw malformedXml();
      state.setLegalHold(bucket, version, status);
      return sendEmpty(res, 200);
    }
    if (!version.legalHold) throw noLockConfiguration();
    sendXml(res, 200, `<LegalHold xmlns="${S3_XMLNS}">${element("Status", version.legalHold)}</LegalHold>`);
  }

  async function retention(
    req: IncomingMessage,
    res: ServerResponse,
    bucket: string,
    key: string,
    query: URLSearchParams,
  ) {
    const body = (await readControlBody(req)).toString("utf8");
    if (!state.hasObjectLock(bucket)) throw missingLockConfiguration();
    const version = await target(bucket, key, query.get("versionId") ?? undefined);
    if (req.method === "PUT") {
      if (!body.includes("Retention")) throw malformedXml();
      const mode = xmlText(body, "Mode");
      const until = xmlText(body, "RetainUntilDate");
      const next =
        mode === undefined && until === undefined
          ? undefined
          : { mode: mode ?? "", until: Date.parse(until ?? "") };
      state.setRetention(bucket, version, next, header(req, "x-amz-bypass-governance-retention") === "true");
      return sendEmpty(res, 200);
    }
    if (!version.retention) throw noLockConfiguration();
    sendXml(
      res,
      200,
      `<Retention xmlns="${S3_XMLNS}">${element("Mode", version.retention.mode)}${element("RetainUntilDate", isoDate(version.retention.until))}</Retention>`,
    );
  }

  async function listVersions(res: ServerResponse, bucket: string, query: URLSearchParams) {
    const prefix = query.get("prefix") ?? "";
    const delimiter = query.get("delimiter") ?? "";
    const keyMarker = query.get("key-marker") ?? "";
    const versionIdMarker = query.get("version-id-marker") ?? "";
    const maxKeys = Math.min(Number(query.get("max-keys") ?? 1000) || 1000, 1000);
    const encode = query.get("encoding-type") === "url" ? encodeURIComponent : (s: string) => s;

    let keys: [string, ObjectVersion[]][];
    if (state.isVersioned(bucket)) {
      keys = state.keys(bucket).filter(([key]) => key.startsWith(prefix));
    } else {
      // Unversioned: every object is its one "null" version, listed from s3rver.
      keys = [];
      for await (const contents of listObjectPages(direct, bucket, prefix)) {
        for (const item of contents) {
          const key = item.Key!;
          const record = state.latest(bucket, key);
          keys.push([
            key,
            [
              {
                versionId: "null",
                isDeleteMarker: false,
                lastModified: item.LastModified?.getTime() ?? 0,
                storageClass: record?.storageClass ?? item.StorageClass ?? "STANDARD",
                etag: item.ETag ?? '""',
                size: item.Size ?? 0,
                headers: {},
              },
            ],
          ]);
        }
      }
    }

    const parts: string[] = [];
    const commonPrefixes = new Set<string>();
    let count = 0;
    let truncated = false;
    let nextKeyMarker = "";
    let nextVersionIdMarker = "";
    outer: for (const [key, versions] of keys) {
      if (keyMarker && (key < keyMarker || (key === keyMarker && !versionIdMarker))) continue;
      if (delimiter) {
        const cut = key.indexOf(delimiter, prefix.length);
        if (cut >= 0) {
          const common = key.slice(0, cut + delimiter.length);
          if (!commonPrefixes.has(common)) {
            if (count === maxKeys) {
              truncated = true;
              break;
            }
            commonPrefixes.add(common);
            count++;
            nextKeyMarker = common;
            nextVersionIdMarker = "";
          }
          continue;
        }
      }
      let skipping = key === keyMarker && versionIdMarker !== "";
      for (const [index, version] of versions.entries()) {
        if (skipping) {
          if (version.versionId === versionIdMarker) skipping = false;
          continue;
        }
        if (count === maxKeys) {
          truncated = true;
          break outer;
        }
        count++;
        nextKeyMarker = key;
        nextVersionIdMarker = version.versionId;
        const common = `${element("Key", encode(key))}${element("VersionId", version.versionId)}${element("IsLatest", index === 0)}${element("LastModified", isoDate(version.lastModified))}`;
        const owner = "<Owner><ID>local</ID><DisplayName>local</DisplayName></Owner>";
        parts.push(
          version.isDeleteMarker
            ? `<DeleteMarker>${common}${owner}</DeleteMarker>`
            : `<Version>${common}${element("ETag", version.etag)}${element("Size", version.size)}${owner}${element("StorageClass", version.storageClass)}</Version>`,
        );
      }
    }
    for (const common of commonPrefixes)
      parts.push(`<CommonPrefixes>${element("Prefix", encode(common))}</CommonPrefixes>`);
    sendXml(
      res,
      200,
      `<ListVersionsResult xmlns="${S3_XMLNS}">${element("Name", bucket)}${element("Prefix", encode(prefix))}${element("KeyMarker", encode(keyMarker))}${element("VersionIdMarker", versionIdMarker)}${element("MaxKeys", maxKeys)}${delimiter ? element("Delimiter", encode(delimiter)) : ""}${query.get("encoding-type") === "url" ? element("EncodingType", "url") : ""}${element("IsTruncated", truncated)}${truncated ? `${element("NextKeyMarker", encode(nextKeyMarker))}${nextVersionIdMarker ? element("NextVersionIdMarker", nextVersionIdMarker) : ""}` : ""}${parts.join("")}</ListVersionsResult>`,
    );
  }

  function requestedVersion(bucket: string, query: URLSearchParams): string | undefined {
    const versionId = query.get("versionId") ?? undefined;
    // An unversioned bucket's objects all have version "null": the current one.
    return versionId === "null" && !state.isVersioned(bucket) ? undefined : versionId;
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? "/", "http://front");
    const query = url.searchParams;
    const slash = url.pathname.indexOf("/", 1);
    const bucket = decodeURIComponent(slash < 0 ? url.pathname.slice(1) : url.pathname.slice(1, slash));
    const key = slash < 0 ? "" : decodeURIComponent(url.pathname.slice(slash + 1));
    const method = req.method ?? "GET";
    // Reads can change state too: a first sight of a key adopts it, and a finished job is recorded.
    res.once("finish", () => {
      void save();
    });
    try {
      if (!bucket) return relay(res, await forward(req));
      if (!key) {
        if (method === "GET" && query.has("versions")) {
          req.resume();
          return await listVersions(res, bucket, query);
        }
        if (method === "POST" && query.has("delete") && state.isVersioned(bucket)) {
          throw new S3WireError(
            501,
            "NotImplemented",
            "DeleteObjects on a versioned bucket is not emulated locally",
          );
        }
        return relay(res, await forward(req));
      }
      if (method === "POST" && query.has("restore")) return await restoreObject(req, res, bucket, key, query);
      if (query.has("legal-hold") && (method === "PUT" || method === "GET")) {
        return await legalHold(req, res, bucket, key, query);
      }
      if (query.has("retention") && (method === "PUT" || method === "GET")) {
        return await retention(req, res, bucket, key, query);
      }
      if (query.has("tagging") && (method === "PUT" || method === "GET" || method === "DELETE")) {
        return await tagging(req, res, bucket, key, query);
      }
      if (method === "POST" && query.has("uploads")) return await createMultipartUpload(req, res, bucket);
      if (method === "DELETE" && query.has("uploadId")) uploadRequests.delete(query.get("uploadId")!);
      const isPart = query.has("uploadId") || query.has("partNumber");
      const isSubresource = query.has("tagging") || query.has("acl");
      if (method === "PUT" && !isPart && !isSubresource) return await putObject(req, res, bucket, key, query);
      if (method === "POST" && query.has("uploadId")) return await putObject(req, res, bucket, key, query);
      if ((method === "GET" || method === "HEAD") && !isPart && !isSubresource && !query.has("uploadId")) {
        return await read(req, res, bucket, key, query);
      }
      if (method === "DELETE" && !query.has("uploadId"))
        return await deleteObject(req, res, bucket, key, query);
      return relay(res, await forward(req));
    } catch (error) {
      req.resume();
      if (res.headersSent) {
        res.destroy();
        return;
      }
      sendError(
        res,
        method,
        error instanceof S3WireError ? error : new S3WireError(500, "InternalError", String(error)),
      );
    }
  }

  const server: Server = createServer((req, res) => {
    void handle(req, res);
  });
  keepIdleConnections(server);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    endpoint: `http://${options.host}:${port}`,
    port,
    state,
    async setStorageClass(bucket, key, storageClass, versionId) {
      state.transition(await target(bucket, key, versionId), storageClass);
      await save();
    },
    completeRestores: () => {
      const finished = state.completeRestores();
      void save();
      return finished;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
      direct.destroy();
      await save();
      if (saveError)
        throw new Error(`${statePath}: cannot save the local S3 archive state (${String(saveError)})`);
    },
  };
}

/** What a multipart upload's object gets on completion, from its CreateMultipartUpload. */
interface UploadRequest {
  tags: ObjectTag[];
  lock: Pick<ObjectVersion, "legalHold" | "retention">;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The tags of the request's x-amz-tagging header (none without it); S3's refusal if malformed. */
function requestedTags(req: IncomingMessage): ObjectTag[] {
  const tagging = header(req, "x-amz-tagging");
  return tagging === undefined ? [] : parseTaggingHeader(tagging);
}

function requestedLock(req: IncomingMessage): Pick<ObjectVersion, "legalHold" | "retention"> {
  const lock: Pick<ObjectVersion, "legalHold" | "retention"> = {};
  const legalHold = header(req, "x-amz-object-lock-legal-hold");
  if (legalHold !== undefined) {
    if (legalHold !== "ON" && legalHold !== "OFF") {
      throw invalidArgument(
        "Legal Hold must be either of 'ON' or 'OFF'",
        "x-amz-object-lock-legal-hold",
        legalHold,
      );
    }
    lock.legalHold = legalHold;
  }
  const mode = header(req, "x-amz-object-lock-mode");
  const until = header(req, "x-amz-object-lock-retain-until-date");
  if (mode !== undefined || until !== undefined) {
    if (
      (mode !== "GOVERNANCE" && mode !== "COMPLIANCE") ||
      until === undefined ||
      Number.isNaN(Date.parse(until))
    ) {
      throw invalidArgument(
        "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied",
        "x-amz-object-lock-mode",
        mode ?? "",
      );
    }
    lock.retention = { mode, until: Date.parse(until) };
  }
  return lock;
}

/**
 * Whether the request lets S3 check its body: Content-MD5, an x-amz-checksum-* header, or the
 * SDK's algorithm header with a trailing checksum (aws-chunked).
 */
function hasBodyChecksum(req: IncomingMessage): boolean {
  if (header(req, "content-md5") !== undefined) return true;
  if (header(req, "x-amz-sdk-checksum-algorithm") !== undefined) return true;
  if ((header(req, "x-amz-trailer") ?? "").startsWith("x-amz-checksum-")) return true;
  return Object.keys(req.headers).some(
    (name) =>
      name.startsWith("x-amz-checksum-") && name !== "x-amz-checksum-type" && name !== "x-amz-checksum-mode",
  );
}

async function readAll(stream: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of stream) {
    length += (chunk as Buffer).length;
    if (length > limit) throw new S3WireError(400, "MaxMessageLengthExceeded", "Your request was too big.");
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** A control call's XML body; an aws-chunked body (a streamed one) is unwrapped. */
async function readControlBody(req: IncomingMessage): Promise<Buffer> {
  const raw = await readAll(req, MAX_CONTROL_BODY);
  if (!(header(req, "content-encoding") ?? "").includes("aws-chunked")) return raw;
  const chunks: Buffer[] = [];
  let at = 0;
  while (at < raw.length) {
    const lineEnd = raw.indexOf("\r\n", at);
    if (lineEnd < 0) break;
    const size = Number.parseInt(raw.subarray(at, lineEnd).toString("latin1").split(";")[0]!, 16);
    if (!size) break;
    chunks.push(raw.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(chunks);
}
