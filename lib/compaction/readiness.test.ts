// What the compactor keeps of the shippers' hour indexes (readIndexHourSummary): of each index
// its node and number range, and only the entries of the namespace-hours asked for, by records'
// hour and namespace; an index with a bad entry is unusable as a whole. Against a stand-in S3
// that serves the indexes testHourIndex builds (LIST and GET only).

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import { parseObjectKey } from "../keys/layout.ts";
import { fromUserMetadata } from "../object/metadata.ts";
import { testHourIndex, testObject } from "../retrieval/test_support.ts";
import { batchGroup, checkHourIndexes, readIndexHourSummary } from "./readiness.ts";

const E = "0e0e0e0e";
const H10 = Date.parse("2026-03-03T10:00:00Z");
const H09 = H10 - 3_600_000;

const sha256Of = (o: { metadata: Record<string, string> }) => fromUserMetadata(o.metadata).sha256;

function batch(namespace: string, node: string, seq: number, at: string) {
  return testObject({ namespace, node, epoch: E, seq, tier: "archive", lines: [{ at }] });
}

/** Keys of every GetObject the last store() served, in order ("(404)" after a missing one). */
let gets: string[] = [];

function store(objects: { key: string; body: Buffer; metadata: Record<string, string> }[]): S3Client {
  gets = [];
  const send = async (command: unknown) => {
    if (command instanceof ListObjectsV2Command) {
      const Contents = objects
        .filter((o) => o.key.startsWith(command.input.Prefix ?? ""))
        .map((o) => ({ Key: o.key }));
      return { Contents, IsTruncated: false };
    }
    if (command instanceof GetObjectCommand) {
      const o = objects.find((x) => x.key === command.input.Key);
      if (o === undefined) {
        gets.push(`${command.input.Key} (404)`);
        throw Object.assign(new Error("NoSuchKey"), {
          name: "NoSuchKey",
          $metadata: { httpStatusCode: 404 },
        });
      }
      gets.push(o.key);
      return { Body: { transformToByteArray: async () => new Uint8Array(o.body) }, Metadata: o.metadata };
    }
    throw new Error("unexpected command");
  };
  return { send } as unknown as S3Client;
}

describe("readIndexHourSummary", () => {
  it("keeps every index's node and range, and only the entries of the namespace-hours wanted", async () => {
    const a = [
      batch("payments", "node-a", 0, "2026-03-03T09:59:59Z"),
      batch("payments", "node-a", 1, "2026-03-03T10:00:01Z"),
      batch("web", "node-a", 2, "2026-03-03T10:10:00Z"),
    ];
    const b = [batch("payments", "node-b", 5, "2026-03-03T10:20:00Z")];
    const indexA = testHourIndex({
      node: "node-a",
      epoch: E,
      hour: "2026-03-03T10",
      batches: a,
      previous: null,
    });
    const indexB = testHourIndex({
      node: "node-b",
      epoch: E,
      hour: "2026-03-03T10",
      batches: b,
      previous: null,
    });
    const s3 = store([indexA, indexB]);
    const summary = await readIndexHourSummary(
      { s3, bucket: "x", prefix: "logs" },
      H10,
      (namespace, recordsHour) => namespace === "payments" && recordsHour === H10,
    );
    assert.deepEqual(summary.indexes.map((i) => [i.key, i.node, i.first, i.last]).sort(), [
      [indexA.key, `node-a ${E}`, 0, 2],
      [indexB.key, `node-b ${E}`, 5, 5],
    ]);
    assert.deepEqual([...summary.batches.keys()], [batchGroup(H10, "payments")]);
    assert.deepEqual(
      summary.batches
        .get(batchGroup(H10, "payments"))!
        .map((e) => [e.key, e.index])
        .sort(),
      [
        [a[1]!.key, indexA.key],
        [b[0]!.key, indexB.key],
      ].sort(),
    );
    assert.equal(summary.getCalls, 2);
    assert.deepEqual(summary.unusable, []);

    const previousHour = await readIndexHourSummary(
      { s3, bucket: "x", prefix: "logs" },
      H10,
      (_, h) => h === H09,
    );
    assert.deepEqual(
      previousHour.batches.get(batchGroup(H09, "payments"))!.map((e) => e.key),
      [a[0]!.key],
    );
  });

  it("an index whose body does not match its SHA-256 is unusable and nothing of it is kept", async () => {
    const good = testHourIndex({
      node: "node-a",
      epoch: E,
      hour: "2026-03-03T10",
      batches: [batch("payments", "node-a", 0, "2026-03-03T10:00:01Z")],
      previous: null,
    });
    const summary = await readIndexHourSummary(
      {
        s3: store([{ ...good, body: Buffer.concat([good.body, Buffer.from(" ")]) }]),
        bucket: "x",
        prefix: "logs",
      },
      H10,
      () => true,
    );
    assert.deepEqual(summary.indexes, []);
    assert.equal(summary.batches.size, 0);
    assert.equal(summary.unusable.length, 1);
    assert.match(summary.unusable[0]!.problem, /its SHA-256 is [0-9a-f]{64}, the metadata says/);
  });
});

describe("checkHourIndexes: a batch numbered after the hours read", () => {
  const listedOf = (objects: { key: string }[]) =>
    objects.map((o) => ({ key: o.key, parsed: parseObjectKey(o.key) }));

  it("reads that node's later index hours until one covers its number: the hour is ready", async () => {
    // node-a cut batches 0-1 of hour 10 in hour 10; its batch 2, also of records' hour 10,
    // was held (a stalled upload, a slow clock) and numbered in hour 13.
    const early = [
      batch("payments", "node-a", 0, "2026-03-03T10:05:00Z"),
      batch("payments", "node-a", 1, "2026-03-03T10:06:00Z"),
    ];
    const late = batch("payments", "node-a", 2, "2026-03-03T10:59:00Z");
    const index10 = testHourIndex({
      node: "node-a",
      epoch: E,
      hour: "2026-03-03T10",
      batches: early,
      previous: null,
    });
    const index13 = testHourIndex({
      node: "node-a",
      epoch: E,
      hour: "2026-03-03T13",
      batches: [late],
      previous: { hour: "2026-03-03T10", last: 1 },
    });
    const s3 = store([index10, index13, ...early, late]);
    const readiness = await checkHourIndexes({
      s3,
      bucket: "x",
      prefix: "logs",
      namespace: "payments",
      dt: "2026-03-03",
      hour: "10",
      listed: listedOf([...early, late]),
      compacted: new Set(),
      now: new Date("2026-03-03T16:30:00Z"),
    });
    assert.deepEqual(readiness.blocking, []);
    assert.equal(readiness.ready, true);
    assert.equal(readiness.indexedSha256.get(late.key), sha256Of(late));
    // One GET of node-a's index per later hour, stopping at the one covering number 2.
    assert.equal(readiness.laterIndexGets, 1);
    assert.deepEqual(gets.slice(-1), [index13.key]);
  });

  it("not ready while no later index of the node up to the current hour covers it; the reads are bounded by now", async () => {
    const early = [batch("payments", "node-a", 0, "2026-03-03T10:05:00Z")];
    const late = batch("payments", "node-a", 1, "2026-03-03T10:59:00Z");
    const index10 = testHourIndex({
      node: "node-a",
      epoch: E,
      hour: "2026-03-03T10",
      batches: early,
      previous: null,
    });
    const s3 = store([index10, ...early, late]);
    const readiness = await checkHourIndexes({
      s3,
      bucket: "x",
      prefix: "logs",
      namespace: "payments",
      dt: "2026-03-03",
      hour: "10",
      listed: listedOf([...early, late]),
      compacted: new Set(),
      now: new Date("2026-03-03T16:30:00Z"),
    });
    assert.equal(readiness.ready, false);
    assert.match(readiness.blocking.join("\n"), /numbered after its last index read \(number 0\)/);
    // Hours 13, 14 and 15 have closed after the H-1..H+2 read (16 has not): three GETs, all 404.
    assert.equal(readiness.laterIndexGets, 3);
    assert.deepEqual(gets.filter((g) => g.endsWith("(404)")).length, 3);
  });
});
