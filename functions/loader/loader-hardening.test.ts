// The loader's hardening for real GCP (issue 10): lost finalize events found by the sweeper,
// overlapping flush runs on one attempt, backlogs bigger than one job per window, metadata
// read case-insensitively everywhere, and markers whose create response was lost. Against the
// local GCS (through a proxy that can drop a response) and DuckDB behind the warehouse port.

import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import { Storage } from "@google-cloud/storage";
import type { StageLog } from "../../lib/log.ts";
import { parsePolicy } from "../../lib/policy/policy.ts";
import type { DuckDbWarehouse } from "../warehouse/duckdb.ts";
import { resolveLoaderConfig } from "./config.ts";
import type { FinalizedObject } from "./enqueue.ts";
import { Loader, type LoaderParts } from "./loader.ts";
import {
  type ClaimMarker,
  markerPaths,
  objectId,
  PENDING_METADATA_KEY,
  type PendingMarker,
} from "./markers.ts";
import type { GcsProxy } from "./test_support/gcs-proxy.ts";
import { type ArchiveObject, archiveObject, streamObject } from "./test_support/objects.ts";
import { type ProxiedLoaderStack, startProxiedLoaderStack } from "./test_support/proxied-stack.ts";

const POLICY = parsePolicy(`
analytics:
  include: ["*"]
warehouse:
  dataset: logs
  table: container_logs
`);
const TABLE = { dataset: "logs", table: "container_logs" };
const LANDING = "landing";
const STATE = "loader-state";
let stack: ProxiedLoaderStack;
let proxy: GcsProxy;
/** The loader's client, through the proxy. */
let storage: Storage;
/**
 * The test's own uploads. @google-cloud/storage turns retries off for the whole client after
 * any write without a precondition, so those must not go through the loader's client.
 */
let direct: Storage;
let warehouse: DuckDbWarehouse;
let testNo = 0;
const events: { level: string; event: string; fields: Record<string, unknown> }[] = [];
const log: StageLog = (level, event, fields) => {
  events.push({ level, event, fields });
};
const eventsNamed = (name: string) => events.filter((e) => e.event === name);

function newLoader(overrides: Record<string, string> = {}, extra: Partial<LoaderParts> = {}): Loader {
  const config = resolveLoaderConfig(
    {},
    {
      landing_bucket: LANDING,
      state_bucket: STATE,
      warehouse: "duckdb",
      state_prefix: `_logarchive/hardening-${testNo}/`,
      flush_interval: "1s",
      job_poll_interval: "20ms",
      ...overrides,
    },
  );
  return new Loader({ config, policy: POLICY, storage, warehouse, log, ...extra });
}

async function upload(o: {
  name: string;
  body: Buffer;
  metadata: Record<string, string>;
}): Promise<FinalizedObject> {
  const file = direct.bucket(LANDING).file(o.name);
  await file.save(o.body, {
    resumable: false,
    metadata: { contentType: "application/gzip", metadata: o.metadata },
  });
  const [meta] = await file.getMetadata();
  return {
    bucket: LANDING,
    name: o.name,
    generation: String(meta.generation),
    metadata: (meta.metadata ?? {}) as Record<string, string>,
  };
}

let seqBase = 0;
function objects(namespace: string, count: number, hour = "10"): ArchiveObject[] {
  seqBase += 1000;
  return Array.from({ length: count }, (_, i) =>
    archiveObject({ namespace, seq: seqBase + i, records: 5, hour }),
  );
}

async function rows(list: ArchiveObject[]): Promise<number[]> {
  const counts = await warehouse.rowCountsByBatch(
    TABLE,
    list.map((o) => o.batchId),
  );
  return list.map((o) => counts.get(o.batchId) ?? 0);
}

before(async () => {
  stack = await startProxiedLoaderStack("loader-hardening", [LANDING, STATE]);
  ({ proxy, storage, direct, warehouse } = stack);
});

after(() => stack.stop());

beforeEach(() => {
  testNo++;
  events.length = 0;
});

describe("loader hardening: small ones", () => {
  it("reads logarchive-sha256 case-insensitively in the flush too: a same-body re-transfer with mixed-case keys is not quarantined", async () => {
    const loader = newLoader();
    const [o] = objects("mixed-case", 1);
    const metadata = Object.fromEntries(
      Object.entries(o!.metadata).map(([k, v]) => [
        k.replace(/^logarchive-/, "Logarchive-").toUpperCase(),
        v,
      ]),
    );
    const v1 = await upload({ ...o!, metadata });
    assert.equal((await loader.handleFinalize(v1)).outcome, "queued");
    const v2 = await upload({ ...o!, metadata });
    // The flush runs before the new generation's event: same body, so it waits for that event.
    await loader.flush({ force: true });
    assert.equal(await loader.state.exists(markerPaths.quarantined(objectId(o!.name))), false);
    assert.equal(eventsNamed("object_quarantined").length, 0);
    assert.equal((await loader.handleFinalize(v2)).outcome, "duplicate");
    await loader.flush({ force: true });
    assert.deepEqual(await rows([o!]), [5]);
  });

  it("a quarantine marker whose create response was lost (the client retried into a 412) still logs its object once", async () => {
    // A client of its own: @google-cloud/storage keeps its retry switch per client, and other
    // tests' unconditional writes flip it.
    const retrying = new Storage({
      apiEndpoint: proxy.url,
      projectId: "test",
      retryOptions: { retryDelayMultiplier: 1.5, maxRetryDelay: 2, totalTimeout: 60 },
    });
    const loader = newLoader({}, { storage: retrying });
    // As a flush would have done before (its table head): a write the loader makes with no
    // precondition must not switch the client's retries off for every later write.
    await loader.state.put("probe.json", { at: 1 });
    await loader.state.put("probe.json", { at: 2 });
    const [o] = objects("lost-response", 1);
    const bad = await upload({ ...o!, body: Buffer.from("not gzip at all") });
    const dropped = proxy.dropResponseOnce(
      (r) => r.method === "POST" && (r.query.get("name") ?? "").includes("/quarantined/"),
    );
    const result = await loader.handleFinalize(bad);
    await dropped;
    assert.equal(result.outcome, "quarantined");
    assert.equal(eventsNamed("object_quarantined").length, 1, "logged (and so counted) once");
    // A second delivery of the same bad object is a duplicate and logs nothing more.
    assert.equal((await loader.handleFinalize(bad)).outcome, "duplicate");
    assert.equal(eventsNamed("object_quarantined").length, 1);
  });
});

describe("loader hardening: overlapping flush runs", () => {
  it("two flushes interleaved between the object check and jobs.insert, with an overwrite between them, load every object once", async () => {
    const [changed, ...unchanged] = objects("overlap", 4);
    const runnerA = newLoader();
    for (const o of [changed!, ...unchanged])
      assert.equal((await runnerA.handleFinalize(await upload(o))).outcome, "queued");
    let reached!: () => void;
    let release!: () => void;
    const atInsert = new Promise<void>((r) => {
      reached = r;
    });
    const gate = new Promise<void>((r) => {
      release = r;
    });
    // Runner B makes the batch, finds every object unchanged, and is parked just before its insert.
    const runnerB = newLoader(
      {},
      {
        flushHooks: {
          beforeInsert: async () => {
            reached();
            await gate;
          },
        },
      },
    );
    const runB = runnerB.flush({ force: true });
    await atInsert;
    // One object is overwritten with another body; runner A then finds attempt 1 not started
    // and a changed generation, and goes on with attempt 2 without it.
    const rewritten = archiveObject({ namespace: "overlap", seq: seqBase, records: 5, variant: "rewritten" });
    assert.equal(rewritten.name, changed!.name);
    const overwrite = await upload(rewritten);
    const [a] = await runnerA.flush({ force: true });
    assert.equal(a?.status, "loaded");
    release();
    const [b] = await runB;
    assert.notEqual(b?.status, "failed");
    assert.deepEqual(await rows(unchanged), [5, 5, 5], "each unchanged object loaded once");
    // The overwrite's own event loads the new body, once.
    await runnerA.handleFinalize(overwrite);
    await runnerA.flush({ force: true });
    assert.deepEqual(await rows([changed!, ...unchanged]), [5, 5, 5, 5]);
  });
});

describe("loader hardening: overlapping flush runs, the other way round", () => {
  it("a run that finds an object changed while another holds the attempt's lease waits instead of starting attempt n+1", async () => {
    const [changed, ...unchanged] = objects("overlap-leased", 4);
    const runnerA = newLoader();
    for (const o of [changed!, ...unchanged])
      assert.equal((await runnerA.handleFinalize(await upload(o))).outcome, "queued");
    let reached!: () => void;
    let release!: () => void;
    const leased = new Promise<void>((r) => {
      reached = r;
    });
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const runnerB = newLoader(
      {},
      {
        flushHooks: {
          afterLease: async () => {
            reached();
            await gate;
          },
        },
      },
    );
    const runB = runnerB.flush({ force: true });
    await leased;
    const overwrite = await upload(
      archiveObject({ namespace: "overlap-leased", seq: seqBase, records: 5, variant: "rewritten" }),
    );
    const [a] = await runnerA.flush({ force: true });
    assert.equal(a?.status, "deferred");
    assert.match(a?.detail ?? "", /another flush run is starting this attempt's job/);
    const attemptFiles = async () =>
      (await runnerA.state.list("batches/")).filter((e) => /\.a\d+\.json$/.test(e.path));
    assert.equal((await attemptFiles()).length, 1, "A made no attempt 2");
    release();
    // B checks its objects under its lease, finds the overwrite, and moves to attempt 2 without it.
    const [b] = await runB;
    assert.equal(b?.status, "loaded");
    assert.equal(b?.objects, 3);
    assert.deepEqual(
      await rows([changed!, ...unchanged]),
      [0, 5, 5, 5],
      "one job: each unchanged object once",
    );
    assert.equal((await attemptFiles()).length, 2);
    // The overwrite's own event loads the new body, once.
    assert.equal((await runnerA.handleFinalize(overwrite)).outcome, "queued");
    await runnerA.flush({ force: true });
    assert.deepEqual(await rows([changed!, ...unchanged]), [5, 5, 5, 5]);
  });
});

describe("loader hardening: an overwrite while the attempt's lease is taken", () => {
  it("checks the objects again under the lease: an overwrite landing before it is not loaded under the old claim", async () => {
    const [changed, ...unchanged] = objects("overwrite-at-lease", 4);
    let overwrite: FinalizedObject | undefined;
    const loader = newLoader(
      {},
      {
        flushHooks: {
          // The overwrite lands after the batch's objects were checked, as the lease is taken.
          afterLease: async () => {
            if (overwrite !== undefined) return;
            overwrite = await upload(
              archiveObject({
                namespace: "overwrite-at-lease",
                seq: seqBase,
                records: 5,
                variant: "rewritten",
              }),
            );
          },
        },
      },
    );
    for (const o of [changed!, ...unchanged])
      assert.equal((await loader.handleFinalize(await upload(o))).outcome, "queued");
    const [run] = await loader.flush({ force: true });
    assert.equal(run?.status, "loaded");
    assert.equal(run?.objects, 3, "the overwritten object is left out of the job");
    assert.deepEqual(await rows([changed!, ...unchanged]), [0, 5, 5, 5]);
    assert.equal(await loader.state.exists(markerPaths.done(objectId(changed!.name))), false);
    assert.equal(eventsNamed("object_quarantined").length, 1, "the old generation, set aside");
    // Its own event loads the new body, once.
    assert.equal((await loader.handleFinalize(overwrite!)).outcome, "queued");
    await loader.flush({ force: true });
    assert.deepEqual(await rows([changed!, ...unchanged]), [5, 5, 5, 5]);
  });
});

describe("loader hardening: the sweeper", () => {
  it("loads an hour's objects whose every event was lost exactly once, in bounded runs, and a late event is a no-op", async () => {
    // Hours of their own: the other tests' objects (hour 10) share the landing bucket.
    let clock = Date.parse("2026-11-21T07:00:00Z");
    const loader = newLoader({ sweep_max_objects: "4", sweep_interval: "5m" }, { now: () => clock });
    seqBase += 1000;
    // Stream delivery's objects are swept too: the stream tier's table= directories are walked
    // in the same sorted list as the analytics tier's namespace= ones.
    const streams = [0, 1].map((i) =>
      streamObject({
        namespaces: ["sweep-a", "sweep-b"],
        ...TABLE,
        seq: seqBase + i,
        records: 5,
        hour: "05",
      }),
    );
    const lost = [...objects("sweep-a", 6, "05"), ...objects("sweep-b", 3, "05"), ...streams];
    const delivered = objects("sweep-a", 2, "05");
    const unsettled = objects("sweep-b", 1, "06");
    const finalized = new Map<string, FinalizedObject>();
    for (const o of [...lost, ...unsettled]) finalized.set(o.name, await upload(o));
    for (const o of delivered) assert.equal((await loader.handleFinalize(await upload(o))).outcome, "queued");

    // Scheduler ticks: every flush run sweeps at most 4 objects, 5 minutes apart.
    const runs: number[] = [];
    for (let tick = 0; tick < 12 && eventsNamed("object_swept").length < lost.length; tick++) {
      const before = eventsNamed("object_swept").length;
      await loader.flush({ force: true });
      runs.push(eventsNamed("object_swept").length - before);
      clock += 5 * 60_000;
    }
    assert.ok(
      runs.every((n) => n <= 4),
      `each run stays within its bound: ${runs}`,
    );
    assert.equal(eventsNamed("object_swept").length, lost.length, "only the objects without a claim");
    await loader.flush({ force: true });
    assert.deepEqual(await rows([...lost, ...delivered]), Array(lost.length + delivered.length).fill(5));
    // Hour 06 is swept once it has settled (its end + 30 min), not before.
    assert.deepEqual(await rows(unsettled), [0]);
    clock = Date.parse("2026-11-21T07:31:00Z");
    await loader.flush({ force: true });
    await loader.flush({ force: true });
    assert.deepEqual(await rows(unsettled), [5]);

    // The lost events turn up after all: duplicates, no second load.
    for (const o of [...lost, ...unsettled])
      assert.equal((await loader.handleFinalize(finalized.get(o.name)!)).outcome, "duplicate");
    clock += 10 * 60_000;
    await loader.flush({ force: true });
    assert.deepEqual(await rows([...lost, ...unsettled]), Array(lost.length + unsettled.length).fill(5));
    assert.equal(loader.stats().swept, lost.length + unsettled.length);
  });
});

describe("loader hardening: the sweeper and a claim whose queue entry was never written", () => {
  it("loads, exactly once, an object claimed by a finalize that died before pending/ and was never redelivered", async () => {
    // An hour of its own (the other sweeper test uses 05 and 06).
    let clock = Date.parse("2026-11-21T05:00:00Z");
    const loader = newLoader({}, { now: () => clock });
    const [o] = objects("claimed-only", 1, "03");
    const f = await upload(o!);
    // What a finalize leaves when it dies after claims/ and before pending/ (retries off):
    const claim: ClaimMarker = {
      name: o!.name,
      sha256: o!.metadata["logarchive-sha256"]!,
      generation: f.generation,
      table: TABLE,
      namespace: "claimed-only",
      claimedAt: new Date(clock).toISOString(),
    };
    assert.ok(await loader.state.createIfAbsent(markerPaths.claim(objectId(o!.name)), claim));
    for (let tick = 0; tick < 4; tick++) {
      await loader.flush({ force: true });
      clock += 5 * 60_000;
    }
    assert.deepEqual(await rows([o!]), [5], "claimed but never queued: the sweeper queued it");
    assert.equal(eventsNamed("object_swept").length, 1);
    // The event after all, and more sweeps: no second load.
    assert.equal((await loader.handleFinalize(f)).outcome, "duplicate");
    await loader.flush({ force: true });
    assert.deepEqual(await rows([o!]), [5]);
  });
});

describe("loader hardening: no fixed ceiling", () => {
  it("starts as many full batches in one window as the backlog fills, listing pending/ a bounded page at a time", async () => {
    const loader = newLoader({ flush_interval: "1h", max_uris_per_job: "5" });
    const backlog = objects("backlog", 17);
    for (const o of backlog) assert.equal((await loader.handleFinalize(await upload(o))).outcome, "queued");
    proxy.record(true);
    const [run] = await loader.flush();
    proxy.record(false);
    // Three full jobs at once; the two left over wait for the window like any small batch.
    assert.equal(run?.status, "loaded");
    assert.equal(run?.batches, 3);
    assert.equal(run?.objects, 15);
    assert.equal(run?.pending, 2);
    const pendingLists = proxy.requests.filter(
      (r) =>
        r.operationClass === "A" &&
        (r.query.get("prefix") ?? "").includes("/pending/logs.") &&
        !r.query.has("delimiter"),
    );
    assert.ok(pendingLists.length > 0);
    for (const r of pendingLists)
      assert.ok(Number(r.query.get("maxResults")) <= 6, `pending/ is listed a page at a time: ${r.query}`);
    const [next] = await loader.flush();
    assert.equal(next?.status, "waiting");
    await loader.flush({ force: true });
    assert.deepEqual(await rows(backlog), Array(17).fill(5), "each object loaded once");
  });
});

describe("loader hardening: flush throughput", () => {
  it("runs at most LOGARCHIVE_FLUSH_CONCURRENCY GCS calls at once per batch", async () => {
    const loader = newLoader({ flush_concurrency: "1" });
    const batch = objects("concurrency-one", 12);
    for (const o of batch) assert.equal((await loader.handleFinalize(await upload(o))).outcome, "queued");
    proxy.record(true);
    const [run] = await loader.flush({ force: true });
    proxy.record(false);
    assert.equal(run?.status, "loaded");
    // One table, and every per-object step one at a time: never two requests at once.
    assert.equal(proxy.peakInFlight, 1);
    assert.deepEqual(await rows(batch), Array(12).fill(5));
  });

  it("clears pending/ by the generation its listing gave, without reading each marker back", async () => {
    const loader = newLoader();
    const batch = objects("pending-clear", 6);
    for (const o of batch) assert.equal((await loader.handleFinalize(await upload(o))).outcome, "queued");
    proxy.record(true);
    const [run] = await loader.flush({ force: true });
    proxy.record(false);
    assert.equal(run?.status, "loaded");
    const onPending = proxy.requests.filter(
      (r) => decodeURIComponent(r.path).includes("/pending/") && r.operationClass !== "A",
    );
    const deletes = onPending.filter((r) => r.method === "DELETE");
    assert.equal(deletes.length, batch.length);
    for (const d of deletes) assert.match(d.query.get("ifGenerationMatch") ?? "", /^\d+$/);
    assert.equal((await loader.state.list("pending/")).length, 0, "the queue is empty");
    assert.deepEqual(await rows(batch), Array(6).fill(5));
  });

  it("makes four GCS calls per object: done/ check, one live-generation check, done/ create, pending/ delete", async () => {
    const loader = newLoader();
    const batch = objects("calls-per-object", 6);
    for (const o of batch) assert.equal((await loader.handleFinalize(await upload(o))).outcome, "queued");
    proxy.record(true);
    const [run] = await loader.flush({ force: true });
    proxy.record(false);
    assert.equal(run?.status, "loaded");
    assert.deepEqual(await rows(batch), Array(6).fill(5));
    const calls = proxy.requests.map((r) => ({ ...r, name: objectName(r) }));
    const perObject = (o: ArchiveObject) => {
      const id = objectId(o.name);
      const on = (path: string) => calls.filter((c) => c.name?.endsWith(path));
      return {
        // The pending/ marker comes with the listing (its metadata): never read on its own.
        pendingReads: on(`/pending/logs.container_logs/${id}.json`).filter((c) => c.method === "GET").length,
        pendingDeletes: on(`/pending/logs.container_logs/${id}.json`).filter((c) => c.method === "DELETE")
          .length,
        doneReads: on(`/done/${id}.json`).filter((c) => c.method === "GET").length,
        doneWrites: on(`/done/${id}.json`).filter((c) => c.method === "POST").length,
        // The live generation, read once: under the attempt's lease, not also when the batch is made.
        liveChecks: calls.filter((c) => c.name === o.name && c.method === "GET").length,
      };
    };
    for (const o of batch)
      assert.deepEqual(
        perObject(o),
        { pendingReads: 0, pendingDeletes: 1, doneReads: 1, doneWrites: 1, liveChecks: 1 },
        o.name,
      );
  });

  it("reads a pending/ marker written without its metadata (an older loader's) and loads it once", async () => {
    const loader = newLoader();
    const batch = objects("old-markers", 3);
    for (const o of batch) assert.equal((await loader.handleFinalize(await upload(o))).outcome, "queued");
    // Rewrite one queued marker as an older loader wrote it: the same body, no metadata.
    const [oldStyle] = await loader.state.list(`pending/logs.container_logs/${objectId(batch[0]!.name)}`);
    assert.ok(oldStyle?.metadata?.[PENDING_METADATA_KEY], "new markers carry their fields in metadata");
    const body = await loader.state.read<PendingMarker>(oldStyle!.path);
    assert.ok(await loader.state.replaceIfGeneration(oldStyle!.path, body, oldStyle!.generation));
    assert.equal((await loader.state.list(oldStyle!.path))[0]?.metadata, undefined);
    proxy.record(true);
    const [run] = await loader.flush({ force: true });
    proxy.record(false);
    assert.equal(run?.objects, 3);
    const pendingReads = proxy.requests.filter(
      (r) => r.method === "GET" && (objectName(r) ?? "").includes("/pending/"),
    );
    assert.equal(pendingReads.length, 1, "only the marker without metadata is read");
    assert.deepEqual(await rows(batch), [5, 5, 5]);
  });

  it("a stream object whose marker is too large for metadata is queued without it and loads once", async () => {
    const namespaces = Array.from({ length: 80 }, (_, i) => `a-rather-long-namespace-name-for-the-size-${i}`);
    const loader = newLoader();
    seqBase += 1000;
    const stream = streamObject({ namespaces, ...TABLE, seq: seqBase, records: 80, hour: "10" });
    assert.equal((await loader.handleFinalize(await upload(stream))).outcome, "queued");
    const [listed] = await loader.state.list(`pending/logs.container_logs/${objectId(stream.name)}`);
    assert.equal(listed?.metadata, undefined, "over GCS's 4 KiB per metadata value: written without it");
    const [run] = await loader.flush({ force: true });
    assert.equal(run?.objects, 1);
    assert.deepEqual(await rows([stream]), [80]);
  });
});

/** The object a JSON API request names (a get, delete or media upload), or undefined for a listing. */
function objectName(r: { path: string; query: URLSearchParams }): string | undefined {
  const named = /^\/storage\/v1\/b\/[^/]+\/o\/(.+)$/.exec(r.path);
  if (named) return decodeURIComponent(named[1]!);
  return r.path.startsWith("/upload/") ? (r.query.get("name") ?? undefined) : undefined;
}

describe("loader hardening: one deadline per flush run", () => {
  it("counts the sweep against flush_deadline: a sweep that used the run stops listing and leaves the batches to the next run", async () => {
    // A landing bucket of its own, so no other test's sweep meets these objects.
    const landing = "landing-deadline";
    await direct.createBucket(landing);
    let clock = Date.parse("2026-11-21T12:00:00Z");
    let slowed = false;
    const loader = newLoader(
      { landing_bucket: landing, flush_deadline: "300s" },
      {
        now: () => clock,
        // The first object the sweep queues takes the whole run: the clock moves past the deadline.
        log: (level, event, fields) => {
          log(level, event, fields);
          if (event === "object_swept" && !slowed) {
            slowed = true;
            clock += 301_000;
          }
        },
      },
    );
    // Two namespace directories: two listings.
    const lost = [...objects("deadline-sweep-a", 1, "09"), ...objects("deadline-sweep-b", 1, "09")];
    for (const o of lost) {
      await direct
        .bucket(landing)
        .file(o.name)
        .save(o.body, {
          resumable: false,
          metadata: { contentType: "application/gzip", metadata: o.metadata },
        });
    }
    const [run] = await loader.flush({ force: true });
    assert.equal(eventsNamed("object_swept").length, 1, "no listing started after the run's deadline");
    assert.equal(run?.status, "waiting");
    assert.match(run?.detail ?? "", /flush run deadline/);
    assert.deepEqual(await rows(lost), [0, 0], "no batch started after the run's deadline");
    // The next sweep (5 min on) resumes from the watermark; its run loads both.
    clock += 5 * 60_000;
    const [next] = await loader.flush({ force: true });
    assert.equal(eventsNamed("object_swept").length, 2);
    assert.equal(next?.status, "loaded");
    assert.deepEqual(await rows(lost), [5, 5]);
  });

  it("starts another full batch only if the time left covers the last batch's duration", async () => {
    let clock = Date.parse("2026-12-01T00:00:00Z");
    let timed = false;
    const loader = newLoader(
      { flush_interval: "1h", max_uris_per_job: "5", flush_deadline: "300s" },
      {
        now: () => clock,
        flushHooks: {
          // The first batch takes 200 s of the run's 300 s.
          afterLease: async () => {
            if (timed) return;
            timed = true;
            clock += 200_000;
          },
        },
      },
    );
    const backlog = objects("deadline-full", 10);
    for (const o of backlog) assert.equal((await loader.handleFinalize(await upload(o))).outcome, "queued");
    const [run] = await loader.flush();
    assert.equal(run?.status, "loaded");
    assert.equal(run?.batches, 1, "100 s left is less than the 200 s the last batch took");
    assert.equal(run?.objects, 5);
    assert.match(run?.detail ?? "", /flush run deadline: a batch of 5 needs about 200s, 100s left/);
    clock += 60_000;
    const [next] = await loader.flush();
    assert.equal(next?.status, "loaded");
    assert.equal(next?.objects, 5);
    assert.deepEqual(await rows(backlog), Array(10).fill(5), "each object loaded once");
  });
});
