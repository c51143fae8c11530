// `logarchive verify`: re-check a delivered retrieval bundle against its manifest, offline,
// with nothing but the bundle (docs/compliance.md#verify). A bundle is a directory, a
// `.tar.gz`, or a manifest file with its records file and `.sha256` beside it.
//
// What it recomputes: the manifest's SHA-256 (against `manifest.json.sha256`, and against a
// hash the recipient recorded when it was delivered, `--expect-sha256`), the records file's
// SHA-256 and line count (against the manifest), and that every record belongs there: in the
// manifest's namespace, range and filters, in time order, and from an object the manifest
// says was verified, as many lines per object as the manifest says were kept. It also checks
// that the manifest agrees with itself (totals, the verdict against its problems), so a
// hand-edited manifest whose `.sha256` was recomputed still fails unless every figure was
// edited consistently; against that, only a hash kept apart from the bundle protects.

import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { gunzipSync } from "node:zlib";
import { batchId, parseObjectKey } from "../keys/layout.ts";
import { compareInstants, type Instant, instantFromRecord, parseRfc3339 } from "../record/timestamp.ts";
import { isTarGz, MANIFEST_FILE, MANIFEST_FORMAT, MANIFEST_SHA_FILE, type Manifest } from "./bundle.ts";
import { HOLD_MANIFEST_FORMAT, type HoldManifest } from "./hold.ts";
import { type RecordFields, RecordMatcher } from "./query.ts";
import { TarFormatError, untarFiles } from "./tar.ts";

export interface VerifyCheck {
  name: string;
  ok: boolean;
  /** One line: what was compared, or what differs. */
  detail: string;
}

export interface VerifyReport {
  source: string;
  checks: VerifyCheck[];
  /** Every check passed: the bundle is what its manifest describes. */
  intact: boolean;
  /** SHA-256 of the manifest's bytes as read. */
  manifestSha256: string | null;
  /** What the manifest records: a retrieval bundle, or what `hold` changed. */
  kind: "retrieval" | "hold" | null;
  /** The manifest's own verdict, when it could be read (for a hold: every version in the asked state). */
  retrieval: { complete: boolean; problems: number; warnings: number } | null;
}

/** A path that is not there or is not a bundle, manifest or tar.gz: the caller's mistake. */
export class VerifyInputError extends Error {
  override name = "VerifyInputError";
}

interface BundleFiles {
  manifestName: string;
  manifest: Buffer | undefined;
  sha: Buffer | undefined;
  shaName: string;
  /** Reads a file the manifest names (the records file), or undefined when it is absent. */
  read(name: string): Promise<Buffer | undefined>;
}

async function readIfPresent(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/** The bundle's files, from a directory, a tar.gz, or a manifest file with its siblings. */
async function openBundle(path: string, checks: VerifyCheck[]): Promise<BundleFiles | undefined> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch {
    throw new VerifyInputError(`${path}: no such file or directory`);
  }
  if (info.isDirectory()) {
    return {
      manifestName: MANIFEST_FILE,
      manifest: await readIfPresent(join(path, MANIFEST_FILE)),
      shaName: MANIFEST_SHA_FILE,
      sha: await readIfPresent(join(path, MANIFEST_SHA_FILE)),
      read: (name) => readIfPresent(join(path, name)),
    };
  }
  if (!info.isFile()) throw new VerifyInputError(`${path}: not a file or directory`);
  if (isTarGz(path)) {
    let entries: { name: string; data: Buffer }[];
    try {
      entries = untarFiles(gunzipSync(await readFile(path)));
    } catch (error) {
      const why = error instanceof TarFormatError ? error.message : `not gzip (${(error as Error).message})`;
      checks.push({ name: "archive", ok: false, detail: `${basename(path)} cannot be read: ${why}` });
      return undefined;
    }
    const byName = new Map(entries.map((e) => [e.name.replace(/^\.\//, ""), e.data]));
    return {
      manifestName: MANIFEST_FILE,
      manifest: byName.get(MANIFEST_FILE),
      shaName: MANIFEST_SHA_FILE,
      sha: byName.get(MANIFEST_SHA_FILE),
      read: async (name) => byName.get(name),
    };
  }
  // A manifest file: its checksum file and the records file are beside it.
  const dir = dirname(path);
  return {
    manifestName: basename(path),
    manifest: await readFile(path),
    shaName: `${basename(path)}.sha256`,
    sha: await readIfPresent(`${path}.sha256`),
    read: (name) => readIfPresent(join(dir, name)),
  };
}

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

function checkManifestHash(
  files: BundleFiles,
  actual: string,
  expected: string | undefined,
  checks: VerifyCheck[],
): void {
  if (files.sha === undefined) {
    checks.push({ name: "manifest checksum", ok: false, detail: `${files.shaName} is missing` });
  } else {
    // sha256sum -c format: "<64 hex>  manifest.json". The name inside is the one retrieve wrote.
    const match = /^([0-9a-f]{64}) [ *](\S.*)\n?$/.exec(files.sha.toString("utf8"));
    if (match === null) {
      checks.push({
        name: "manifest checksum",
        ok: false,
        detail: `${files.shaName} is not "<sha256>  ${MANIFEST_FILE}"`,
      });
    } else if (match[1] !== actual) {
      checks.push({
        name: "manifest checksum",
        ok: false,
        detail: `${files.manifestName} has SHA-256 ${actual}, ${files.shaName} says ${match[1]}: the manifest was changed`,
      });
    } else {
      checks.push({ name: "manifest checksum", ok: true, detail: `${files.manifestName} SHA-256 ${actual}` });
    }
  }
  if (expected !== undefined) {
    checks.push(
      expected === actual
        ? { name: "expected manifest hash", ok: true, detail: `equals the --expect-sha256 given` }
        : {
            name: "expected manifest hash",
            ok: false,
            detail: `${files.manifestName} has SHA-256 ${actual}, --expect-sha256 says ${expected}`,
          },
    );
  }
}

/** The manifest's structure, as far as verify reads it; a missing part is named. */
function manifestShapeProblem(m: unknown): string | undefined {
  if (m === null || typeof m !== "object" || Array.isArray(m)) return "is not a JSON object";
  const o = m as Record<string, unknown>;
  if (o.format !== MANIFEST_FORMAT)
    return `has format ${JSON.stringify(o.format)}, expected ${MANIFEST_FORMAT}`;
  for (const field of ["query", "records", "totals", "verdict"]) {
    if (o[field] === null || typeof o[field] !== "object") return `has no ${field} object`;
  }
  if (!Array.isArray(o.objects)) return "has no objects list";
  const records = o.records as Record<string, unknown>;
  // A plain file name beside the manifest: never a path, never "." or "..".
  if (typeof records.file !== "string" || !/^[\w-][\w.-]*$/.test(records.file))
    return "has no plain records.file name";
  if (typeof records.sha256 !== "string" || typeof records.lines !== "number")
    return "has no records.sha256 or records.lines";
  const query = o.query as Record<string, unknown>;
  if (typeof query.namespace !== "string" || typeof query.from !== "string" || typeof query.to !== "string")
    return "has no query.namespace, query.from or query.to";
  return undefined;
}

/** Totals and verdict against the objects and problems listed beside them. */
function checkManifestConsistency(m: Manifest, checks: VerifyCheck[]): void {
  const differences: string[] = [];
  const read = m.objects.filter((o) => o.role === "records");
  const expect = (what: string, stated: unknown, counted: number) => {
    if (stated !== counted)
      differences.push(`${what} is ${String(stated)} but the objects add up to ${counted}`);
  };
  expect("totals.versions", m.totals.versions, m.objects.length);
  expect("totals.objectsRead", m.totals.objectsRead, read.length);
  expect(
    "totals.bytesRead",
    m.totals.bytesRead,
    read.reduce((sum, o) => sum + o.size, 0),
  );
  expect(
    "totals.recordsKept",
    m.totals.recordsKept,
    m.objects.reduce((sum, o) => sum + o.recordsKept, 0),
  );
  if (m.records.lines !== m.totals.recordsKept) {
    differences.push(`records.lines is ${m.records.lines} but totals.recordsKept is ${m.totals.recordsKept}`);
  }
  for (const o of m.objects) {
    if (o.checksum === "verified" && (o.sha256 === null || o.sha256 !== o.metadataSha256)) {
      differences.push(`${o.key} is marked verified but its sha256 and metadataSha256 differ`);
    }
    if (o.recordsKept > 0 && (o.role !== "records" || o.checksum !== "verified" || o.problems.length > 0)) {
      differences.push(`${o.key} (version ${o.versionId}) contributes records but was not verified clean`);
    }
    if (o.checksum === "mismatch" && !m.verdict.problems.some((p) => p.includes(o.key))) {
      differences.push(`${o.key} has a checksum mismatch that verdict.problems does not name`);
    }
  }
  // A node the continuity check (hour indexes or listing) found a gap, a replaced object or a
  // reused number in must leave the verdict incomplete.
  for (const node of m.continuity?.nodes ?? []) {
    if (m.verdict.complete && node.verdict !== "continuous") {
      differences.push(
        `continuity says node ${node.node} (epoch ${node.epoch}) is ${node.verdict} but verdict.complete is true`,
      );
    }
  }
  if (m.verdict.complete && m.verdict.problems.length > 0) {
    differences.push(`verdict.complete is true with ${m.verdict.problems.length} problem(s) listed`);
  }
  checks.push(
    differences.length === 0
      ? { name: "manifest consistency", ok: true, detail: "totals and verdict agree with the objects listed" }
      : { name: "manifest consistency", ok: false, detail: differences.slice(0, 3).join("; ") },
  );
}

function parseInstant(text: string, field: string): Instant {
  const t = parseRfc3339(text);
  if (t === null) throw new Error(`query.${field} ${JSON.stringify(text)} is not an RFC 3339 time`);
  return t;
}

/** Every record in the manifest's range, namespace and filters, in time order, from a verified object. */
function checkRecords(m: Manifest, lines: string[], checks: VerifyCheck[]): void {
  const problems: string[] = [];
  const note = (p: string) => {
    if (problems.length < 3) problems.push(p);
  };
  const q = m.query as Record<string, unknown>;
  let matcher: RecordMatcher;
  try {
    matcher = new RecordMatcher({
      namespace: q.namespace as string,
      from: parseInstant(q.from as string, "from"),
      to: parseInstant(q.to as string, "to"),
      pods: Array.isArray(q.pods) ? (q.pods as string[]) : [],
      containers: Array.isArray(q.containers) ? (q.containers as string[]) : [],
      ...(typeof q.grep === "string" ? { grep: q.grep } : {}),
    });
  } catch (error) {
    checks.push({ name: "records match the query", ok: false, detail: (error as Error).message });
    return;
  }
  // Lines kept per batch, as the manifest states them for the versions whose records were read.
  const keptByBatch = new Map<string, { key: string; kept: number; seen: number }>();
  for (const o of m.objects) {
    if (o.role !== "records") continue;
    try {
      keptByBatch.set(batchId(parseObjectKey(o.key)), { key: o.key, kept: o.recordsKept, seen: 0 });
    } catch {
      note(`objects[] names ${o.key}, which is not an archive key`);
    }
  }
  let previous: Instant | undefined;
  lines.forEach((line, index) => {
    const where = `line ${index + 1}`;
    let record: RecordFields;
    try {
      record = JSON.parse(line) as RecordFields;
    } catch {
      note(`${where} is not JSON`);
      return;
    }
    let at: Instant | null;
    try {
      at = matcher.match(record);
    } catch (error) {
      note(`${where}: ${(error as Error).message}`);
      return;
    }
    if (at === null) {
      note(`${where} is outside the manifest's query (namespace, range or filters)`);
      at = instantFromRecord(record.timestamp, record.timestamp_nanos);
    }
    if (previous !== undefined && compareInstants(at, previous) < 0)
      note(`${where} is earlier than the line before it`);
    previous = at;
    const source = keptByBatch.get(record.batch_id);
    if (source === undefined)
      note(`${where} is of batch ${record.batch_id}, which no object in the manifest supplied`);
    else source.seen++;
  });
  for (const [, s] of keptByBatch) {
    if (s.seen !== s.kept)
      note(`${s.key}: the manifest says ${s.kept} line(s) kept, the records file has ${s.seen}`);
  }
  checks.push(
    problems.length === 0
      ? {
          name: "records match the query",
          ok: true,
          detail: `${lines.length} line(s), all in the query's namespace, range and filters, in time order, each from a verified object`,
        }
      : { name: "records match the query", ok: false, detail: problems.join("; ") },
  );
}

/**
 * A `hold` manifest (a bare FILE.json with FILE.json.sha256 beside it): its hash is checked as a
 * bundle's is; here, that each version's before, after and result agree with the hold asked
 * and with the totals.
 */
function checkHoldManifest(m: HoldManifest, checks: VerifyCheck[]): VerifyReport["retrieval"] {
  if (!Array.isArray(m.versions) || m.totals === null || typeof m.totals !== "object" || !m.request) {
    checks.push({
      name: "manifest format",
      ok: false,
      detail: "the hold manifest has no versions, totals or request",
    });
    return null;
  }
  checks.push({ name: "manifest format", ok: true, detail: HOLD_MANIFEST_FORMAT });
  const asked = m.request.legalHold;
  const differences: string[] = [];
  const count = (result: string) => m.versions.filter((v) => v.result === result).length;
  for (const [field, result] of [
    ["changed", "changed"],
    ["unchanged", "unchanged"],
    ["failed", "failed"],
  ] as const) {
    if (m.totals[field] !== count(result))
      differences.push(`totals.${field} is ${m.totals[field]} but ${count(result)} version(s) say ${result}`);
  }
  if (m.totals.versions !== m.versions.length)
    differences.push(`totals.versions is ${m.totals.versions} but ${m.versions.length} are listed`);
  for (const v of m.versions) {
    const inAskedState = v.after === asked || (asked === "OFF" && v.after === null);
    if (v.result === "changed" && (v.after !== asked || v.before === asked))
      differences.push(
        `${v.key} (version ${v.versionId}) is marked changed from ${v.before} to ${v.after}, the hold asked ${asked}`,
      );
    if (v.result === "unchanged" && (v.before !== v.after || !inAskedState))
      differences.push(
        `${v.key} (version ${v.versionId}) is marked unchanged from ${v.before} to ${v.after}, the hold asked ${asked}`,
      );
  }
  const complete = m.versions.length > 0 && count("failed") === 0;
  if (m.complete !== complete) differences.push(`complete is ${m.complete} but the versions say ${complete}`);
  checks.push(
    differences.length === 0
      ? {
          name: "manifest consistency",
          ok: true,
          detail: `${m.versions.length} version(s), legal hold ${asked}; totals agree`,
        }
      : { name: "manifest consistency", ok: false, detail: differences.slice(0, 3).join("; ") },
  );
  return { complete: m.complete === true, problems: count("failed"), warnings: 0 };
}

export async function verifyBundle(
  path: string,
  options: { expectSha256?: string } = {},
): Promise<VerifyReport> {
  const checks: VerifyCheck[] = [];
  let kind: VerifyReport["kind"] = null;
  const report = (manifestSha256: string | null, retrieval: VerifyReport["retrieval"]): VerifyReport => ({
    source: path,
    kind,
    checks,
    intact: checks.length > 0 && checks.every((c) => c.ok),
    manifestSha256,
    retrieval,
  });
  const files = await openBundle(path, checks);
  if (files === undefined) return report(null, null);
  if (files.manifest === undefined) {
    checks.push({ name: "manifest checksum", ok: false, detail: `${files.manifestName} is missing` });
    return report(null, null);
  }
  const manifestSha = sha256(files.manifest);
  checkManifestHash(files, manifestSha, options.expectSha256, checks);

  let parsed: unknown;
  try {
    parsed = JSON.parse(files.manifest.toString("utf8"));
  } catch (error) {
    checks.push({
      name: "manifest format",
      ok: false,
      detail: `${files.manifestName} is not JSON (${(error as Error).message})`,
    });
    return report(manifestSha, null);
  }
  if ((parsed as { format?: unknown } | null)?.format === HOLD_MANIFEST_FORMAT) {
    kind = "hold";
    return report(manifestSha, checkHoldManifest(parsed as HoldManifest, checks));
  }
  const shape = manifestShapeProblem(parsed);
  if (shape !== undefined) {
    checks.push({ name: "manifest format", ok: false, detail: `${files.manifestName} ${shape}` });
    return report(manifestSha, null);
  }
  const manifest = parsed as Manifest;
  kind = "retrieval";
  checks.push({ name: "manifest format", ok: true, detail: MANIFEST_FORMAT });
  const retrieval = {
    complete: manifest.verdict.complete === true,
    problems: Array.isArray(manifest.verdict.problems) ? manifest.verdict.problems.length : 0,
    warnings: Array.isArray(manifest.verdict.warnings) ? manifest.verdict.warnings.length : 0,
  };
  try {
    checkManifestConsistency(manifest, checks);
  } catch (error) {
    checks.push({
      name: "manifest consistency",
      ok: false,
      detail: `unreadable: ${(error as Error).message}`,
    });
  }

  const records = await files.read(manifest.records.file);
  if (records === undefined) {
    checks.push({ name: "records checksum", ok: false, detail: `${manifest.records.file} is missing` });
    return report(manifestSha, retrieval);
  }
  const recordsSha = sha256(records);
  if (recordsSha !== manifest.records.sha256) {
    checks.push({
      name: "records checksum",
      ok: false,
      detail: `${manifest.records.file} has SHA-256 ${recordsSha}, the manifest says ${manifest.records.sha256}: the records were changed`,
    });
  } else {
    checks.push({
      name: "records checksum",
      ok: true,
      detail: `${manifest.records.file} SHA-256 ${recordsSha}`,
    });
  }
  let text: string;
  try {
    text = gunzipSync(records).toString("utf8");
  } catch (error) {
    checks.push({
      name: "records readable",
      ok: false,
      detail: `${manifest.records.file} is not gzip (${(error as Error).message})`,
    });
    return report(manifestSha, retrieval);
  }
  const lines = text === "" ? [] : text.replace(/\n$/, "").split("\n");
  checks.push(
    lines.length === manifest.records.lines
      ? { name: "records readable", ok: true, detail: `${lines.length} line(s), as the manifest says` }
      : {
          name: "records readable",
          ok: false,
          detail: `${manifest.records.file} has ${lines.length} line(s), the manifest says ${manifest.records.lines}`,
        },
  );
  checkRecords(manifest, lines, checks);
  return report(manifestSha, retrieval);
}
