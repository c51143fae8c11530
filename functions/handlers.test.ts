// The loader's functions in the functions-framework's own HTTP server, called the way
// Eventarc (binary and structured CloudEvents) and Cloud Scheduler (HTTP POST) call them.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { getTestServer } from "@google-cloud/functions-framework/testing";
import { Storage } from "@google-cloud/storage";
import { parsePolicy } from "../lib/policy/policy.ts";
import { type LocalGcs, startLocalGcs } from "../local/gcs/server.ts";
import {
  FINALIZE_FUNCTION,
  FINALIZED_EVENT_TYPE,
  type FinalizeCounters,
  FLUSH_FUNCTION,
  registerLoaderFunctions,
} from "./handlers.ts";
import { resolveLoaderConfig } from "./loader/config.ts";
import { Loader } from "./loader/loader.ts";
import { markerPaths, objectId } from "./loader/markers.ts";
import { archiveObject } from "./loader/test_support/objects.ts";
import { DuckDbWarehouse } from "./warehouse/duckdb.ts";

let dir: string;
let gcs: LocalGcs;
let storage: Storage;
let loader: Loader;
let failNext = false;
const servers: Server[] = [];
const logged: Record<string, unknown>[] = [];
let finalizeUrl: string;
let counters: FinalizeCounters;
let flushUrl: string;

async function listen(name: string): Promise<string> {
  const server = getTestServer(name);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

async function uploadObject(namespace: string, seq: number) {
  const o = archiveObject({ namespace, seq, records: 4 });
  const file = storage.bucket("landing").file(o.name);
  await file.save(o.body, {
    resumable: false,
    metadata: { contentType: "application/gzip", metadata: o.metadata },
  });
  const [resource] = await file.getMetadata();
  return { o, resource };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "handlers-test-"));
  gcs = await startLocalGcs({ dataDir: join(dir, "gcs"), host: "127.0.0.1", port: 0 });
  storage = new Storage({ apiEndpoint: gcs.url, projectId: "test" });
  await storage.createBucket("landing");
  await storage.createBucket("state");
  const policy = parsePolicy("analytics:\n  include: ['*']\n  exclude: ['kube-system']\n");
  const warehouse = await DuckDbWarehouse.open({
    database: ":memory:",
    storage,
    defaultDataset: policy.warehouse.dataset,
  });
  loader = new Loader({
    config: resolveLoaderConfig(
      {},
      // min_window 0s: a window per 60 s flush, what the flush test below reports.
      {
        landing_bucket: "landing",
        state_bucket: "state",
        warehouse: "duckdb",
        job_poll_interval: "20ms",
        min_window: "0s",
      },
    ),
    policy,
    storage,
    warehouse,
    log: () => {},
  });
  counters = registerLoaderFunctions(
    async () => {
      if (failNext) {
        failNext = false;
        throw new Error("state bucket unavailable");
      }
      return loader;
    },
    (line) => logged.push(line as Record<string, unknown>),
  );
  finalizeUrl = await listen(FINALIZE_FUNCTION);
  flushUrl = await listen(FLUSH_FUNCTION);
});

after(async () => {
  for (const s of servers) await new Promise((r) => s.close(r));
  await loader.close();
  await gcs.stop();
  await rm(dir, { recursive: true, force: true });
});

describe("loader functions in the functions-framework server", () => {
  it("takes a binary-mode finalize CloudEvent as Eventarc sends it", async () => {
    const { o, resource } = await uploadObject("payments", 1);
    const response = await fetch(finalizeUrl, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "ce-specversion": "1.0",
        "ce-type": FINALIZED_EVENT_TYPE,
        "ce-source": "//storage.googleapis.com/projects/_/buckets/landing",
        "ce-subject": `objects/${o.name}`,
        "ce-id": "1001",
        "ce-time": new Date().toISOString(),
      },
      body: JSON.stringify(resource),
    });
    assert.ok(response.ok, `${response.status}`);
    const line = logged.find((l) => l.event_id === "1001");
    assert.equal(line?.event, "finalize_queued");
    assert.equal(line?.object, o.name);
  });

  it("takes a structured-mode CloudEvent, and a duplicate of it is acknowledged as one", async () => {
    const { o, resource } = await uploadObject("payments", 2);
    const event = {
      specversion: "1.0",
      type: FINALIZED_EVENT_TYPE,
      source: "//storage.googleapis.com/projects/_/buckets/landing",
      subject: `objects/${o.name}`,
      id: "2002",
      time: new Date().toISOString(),
      datacontenttype: "application/json",
      data: resource,
    };
    for (let i = 0; i < 2; i++) {
      const response = await fetch(finalizeUrl, {
        method: "POST",
        headers: { "content-type": "application/cloudevents+json" },
        body: JSON.stringify(event),
      });
      assert.ok(response.ok, `${response.status}`);
    }
    const outcomes = logged.filter((l) => l.event_id === "2002").map((l) => l.event);
    assert.deepEqual(outcomes, ["finalize_queued", "finalize_duplicate"]);
  });

  it("answers 500 when the work fails, so Eventarc retries", async () => {
    const { o, resource } = await uploadObject("payments", 3);
    failNext = true;
    const headers = {
      "content-type": "application/json",
      "ce-specversion": "1.0",
      "ce-type": FINALIZED_EVENT_TYPE,
      "ce-source": "//storage.googleapis.com/projects/_/buckets/landing",
      "ce-subject": `objects/${o.name}`,
      "ce-id": "3003",
    };
    const first = await fetch(finalizeUrl, { method: "POST", headers, body: JSON.stringify(resource) });
    assert.equal(first.status, 500);
    const retry = await fetch(finalizeUrl, { method: "POST", headers, body: JSON.stringify(resource) });
    assert.ok(retry.ok);
    assert.equal(logged.find((l) => l.event_id === "3003")?.event, "finalize_queued");
  });

  it("ignores other event types without retrying them", async () => {
    const response = await fetch(finalizeUrl, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "ce-specversion": "1.0",
        "ce-type": "google.cloud.storage.object.v1.deleted",
        "ce-source": "//storage.googleapis.com/projects/_/buckets/landing",
        "ce-id": "4004",
      },
      body: JSON.stringify({ bucket: "landing", name: "x" }),
    });
    assert.ok(response.ok);
    assert.equal(logged.find((l) => l.id === "4004")?.event, "event_ignored");
  });

  describe("a malformed event is acknowledged (2xx, never retried), logged once naming the problem, and counted", () => {
    let nextId = 5000;

    function binary(
      id: string,
      body: string | undefined,
      contentType = "application/json",
    ): Promise<Response> {
      return fetch(finalizeUrl, {
        method: "POST",
        headers: {
          ...(body === undefined ? {} : { "content-type": contentType }),
          "ce-specversion": "1.0",
          "ce-type": FINALIZED_EVENT_TYPE,
          "ce-source": "//storage.googleapis.com/projects/_/buckets/landing",
          "ce-id": id,
        },
        ...(body === undefined ? {} : { body }),
      });
    }

    function structured(id: string, data: Record<string, unknown>): Promise<Response> {
      return fetch(finalizeUrl, {
        method: "POST",
        headers: { "content-type": "application/cloudevents+json" },
        body: JSON.stringify({
          specversion: "1.0",
          type: FINALIZED_EVENT_TYPE,
          source: "//storage.googleapis.com/projects/_/buckets/landing",
          id,
          datacontenttype: "application/json",
          ...data,
        }),
      });
    }

    async function expectMalformed(send: (id: string) => Promise<Response>, problem: RegExp): Promise<void> {
      const id = String(nextId++);
      const before = counters.malformed;
      const response = await send(id);
      assert.ok(response.ok, `${response.status} ${await response.text()}`);
      const lines = logged.filter((l) => l.id === id || l.event_id === id);
      assert.equal(lines.length, 1, JSON.stringify(lines));
      assert.equal(lines[0]!.event, "event_malformed");
      assert.equal(lines[0]!.severity, "ERROR");
      assert.match(String(lines[0]!.problem), problem);
      assert.equal(counters.malformed, before + 1);
    }

    const good = { bucket: "landing", name: "logs/analytics/x.gz", generation: "1" };

    it("binary mode: data that is not an object, or lacks or mangles name, bucket or generation", async () => {
      await expectMalformed((id) => binary(id, "[1,2]"), /data is not a JSON object/);
      await expectMalformed((id) => binary(id, "{}"), /data\.name is missing/);
      await expectMalformed((id) => binary(id, JSON.stringify({ name: "a" })), /data\.bucket is missing/);
      await expectMalformed((id) => binary(id, JSON.stringify({ ...good, name: "" })), /data\.name/);
      await expectMalformed((id) => binary(id, JSON.stringify({ ...good, name: 7 })), /data\.name/);
      await expectMalformed((id) => binary(id, JSON.stringify({ ...good, bucket: "" })), /data\.bucket/);
      await expectMalformed(
        (id) => binary(id, JSON.stringify({ ...good, bucket: "Not A Bucket" })),
        /data\.bucket/,
      );
      await expectMalformed(
        (id) => binary(id, JSON.stringify({ ...good, generation: undefined })),
        /data\.generation is missing/,
      );
      await expectMalformed(
        (id) => binary(id, JSON.stringify({ ...good, generation: "abc" })),
        /data\.generation/,
      );
      await expectMalformed(
        (id) => binary(id, JSON.stringify({ ...good, metadata: "logarchive" })),
        /data\.metadata/,
      );
    });

    it("binary mode: names no GCS object can have (unpaired surrogate, newline, over 1024 bytes)", async () => {
      await expectMalformed(
        (id) => binary(id, `{"bucket":"landing","generation":"1","name":"a\\ud800"}`),
        /UTF-8/,
      );
      await expectMalformed((id) => binary(id, JSON.stringify({ ...good, name: "a\nb" })), /newline/);
      await expectMalformed(
        (id) => binary(id, JSON.stringify({ ...good, name: "a".repeat(1025) })),
        /1024 bytes/,
      );
    });

    it("structured mode: no data, data that is text, data without name or bucket", async () => {
      await expectMalformed((id) => structured(id, {}), /data is missing/);
      await expectMalformed((id) => structured(id, { data: "not json" }), /data is not a JSON object/);
      await expectMalformed((id) => structured(id, { data: { size: "3" } }), /data\.name is missing/);
      await expectMalformed((id) => structured(id, { data: { name: "n" } }), /data\.bucket is missing/);
    });

    it("binary mode: a body that is not JSON at all", {
      todo: "the functions-framework answers before the function runs (400 for bad JSON, 500 for an empty or text body); Eventarc always sends application/json",
    }, async () => {
      await expectMalformed((id) => binary(id, "{not json"), /not JSON/);
      await expectMalformed((id) => binary(id, "plain text", "text/plain"), /not JSON/);
      await expectMalformed((id) => binary(id, undefined), /data is missing/);
    });

    it("a name outside the key layout is quarantined once and acknowledged", async () => {
      const name = "uploads/by-hand/notes.txt";
      const file = storage.bucket("landing").file(name);
      await file.save("hello\n", { resumable: false });
      const [resource] = await file.getMetadata();
      const id = String(nextId++);
      const response = await binary(id, JSON.stringify(resource));
      assert.ok(response.ok, `${response.status}`);
      const lines = logged.filter((l) => l.event_id === id);
      assert.deepEqual(
        lines.map((l) => l.event),
        ["finalize_quarantined"],
      );
      assert.match(String(lines[0]!.detail), /too few parts/);
      assert.equal(await loader.state.exists(markerPaths.quarantined(objectId(name))), true);
      const again = await binary(String(nextId++), JSON.stringify(resource));
      assert.ok(again.ok, `${again.status}`);
    });
  });

  it("the flush function loads the queue and reports per table", async () => {
    const response = await fetch(`${flushUrl}?force=true`, { method: "POST" });
    assert.equal(response.status, 200);
    const body = (await response.json()) as {
      tables: { table: string; status: string; rows?: number }[];
      plan: { windowSeconds: number };
    };
    const shared = body.tables.find((t) => t.table === "logarchive.container_logs");
    assert.equal(shared?.status, "loaded");
    assert.equal(shared?.rows, 12, "three objects of four records");
    assert.equal(body.plan.windowSeconds, 60);
  });
});
