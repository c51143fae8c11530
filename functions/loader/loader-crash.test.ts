// Exactly-once across a flush that dies at any step. The flush makes its GCS calls one at a
// time (flush_concurrency 1), so "dies at step k" is exact: the proxy lets k requests through
// and refuses every later one, as if the process had stopped there. Then the events are
// delivered again (duplicates), a clean flush runs, and every object must be loaded once, with
// nothing left queued. Against the local GCS through the test proxy, and DuckDB (whose load
// jobs keep BigQuery's job-ID rules) behind the warehouse port.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Storage } from "@google-cloud/storage";
import { parsePolicy } from "../../lib/policy/policy.ts";
import type { DuckDbWarehouse } from "../warehouse/duckdb.ts";
import { resolveLoaderConfig } from "./config.ts";
import type { FinalizedObject } from "./enqueue.ts";
import { ATTEMPT_LEASE_MS } from "./flush.ts";
import { Loader } from "./loader.ts";
import type { GcsProxy } from "./test_support/gcs-proxy.ts";
import { type ArchiveObject, archiveObject } from "./test_support/objects.ts";
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
const OBJECTS = 3;
const RECORDS = 4;
let stack: ProxiedLoaderStack;
let proxy: GcsProxy;
let storage: Storage;
let direct: Storage;
let warehouse: DuckDbWarehouse;

before(async () => {
  stack = await startProxiedLoaderStack("loader-crash", [LANDING, STATE]);
  ({ proxy, storage, direct, warehouse } = stack);
});

after(() => stack.stop());

let scenarioNo = 0;

/** A loader with a state prefix of its own, its objects uploaded and queued, its sweep done. */
async function queuedScenario(): Promise<{
  loader: Loader;
  objects: ArchiveObject[];
  events: FinalizedObject[];
  clock: { ms: number };
}> {
  scenarioNo++;
  const clock = { ms: Date.parse("2026-12-01T12:00:00Z") };
  const loader = new Loader({
    config: resolveLoaderConfig(
      {},
      {
        landing_bucket: LANDING,
        state_bucket: STATE,
        warehouse: "duckdb",
        state_prefix: `_logarchive/crash-${scenarioNo}/`,
        flush_interval: "1s",
        job_poll_interval: "10ms",
        flush_concurrency: "1",
      },
    ),
    policy: POLICY,
    storage,
    warehouse,
    log: () => {},
    now: () => clock.ms,
    // A new watermark starts at the current hour: nothing here for the sweeper to walk.
    sweep: { initialLookbackMs: 0 },
  });
  // The run's sweep (at most every 5 minutes) is taken now, so the runs below only flush.
  await loader.flush({ force: true });
  const objects = Array.from({ length: OBJECTS }, (_, i) =>
    archiveObject({ namespace: `crash-${i % 2}`, seq: scenarioNo * 100 + i, records: RECORDS }),
  );
  const events: FinalizedObject[] = [];
  for (const o of objects) {
    const file = direct.bucket(LANDING).file(o.name);
    await file.save(o.body, {
      resumable: false,
      metadata: { contentType: "application/gzip", metadata: o.metadata },
    });
    const event = {
      bucket: LANDING,
      name: o.name,
      generation: String(file.metadata.generation),
      metadata: o.metadata,
    };
    events.push(event);
    assert.equal((await loader.handleFinalize(event)).outcome, "queued");
  }
  return { loader, objects, events, clock };
}

async function rows(objects: ArchiveObject[]): Promise<number[]> {
  const counts = await warehouse.rowCountsByBatch(
    TABLE,
    objects.map((o) => o.batchId),
  );
  return objects.map((o) => counts.get(o.batchId) ?? 0);
}

describe("loader: a flush that dies at any step", () => {
  it("loads every object exactly once whatever step the first flush died at, with duplicate events after it", async () => {
    // How many GCS requests a whole flush of the scenario makes.
    const clean = await queuedScenario();
    proxy.resetCounts();
    const [run] = await clean.loader.flush({ force: true });
    const steps = proxy.counts.A + proxy.counts.B + proxy.counts.free;
    assert.equal(run?.status, "loaded");
    assert.deepEqual(await rows(clean.objects), Array(OBJECTS).fill(RECORDS));
    assert.ok(steps > 10, `a flush of ${OBJECTS} objects makes ${steps} requests`);

    for (let k = 0; k < steps; k++) {
      const { loader, objects, events, clock } = await queuedScenario();
      proxy.failAfter(k);
      // The run stops at step k: an error it reports (a table deferred) or throws.
      await loader.flush({ force: true }).catch(() => []);
      proxy.failAfter(null);
      // A run that died holding an attempt's lease holds it until it expires: later runs wait.
      clock.ms += ATTEMPT_LEASE_MS + 60_000;
      // Every event again, as Eventarc's redelivery or the sweeper would send it.
      for (const e of events) {
        const again = await loader.handleFinalize(e);
        assert.ok(
          ["duplicate", "queued"].includes(again.outcome),
          `step ${k}: ${again.outcome} ${again.detail}`,
        );
      }
      await loader.flush({ force: true });
      await loader.flush({ force: true });
      assert.deepEqual(await rows(objects), Array(OBJECTS).fill(RECORDS), `died at step ${k} of ${steps}`);
      assert.deepEqual(await loader.state.list("pending/"), [], `step ${k}: nothing left queued`);
      for (const e of events)
        assert.equal((await loader.handleFinalize(e)).outcome, "duplicate", `step ${k}`);
    }
  });
});
