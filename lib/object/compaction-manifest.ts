// The manifest of one compaction of a namespace-hour (issue 9; design: docs/design/compaction.md):
// which archive objects ("members") were concatenated, byte for byte, into which compacted
// parts, at which offsets, with the SHA-256 and record count each had in its metadata, and
// each part's size and SHA-256. Written by lib/compaction/ after every part is stored, under
// formatCompactionManifestKey (lib/keys/layout.ts): its existence commits the generation.
//
// The body is a function of the facts only (no time, no tool version: those go in the object
// metadata), so a compactor re-run after a crash writes the same bytes, and a conditional PUT
// that finds the manifest already there can tell "this run's twin committed" from a conflict
// by comparing bytes.

import { createHash } from "node:crypto";
import { z } from "zod";
import {
  type CompactedHour,
  formatCompactedPartKey,
  parseCompactedKey,
  parseObjectKey,
  TIERS,
  type Tier,
} from "../keys/layout.ts";
import { parseRfc3339 } from "../record/timestamp.ts";

export const COMPACTION_MANIFEST_FORMAT = "logarchive-compaction-manifest";
export const COMPACTION_MANIFEST_VERSION = 1;

/** S3 user metadata `logarchive-kind` of a manifest and of a compacted part. */
export const COMPACTION_MANIFEST_KIND = "compaction-manifest";
export const COMPACTED_PART_KIND = "compacted-part";

/** One archive object copied into a part. */
export interface CompactionMember {
  /** The original's key (lib/keys/layout.ts formatObjectKey). */
  key: string;
  /** The version copied; null on a bucket without versioning (S3's "null"). */
  versionId: string | null;
  tier: Tier;
  node: string;
  epoch: string;
  seq: number;
  /** Index of the part holding it, and where: bytes [offset, offset + length). */
  part: number;
  offset: number;
  length: number;
  /** Lowercase hex SHA-256 of the original's bytes, as its metadata gives it and the compactor verified. */
  sha256: string;
  /** NDJSON lines in it, from its metadata. */
  records: number;
  /** Earliest and latest record time, RFC 3339, from its metadata. */
  firstTimestamp: string;
  lastTimestamp: string;
}

/** One compacted object: a multi-member gzip file (RFC 1952 §2.2). */
export interface CompactedPart {
  part: number;
  key: string;
  bytes: number;
  /** Lowercase hex SHA-256 of the whole part. */
  sha256: string;
  members: number;
  records: number;
}

export interface CompactionManifest {
  format: typeof COMPACTION_MANIFEST_FORMAT;
  version: typeof COMPACTION_MANIFEST_VERSION;
  namespace: string;
  /** Start of the UTC hour of every record, RFC 3339 (YYYY-MM-DDTHH:00:00Z). */
  hour: string;
  /** 0 for the hour's first compaction; each supplement (batches that arrived later) one more. */
  generation: number;
  /** The previous generation's manifest (its SHA-256), so supplements chain; null for generation 0. */
  previous: { generation: number; sha256: string } | null;
  parts: CompactedPart[];
  /** In key order, which is also (part, offset) order: parts are filled in key order. */
  members: CompactionMember[];
  totals: { parts: number; members: number; bytes: number; records: number };
}

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, "expected 64 lowercase hex digits");
const count = z.number().int().nonnegative();
const timestamp = z.string().refine((s) => parseRfc3339(s) !== null, "expected an RFC 3339 timestamp");
const hourStart = z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:00:00Z$/, "expected YYYY-MM-DDTHH:00:00Z");

const memberSchema = z.strictObject({
  key: z.string().min(1),
  versionId: z.string().min(1).nullable(),
  tier: z.enum(TIERS),
  node: z.string().min(1),
  epoch: z.string().regex(/^[0-9a-f]{8,32}$/, "expected 8-32 hex digits"),
  seq: count,
  part: count,
  offset: count,
  length: z.number().int().positive(),
  sha256: sha256Hex,
  records: count,
  firstTimestamp: timestamp,
  lastTimestamp: timestamp,
});

const partSchema = z.strictObject({
  part: count,
  key: z.string().min(1),
  bytes: z.number().int().positive(),
  sha256: sha256Hex,
  members: z.number().int().positive(),
  records: count,
});

const manifestSchema = z.strictObject({
  format: z.literal(COMPACTION_MANIFEST_FORMAT),
  version: z.literal(COMPACTION_MANIFEST_VERSION),
  namespace: z.string().min(1),
  hour: hourStart,
  generation: count,
  previous: z.strictObject({ generation: count, sha256: sha256Hex }).nullable(),
  parts: z.array(partSchema).min(1),
  members: z.array(memberSchema).min(1),
  totals: z.strictObject({ parts: count, members: count, bytes: count, records: count }),
});

export class CompactionManifestError extends Error {
  override name = "CompactionManifestError";
}

/** What a part's plan digest covers: which bytes go into it, in order. */
export type PlannedMember = Pick<CompactionMember, "key" | "versionId" | "sha256" | "length">;

/**
 * The first 16 hex digits of the SHA-256 of a part's member plan (keys, versions, checksums,
 * lengths, in order): the `<plan>` of its key. Two runs that put the same bytes in a part
 * name it alike; any other plan gets another key, so it never overwrites a committed part.
 */
export function partPlanDigest(members: readonly PlannedMember[]): string {
  const hash = createHash("sha256");
  for (const m of members) hash.update(`${JSON.stringify([m.key, m.versionId, m.sha256, m.length])}\n`);
  return hash.digest("hex").slice(0, 16);
}

/** `YYYY-MM-DDTHH:00:00Z` of a compacted hour's dt and hour. */
export function manifestHour(hour: Pick<CompactedHour, "dt" | "hour">): string {
  return `${hour.dt}T${hour.hour}:00:00Z`;
}

/**
 * The manifest's body as stored: one line of JSON, fields in this order, members in key
 * order, so the same facts always make the same bytes. Checks it first (as parse does).
 */
export function encodeCompactionManifest(manifest: CompactionManifest): Buffer {
  const ordered: CompactionManifest = {
    format: COMPACTION_MANIFEST_FORMAT,
    version: COMPACTION_MANIFEST_VERSION,
    namespace: manifest.namespace,
    hour: manifest.hour,
    generation: manifest.generation,
    previous:
      manifest.previous === null
        ? null
        : { generation: manifest.previous.generation, sha256: manifest.previous.sha256 },
    parts: [...manifest.parts]
      .sort((a, b) => a.part - b.part)
      .map((p) => ({
        part: p.part,
        key: p.key,
        bytes: p.bytes,
        sha256: p.sha256,
        members: p.members,
        records: p.records,
      })),
    members: [...manifest.members]
      .sort((a, b) => compareKeys(a.key, b.key))
      .map((m) => ({
        key: m.key,
        versionId: m.versionId,
        tier: m.tier,
        node: m.node,
        epoch: m.epoch,
        seq: m.seq,
        part: m.part,
        offset: m.offset,
        length: m.length,
        sha256: m.sha256,
        records: m.records,
        firstTimestamp: m.firstTimestamp,
        lastTimestamp: m.lastTimestamp,
      })),
    totals: {
      parts: manifest.totals.parts,
      members: manifest.totals.members,
      bytes: manifest.totals.bytes,
      records: manifest.totals.records,
    },
  };
  checkConsistent(ordered);
  return Buffer.from(`${JSON.stringify(ordered)}\n`, "utf8");
}

/** Reads and checks a manifest body: schema, then that it says one consistent thing. One error, naming the field. */
export function parseCompactionManifest(body: Buffer | string): CompactionManifest {
  let value: unknown;
  try {
    value = JSON.parse(body.toString());
  } catch (error) {
    throw new CompactionManifestError(`compaction manifest is not JSON: ${(error as Error).message}`);
  }
  const result = manifestSchema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const field = issue.path.length === 0 ? "(the whole manifest)" : issue.path.join(".");
    throw new CompactionManifestError(`compaction manifest field ${field} is invalid (${issue.message})`);
  }
  const manifest = result.data as CompactionManifest;
  checkConsistent(manifest);
  return manifest;
}

/** Key order as S3 lists keys: by UTF-8 bytes, which for these ASCII keys is code-unit order. */
export function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * What a reader relies on: members in key order, each once, each an archive object of this
 * namespace-hour whose key says its node, epoch, sequence and tier; every part's members
 * back to back from offset 0 filling exactly its bytes, in part order; every part's key
 * this hour's and generation's, with the plan digest of its members; totals that add up.
 */
function checkConsistent(m: CompactionManifest): void {
  const fail = (why: string) =>
    new CompactionManifestError(
      `compaction manifest ${m.namespace} ${m.hour} generation ${m.generation}: ${why}`,
    );
  if (m.previous === null ? m.generation !== 0 : m.previous.generation !== m.generation - 1) {
    throw fail("previous must name generation - 1 (and be null only for generation 0)");
  }
  const dt = m.hour.slice(0, 10);
  const hour = m.hour.slice(11, 13);
  const byPart = m.parts.map(() => ({ next: 0, members: [] as PlannedMember[], records: 0 }));
  let previousKey: string | undefined;
  let previousPart = 0;
  m.members.forEach((member, i) => {
    const where = `member ${i} (${member.key})`;
    if (previousKey !== undefined && compareKeys(previousKey, member.key) >= 0) {
      throw fail(`${where} is not after ${previousKey}: members are in key order, each once`);
    }
    previousKey = member.key;
    let key: ReturnType<typeof parseObjectKey>;
    try {
      key = parseObjectKey(member.key);
    } catch (error) {
      throw fail(`${where}: ${(error as Error).message}`);
    }
    if (key.namespace !== m.namespace || key.dt !== dt || key.hour !== hour) {
      throw fail(`${where} is not an object of namespace ${m.namespace} in hour ${m.hour}`);
    }
    if (
      key.node !== member.node ||
      key.epoch !== member.epoch ||
      key.seq !== member.seq ||
      key.tier !== member.tier
    ) {
      throw fail(`${where}: node, epoch, seq or tier disagrees with its key`);
    }
    const part = byPart[member.part];
    if (part === undefined) throw fail(`${where} names part ${member.part}, of ${m.parts.length}`);
    if (member.part < previousPart)
      throw fail(
        `${where} is in part ${member.part} after part ${previousPart}: parts are filled in key order`,
      );
    previousPart = member.part;
    if (member.offset !== part.next) {
      throw fail(
        `${where} starts at ${member.offset} in part ${member.part}, not right after the member before (${part.next})`,
      );
    }
    part.next += member.length;
    part.records += member.records;
    part.members.push(member);
  });
  let bytes = 0;
  let records = 0;
  m.parts.forEach((part, i) => {
    const where = `part ${i} (${part.key})`;
    if (part.part !== i) throw fail(`${where} has index ${part.part}: parts are numbered 0, 1, … in order`);
    const filled = byPart[i]!;
    if (filled.members.length === 0) throw fail(`${where} has no member`);
    if (filled.next !== part.bytes)
      throw fail(`${where} is ${part.bytes} bytes but its members fill ${filled.next}`);
    if (filled.members.length !== part.members)
      throw fail(`${where} says ${part.members} members, not ${filled.members.length}`);
    if (filled.records !== part.records)
      throw fail(`${where} says ${part.records} records, its members ${filled.records}`);
    const expected = formatCompactedPartKey({
      prefix: partKeyPrefix(part.key),
      namespace: m.namespace,
      dt,
      hour,
      generation: m.generation,
      part: i,
      plan: partPlanDigest(filled.members),
    });
    if (part.key !== expected)
      throw fail(`${where}: expected key ${expected} for this hour, generation and member plan`);
    bytes += part.bytes;
    records += part.records;
  });
  const totals = { parts: m.parts.length, members: m.members.length, bytes, records };
  for (const field of ["parts", "members", "bytes", "records"] as const) {
    if (m.totals[field] !== totals[field])
      throw fail(`totals.${field} is ${m.totals[field]}, not ${totals[field]}`);
  }
}

/** The key prefix a part key was written under (the layout's prefix), or "" if it does not parse (the comparison then fails). */
function partKeyPrefix(key: string): string {
  try {
    return parseCompactedKey(key).prefix;
  } catch {
    return "";
  }
}

/** Lowercase hex SHA-256 of a manifest body: what the next generation's `previous` names. */
export function manifestSha256(body: Buffer): string {
  return createHash("sha256").update(body).digest("hex");
}
