// Reads an object the way the load job will, before it is queued: one bad file found here
// costs nothing, while one found by BigQuery fails the whole batch's job (a job is atomic,
// names one bad source per failure, and failed jobs count against the table's quota).
//
// The check refuses whatever a strict load refuses, so the two agree: a line that is not
// UTF-8 (JSON.parse would quietly read U+FFFD), a field given twice (JSON.parse keeps the
// last one), and a line longer than the shipper ever writes, which is refused as soon as
// its pending part crosses the bound. Work is linear in the bytes read: each byte of a line
// that spans chunks is copied once, and the first bad line stops the inflating.

import { isUtf8 } from "node:buffer";
import { createHash } from "node:crypto";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import type { File } from "@google-cloud/storage";
import { checkRecordValue } from "../../lib/record/codec.ts";
import { MAX_RECORD_LINE_BYTES } from "../../lib/record/limits.ts";

/**
 * `rawBytes`: inflated bytes read before the verdict (all of them when the object is good);
 * `namespaces`: the distinct namespaces of its records, sorted.
 */
export type Inspection =
  | { ok: true; sha256: string; records: number; rawBytes: number; namespaces: string[] }
  | { ok: false; sha256: string | null; reason: string; rawBytes: number };

export interface InspectExpectations {
  sha256?: string;
  records?: number;
  /**
   * The namespace every record must have (a per-namespace object: its key's), or for a
   * stream object, which holds several, a check of each record's namespace that returns
   * why it may not be in the object (null when it may). Called once per distinct namespace.
   */
  namespace: string | ((namespace: string) => string | null);
  batchId?: string;
}

const NEWLINE = 0x0a;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

/**
 * Cuts a byte stream into lines of at most `maxLineBytes`. A line inside one chunk is handed
 * out as a view; one that spans chunks is gathered as views and copied once, at its newline.
 */
export class LineSplitter {
  readonly maxLineBytes: number;
  /** Bytes copied to join lines that span chunks: at most the bytes pushed. */
  copiedBytes = 0;
  #pieces: Buffer[] = [];
  #pendingBytes = 0;
  #lines = 0;

  constructor(maxLineBytes: number) {
    this.maxLineBytes = maxLineBytes;
  }

  /** Bytes of the line not yet terminated by a newline. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /**
   * Hands each complete line of `chunk` to `onLine`, which must not keep the view. Returns
   * null, or why the stream is refused (a line past the bound); then nothing more is read.
   * The chunk must not be changed while a part of it is pending.
   */
  push(chunk: Buffer, onLine: (line: Buffer) => void): string | null {
    let start = 0;
    let nl = chunk.indexOf(NEWLINE);
    while (nl !== -1) {
      if (this.#pendingBytes + nl - start > this.maxLineBytes) return this.#tooLong();
      this.#lines++;
      if (this.#pieces.length === 0) onLine(chunk.subarray(start, nl));
      else {
        this.#pieces.push(chunk.subarray(start, nl));
        const line = Buffer.concat(this.#pieces, this.#pendingBytes + nl - start);
        this.copiedBytes += line.length;
        this.#pieces = [];
        this.#pendingBytes = 0;
        onLine(line);
      }
      start = nl + 1;
      nl = chunk.indexOf(NEWLINE, start);
    }
    if (start < chunk.length) {
      this.#pendingBytes += chunk.length - start;
      if (this.#pendingBytes > this.maxLineBytes) return this.#tooLong();
      this.#pieces.push(chunk.subarray(start));
    }
    return null;
  }

  #tooLong(): string {
    return `line ${this.#lines + 1} is longer than ${this.maxLineBytes} bytes, more than the shipper ever writes`;
  }
}

/** Strings longer than this are scanned with indexOf, shorter ones byte by byte. */
const SHORT_STRING_BYTES = 64;

/** Index just past the JSON string whose opening quote is at `at`, in syntactically valid JSON. */
function stringEnd(b: Buffer, at: number): number {
  // Most strings of a record are short, and for them a native indexOf call costs more than
  // a byte loop; a message can be megabytes, where indexOf is far faster.
  let i = at + 1;
  const short = Math.min(b.length, i + SHORT_STRING_BYTES);
  while (i < short) {
    const c = b[i]!;
    if (c === QUOTE) return i + 1;
    i += c === BACKSLASH ? 2 : 1;
  }
  let quote = b.indexOf(QUOTE, i);
  while (quote !== -1) {
    // A quote ends the string unless an odd run of backslashes escapes it. Each run is
    // looked at for the one quote after it, so the scan stays linear. (The run cannot
    // reach back past the byte loop's end: an escape it skipped is in the count.)
    let k = quote - 1;
    while (k >= i && b[k] === BACKSLASH) k--;
    if ((quote - 1 - k) % 2 === 0) return quote + 1;
    quote = b.indexOf(QUOTE, quote + 1);
  }
  return b.length;
}

function skipSpace(b: Buffer, at: number): number {
  let i = at;
  while (b[i] === 0x20 || b[i] === 0x09 || b[i] === 0x0a || b[i] === 0x0d) i++;
  return i;
}

/** Index just past the JSON value that starts at `at`, in syntactically valid JSON. */
function valueEnd(b: Buffer, at: number): number {
  const first = b[at];
  if (first === QUOTE) return stringEnd(b, at);
  let i = at;
  if (first === OPEN_BRACE || first === OPEN_BRACKET) {
    let depth = 0;
    while (i < b.length) {
      const c = b[i];
      if (c === QUOTE) {
        i = stringEnd(b, i);
        continue;
      }
      if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
      else if ((c === CLOSE_BRACE || c === CLOSE_BRACKET) && --depth === 0) return i + 1;
      i++;
    }
    return i;
  }
  while (i < b.length && b[i] !== COMMA && b[i] !== CLOSE_BRACE && b[i] !== CLOSE_BRACKET && b[i]! > 0x20)
    i++;
  return i;
}

/**
 * Walks the members of the top-level object of `line`, which must be valid JSON (JSON.parse
 * accepted it) with an object at the top, and returns how many there are; with `names`, it
 * stops at the first name seen twice and returns -1.
 */
function walkMembers(line: Buffer, names?: { seen: Set<string>; twice: string | null }): number {
  let members = 0;
  let i = skipSpace(line, 0) + 1;
  for (;;) {
    i = skipSpace(line, i);
    if (line[i] !== QUOTE) return members;
    const end = stringEnd(line, i);
    members++;
    if (names !== undefined) {
      const raw = line.toString("utf8", i + 1, end - 1);
      const name = raw.includes("\\") ? (JSON.parse(`"${raw}"`) as string) : raw;
      if (names.seen.has(name)) {
        names.twice = name;
        return -1;
      }
      names.seen.add(name);
    }
    i = skipSpace(line, end);
    if (line[i] !== COLON) return members;
    i = skipSpace(line, valueEnd(line, skipSpace(line, i + 1)));
    if (line[i] !== COMMA) return members;
    i++;
  }
}

/**
 * The first member name given twice in the top-level object of `line` (valid JSON with an
 * object at the top), or null. `fields` is how many the parsed object has, when known:
 * as many members as fields means no name repeats, and no name is decoded.
 */
export function duplicateField(line: Buffer, fields?: number): string | null {
  if (fields !== undefined && walkMembers(line) === fields) return null;
  const names = { seen: new Set<string>(), twice: null as string | null };
  walkMembers(line, names);
  return names.twice;
}

/** The record in `line`, or why a strict warehouse load refuses the line. */
function readRecordLine(line: Buffer): Record<string, unknown> | string {
  if (!isUtf8(line)) return "not valid UTF-8";
  let parsed: unknown;
  try {
    parsed = JSON.parse(line.toString("utf8"));
  } catch (error) {
    return `not JSON: ${(error as Error).message}`;
  }
  const problem = checkRecordValue(parsed);
  if (problem !== null) return problem;
  const record = parsed as Record<string, unknown>;
  let fields = 0;
  for (const _ in record) fields++;
  const twice = duplicateField(line, fields);
  if (twice !== null) return `duplicate field ${twice}`;
  return record;
}

/** Checks one record line's bytes the way a strict warehouse load does; null when it loads. */
export function checkRecordBytes(line: Buffer): string | null {
  const result = readRecordLine(line);
  return typeof result === "string" ? result : null;
}

/** Stops the read at the first bad line; the whole body is then hashed by a second read. */
class LineRefused extends Error {}

/** Streams the object's body (that exact generation), hashing, gunzipping and checking each line. */
export async function inspectObject(file: File, expect: InspectExpectations): Promise<Inspection> {
  const hash = createHash("sha256");
  let records = 0;
  let rawBytes = 0;
  let problem: string | null = null;
  const splitter = new LineSplitter(MAX_RECORD_LINE_BYTES);
  // Namespace → why it may not be here (null: it may), checked once per namespace.
  const verdicts = new Map<string, string | null>();
  const namespaceProblem = (namespace: string): string | null => {
    let verdict = verdicts.get(namespace);
    if (verdict === undefined) {
      const check = expect.namespace;
      verdict =
        typeof check === "string"
          ? namespace === check
            ? null
            : `differs from the object key's ${check}`
          : check(namespace);
      verdicts.set(namespace, verdict);
    }
    return verdict;
  };
  const checkLine = (line: Buffer) => {
    if (problem !== null) return;
    records++;
    const record = readRecordLine(line);
    if (typeof record === "string") {
      problem = `line ${records}: ${record}`;
      return;
    }
    const wrongNamespace = namespaceProblem(record.namespace as string);
    if (wrongNamespace !== null) {
      problem = `line ${records}: namespace ${JSON.stringify(record.namespace)} ${wrongNamespace}`;
    } else if (expect.batchId !== undefined && record.batch_id !== expect.batchId) {
      problem = `line ${records}: batch_id ${JSON.stringify(record.batch_id)} differs from the object's ${expect.batchId}`;
    }
  };

  const lines = async function* (source: AsyncIterable<Buffer>) {
    for await (const chunk of source) {
      rawBytes += chunk.length;
      const refused = splitter.push(chunk, checkLine);
      if (refused !== null) problem ??= refused;
      if (problem !== null) throw new LineRefused(problem);
    }
    yield Buffer.alloc(0);
  };

  const hashing = async function* (source: AsyncIterable<Buffer>) {
    for await (const chunk of source) {
      hash.update(chunk);
      yield chunk;
    }
  };

  try {
    await pipeline(
      file.createReadStream({ validation: false, decompress: false }),
      hashing,
      createGunzip(),
      lines,
      async (s) => {
        for await (const _ of s) {
          // drain
        }
      },
    );
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const gzipProblem = typeof code === "string" && code.startsWith("Z_");
    // Only the bytes themselves make an object bad. A 404, a reset connection or a 5xx is
    // the read failing: thrown, so the event is retried instead of a good object set aside.
    if (!gzipProblem && !(error instanceof LineRefused)) throw error;
    // The read stopped at the bad bytes; hash the whole body so a duplicate event for
    // this same bad object is recognised instead of quarantined again.
    const sha256 = await sha256Of(file);
    if (expect.sha256 !== undefined && sha256 !== null && expect.sha256 !== sha256) {
      return { ok: false, sha256, reason: shaMismatch(sha256, expect.sha256), rawBytes };
    }
    const reason =
      error instanceof LineRefused ? error.message : `not a valid gzip stream: ${(error as Error).message}`;
    return { ok: false, sha256, reason, rawBytes };
  }
  const sha256 = hash.digest("hex");
  if (splitter.pendingBytes > 0) {
    return {
      ok: false,
      sha256,
      reason: `last line is not terminated by a newline (line ${records + 1})`,
      rawBytes,
    };
  }
  if (expect.sha256 !== undefined && expect.sha256 !== sha256) {
    return { ok: false, sha256, reason: shaMismatch(sha256, expect.sha256), rawBytes };
  }
  if (records === 0) return { ok: false, sha256, reason: "the object holds no records", rawBytes };
  if (expect.records !== undefined && expect.records !== records) {
    return {
      ok: false,
      sha256,
      reason: `${records} lines, but the logarchive-records metadata says ${expect.records}`,
      rawBytes,
    };
  }
  return { ok: true, sha256, records, rawBytes, namespaces: [...verdicts.keys()].sort() };
}

function shaMismatch(sha256: string, expected: string): string {
  return `body SHA-256 ${sha256} differs from the logarchive-sha256 metadata ${expected}`;
}

/** SHA-256 of the stored bytes, or null if they cannot be read. */
export async function sha256Of(file: File): Promise<string | null> {
  try {
    const hash = createHash("sha256");
    for await (const chunk of file.createReadStream({ validation: false, decompress: false }))
      hash.update(chunk as Buffer);
    return hash.digest("hex");
  } catch {
    return null;
  }
}
