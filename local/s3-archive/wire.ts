// The S3 REST wire format for the calls the archive front answers itself: error documents,
// the few XML bodies it reads (RestoreRequest, LegalHold, Retention) and writes, and dates.
// The request bodies are small fixed documents, so a tag lookup reads them; no XML parser.

import { randomBytes } from "node:crypto";
import type { ServerResponse } from "node:http";

export const S3_XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/";

export class S3WireError extends Error {
  readonly status: number;
  readonly code: string;
  /** Extra elements of the Error document (e.g. StorageClass of InvalidObjectState). */
  readonly fields: Record<string, string>;
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    code: string,
    message: string,
    fields: Record<string, string> = {},
    headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "S3WireError";
    this.status = status;
    this.code = code;
    this.fields = fields;
    this.headers = headers;
  }
}

export const noSuchKey = (key: string, headers: Record<string, string> = {}): S3WireError =>
  new S3WireError(404, "NoSuchKey", "The specified key does not exist.", { Key: key }, headers);

export const noSuchVersion = (key: string, versionId: string): S3WireError =>
  new S3WireError(404, "NoSuchVersion", "The specified version does not exist.", {
    Key: key,
    VersionId: versionId,
  });

export const accessDenied = (): S3WireError => new S3WireError(403, "AccessDenied", "Access Denied");

export const missingLockConfiguration = (): S3WireError =>
  new S3WireError(400, "InvalidRequest", "Bucket is missing Object Lock Configuration");

export const noLockConfiguration = (): S3WireError =>
  new S3WireError(
    404,
    "NoSuchObjectLockConfiguration",
    "The specified object does not have a ObjectLock configuration",
  );

export const malformedXml = (): S3WireError =>
  new S3WireError(
    400,
    "MalformedXML",
    "The XML you provided was not well-formed or did not validate against our published schema",
  );

export const invalidArgument = (message: string, name?: string, value?: string): S3WireError =>
  new S3WireError(
    400,
    "InvalidArgument",
    message,
    name === undefined ? {} : { ArgumentName: name, ArgumentValue: value ?? "" },
  );

export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) =>
    c === "<" ? "&lt;" : c === ">" ? "&gt;" : c === "&" ? "&amp;" : c === '"' ? "&quot;" : "&apos;",
  );
}

function unescapeXml(text: string): string {
  return text.replace(/&(lt|gt|amp|quot|apos);/g, (_, name: string) =>
    name === "lt" ? "<" : name === "gt" ? ">" : name === "amp" ? "&" : name === "quot" ? '"' : "'",
  );
}

/** Text of the first `<tag>` element (namespace prefixes and attributes allowed), or undefined. */
export function xmlText(document: string, tag: string): string | undefined {
  const match = new RegExp(`<(?:\\w+:)?${tag}(?:\\s[^>]*)?>([^<]*)</(?:\\w+:)?${tag}>`).exec(document);
  return match ? unescapeXml(match[1]!.trim()) : undefined;
}

export function xmlDocument(body: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n${body}`;
}

export function element(tag: string, value: string | number | boolean | undefined): string {
  return value === undefined ? "" : `<${tag}>${escapeXml(String(value))}</${tag}>`;
}

export function requestId(): string {
  return randomBytes(8).toString("hex").toUpperCase();
}

export function sendXml(
  res: ServerResponse,
  status: number,
  body: string,
  headers: Record<string, string> = {},
) {
  const payload = Buffer.from(xmlDocument(body));
  res.writeHead(status, {
    "content-type": "application/xml",
    "content-length": String(payload.length),
    "x-amz-request-id": requestId(),
    ...headers,
  });
  res.end(payload);
}

export function sendEmpty(res: ServerResponse, status: number, headers: Record<string, string> = {}) {
  res.writeHead(status, { "content-length": "0", "x-amz-request-id": requestId(), ...headers });
  res.end();
}

/** An Error document; a HEAD answer has no body, so the SDK reads only the status and headers. */
export function sendError(res: ServerResponse, method: string, error: S3WireError) {
  if (method === "HEAD") {
    sendEmpty(res, error.status, error.headers);
    return;
  }
  const extra = Object.entries(error.fields)
    .map(([tag, value]) => element(tag, value))
    .join("");
  const id = requestId();
  sendXml(
    res,
    error.status,
    `<Error>${element("Code", error.code)}${element("Message", error.message)}${extra}${element("RequestId", id)}${element("HostId", id)}</Error>`,
    error.headers,
  );
}

/** HeadObject's x-amz-restore expiry-date and Last-Modified: RFC 7231 IMF-fixdate. */
export function httpDate(ms: number): string {
  return new Date(ms).toUTCString();
}

/** ISO 8601 with milliseconds, as S3 writes timestamps in XML and in the object-lock headers. */
export function isoDate(ms: number): string {
  return new Date(ms).toISOString();
}
