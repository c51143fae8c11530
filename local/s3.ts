// Local S3: s3rver, which keeps user metadata and emits S3 event JSON for every write.

import crypto from "node:crypto";
import { mkdir } from "node:fs/promises";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { S3Client } from "@aws-sdk/client-s3";
import S3rver from "s3rver";
import { keepIdleConnections } from "./keep-alive.ts";

export interface LocalS3Options {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Objects are kept here, so they survive a restart of the stack. */
  dataDir: string;
  buckets: readonly string[];
}

export interface LocalS3 {
  endpoint: string;
  port: number;
  /** The s3rver instance; its 'event' emits s3rver's S3 event objects. */
  server: S3rver;
  stop(): Promise<void>;
}

/** Credentials s3rver accepts; the AWS SDK signs with them. */
export const LOCAL_S3_CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } as const;

export async function startLocalS3(options: LocalS3Options): Promise<LocalS3> {
  await mkdir(options.dataDir, { recursive: true });
  const server = new S3rver({
    address: options.host,
    port: options.port,
    silent: true,
    directory: options.dataDir,
    // Path-style only: virtual-host names need DNS the machine may not have.
    vhostBuckets: false,
    configureBuckets: options.buckets.map((name) => ({ name, configs: [] })),
  });
  fixListing(server);
  const address = (await server.run()) as AddressInfo;
  const httpServer = (server as unknown as { httpServer?: Server }).httpServer;
  if (httpServer) keepIdleConnections(httpServer);
  // A closed server goes on serving kept-alive sockets (65 s here), so stop() also cuts them:
  // after it, S3 is really gone. A second stop() is a no-op.
  let stopped: Promise<void> | null = null;
  return {
    endpoint: `http://${options.host}:${address.port}`,
    port: address.port,
    server,
    stop: () => {
      if (stopped === null) {
        stopped = server.close();
        httpServer?.closeAllConnections();
      }
      return stopped;
    },
  };
}

/** An S3 client for the local S3: path-style, signed with the credentials s3rver accepts. */
export function localS3Client(endpoint: string, region: string): S3Client {
  return new S3Client({
    endpoint,
    region,
    forcePathStyle: true,
    credentials: LOCAL_S3_CREDENTIALS,
    // Without a logger the SDK prints some failures to the console ("An error was encountered
    // in a non-retryable streaming request."); its callers log and count failures themselves.
    logger: SILENT_SDK_LOGGER,
  });
}

const SILENT_SDK_LOGGER = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };

interface ListOptions {
  delimiter?: string;
  prefix?: string;
  maxKeys?: number;
  startAfter?: string;
}
interface ListResult {
  objects: { key: string }[];
  commonPrefixes: string[];
  isTruncated: boolean;
}
type ListObjects = (bucket: string, options: ListOptions) => Promise<ListResult>;

/**
 * Two bugs of s3rver 3.7 that break listing the archive's layout:
 * - With a delimiter its filesystem store never descends below the first directory under
 *   the prefix, so keys two or more levels down (`namespace=…/dt=…/hour=…/…`) give no
 *   common prefix at all. Listed here without the delimiter, then grouped as S3 does.
 * - Its continuation token is DES-encrypted, which OpenSSL 3 (Node 17+) no longer offers
 *   without the legacy provider, so every listing of more than 1,000 keys fails with
 *   InternalError. The token only has to be opaque to clients, so where DES is missing it
 *   is kept in the clear (after s3rver's random 8-byte prefix).
 */
let clearTokens = false;

function fixListing(server: S3rver): void {
  const store = (server as unknown as { store?: { listObjects: ListObjects } }).store;
  if (store) {
    const listAll = store.listObjects.bind(store);
    store.listObjects = async (bucket, options) => {
      const delimiter = options.delimiter ?? "";
      if (delimiter === "") return listAll(bucket, options);
      const all = await listAll(bucket, { ...options, delimiter: "", maxKeys: Number.POSITIVE_INFINITY });
      const prefix = options.prefix ?? "";
      const maxKeys = options.maxKeys ?? Number.POSITIVE_INFINITY;
      const commonPrefixes = new Set<string>();
      const objects: { key: string }[] = [];
      let isTruncated = false;
      for (const object of all.objects) {
        const at = object.key.indexOf(delimiter, prefix.length);
        if (at !== -1) commonPrefixes.add(object.key.slice(0, at + delimiter.length));
        else if (objects.length < maxKeys) objects.push(object);
        else isTruncated = true;
      }
      return { objects, commonPrefixes: [...commonPrefixes].sort(), isTruncated };
    };
  }
  if (!clearTokens && !crypto.getCiphers().includes("des")) {
    clearTokens = true;
    const createCipheriv = crypto.createCipheriv;
    const createDecipheriv = crypto.createDecipheriv;
    const clear = {
      update: (data: string | Buffer, encoding?: BufferEncoding) =>
        typeof data === "string" ? Buffer.from(data, encoding) : data,
      final: () => Buffer.alloc(0),
    };
    crypto.createCipheriv = ((algorithm: string, ...rest: unknown[]) =>
      algorithm === "des"
        ? clear
        : Reflect.apply(createCipheriv, crypto, [algorithm, ...rest])) as typeof createCipheriv;
    crypto.createDecipheriv = ((algorithm: string, ...rest: unknown[]) =>
      algorithm === "des"
        ? clear
        : Reflect.apply(createDecipheriv, crypto, [algorithm, ...rest])) as typeof createDecipheriv;
  }
}
