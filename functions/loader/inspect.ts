// Reads an object the way the load job will, before it is queued: one bad file found here
// costs nothing, while one found by BigQuery fails the whole batch's job (a job is atomic,
// names one bad source per failure, and failed jobs count against the table's quota).

import { createHash } from "node:crypto";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import type { File } from "@google-cloud/storage";
import { checkRecordValue } from "../../lib/record/codec.ts";

export type Inspection =
  | { ok: true; sha256: string; records: number; rawBytes: number }
  | { ok: false; sha256: string | null; reason: string };

export interface InspectExpectations {
  sha256?: string;
  records?: number;
  namespace: string;
  batchId?: string;
}

const NEWLINE = 0x0a;

/** Streams the object's body (that exact generation), hashing, gunzipping and checking each line. */
export async function inspectObject(file: File, expect: InspectExpectations): Promise<Inspection> {
  const hash = createHash("sha256");
  let records = 0;
  let rawBytes = 0;
  let problem: string | null = null;
  let carry: Buffer | null = null;
  const checkLine = (line: Buffer) => {
    if (problem !== null) return;
    records++;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line.toString("utf8"));
    } catch (error) {
      problem = `line ${records}: not JSON: ${(error as Error).message}`;
      return;
    }
    const reason = checkRecordValue(parsed);
    const record = parsed as { namespace?: unknown; batch_id?: unknown };
    if (reason !== null) problem = `line ${records}: ${reason}`;
    else if (record.namespace !== expect.namespace) {
      problem = `line ${records}: namespace ${JSON.stringify(record.namespace)} differs from the object key's ${expect.namespace}`;
    } else if (expect.batchId !== undefined && record.batch_id !== expect.batchId) {
      problem = `line ${records}: batch_id ${JSON.stringify(record.batch_id)} differs from the object's ${expect.batchId}`;
    }
  };

  const lines = async function* (source: AsyncIterable<Buffer>) {
    for await (const chunk of source) {
      rawBytes += chunk.length;
      let start = 0;
      let nl = chunk.indexOf(NEWLINE, start);
      while (nl !== -1) {
        const piece: Buffer =
          carry === null ? chunk.subarray(start, nl) : Buffer.concat([carry, chunk.subarray(start, nl)]);
        carry = null;
        checkLine(piece);
        start = nl + 1;
        nl = chunk.indexOf(NEWLINE, start);
      }
      if (start < chunk.length) {
        const rest = chunk.subarray(start);
        carry = carry === null ? Buffer.from(rest) : Buffer.concat([carry, rest]);
      }
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
    if (!gzipProblem) throw error;
    return {
      ok: false,
      // The read stopped at the bad bytes; hash the whole body so a duplicate event for
      // this same bad object is recognised instead of quarantined again.
      sha256: await sha256Of(file),
      reason: `not a valid gzip stream: ${(error as Error).message}`,
    };
  }
  const sha256 = hash.digest("hex");
  if (carry !== null && (carry as Buffer).length > 0) {
    return { ok: false, sha256, reason: `last line is not terminated by a newline (line ${records + 1})` };
  }
  if (expect.sha256 !== undefined && expect.sha256 !== sha256) {
    return {
      ok: false,
      sha256,
      reason: `body SHA-256 ${sha256} differs from the logarchive-sha256 metadata ${expect.sha256}`,
    };
  }
  if (problem !== null) return { ok: false, sha256, reason: problem };
  if (records === 0) return { ok: false, sha256, reason: "the object holds no records" };
  if (expect.records !== undefined && expect.records !== records) {
    return {
      ok: false,
      sha256,
      reason: `${records} lines, but the logarchive-records metadata says ${expect.records}`,
    };
  }
  return { ok: true, sha256, records, rawBytes };
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
