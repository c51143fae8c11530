// What the compactor keeps of the shippers' hour indexes (readIndexHourSummary): of each index
// its node and number range, and only the entries of the namespace-hours asked for, by records'
// hour and namespace; an index with a bad entry is unusable as a whole. Against a stand-in S3
// that serves the indexes testHourIndex builds (LIST and GET only).

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import { testHourIndex, testObject } from "../retrieval/test_support.ts";
import { batchGroup, readIndexHourSummary } from "./readiness.ts";

const E = "0e0e0e0e";
const H10 = Date.parse("2026-03-03T10:00:00Z");
const H09 = H10 - 3_600_000;

function batch(namespace: string, node: string, seq: number, at: string) {
  return testObject({ namespace, node, epoch: E, seq, tier: "archive", lines: [{ at }] });
}

function store(objects: { key: string; body: Buffer; metadata: Record<string, string> }[]): S3Client {
  const send = async (command: unknown) => {
    if (command instanceof ListObjectsV2Command) {
      const Contents = objects
        .filter((o) => o.key.startsWith(command.input.Prefix ?? ""))
        .map((o) => ({ Key: o.key }));
      return { Contents, IsTruncated: false };
    }
    if (command instanceof GetObjectCommand) {
      const o = objects.find((x) => x.key === command.input.Key)!;
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
