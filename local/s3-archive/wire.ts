// The S3 REST wire format for the calls the archive front answers itself: error documents,
// the few XML bodies it reads (RestoreRequest, LegalHold, Retention, Tagging) and writes, object
// tags (the x-amz-tagging header and the Tagging document) and dates.
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

/** One object tag. */
export interface ObjectTag {
  key: string;
  value: string;
}

/** S3's object tag limits (S3 user guide, "Categorizing your objects using tags"). */
const MAX_OBJECT_TAGS = 10;
const MAX_TAG_KEY_LENGTH = 128;
const MAX_TAG_VALUE_LENGTH = 256;
/**
 * Unicode letters, digits, white space and `_ . : / = + - @` (the user-defined tag restrictions
 * S3's tagging page links to). Lengths are in UTF-16 code units, as S3 counts them.
 */
const TAG_CHARACTERS = /^[\p{L}\p{N}\p{Z}\s_.:/=+\-@]*$/u;

const invalidTaggingHeader = (value: string): S3WireError =>
  invalidArgument(
    "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.",
    "x-amz-tagging",
    value,
  );

const invalidTag = (message: string): S3WireError => new S3WireError(400, "InvalidTag", message);

/**
 * The tags of PutObject's or CreateMultipartUpload's `x-amz-tagging` header: URL query
 * parameters (`key1=value1&key2=value2`, each part URL-encoded, `+` a space). Refused as S3
 * refuses it: 400 InvalidArgument for a header that is not such a query string of distinct keys
 * (or names a character no tag may hold), 400 BadRequest for more than 10 tags, 400 InvalidTag
 * for a key or value over its length or a key S3 reserves (`aws:`).
 */
export function parseTaggingHeader(header: string): ObjectTag[] {
  const tags: ObjectTag[] = [];
  for (const part of header.split("&")) {
    if (part === "") continue;
    const cut = part.indexOf("=");
    let key: string;
    let value: string;
    try {
      const decode = (text: string) => decodeURIComponent(text.replace(/\+/g, " "));
      key = decode(cut < 0 ? part : part.slice(0, cut));
      value = cut < 0 ? "" : decode(part.slice(cut + 1));
    } catch {
      throw invalidTaggingHeader(header);
    }
    if (tags.some((tag) => tag.key === key) || !TAG_CHARACTERS.test(key) || !TAG_CHARACTERS.test(value)) {
      throw invalidTaggingHeader(header);
    }
    tags.push({ key, value });
  }
  checkTagSet(tags);
  return tags;
}

/**
 * The tags of a PutObjectTagging body (`<Tagging><TagSet><Tag><Key/><Value/></Tag>…`): 400
 * MalformedXML without a TagSet or with a Tag lacking its Key, InvalidTag for a repeated key
 * or a key or value S3 would not store, BadRequest for more than 10 tags.
 */
export function parseTaggingDocument(document: string): ObjectTag[] {
  if (!/<(?:\w+:)?Tagging[\s>]/.test(document) || !/<(?:\w+:)?TagSet\s*\/?>/.test(document))
    throw malformedXml();
  const tags: ObjectTag[] = [];
  for (const match of document.matchAll(/<(?:\w+:)?Tag(?:\s[^>]*)?>([\s\S]*?)<\/(?:\w+:)?Tag>/g)) {
    const key = xmlText(match[1]!, "Key");
    if (key === undefined) throw malformedXml();
    const value = xmlText(match[1]!, "Value") ?? "";
    if (tags.some((tag) => tag.key === key))
      throw invalidTag("Cannot provide multiple Tags with the same key");
    if (!TAG_CHARACTERS.test(key)) throw invalidTag("The TagKey you have provided is invalid");
    if (!TAG_CHARACTERS.test(value)) throw invalidTag("The TagValue you have provided is invalid");
    tags.push({ key, value });
  }
  checkTagSet(tags);
  return tags;
}

function checkTagSet(tags: readonly ObjectTag[]): void {
  if (tags.length > MAX_OBJECT_TAGS)
    throw new S3WireError(400, "BadRequest", "Object tags cannot be greater than 10");
  for (const { key, value } of tags) {
    if (key.length === 0) throw invalidTag("The TagKey you have provided is invalid");
    if (key.length > MAX_TAG_KEY_LENGTH)
      throw invalidTag("The TagKey you have provided is too long, max 128");
    if (value.length > MAX_TAG_VALUE_LENGTH)
      throw invalidTag("The TagValue you have provided is too long, max 256");
    if (key.startsWith("aws:")) throw invalidTag("Your TagKey cannot be prefixed with aws:");
  }
}

/** GetObjectTagging's answer body. */
export function taggingDocument(tags: readonly ObjectTag[]): string {
  const set = tags
    .map((tag) => `<Tag>${element("Key", tag.key)}${element("Value", tag.value)}</Tag>`)
    .join("");
  return `<Tagging xmlns="${S3_XMLNS}"><TagSet>${set}</TagSet></Tagging>`;
}
