// The archive engine over compacted hours (docs/design/compaction.md#readers-no-line-twice-none-missed),
// against a local S3 holding data the compactor itself made (compactNamespaceHour): an hour
// with committed manifests (generation 0 of hundreds of members in one multi-member gzip
// part, and a supplement) is read from its parts only, although its originals are still
// stored (a manifest names every one; queries/archive-late.test.ts has a late batch no
// manifest names); an hour without a manifest from its originals only, even with a part
// beside it that no manifest names; every line once, counted against the manifests' totals.records; through
// S3 and from a downloaded folder; and a part that is not what its manifest says, or a missing
// generation, is an error, not a silent miscount.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, truncate, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { GetObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { archiveReadNote } from "../cli/commands/query.ts";
import { compactNamespaceHour } from "../lib/compaction/compact.ts";
import { formatCompactedPartKey } from "../lib/keys/layout.ts";
import type { CompactionManifest } from "../lib/object/compaction-manifest.ts";
import { listObjectPages } from "../lib/retrieval/find.ts";
import { putTestObject, type TestObject, testObject } from "../lib/retrieval/test_support.ts";
import { type LocalS3, localS3Client, startLocalS3 } from "../local/s3.ts";
import { type S3ArchiveFront, startS3ArchiveFront } from "../local/s3-archive/server.ts";
import { ArchiveReadError, type ArchiveSource, planArchiveHour, runArchiveQuery } from "./archive-runner.ts";
import { type PackQuery, parseQuery, resolveParams } from "./pack.ts";

const BUCKET = "compacted";
const EPOCH = "0a0b0c0d";
const DT = "2026-03-03";
/** After hour 10 closed plus the compactor's settle delay. */
const AFTER_SETTLE = () => new Date("2026-03-03T13:00:00Z");

/** A batch of `n` lines of `namespace` in `hour`; `size` gives incompressible messages of that many characters. */
function batch(
  namespace: string,
  hour: string,
  node: string,
  seq: number,
  n: number,
  size?: number,
): TestObject {
  return testObject({
    namespace,
    node,
    epoch: EPOCH,
    seq,
    tier: seq % 2 === 0 ? "archive" : "analytics",
    lines: Array.from({ length: n }, (_, i) => ({
      at: `${DT}T${hour}:${String(i % 60).padStart(2, "0")}:00.${String(seq).padStart(9, "0")}Z`,
      message: size === undefined ? undefined : randomBytes(size).toString("base64").slice(0, size),
    })),
  });
}

// Hour 10 of payments: 320 small members from 8 nodes and 4 members of about 300 KiB of
// incompressible text, so the part is hundreds of gzip members and several of DuckDB's read
// buffers long, with member boundaries at arbitrary offsets.
const hour10 = [
  ...Array.from({ length: 320 }, (_, i) => batch("payments", "10", `node-${i % 8}`, 1000 + i, 1 + (i % 9))),
  ...Array.from({ length: 4 }, (_, i) => batch("payments", "10", `node-${i}`, 2000 + i, 300, 1000)),
];
/** Batches of hour 10 that arrive after generation 0 is committed: a supplement. */
const late10 = [batch("payments", "10", "node-9", 3000, 7), batch("payments", "10", "node-9", 3001, 3)];
const hour11 = Array.from({ length: 5 }, (_, i) => batch("payments", "11", `node-${i}`, 4000 + i, 4));
const web10 = [batch("web", "10", "node-1", 5000, 6), batch("web", "10", "node-2", 5001, 2)];
const lines = (objects: readonly TestObject[]) => objects.reduce((n, o) => n + o.lines.length, 0);

/** Lines per namespace and hour, and how many distinct (batch, seq) among them: equal when no line is read twice. */
const COUNT_SQL = `-- title: Lines per namespace-hour
-- answers: How many lines each namespace-hour has, and how many distinct ones.
-- param: namespaces STRING_LIST namespaces; example: payments
-- param: from TIMESTAMP start, inclusive, UTC; example: 2026-03-03
-- param: to TIMESTAMP end, exclusive, UTC; example: 2026-03-04
-- cost: Scans everything it reads.
SELECT namespace, strftime("timestamp", '%H') AS hour, count(*)::INTEGER AS n,
  count(DISTINCT batch_id || '/' || seq)::INTEGER AS distinct_lines
FROM container_logs
WHERE list_contains(string_split($namespaces, ','), namespace)
  AND "timestamp" >= $from::TIMESTAMP AND "timestamp" < $to::TIMESTAMP
GROUP BY ALL
ORDER BY ALL;
`;

describe("--engine archive over compacted hours", () => {
  let dir: string;
  let local: LocalS3;
  let front: S3ArchiveFront;
  let s3: S3Client;
  let s3Source: ArchiveSource;
  let dirSource: ArchiveSource;
  let count: PackQuery;
  const manifests: CompactionManifest[] = [];
  const values = () =>
    resolveParams(count, { namespaces: "payments,web", from: `${DT} 10:00`, to: `${DT} 12:00` });

  async function bytesOf(key: string): Promise<Buffer> {
    const response = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    return Buffer.from(await response.Body!.transformToByteArray());
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logarchive-archive-compacted-"));
    local = await startLocalS3({ host: "127.0.0.1", port: 0, dataDir: join(dir, "s3"), buckets: [BUCKET] });
    // The archive front: a versioned bucket, as the archive is (the engine lists versions).
    front = await startS3ArchiveFront({
      host: "127.0.0.1",
      port: 0,
      upstream: local.endpoint,
      region: "us-east-1",
      dataDir: join(dir, "front"),
      buckets: [{ name: BUCKET, versioning: true }],
    });
    s3 = localS3Client(front.endpoint, "us-east-1");
    s3Source = { kind: "s3", client: s3, bucket: BUCKET, prefix: "logs" };
    dirSource = { kind: "dir", root: join(dir, "slice") };
    count = parseQuery(COUNT_SQL, "count.sql", "duckdb");

    for (const o of [...hour10, ...hour11, ...web10]) await putTestObject(s3, BUCKET, o);
    const compact = () =>
      compactNamespaceHour({
        s3,
        bucket: BUCKET,
        prefix: "logs",
        namespace: "payments",
        dt: DT,
        hour: "10",
        now: AFTER_SETTLE,
        indexCheck: false,
      });
    const first = await compact();
    assert.equal(first.status, "committed", JSON.stringify(first));
    for (const o of late10) await putTestObject(s3, BUCKET, o);
    const supplement = await compact();
    assert.equal(supplement.status, "committed", JSON.stringify(supplement));
    assert.equal(supplement.generation, 1);
    manifests.push(first.manifest!, supplement.manifest!);

    // Parts no manifest names, as a compactor that crashed before its commit leaves them: one
    // in the compacted hour (a copy of a committed part under another plan), one in hour 11,
    // which has no manifest. Neither may ever be read.
    const orphan = (hour: string, plan: string) =>
      formatCompactedPartKey({
        prefix: "logs",
        namespace: "payments",
        dt: DT,
        hour,
        generation: 0,
        part: 0,
        plan,
      });
    await s3.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: orphan("10", "00000000deadbeef"),
        Body: await bytesOf(first.manifest!.parts[0]!.key),
      }),
    );
    await s3.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: orphan("11", "00000000deadbeef"),
        Body: Buffer.concat(hour11.map((o) => o.body)),
      }),
    );

    // The folder source: the bucket's tree below the prefix, as `aws s3 sync` downloads it.
    for await (const page of listObjectPages(s3, BUCKET, "logs/")) {
      for (const o of page) {
        const path = join(dir, "slice", o.Key!.slice("logs/".length));
        await mkdir(dirname(path), { recursive: true });
        await writeFile(path, await bytesOf(o.Key!));
      }
    }
  });

  after(async () => {
    s3?.destroy();
    await front?.stop();
    await local?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("reads a compacted hour from its committed parts only (every generation), other hours from their originals, every line once", async () => {
    const [generation0, generation1] = manifests;
    // The compactor put the whole hour in one part of hundreds of gzip members.
    assert.equal(generation0!.parts.length, 1);
    assert.equal(generation0!.parts[0]!.members, hour10.length);
    assert.ok(generation0!.parts[0]!.bytes > 512 * 1024, `part of ${generation0!.parts[0]!.bytes} bytes`);
    const committedRecords = generation0!.totals.records + generation1!.totals.records;
    assert.equal(committedRecords, lines(hour10) + lines(late10));

    const expected = [
      { namespace: "payments", hour: "10", n: committedRecords, distinct_lines: committedRecords },
      { namespace: "payments", hour: "11", n: lines(hour11), distinct_lines: lines(hour11) },
      { namespace: "web", hour: "10", n: lines(web10), distinct_lines: lines(web10) },
    ];
    for (const source of [s3Source, dirSource]) {
      const result = await runArchiveQuery(count, values(), source);
      assert.deepEqual(result.rows, expected, source.kind);
      assert.equal(result.compactedHours, 1, source.kind);
      assert.equal(result.uncompactedBatches, 0, `${source.kind}: every original of hour 10 is named`);
      assert.equal(result.parts, 2, `${source.kind}: generation 0's part and the supplement's`);
      assert.equal(
        result.objects,
        hour11.length + web10.length,
        `${source.kind}: originals of uncompacted hours only`,
      );
      const partBytes = manifests.reduce((n, m) => n + m.totals.bytes, 0);
      const originalBytes = [...hour11, ...web10].reduce((n, o) => n + o.body.length, 0);
      assert.equal(result.bytes, partBytes + originalBytes, source.kind);
    }
    assert.equal(
      archiveReadNote({ objects: 7, parts: 2, compactedHours: 1, uncompactedBatches: 0, bytes: 10 }),
      "Read 7 archive objects and 2 compacted parts (1 compacted namespace-hour) (10 bytes gzip).",
    );
    assert.equal(
      archiveReadNote({ objects: 7, parts: 2, compactedHours: 1, uncompactedBatches: 1, bytes: 10 }),
      "Read 7 archive objects and 2 compacted parts (1 compacted namespace-hour; 1 of their batches not yet compacted, read from their originals) (10 bytes gzip).",
    );
    assert.equal(
      archiveReadNote({ objects: 1, parts: 0, compactedHours: 0, uncompactedBatches: 0, bytes: 10 }),
      "Read 1 archive object (10 bytes gzip).",
    );
  });

  it("plans each hour from its manifests: the parts named by them, in generation order, or with none the originals", async () => {
    const compacted = await planArchiveHour(s3Source, "logs", "payments", DT, "10");
    assert.equal(compacted.from, "compacted");
    assert.equal(compacted.supersededOriginals, hour10.length + late10.length, "stored, not read");
    assert.deepEqual(
      compacted.manifests.map((k) => k.slice(k.lastIndexOf("/") + 1)),
      ["manifest-0000.json", "manifest-0001.json"],
    );
    assert.deepEqual(
      compacted.files.map((f) => f.key),
      manifests.flatMap((m) => m.parts.map((p) => p.key)),
    );
    const fromFolder = await planArchiveHour(dirSource, "", "payments", DT, "10");
    assert.deepEqual(
      fromFolder.files.map((f) => f.key),
      compacted.files.map((f) => f.key.slice("logs/".length)),
    );
    const originals = await planArchiveHour(s3Source, "logs", "payments", DT, "11");
    assert.equal(originals.from, "originals");
    assert.deepEqual(originals.files.map((f) => f.key).sort(), hour11.map((o) => o.key).sort());
  });

  it("refuses a part that is not what its manifest says, and a missing generation, instead of miscounting", async () => {
    const part = manifests[1]!.parts[0]!;
    // In the folder: a short part (a download cut off).
    const local = join(dir, "slice", part.key.slice("logs/".length));
    await truncate(local, part.bytes - 1);
    await assert.rejects(
      runArchiveQuery(count, values(), dirSource),
      (e: Error) =>
        e instanceof ArchiveReadError && e.message.includes(`${part.bytes - 1} bytes stored, ${part.bytes}`),
    );
    // In the bucket: same length, other bytes.
    const body = await bytesOf(part.key);
    body[body.length - 9] = body[body.length - 9]! ^ 0xff;
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: part.key, Body: body }));
    await assert.rejects(
      runArchiveQuery(count, values(), s3Source),
      (e: Error) => e instanceof ArchiveReadError && e.message.includes(`${part.key}: SHA-256`),
    );
    // Generation 0's manifest gone: generation 1 alone would drop generation 0's lines.
    await unlink(join(dir, "slice", "compacted/namespace=payments/dt=2026-03-03/hour=10/manifest-0000.json"));
    await assert.rejects(
      runArchiveQuery(count, values(), dirSource),
      (e: Error) => e instanceof ArchiveReadError && /generation 0 is missing/.test(e.message),
    );
    // The orphan parts never appear: a query of hour 11 alone reads its originals.
    const hour11Only = await runArchiveQuery(
      count,
      resolveParams(count, { namespaces: "payments", from: `${DT} 11:00`, to: `${DT} 12:00` }),
      dirSource,
    );
    assert.deepEqual(hour11Only.rows, [
      { namespace: "payments", hour: "11", n: lines(hour11), distinct_lines: lines(hour11) },
    ]);
  });
});
