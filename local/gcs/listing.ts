// objects.list semantics: prefix, delimiter (with `prefixes`), startOffset/endOffset, matchGlob and paging,
// where maxResults counts items and prefixes together, as in GCS.

import { invalid } from "./errors.ts";
import type { GlobMatcher } from "./glob.ts";
import type { StoredObject } from "./resources.ts";

/** Orders names by Unicode code point, which is the UTF-8 byte order GCS lists in. */
export function compareNames(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return fixup(x) - fixup(y);
  }
  return a.length - b.length;
}

// UTF-16 puts astral characters (surrogates, 0xD800-0xDFFF) below 0xE000-0xFFFF; move them above.
const fixup = (unit: number): number =>
  unit >= 0xe000 ? unit - 0x800 : unit >= 0xd800 ? unit + 0x2000 : unit;

export interface ListQuery {
  prefix: string;
  delimiter: string;
  startOffset?: string;
  endOffset?: string;
  matchGlob?: GlobMatcher;
  includeTrailingDelimiter: boolean;
  maxResults: number;
  pageToken?: string;
}

export interface ListPage {
  items: StoredObject[];
  prefixes: string[];
  nextPageToken?: string;
}

// Opaque to clients: resume strictly after `after`, skipping the rest of the prefix group `skip`.
interface Cursor {
  after: string;
  skip?: string;
}

function encodeToken(cursor: Cursor): string {
  return Buffer.from(JSON.stringify(cursor)).toString("base64url");
}

function decodeToken(token: string): Cursor {
  try {
    const cursor = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as Cursor;
    if (typeof cursor.after === "string" && (cursor.skip === undefined || typeof cursor.skip === "string")) {
      return cursor;
    }
  } catch {
    // reported below
  }
  throw invalid("Invalid page token.");
}

export function parseMaxResults(value: string | null): number {
  if (value === null) return 1000;
  if (!/^\d+$/.test(value) || Number(value) === 0) throw invalid(`Invalid value for maxResults: ${value}`);
  return Math.min(Number(value), 1000);
}

export function listPage(objects: readonly StoredObject[], q: ListQuery): ListPage {
  const cursor = q.pageToken === undefined ? undefined : decodeToken(q.pageToken);
  const items: StoredObject[] = [];
  const prefixes: string[] = [];
  let skip = cursor?.skip;
  let last: Cursor | undefined;
  for (const object of objects) {
    const { name } = object;
    if (cursor !== undefined && compareNames(name, cursor.after) <= 0) continue;
    if (skip !== undefined && name.startsWith(skip)) continue;
    if (!name.startsWith(q.prefix)) continue;
    if (q.startOffset !== undefined && compareNames(name, q.startOffset) < 0) continue;
    if (q.endOffset !== undefined && compareNames(name, q.endOffset) >= 0) break;
    if (q.matchGlob !== undefined && !q.matchGlob.test(name)) continue;
    const cut = q.delimiter === "" ? -1 : name.indexOf(q.delimiter, q.prefix.length);
    if (items.length + prefixes.length >= q.maxResults) {
      return { items, prefixes, ...(last === undefined ? {} : { nextPageToken: encodeToken(last) }) };
    }
    if (cut < 0) {
      items.push(object);
      last = { after: name };
      continue;
    }
    const prefix = name.slice(0, cut + q.delimiter.length);
    prefixes.push(prefix);
    if (q.includeTrailingDelimiter && prefix === name) items.push(object);
    skip = prefix;
    last = { after: name, skip: prefix };
  }
  return { items, prefixes };
}
