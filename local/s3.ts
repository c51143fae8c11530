// Local S3: s3rver, which keeps user metadata and emits S3 event JSON for every write.

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
  const address = (await server.run()) as AddressInfo;
  const httpServer = (server as unknown as { httpServer?: Server }).httpServer;
  if (httpServer) keepIdleConnections(httpServer);
  return {
    endpoint: `http://${options.host}:${address.port}`,
    port: address.port,
    server,
    stop: () => server.close(),
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
