// S3 event notification messages, as S3 delivers them to SQS.
// https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html
//
// Keys arrive URL-encoded with `+` for space. Enabling a configuration sends an
// `s3:TestEvent`, which has no Records. Consumers must check the eventVersion major.

import { createHash } from "node:crypto";

export interface S3ObjectEvent {
  /** e.g. `ObjectCreated:Put`, without the `s3:` prefix, as in the message. */
  eventName: string;
  eventTime: string;
  awsRegion: string;
  bucket: string;
  /** Decoded object key. */
  key: string;
  size: number;
  eTag: string | undefined;
  versionId: string | undefined;
  sequencer: string | undefined;
  configurationId: string | undefined;
}

export type S3EventMessage =
  | { kind: "test"; bucket: string | undefined; time: string | undefined }
  | { kind: "records"; records: S3ObjectEvent[] };

export class S3EventError extends Error {
  override name = "S3EventError";
}

/** Decodes a key as S3 writes it in event messages: form-URL-encoding, `+` for space. */
export function decodeEventKey(encoded: string): string {
  try {
    return decodeURIComponent(encoded.replaceAll("+", " "));
  } catch {
    throw new S3EventError(`object key ${JSON.stringify(encoded)} has a malformed %-escape`);
  }
}

/** Encodes a key the way S3 does in event messages (space as `+`, `/` kept, the rest %-escaped). */
export function encodeEventKey(key: string): string {
  return encodeURIComponent(key)
    .replaceAll("%20", "+")
    .replaceAll("%2F", "/")
    .replace(/[!'()~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

function record(v: unknown, where: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw new S3EventError(`${where} is not an object`);
  return v as Record<string, unknown>;
}

/**
 * Parses the body of an SQS message sent by an S3 bucket notification. An SNS envelope
 * (S3 → SNS → SQS fan-out) is unwrapped. Throws S3EventError for anything else.
 */
export function parseS3EventMessage(body: string): S3EventMessage {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (error) {
    throw new S3EventError(`message body is not JSON: ${(error as Error).message}`);
  }
  let msg = record(parsed, "message");
  if (msg.Type === "Notification" && typeof msg.Message === "string") {
    return parseS3EventMessage(msg.Message);
  }
  if (msg.Event === "s3:TestEvent") {
    return { kind: "test", bucket: str(msg.Bucket), time: str(msg.Time) };
  }
  if (!Array.isArray(msg.Records))
    throw new S3EventError("message has neither Records nor Event: s3:TestEvent");
  const records: S3ObjectEvent[] = [];
  msg.Records.forEach((raw, i) => {
    const where = `Records[${i}]`;
    msg = record(raw, where);
    const version = str(msg.eventVersion);
    if (version === undefined || version.split(".")[0] !== "2") {
      throw new S3EventError(
        `${where}.eventVersion ${JSON.stringify(version)} is not 2.x; this parser reads 2.x only`,
      );
    }
    if (msg.eventSource !== "aws:s3") throw new S3EventError(`${where}.eventSource is not aws:s3`);
    const s3 = record(msg.s3, `${where}.s3`);
    const bucket = record(s3.bucket, `${where}.s3.bucket`);
    const object = record(s3.object, `${where}.s3.object`);
    const name = str(bucket.name);
    const key = str(object.key);
    const eventName = str(msg.eventName);
    if (name === undefined || key === undefined || eventName === undefined) {
      throw new S3EventError(`${where} lacks eventName, s3.bucket.name or s3.object.key`);
    }
    records.push({
      eventName,
      eventTime: str(msg.eventTime) ?? "",
      awsRegion: str(msg.awsRegion) ?? "",
      bucket: name,
      key: decodeEventKey(key),
      size: typeof object.size === "number" ? object.size : 0,
      eTag: str(object.eTag),
      versionId: str(object.versionId),
      sequencer: str(object.sequencer),
      configurationId: str(s3.configurationId),
    });
  });
  return { kind: "records", records };
}

/** True for the events the pipeline acts on: any object creation (Put, Post, Copy, multipart). */
export function isObjectCreated(event: S3ObjectEvent): boolean {
  return event.eventName.startsWith("ObjectCreated:");
}

/**
 * Orders two sequencers of the same key as S3 documents: left-pad the shorter with zeros,
 * then compare as strings.
 */
export function compareSequencers(a: string, b: string): number {
  const width = Math.max(a.length, b.length);
  const pa = a.padStart(width, "0");
  const pb = b.padStart(width, "0");
  return pa < pb ? -1 : pa > pb ? 1 : 0;
}

// ------------------------------------------------------------ formatting (local S3 bridge)

export interface S3EventInput {
  eventName: string;
  eventTime: Date;
  awsRegion: string;
  bucket: string;
  key: string;
  size: number;
  eTag: string;
  sequencer: string;
  configurationId: string;
  sourceIp?: string;
}

function requestId(seed: string, length: number): string {
  return createHash("sha256").update(seed).digest("hex").slice(0, length).toUpperCase();
}

/** Builds an SQS message body in the exact shape S3 sends for one object event. */
export function formatS3EventMessage(e: S3EventInput): string {
  const seed = `${e.bucket}/${e.key}/${e.sequencer}`;
  return JSON.stringify({
    Records: [
      {
        eventVersion: "2.1",
        eventSource: "aws:s3",
        awsRegion: e.awsRegion,
        eventTime: e.eventTime.toISOString(),
        eventName: e.eventName,
        userIdentity: { principalId: "AWS:LOCALSHIPPER" },
        requestParameters: { sourceIPAddress: e.sourceIp ?? "127.0.0.1" },
        responseElements: {
          "x-amz-request-id": requestId(seed, 16),
          "x-amz-id-2": Buffer.from(requestId(`${seed}#2`, 48)).toString("base64"),
        },
        s3: {
          s3SchemaVersion: "1.0",
          configurationId: e.configurationId,
          bucket: {
            name: e.bucket,
            ownerIdentity: { principalId: "LOCALOWNER" },
            arn: `arn:aws:s3:::${e.bucket}`,
          },
          object: {
            key: encodeEventKey(e.key),
            size: e.size,
            eTag: e.eTag.replaceAll('"', ""),
            sequencer: e.sequencer,
          },
        },
      },
    ],
  });
}

/** The message S3 sends when a notification configuration is enabled. */
export function formatS3TestEvent(bucket: string, time: Date): string {
  return JSON.stringify({
    Service: "Amazon S3",
    Event: "s3:TestEvent",
    Time: time.toISOString(),
    Bucket: bucket,
    RequestId: requestId(`${bucket}${time.getTime()}`, 16),
    HostId: Buffer.from(requestId(`${bucket}${time.getTime()}#2`, 48)).toString("base64"),
  });
}
