// The archive engine's per-batch rule (docs/queries.md#reads-and-compaction) against the local
// stack's versioned bucket with Object Lock and data the compactor itself committed
// (compactNamespaceHour): a compacted hour with a late original that no manifest names is read
// from its part and from that original, every line once; after the compactor's delete markers
// hide the compacted originals, still every line once; parts no manifest names (a crashed
// supplement holding the late batch, a copy of the committed part under another plan) are
// never read.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { compactNamespaceHour } from "../lib/compaction/compact.ts";
import { formatCompactedPartKey } from "../lib/keys/layout.ts";
import type { CompactionManifest } from "../lib/object/compaction-manifest.ts";
import { parsePolicy } from "../lib/policy/policy.ts";
import { putTestObject, type TestObject, testObject } from "../lib/retrieval/test_support.ts";
import { localS3Client } from "../local/s3.ts";
import { type LocalCloud, startLocalCloud } from "../local/stack.ts";
import { ArchiveReadError, type ArchiveSource, planArchiveHour, runArchiveQuery } from "./archive-runner.ts";
import { type PackQuery, parseQuery, resolveParams } from "./pack.ts";

const DT = "2026-03-03";

function batch(node: string, seq: number, n: number, tier: "archive" | "analytics"): TestObject {
  return testObject({
    namespace: "orders",
    node,
    epoch: "0e0e0e0e",
    seq,
    tier,
    lines: Array.from({ length: n }, (_, i) => ({ at: `${DT}T10:${String(i).padStart(2, "0")}:00Z` })),
  });
}

const compacted = [
  batch("node-e", 0, 4, "archive"),
  batch("node-e", 1, 3, "analytics"),
  batch("node-f", 0, 5, "archive"),
];
/** Arrives after the hour was compacted: no manifest names it. */
const late = batch("node-g", 0, 6, "archive");
const total = [...compacted, late].reduce((n, o) => n + o.lines.length, 0);

/** Lines of the hour and how many distinct (batch, seq) among them: equal when no line is read twice. */
const COUNT_SQL = `-- title: Lines per namespace
-- answers: How many lines each namespace has, and how many distinct ones.
-- param: namespaces STRING_LIST namespaces; example: orders
-- param: from TIMESTAMP start, inclusive, UTC; example: 2026-03-03
-- param: to TIMESTAMP end, exclusive, UTC; example: 2026-03-04
-- cost: Scans everything it reads.
SELECT namespace, count(*)::INTEGER AS n, count(DISTINCT batch_id || '/' || seq)::INTEGER AS distinct_lines
FROM container_logs
WHERE list_contains(string_split($namespaces, ','), namespace)
  AND "timestamp" >= $from::TIMESTAMP AND "timestamp" < $to::TIMESTAMP
GROUP BY ALL
ORDER BY ALL;
`;

describe("--engine archive per batch: a compacted hour with a late original (local stack, Object Lock)", () => {
  let dir: string;
  let cloud: LocalCloud;
  let s3: S3Client;
  let bucket: string;
  let source: ArchiveSource;
  let count: PackQuery;
  let manifest: CompactionManifest;
  const values = () => resolveParams(count, { namespaces: "orders", from: `${DT} 10:00`, to: `${DT} 11:00` });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "archive-late-"));
    cloud = await startLocalCloud({
      dataDir: dir,
      policy: parsePolicy("archive: { prefix: logs }\n", "test"),
      archiveBucket: { objectLock: true },
    });
    bucket = cloud.endpoints.s3.bucket;
    s3 = localS3Client(cloud.endpoints.s3.endpoint, cloud.endpoints.region);
    source = { kind: "s3", client: s3, bucket, prefix: "logs" };
    count = parseQuery(COUNT_SQL, "count.sql", "duckdb");
    for (const o of compacted) await putTestObject(s3, bucket, o);
    const outcome = await compactNamespaceHour({
      s3,
      bucket,
      prefix: "logs",
      namespace: "orders",
      dt: DT,
      hour: "10",
      indexCheck: false,
      now: () => new Date(`${DT}T13:00:00Z`),
    });
    assert.equal(outcome.status, "committed");
    manifest = outcome.manifest!;
    await putTestObject(s3, bucket, late);
    // Parts no manifest names: a supplement that crashed before its commit, holding the late
    // batch, and a copy of the committed part under another plan. Either read would double lines.
    const orphan = (generation: number) =>
      formatCompactedPartKey({
        prefix: "logs",
        namespace: "orders",
        dt: DT,
        hour: "10",
        generation,
        part: 0,
        plan: "00000000deadbeef",
      });
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: orphan(1), Body: late.body }));
    const committed = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: manifest.parts[0]!.key }));
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: orphan(0),
        Body: Buffer.from(await committed.Body!.transformToByteArray()),
      }),
    );
  });

  after(async () => {
    s3?.destroy();
    await cloud?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function assertEveryLineOnce(supersededOriginals: number): Promise<void> {
    const plan = await planArchiveHour(source, "logs", "orders", DT, "10");
    assert.equal(plan.from, "mixed");
    assert.deepEqual(
      plan.files.map((f) => [f.key, f.part === undefined ? "original" : "part"]),
      [...manifest.parts.map((p) => [p.key, "part"]), [late.key, "original"]],
      "the committed part and the late original, nothing else",
    );
    assert.equal(plan.supersededOriginals, supersededOriginals);
    const result = await runArchiveQuery(count, values(), source);
    assert.deepEqual(result.rows, [{ namespace: "orders", n: total, distinct_lines: total }]);
    assert.equal(result.parts, 1);
    assert.equal(result.objects, 1);
    assert.equal(result.compactedHours, 1);
    assert.equal(result.uncompactedBatches, 1);
  }

  it("reads the named batches from their part and the late original as an original: every line once", async () => {
    await assertEveryLineOnce(compacted.length);
  });

  it("after the compactor's delete markers hide the compacted originals: still every line once", async () => {
    // DeleteObject without a version id, as the compactor removes what it compacted.
    for (const o of compacted) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.key }));
    await assertEveryLineOnce(0);
  });

  it("a compacted key written again with other bytes: an ArchiveReadError naming the key and both versions", async () => {
    const member = manifest.members.find((m) => m.key === compacted[0]!.key)!;
    const rewrite = batch("node-e", 0, 2, "archive");
    assert.equal(rewrite.key, member.key);
    await putTestObject(s3, bucket, rewrite);
    await assert.rejects(
      runArchiveQuery(count, values(), source),
      (e: Error) =>
        e instanceof ArchiveReadError &&
        new RegExp(
          `^${member.key}: key written again after compaction: version \\S+ differs from the compacted version ${member.versionId} `,
        ).test(e.message),
    );
  });
});

// The compactor runs beside queries: between a query's listing and its GET of a late original,
// it may commit a supplement naming that batch and delete the original (a delete marker on a
// versioned bucket, the object itself on an unversioned one). The test's client holds the
// query's first GET of the late original until a real compactor (on its own client) has done
// exactly that.
for (const bucketKind of ["versioned with Object Lock", "unversioned"] as const) {
  describe(`--engine archive: a late original compacted and deleted between listing and reading (${bucketKind})`, () => {
    let dir: string;
    let cloud: LocalCloud;
    let s3: S3Client;
    let compactor: S3Client;
    let bucket: string;
    let count: PackQuery;
    /** What to do, once, when the query first GETs the late original. */
    let onLateGet: (() => Promise<void>) | undefined;
    const values = () =>
      resolveParams(count, { namespaces: "orders", from: `${DT} 10:00`, to: `${DT} 11:00` });
    const compactHour = async () => {
      const outcome = await compactNamespaceHour({
        s3: compactor,
        bucket,
        prefix: "logs",
        namespace: "orders",
        dt: DT,
        hour: "10",
        indexCheck: false,
        now: () => new Date(`${DT}T13:00:00Z`),
      });
      assert.equal(outcome.status, "committed", JSON.stringify(outcome));
      return outcome.manifest!;
    };

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "archive-race-"));
      cloud = await startLocalCloud({
        dataDir: dir,
        policy: parsePolicy("archive: { prefix: logs }\n", "test"),
        archiveBucket: bucketKind === "unversioned" ? {} : { objectLock: true },
      });
      bucket = cloud.endpoints.s3.bucket;
      s3 = localS3Client(cloud.endpoints.s3.endpoint, cloud.endpoints.region);
      compactor = localS3Client(cloud.endpoints.s3.endpoint, cloud.endpoints.region);
      s3.middlewareStack.add(
        (next, context) => async (args) => {
          const key = (args.input as { Key?: string }).Key;
          if (context.commandName === "GetObjectCommand" && key === late.key && onLateGet !== undefined) {
            const run = onLateGet;
            onLateGet = undefined;
            await run();
          }
          return next(args);
        },
        { step: "initialize", name: "compactBeforeLateGet" },
      );
      count = parseQuery(COUNT_SQL, "count.sql", "duckdb");
      for (const o of compacted) await putTestObject(compactor, bucket, o);
      await compactHour();
    });

    after(async () => {
      s3?.destroy();
      compactor?.destroy();
      await cloud?.stop();
      await rm(dir, { recursive: true, force: true });
    });

    it(
      bucketKind === "unversioned"
        ? "an original deleted with no manifest naming it: an ArchiveReadError naming its key"
        : "an original deleted after listing: read by its listed version, every line once",
      async () => {
        await putTestObject(compactor, bucket, late);
        onLateGet = async () => {
          await compactor.send(new DeleteObjectCommand({ Bucket: bucket, Key: late.key }));
        };
        const source: ArchiveSource = { kind: "s3", client: s3, bucket, prefix: "logs" };
        if (bucketKind === "unversioned") {
          await assert.rejects(
            runArchiveQuery(count, values(), source),
            (e: Error) =>
              e instanceof ArchiveReadError &&
              e.message.startsWith(`${late.key}: listed, then gone before it was read`),
          );
        } else {
          // Read by the version listed: the delete marker does not hide it, every line once.
          const result = await runArchiveQuery(count, values(), source);
          assert.deepEqual(result.rows, [{ namespace: "orders", n: total, distinct_lines: total }]);
        }
        assert.equal(onLateGet, undefined, "the late original's GET was held and the delete done");
      },
    );

    it("the compactor commits a supplement naming it and deletes it: every line once, the batch from one place", async () => {
      await putTestObject(compactor, bucket, late);
      let supplement: CompactionManifest | undefined;
      onLateGet = async () => {
        supplement = await compactHour();
        await compactor.send(new DeleteObjectCommand({ Bucket: bucket, Key: late.key }));
      };
      const source: ArchiveSource = { kind: "s3", client: s3, bucket, prefix: "logs" };
      const result = await runArchiveQuery(count, values(), source);
      assert.equal(supplement?.generation, 1);
      assert.deepEqual(
        supplement.members.map((m) => m.key),
        [late.key],
      );
      assert.deepEqual(result.rows, [{ namespace: "orders", n: total, distinct_lines: total }]);
      if (bucketKind === "unversioned") {
        // The hour was planned again: the late batch came from the supplement's part.
        assert.equal(result.parts, 2);
        assert.equal(result.objects, 0);
      } else {
        assert.equal(result.parts, 1);
        assert.equal(result.objects, 1);
      }
    });
  });
}
