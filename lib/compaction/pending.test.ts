// compactPending (the scheduled `compact --pending` run) against a real local S3, with archive
// objects and hour indexes as the shipper writes them, on a fixed clock: several namespaces and
// hours, one not settled, one outside the lookback, one compacted already, one with a late
// batch (its next generation), one with a tampered original (reported, the others committed);
// the index GETs counted per key on the wire (an S3 client middleware, nothing of the code
// under test replaced): one per node and index hour for the whole run, whatever the namespaces.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { S3Client } from "@aws-sdk/client-s3";
import { forEachLimited } from "../../functions/loader/state.ts";
import { type LocalS3, localS3Client, startLocalS3 } from "../../local/s3.ts";
import { compactedHourPrefix, indexHourPrefix } from "../keys/layout.ts";
import { listObjectPages } from "../retrieval/find.ts";
import { putTestObject, type TestObject, testHourIndex, testObject } from "../retrieval/test_support.ts";
import { compactNamespaceHour } from "./compact.ts";
import { compactPending, isFailure, type PendingResult, pendingWindow } from "./pending.ts";
import { namespaceShard } from "./shard.ts";

const E = "0e0e0e0e";
const NOW = new Date("2026-03-05T12:00:00Z");
const now = () => NOW;

/** A node's batches, numbered in the order they are made, and its hour indexes. */
class Node {
  seq = 0;
  readonly batches = new Map<string, TestObject[]>();
  readonly name: string;
  constructor(name: string) {
    this.name = name;
  }
  /** A batch of `namespace` with records in `hour` (YYYY-MM-DDTHH), numbered (and indexed) in that hour. */
  batch(namespace: string, hour: string, tier: "archive" | "analytics" = "archive"): TestObject {
    const seq = this.seq++;
    const b = testObject({
      namespace,
      node: this.name,
      epoch: E,
      seq,
      tier,
      lines: [
        { at: `${hour}:10:00Z`, message: `${namespace} ${this.name} ${seq} a` },
        { at: `${hour}:20:00Z`, message: `${namespace} ${this.name} ${seq} b` },
      ],
    });
    this.batches.set(hour, [...(this.batches.get(hour) ?? []), b]);
    return b;
  }
  indexes(): TestObject[] {
    return [...this.batches].map(([hour, batches]) =>
      testHourIndex({ node: this.name, epoch: E, hour, batches, previous: null }),
    );
  }
}

describe("compactPending", () => {
  let dir: string;
  let local: LocalS3;
  let s3: S3Client;
  const clients: S3Client[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "compact-pending-"));
    local = await startLocalS3({
      host: "127.0.0.1",
      port: 0,
      dataDir: dir,
      buckets: ["run", "empty", "many", "shards", "stuck"],
    });
    s3 = localS3Client(local.endpoint, "us-east-1");
  });

  after(async () => {
    s3?.destroy();
    for (const c of clients) c.destroy();
    await local?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** A client of its own that records the key of every GetObject and counts ListObjectsV2 calls. */
  function recording(): { client: S3Client; gets: string[]; lists: { n: number } } {
    const client = localS3Client(local.endpoint, "us-east-1");
    clients.push(client);
    const gets: string[] = [];
    const lists = { n: 0 };
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const name = (context as { commandName?: string }).commandName;
        if (name === "GetObjectCommand") gets.push((args.input as { Key: string }).Key);
        if (name === "ListObjectsV2Command") lists.n++;
        return next(args);
      },
      { step: "initialize", name: "recordRequests" },
    );
    return { client, gets, lists };
  }

  const where = (r: { namespace: string; dt: string; hour: string }) => `${r.namespace} ${r.dt}T${r.hour}`;
  const byHour = (results: PendingResult[]) => new Map(results.map((r) => [where(r), r]));

  it("the window: settled hours ending after now minus the lookback", () => {
    const hours = pendingWindow(NOW, 75 * 60_000, 48 * 3_600_000);
    assert.equal(new Date(hours[0]!).toISOString(), "2026-03-03T12:00:00.000Z");
    assert.equal(new Date(hours.at(-1)!).toISOString(), "2026-03-05T09:00:00.000Z");
    assert.equal(hours.length, 46);
    assert.deepEqual(pendingWindow(NOW, 75 * 60_000, 2 * 3_600_000), []);
  });

  it("compacts every pending namespace-hour, goes on past a tampered one, reads each index hour once; a repaired hour next run; then nothing", async () => {
    const a = new Node("node-a");
    const b = new Node("node-b");
    const c = new Node("node-c"); // writes no hour index (a shipper from before indexes)
    const outside = a.batch("payments", "2026-03-03T05"); // before the lookback
    const compactedEarlier = [a.batch("payments", "2026-03-05T03"), b.batch("payments", "2026-03-05T03")];
    const lateHour = [a.batch("web", "2026-03-04T20")];
    const tampered = a.batch("audit", "2026-03-05T07", "analytics");
    const auditOk = b.batch("audit", "2026-03-05T07", "analytics");
    const fresh = [
      a.batch("payments", "2026-03-05T08"),
      b.batch("payments", "2026-03-05T08"),
      a.batch("web", "2026-03-05T08"),
      b.batch("payments", "2026-03-05T08"),
    ];
    const unsettled = a.batch("payments", "2026-03-05T10");
    const all = [outside, ...compactedEarlier, ...lateHour, auditOk, ...fresh, unsettled];
    for (const o of all) await putTestObject(s3, "run", o);
    // Stored bytes that are not the ones its metadata (and its node's index) checksummed.
    await putTestObject(s3, "run", { ...tampered, body: auditOk.body });
    for (const i of [...a.indexes(), ...b.indexes()])
      await putTestObject(s3, "run", i, { ContentType: "application/json" });
    // Compacted by an earlier run: the hour of 03 in full, web's hour of 04T20 before its late batch.
    for (const [namespace, dt, hour] of [
      ["payments", "2026-03-05", "03"],
      ["web", "2026-03-04", "20"],
    ] as const) {
      const done = await compactNamespaceHour({
        s3,
        bucket: "run",
        prefix: "logs",
        namespace,
        dt,
        hour,
        now,
      });
      assert.equal(done.status, "committed");
    }
    const late = c.batch("web", "2026-03-04T20");
    await putTestObject(s3, "run", late);

    const { client, gets, lists } = recording();
    const printed: string[] = [];
    const run = await compactPending({
      s3: client,
      bucket: "run",
      prefix: "logs",
      now,
      onResult: (r) => printed.push(where(r)),
    });
    assert.deepEqual(run.window, { from: "2026-03-03T12", to: "2026-03-05T09" });
    assert.equal(run.namespaces, 3);
    assert.deepEqual(run.pending.map(where), [
      "web 2026-03-04T20",
      "audit 2026-03-05T07",
      "payments 2026-03-05T08",
      "web 2026-03-05T08",
    ]);
    assert.deepEqual(
      [...printed].sort(),
      run.pending.map(where).sort(),
      "each result reported as it finished",
    );
    const results = byHour(run.results);

    const lateResult = results.get("web 2026-03-04T20")!.outcome!;
    assert.equal(lateResult.status, "committed");
    assert.equal(lateResult.generation, 1, "the late batch goes into the next generation");
    assert.deepEqual(
      lateResult.manifest!.members.map((m) => m.key),
      [late.key],
    );
    assert.equal(lateResult.manifest!.previous?.generation, 0);

    const audit = results.get("audit 2026-03-05T07")!;
    assert.ok(isFailure(audit));
    assert.equal(audit.outcome!.status, "refused");
    assert.deepEqual(
      audit.outcome!.refused.map((r) => r.key),
      [tampered.key],
    );
    assert.match(audit.outcome!.refused[0]!.reason, /sha256 mismatch/);

    const payments = results.get("payments 2026-03-05T08")!.outcome!;
    assert.equal(payments.status, "committed");
    assert.deepEqual(
      payments.manifest!.members.map((m) => m.key),
      [fresh[0]!, fresh[1]!, fresh[3]!].map((o) => o.key).sort(),
    );
    const web = results.get("web 2026-03-05T08")!.outcome!;
    assert.equal(web.status, "committed");
    assert.deepEqual(
      web.manifest!.members.map((m) => m.key),
      [fresh[2]!.key],
    );
    assert.equal(run.results.filter(isFailure).length, 1);

    // Not touched: the unsettled hour, the hour before the lookback.
    for (const [dt, hour] of [
      ["2026-03-05", "10"],
      ["2026-03-03", "05"],
    ] as const) {
      const keys: string[] = [];
      for await (const page of listObjectPages(s3, "run", compactedHourPrefix("logs", "payments", dt, hour)))
        for (const o of page) keys.push(o.Key!);
      assert.deepEqual(keys, [], `${dt}T${hour} not compacted`);
    }

    // Index GETs: each index of the hours the pending hours need (H-1 to H+2) read once in the
    // run, though four namespace-hours in three hours used them; none of other hours.
    const indexGets = gets.filter((k) => k.startsWith("logs/index/"));
    assert.equal(new Set(indexGets).size, indexGets.length, `an index read twice: ${indexGets.join(", ")}`);
    const needed = new Set<string>();
    for (const h of ["2026-03-04T19", "2026-03-04T20", "2026-03-04T21", "2026-03-04T22"].concat(
      ["06", "07", "08", "09", "10"].map((hh) => `2026-03-05T${hh}`),
    )) {
      for await (const page of listObjectPages(
        s3,
        "run",
        indexHourPrefix("logs", h.slice(0, 10), h.slice(11)),
      ))
        for (const o of page) needed.add(o.Key!);
    }
    // node-a and node-b wrote indexes for 04T20 (a only), 05T07, 05T08 and 05T10 (a only).
    assert.equal(needed.size, 6);
    assert.deepEqual(new Set(indexGets), needed);
    assert.equal(run.requests.indexGets, 6);
    // An hour compacted earlier and outside every pending hour's span is not read.
    assert.ok(!indexGets.some((k) => k.includes("dt=2026-03-05/hour=03/")));

    // Enumeration: 2 tier listings, 3 (namespace, tier) listings of originals (each namespace is
    // in one tier), 3 of compacted keys; the rest are the pending hours' own (3 each) and the
    // index hours' (one each).
    assert.equal(run.requests.lists, 2 + 3 + 3);
    assert.equal(run.requests.indexLists, 9);
    assert.equal(lists.n, run.requests.lists + run.requests.indexLists + 3 * run.pending.length);

    // The original repaired (its shipped bytes stored again): the next run compacts only it.
    await putTestObject(s3, "run", tampered);
    const repaired = await compactPending({ s3, bucket: "run", prefix: "logs", now });
    assert.deepEqual(repaired.pending.map(where), ["audit 2026-03-05T07"]);
    assert.equal(repaired.results[0]!.outcome?.status, "committed");
    assert.deepEqual(
      repaired.results[0]!.outcome!.manifest!.members.map((m) => m.key),
      [tampered.key, auditOk.key].sort(),
    );

    // And then nothing is pending: no index read, only the enumeration and the manifests' GETs.
    const quiet = recording();
    const nothing = await compactPending({ s3: quiet.client, bucket: "run", prefix: "logs", now });
    assert.deepEqual(nothing.pending, []);
    assert.deepEqual(nothing.results, []);
    assert.equal(nothing.requests.indexGets, 0);
    assert.ok(
      quiet.gets.every((k) => /\/manifest-\d{4}\.json$/.test(k)),
      quiet.gets.join(", "),
    );
    // payments 05T03 and 05T08, web 04T20 (two generations) and 05T08, audit 05T07.
    assert.equal(quiet.gets.length, 6);
  });

  it("lists a namespace's originals page after page from the window's start and stops at the first key past the last settled hour", async () => {
    const settled = Array.from({ length: 1100 }, (_, i) =>
      testObject({
        namespace: "bulk",
        node: "node-a",
        epoch: E,
        seq: i,
        tier: "archive",
        lines: [{ at: "2026-03-05T09:30:00Z" }],
      }),
    );
    const later = Array.from({ length: 1100 }, (_, i) =>
      testObject({
        namespace: "bulk",
        node: "node-a",
        epoch: E,
        seq: 2000 + i,
        tier: "archive",
        lines: [{ at: "2026-03-05T10:30:00Z" }],
      }),
    );
    const before = testObject({
      namespace: "bulk",
      node: "node-a",
      epoch: E,
      seq: 9999,
      tier: "archive",
      lines: [{ at: "2026-03-03T11:30:00Z" }],
    });
    await forEachLimited([...settled, ...later, before], 16, (o) => putTestObject(s3, "many", o));
    const { client, lists } = recording();
    const run = await compactPending({ s3: client, bucket: "many", prefix: "logs", now, dryRun: true });
    assert.deepEqual(run.pending.map(where), ["bulk 2026-03-05T09"]);
    const outcome = run.results[0]!.outcome!;
    assert.equal(outcome.status, "planned");
    assert.equal(outcome.members.length, 1100);
    // 2 tier listings, 2 pages of originals (the second ends in the unsettled hour: no third
    // page), 1 of compacted keys; then the hour's own 4 (its manifests, its archive prefix in
    // two pages of 1,100 keys, its analytics prefix).
    assert.equal(run.requests.lists, 2 + 2 + 1);
    assert.equal(lists.n, run.requests.lists + 4 + run.requests.indexLists);
  });

  it("shards 0/3, 1/3 and 2/3 together commit exactly the namespace-hours one unsharded run would, each by one shard, reading only their own namespaces' objects", async () => {
    const nodes = [new Node("node-a"), new Node("node-b")];
    const namespaces = Array.from({ length: 12 }, (_, i) => `ns-${String(i).padStart(2, "0")}`);
    const objects: TestObject[] = [];
    for (const hour of ["2026-03-05T07", "2026-03-05T08"])
      for (const ns of namespaces) for (const node of nodes) objects.push(node.batch(ns, hour));
    objects.push(nodes[0]!.batch("ns-00", "2026-03-05T11")); // not settled: in no shard's run
    for (const node of nodes) objects.push(...node.indexes());
    await forEachLimited(objects, 16, (o) => putTestObject(s3, "shards", o));
    // Every shard is non-empty with these names (0: ns-00, ns-05..07; 1: ns-04, ns-08, ns-09, ns-11; 2: the rest).
    assert.deepEqual(
      [0, 1, 2].map((i) => namespaces.filter((ns) => namespaceShard(ns, 3) === i).length),
      [4, 4, 4],
    );

    const whole = await compactPending({ s3, bucket: "shards", prefix: "logs", now, dryRun: true });
    const expected = whole.pending.map(where).sort();
    assert.equal(expected.length, 24);

    const committedBy = new Map<string, number>();
    for (const index of [0, 1, 2]) {
      const { client, gets } = recording();
      const run = await compactPending({
        s3: client,
        bucket: "shards",
        prefix: "logs",
        now,
        shard: { index, count: 3 },
      });
      assert.deepEqual(run.shard, { index, count: 3 });
      assert.equal(run.namespaces, 4);
      assert.ok(run.results.length > 0);
      for (const r of run.results) {
        assert.equal(r.error, undefined, r.error?.message);
        assert.equal(r.outcome!.status, "committed", where(r));
        assert.equal(namespaceShard(r.namespace, 3), index, where(r));
        assert.ok(
          !committedBy.has(where(r)),
          `${where(r)} compacted by shards ${committedBy.get(where(r))} and ${index}`,
        );
        committedBy.set(where(r), index);
      }
      // Apart from the hour indexes (every node's, whatever the shard), only its own namespaces' objects.
      for (const key of gets.filter((k) => !k.includes("/index/"))) {
        const ns = /\/namespace=([^/]+)\//.exec(key)?.[1];
        assert.ok(ns !== undefined && namespaceShard(ns, 3) === index, `shard ${index} read ${key}`);
      }
    }
    assert.deepEqual([...committedBy.keys()].sort(), expected);
    const after = await compactPending({ s3, bucket: "shards", prefix: "logs", now });
    assert.deepEqual(after.pending, []);
  });

  it("a stuck hour whose blocker is an empty original reads none of its index hours, each run; its other originals are HEADed and named", async () => {
    const a = new Node("node-a");
    const b = new Node("node-b");
    const empty = a.batch("payments", "2026-03-04T20");
    const ok = b.batch("payments", "2026-03-04T20");
    await putTestObject(s3, "stuck", { ...empty, body: Buffer.alloc(0) });
    await putTestObject(s3, "stuck", ok);
    for (const i of [...a.indexes(), ...b.indexes()]) {
      await putTestObject(s3, "stuck", i, { ContentType: "application/json" });
    }
    for (let run = 0; run < 2; run++) {
      const { client, gets } = recording();
      const result = await compactPending({ s3: client, bucket: "stuck", prefix: "logs", now });
      assert.deepEqual(
        result.results.map((r) => [where(r), r.outcome?.status]),
        [["payments 2026-03-04T20", "refused"]],
      );
      assert.match(result.results[0]!.outcome!.refused[0]!.reason, /the object is empty/);
      assert.equal(result.results[0]!.outcome!.refused.length, 1);
      assert.deepEqual(
        [result.requests.indexLists, result.requests.indexGets, result.requests.laterIndexGets],
        [0, 0, 0],
      );
      assert.deepEqual(
        gets.filter((k) => k.includes("/index/")),
        [],
      );
    }
  });

  it("an empty bucket: nothing pending, nothing read but the two tier listings", async () => {
    const { client, gets, lists } = recording();
    const run = await compactPending({ s3: client, bucket: "empty", prefix: "logs", now });
    assert.equal(run.namespaces, 0);
    assert.deepEqual(run.pending, []);
    assert.equal(lists.n, 2);
    assert.deepEqual(gets, []);
  });
});
