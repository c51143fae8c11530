// Continuity from the shipper's hour indexes (docs/retrieval.md#hour-indexes): one LIST per
// hour and one GET per node-hour decide a node whose indexes cover its objects; a batch the
// index names that is missing, an object replaced with other (self-consistent) bytes, and a
// break in the chain of indexes are found; where no index decides, the listing does, and the
// report says so.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { S3Client } from "@aws-sdk/client-s3";
import { localS3Client } from "../../local/s3.ts";
import { type LocalCloud, startLocalCloud } from "../../local/stack.ts";
import { DEFAULT_PRICES } from "../economics/prices.ts";
import type { Tier } from "../keys/layout.ts";
import { parsePolicy } from "../policy/policy.ts";
import { type RetrieveOutcome, retrieve } from "./retrieve.ts";
import { at, putTestObject, type TestObject, testHourIndex, testObject } from "./test_support.ts";

const EPOCH = "0c0c0c0c";
const NODE = "node-i";

/** node-i's batch `seq` of `namespace` under `prefix`: one line, at `time` on 2026-05-01. */
function nodeBatch(
  prefix: string,
  seq: number,
  namespace: string,
  time: string,
  o: { tier?: Tier; message?: string } = {},
): TestObject {
  return testObject({
    prefix,
    namespace,
    node: NODE,
    epoch: EPOCH,
    seq,
    tier: o.tier ?? "archive",
    lines: [{ at: `2026-05-01T${time}Z`, message: o.message ?? `${namespace} ${seq}` }],
  });
}

/**
 * node-i's index of `hour` (HH, 2026-05-01) under `prefix`, naming `batches[seq]` for each of
 * `seqs` and chained to `previous` (its hour HH of the same day).
 */
function nodeIndex(
  prefix: string,
  batches: readonly TestObject[],
  hour: string,
  seqs: number[],
  previous: { hour: string; last: number } | null,
): TestObject {
  return testHourIndex({
    prefix,
    node: NODE,
    epoch: EPOCH,
    hour: `2026-05-01T${hour}`,
    batches: seqs.map((s) => batches[s]!),
    previous: previous === null ? null : { hour: `2026-05-01T${previous.hour}`, last: previous.last },
  });
}

/**
 * node-i numbers 0-2 in hour 10, 3-4 in hour 11 and 5 in hour 12 (a line of 11:59:59 read
 * just after 12:00), across `ledger` (the namespace retrieved) and `web`.
 */
function archive(prefix: string): { batches: TestObject[]; indexes: TestObject[] } {
  const batches = [
    nodeBatch(prefix, 0, "ledger", "10:05:00"),
    nodeBatch(prefix, 1, "web", "10:10:00"),
    nodeBatch(prefix, 2, "ledger", "10:20:00", { tier: "analytics" }),
    nodeBatch(prefix, 3, "ledger", "11:05:00"),
    nodeBatch(prefix, 4, "web", "11:30:00"),
    nodeBatch(prefix, 5, "ledger", "11:59:59"),
  ];
  return {
    batches,
    indexes: [
      nodeIndex(prefix, batches, "10", [0, 1, 2], null),
      nodeIndex(prefix, batches, "11", [3, 4], { hour: "10", last: 2 }),
      nodeIndex(prefix, batches, "12", [5], { hour: "11", last: 4 }),
    ],
  };
}

describe("continuity from the shipper's hour indexes", () => {
  let dir: string;
  let cloud: LocalCloud;
  let s3: S3Client;
  let bucket: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "retrieve-index-"));
    cloud = await startLocalCloud({
      dataDir: dir,
      policy: parsePolicy("archive: { prefix: logs }\n", "test"),
    });
    bucket = cloud.endpoints.s3.bucket;
    s3 = localS3Client(cloud.endpoints.s3.endpoint, cloud.endpoints.region);
  });
  after(async () => {
    s3?.destroy();
    await cloud?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** Puts the scenario's objects under `prefix`, all but `skip`, and retrieves `ledger` for 10:00-12:00. */
  async function run(
    prefix: string,
    o: {
      skip?: string[];
      replace?: TestObject[];
      now?: number;
      scenario?: ReturnType<typeof archive>;
      marginHours?: number;
    } = {},
  ): Promise<{ outcome: RetrieveOutcome; scenario: ReturnType<typeof archive> }> {
    const scenario = o.scenario ?? archive(prefix);
    const skip = new Set(o.skip ?? []);
    for (const object of [...scenario.batches, ...scenario.indexes]) {
      if (!skip.has(object.key)) await putTestObject(s3, bucket, object);
    }
    for (const object of o.replace ?? []) await putTestObject(s3, bucket, object);
    const outcome = await retrieve({
      s3,
      bucket,
      prefix,
      query: {
        namespace: "ledger",
        from: at("2026-05-01T10:00:00Z"),
        to: at("2026-05-01T12:00:00Z"),
        pods: [],
        containers: [],
      },
      restoreTier: "Bulk",
      restoreDays: 1,
      prices: DEFAULT_PRICES,
      pollIntervalMs: 1,
      gapMarginHours: o.marginHours ?? 2,
      ...(o.now === undefined ? {} : { now: o.now }),
    });
    return { outcome, scenario };
  }

  it("decides a covered node from its indexes alone: 1 LIST per hour, 1 GET per node-hour, no listing of other namespaces", async () => {
    // web's batches are not even in the bucket: the indexes account for their numbers.
    const scenario = archive("complete");
    const { outcome } = await run("complete", { skip: [scenario.batches[1]!.key, scenario.batches[4]!.key] });
    assert.deepEqual(outcome.problems, []);
    const c = outcome.continuity!;
    assert.equal(c.listed, null, "no listing of every namespace");
    assert.deepEqual(
      [c.indexes.from, c.indexes.to, c.indexes.listCalls, c.indexes.getCalls, c.indexes.read],
      // The range's 2 hours and the 2 of the margin: 4 LISTs; 3 node-hours with an index: 3 GETs.
      ["2026-05-01T10:00:00.000Z", "2026-05-01T14:00:00.000Z", 4, 3, 3],
    );
    assert.deepEqual(
      c.nodes.map((n) => [n.node, n.source, n.verdict, n.batches, n.indexes.map((i) => i.hour)]),
      [
        [
          NODE,
          "index",
          "continuous",
          [0, 2, 3, 5],
          ["2026-05-01T10:00:00Z", "2026-05-01T11:00:00Z", "2026-05-01T12:00:00Z"],
        ],
      ],
    );
    assert.equal(outcome.records.length, 4);
    assert.ok(scenario.indexes.length === 3);
  });

  it("fails when a batch the index names is missing, even with no later object of the namespace to show a gap", async () => {
    const scenario = archive("missing");
    const { outcome } = await run("missing", { skip: [scenario.batches[5]!.key, scenario.batches[1]!.key] });
    const node = outcome.continuity!.nodes[0]!;
    assert.equal(node.verdict, "gap");
    assert.equal(node.source, "index");
    assert.equal(outcome.problems.length, 1, outcome.problems.join("\n"));
    assert.match(
      outcome.problems[0]!,
      /node node-i \(epoch 0c0c0c0c\): the shipper's index names batch 5 \(.*ledger.*\) and it is not in the archive/,
    );
  });

  it("fails when an object was replaced by other bytes with a matching metadata checksum", async () => {
    const scenario = archive("tampered");
    const forged = nodeBatch("tampered", 3, "ledger", "11:05:00", { message: "forged" });
    assert.equal(forged.key, scenario.batches[3]!.key);
    const { outcome } = await run("tampered", { skip: [forged.key], replace: [forged] });
    // The object agrees with its own metadata: only the index shows it is not what was shipped.
    assert.ok(outcome.objects.every((o) => o.checksum === "verified"));
    const node = outcome.continuity!.nodes[0]!;
    assert.equal(node.verdict, "tampered");
    assert.equal(outcome.problems.length, 1);
    assert.match(
      outcome.problems[0]!,
      /has SHA-256 [0-9a-f]{64}, the shipper's index says [0-9a-f]{64}: the object was replaced/,
    );
  });

  it("a break in the chain of indexes sends the node to the listing, which finds the batch missing there", async () => {
    const scenario = archive("chain");
    // Hour 11's index and ledger batch 3 are gone: hour 12's index links to hour 11, not to 10.
    const { outcome } = await run("chain", { skip: [scenario.indexes[1]!.key, scenario.batches[3]!.key] });
    const c = outcome.continuity!;
    const node = c.nodes[0]!;
    assert.equal(node.source, "listing");
    assert.match(
      node.fallback ?? "",
      /numbers 3-4 are in no index read: the index of hour 2026-05-01T11:00:00Z is missing/,
    );
    assert.deepEqual(c.listed, { from: "2026-05-01T08:00:00.000Z", to: "2026-05-01T14:00:00.000Z" });
    assert.equal(node.verdict, "gap");
    assert.ok(
      outcome.problems.some((p) => /batch 3 missing between/.test(p)),
      outcome.problems.join("\n"),
    );
    assert.ok(outcome.warnings.some((w) => /decided by listing/.test(w)));
  });

  it("a missing index alone is a warning: the listing finds every number", async () => {
    const scenario = archive("index-gone");
    const { outcome } = await run("index-gone", { skip: [scenario.indexes[1]!.key] });
    assert.deepEqual(outcome.problems, []);
    assert.equal(outcome.continuity!.nodes[0]!.source, "listing");
    assert.ok(outcome.warnings.some((w) => /1 of 1 node\(s\) were decided by listing/.test(w)));
  });

  it("the open hour has no index yet: its objects are decided by listing, and the manifest says why", async () => {
    const { outcome } = await run("open", { now: Date.parse("2026-05-01T11:40:00Z") });
    const c = outcome.continuity!;
    // Only hour 10 can have an index; batches 3 and 5 are in none.
    assert.equal(c.indexes.to, "2026-05-01T11:00:00.000Z");
    assert.equal(c.nodes[0]!.source, "listing");
    assert.match(c.nodes[0]!.fallback ?? "", /batch 3 .* is in no hour index read/);
    assert.deepEqual(outcome.problems, []);
  });
  it("an unusable index at the end of what is read sends its node to the listing, which finds the batch it named missing", async () => {
    // Hour 12's index names ledger batch 3 (11:59:59, read after 12:00) and web batch 4, and
    // its body no longer matches its checksum; batch 3 is gone. Indexes 10 and 11 cover every
    // ledger object left.
    const prefix = "unusable-end";
    const batches = [
      nodeBatch(prefix, 0, "ledger", "10:05:00"),
      nodeBatch(prefix, 1, "web", "10:10:00"),
      nodeBatch(prefix, 2, "ledger", "11:05:00"),
      nodeBatch(prefix, 3, "ledger", "11:59:59"),
      nodeBatch(prefix, 4, "web", "12:05:00"),
    ];
    const index12 = nodeIndex(prefix, batches, "12", [3, 4], { hour: "11", last: 2 });
    const damaged = { ...index12, body: Buffer.concat([index12.body, Buffer.from(" ")]) };
    const scenario = {
      batches,
      indexes: [
        nodeIndex(prefix, batches, "10", [0, 1], null),
        nodeIndex(prefix, batches, "11", [2], { hour: "10", last: 1 }),
        damaged,
      ],
    };
    const { outcome } = await run(prefix, { scenario, skip: [batches[3]!.key] });
    const c = outcome.continuity!;
    assert.deepEqual(
      c.indexes.unusable.map((u) => [u.key, u.node, u.epoch]),
      [[index12.key, NODE, EPOCH]],
    );
    const node = c.nodes[0]!;
    assert.equal(node.source, "listing");
    assert.match(node.fallback ?? "", /its hour index .* is not usable \(its SHA-256 is/);
    assert.equal(node.verdict, "gap");
    assert.ok(
      outcome.problems.some((p) => /batch 3 missing between/.test(p)),
      outcome.problems.join("\n"),
    );
    assert.ok(
      outcome.warnings.some(
        (w) =>
          w.includes(`hour index ${index12.key} is not used`) &&
          /node node-i \(epoch 0c0c0c0c\) is decided by listing/.test(w),
      ),
      outcome.warnings.join("\n"),
    );
  });

  it("an unusable index whose key names no node sends every node to the listing", async () => {
    const prefix = "unusable-key";
    const scenario = archive(prefix);
    const stray = { ...scenario.indexes[2]!, key: `${prefix}/index/dt=2026-05-01/hour=12/not-an-index.json` };
    const { outcome } = await run(prefix, {
      scenario: { ...scenario, indexes: [...scenario.indexes, stray] },
    });
    const c = outcome.continuity!;
    assert.deepEqual(
      c.indexes.unusable.map((u) => [u.key, u.node]),
      [[stray.key, null]],
    );
    assert.equal(c.nodes[0]!.source, "listing");
    assert.deepEqual(outcome.problems, []);
    assert.ok(
      outcome.warnings.some((w) => /its key names no node, so every node is decided by listing/.test(w)),
    );
  });

  it("reads every index hour up to the margin: a batch numbered hours after its records' hour is checked", async () => {
    // The shipper was down 11:10-14:00: after the restart it numbered ledger 11:30 (batch 3)
    // and web 11:40 (batch 4) in hour 14. Batch 3 never arrived.
    const prefix = "late-numbered";
    const batches = [
      nodeBatch(prefix, 0, "ledger", "10:05:00"),
      nodeBatch(prefix, 1, "web", "10:10:00"),
      nodeBatch(prefix, 2, "ledger", "11:05:00"),
      nodeBatch(prefix, 3, "ledger", "11:30:00"),
      nodeBatch(prefix, 4, "web", "11:40:00"),
    ];
    const scenario = {
      batches,
      indexes: [
        nodeIndex(prefix, batches, "10", [0, 1], null),
        nodeIndex(prefix, batches, "11", [2], { hour: "10", last: 1 }),
        nodeIndex(prefix, batches, "14", [3, 4], { hour: "11", last: 2 }),
      ],
    };
    const { outcome } = await run(prefix, { scenario, skip: [batches[3]!.key], marginHours: 4 });
    const c = outcome.continuity!;
    assert.deepEqual(
      [c.indexes.from, c.indexes.to, c.indexes.listCalls, c.indexes.getCalls, c.indexes.read],
      ["2026-05-01T10:00:00.000Z", "2026-05-01T16:00:00.000Z", 6, 3, 3],
    );
    const node = c.nodes[0]!;
    assert.equal(node.source, "index");
    assert.equal(node.verdict, "gap");
    assert.ok(
      outcome.problems.some((p) =>
        /the shipper's index names batch 3 \(.*ledger.*\) and it is not in the archive/.test(p),
      ),
      outcome.problems.join("\n"),
    );
  });
});
