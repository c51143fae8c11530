// Local Eventarc delivers GCS finalize events to a real functions-framework server in the
// wire format Eventarc uses, at least once: failures and refused connections are retried
// with the same event id.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { type CloudEvent, cloudEvent } from "@google-cloud/functions-framework";
import { getTestServer } from "@google-cloud/functions-framework/testing";
import { Storage } from "@google-cloud/storage";
import { waitFor } from "../shipper/test_support/harness.ts";
import {
  cloudEventRequest,
  EventarcDelivery,
  type EventarcDeliveryOptions,
  encodeHeaderValue,
  STORAGE_FINALIZED,
  type StorageObjectData,
  storageEventId,
  storageFinalizedEvent,
} from "./eventarc.ts";
import { type GcsObjectResource, type LocalGcs, startLocalGcs } from "./gcs/server.ts";

const BUCKET = "logarchive-landing";

async function listen(server: Server, port = 0): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

let functionCount = 0;

/** Registers `handler` with functions-framework, as the loader function registers itself. */
function registerFunction(handler: (event: CloudEvent<StorageObjectData>) => void | Promise<void>) {
  const name = `eventarcTest${++functionCount}`;
  const events: CloudEvent<StorageObjectData>[] = [];
  cloudEvent<StorageObjectData>(name, async (event: CloudEvent<StorageObjectData>) => {
    events.push(event);
    await handler(event);
  });
  return { name, events };
}

/** A functions-framework server running `handler` on a free port. */
async function startFunction(
  handler: (event: CloudEvent<StorageObjectData>) => void | Promise<void>,
): Promise<{ url: string; server: Server; events: CloudEvent<StorageObjectData>[] }> {
  const { name, events } = registerFunction(handler);
  const server = getTestServer(name);
  return { url: await listen(server), server, events };
}

describe("local Eventarc delivery", () => {
  let dir: string;
  let gcs: LocalGcs;
  let storage: Storage;
  const finalized: GcsObjectResource[] = [];
  // The delivery under test for the next upload; the local GCS hands it each finalize.
  let current: EventarcDelivery | undefined;
  const servers: Server[] = [];
  const deliveries: EventarcDelivery[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logarchive-eventarc-"));
    gcs = await startLocalGcs({
      dataDir: dir,
      onFinalize: (object) => {
        finalized.push(object);
        current?.deliver(object);
      },
    });
    storage = new Storage({ apiEndpoint: gcs.url, projectId: "logarchive-local" });
    await storage.createBucket(BUCKET);
  });

  after(async () => {
    for (const d of deliveries) await d.stop();
    for (const s of servers) await close(s);
    await gcs?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  function delivery(options: EventarcDeliveryOptions): EventarcDelivery {
    const d = new EventarcDelivery({ initialBackoffMs: 20, maxBackoffMs: 200, ...options });
    deliveries.push(d);
    current = d;
    return d;
  }

  async function upload(name: string): Promise<GcsObjectResource> {
    const count = finalized.length;
    await storage
      .bucket(BUCKET)
      .file(name)
      .save(gzipSync('{"message":"x"}\n'), {
        resumable: false,
        metadata: {
          contentType: "application/x-ndjson",
          contentEncoding: "gzip",
          metadata: { "logarchive-records": "1", "logarchive-sha256": "a".repeat(64) },
        },
      });
    await waitFor("the finalize", () => finalized.length > count);
    return finalized.at(-1)!;
  }

  for (const mode of ["binary", "structured"] as const) {
    it(`delivers google.cloud.storage.object.v1.finalized in ${mode} mode to functions-framework`, async () => {
      const fn = await startFunction(() => {});
      servers.push(fn.server);
      const d = delivery({ target: fn.url, mode });
      const name = `logs/analytics/namespace=web/dt=2026-11-21/hour=10/${mode} é.ndjson.gz`;
      const object = await upload(name);
      await d.idle();
      assert.equal(fn.events.length, 1);
      const event = fn.events[0]!;
      assert.equal(event.specversion, "1.0");
      assert.equal(event.type, STORAGE_FINALIZED);
      assert.equal(event.source, `//storage.googleapis.com/projects/_/buckets/${BUCKET}`);
      // Headers carry the name percent-encoded (CloudEvents HTTP binding); JSON carries it as is.
      assert.equal(
        event.subject,
        mode === "binary" ? encodeHeaderValue(`objects/${name}`) : `objects/${name}`,
      );
      assert.equal(event.id, storageEventId(object));
      assert.match(event.id, /^\d{1,16}$/);
      assert.equal(event.time, object.updated);
      assert.equal((event as unknown as { bucket: string }).bucket, BUCKET);
      const data = event.data!;
      assert.deepEqual(data, { ...object, timeStorageClassUpdated: object.timeCreated });
      assert.equal(data.name, name);
      assert.equal(typeof data.size, "string");
      assert.equal(typeof data.generation, "string");
      assert.equal(data.contentEncoding, "gzip");
      assert.equal(data.metadata?.["logarchive-records"], "1");
      assert.ok(data.md5Hash && data.crc32c && data.etag);
      assert.deepEqual(d.stats(), {
        received: 1,
        delivered: 1,
        attempts: 1,
        retries: 0,
        dropped: 0,
        abandoned: 0,
        queued: 0,
        inFlight: 0,
      });
    });
  }

  it("retries a handler that throws, with the same event id, until it succeeds", async () => {
    let failuresLeft = 2;
    const fn = await startFunction(() => {
      if (failuresLeft-- > 0) throw new Error("BigQuery is having a bad day");
    });
    servers.push(fn.server);
    const d = delivery({ target: fn.url });
    const object = await upload("logs/analytics/namespace=web/retried.ndjson.gz");
    await d.idle();
    assert.equal(fn.events.length, 3);
    assert.deepEqual(new Set(fn.events.map((e) => e.id)), new Set([storageEventId(object)]));
    const stats = d.stats();
    assert.equal(stats.attempts, 3);
    assert.equal(stats.retries, 2);
    assert.equal(stats.delivered, 1);
  });

  it("retries while the function is not listening yet", async () => {
    const { name, events } = registerFunction(() => {});
    const server = getTestServer(name);
    servers.push(server);
    // A port that was free a moment ago, so connections are refused until the server takes it.
    const port = Number(new URL(await listen(server)).port);
    await close(server);
    const d = delivery({ target: `http://127.0.0.1:${port}/` });
    await upload("logs/analytics/namespace=web/early.ndjson.gz");
    await waitFor("refused attempts", () => d.stats().retries >= 2);
    assert.equal(d.stats().delivered, 0);
    await listen(server, port);
    await d.idle();
    assert.equal(events.length, 1);
    assert.equal(d.stats().delivered, 1);
  });

  it("with duplicate: true, delivers every event twice with one id", async () => {
    const fn = await startFunction(() => {});
    servers.push(fn.server);
    const d = delivery({ target: fn.url, duplicate: true });
    await upload("logs/analytics/namespace=web/twice.ndjson.gz");
    await d.idle();
    assert.equal(fn.events.length, 2);
    assert.equal(fn.events[0]!.id, fn.events[1]!.id);
    assert.equal(d.stats().delivered, 2);
  });

  it("drops an event after maxAttempts, and stop() abandons pending retries", async () => {
    const fn = await startFunction(() => {
      throw new Error("always");
    });
    servers.push(fn.server);
    const once = delivery({ target: fn.url, maxAttempts: 1 });
    await upload("logs/analytics/namespace=web/dropped.ndjson.gz");
    await once.idle();
    assert.equal(once.stats().dropped, 1);
    assert.equal(fn.events.length, 1);

    const forever = delivery({ target: fn.url, initialBackoffMs: 60_000, maxBackoffMs: 60_000 });
    await upload("logs/analytics/namespace=web/abandoned.ndjson.gz");
    await waitFor("the first failure", () => forever.stats().retries === 1);
    await forever.stop();
    await forever.idle();
    assert.equal(forever.stats().abandoned, 1);
    assert.equal(forever.stats().queued, 0);
  });

  it("formats both content modes from one event", () => {
    const object = {
      kind: "storage#object",
      id: `${BUCKET}/a "b"%/1`,
      selfLink: "http://x",
      mediaLink: "http://x",
      name: 'a "b"%',
      bucket: BUCKET,
      generation: "1",
      metageneration: "1",
      contentType: "application/x-ndjson",
      size: "3",
      md5Hash: "m",
      crc32c: "c",
      etag: "e",
      timeCreated: "2026-11-21T10:00:00.000Z",
      updated: "2026-11-21T10:00:00.000Z",
      storageClass: "STANDARD",
    } satisfies GcsObjectResource;
    const event = storageFinalizedEvent(object);
    const binary = cloudEventRequest(event, "binary");
    assert.equal(binary.headers["ce-subject"], "objects/a%20%22b%22%25");
    assert.equal(binary.headers["ce-type"], STORAGE_FINALIZED);
    assert.equal(binary.headers["content-type"], "application/json");
    assert.deepEqual(JSON.parse(binary.body), event.data);
    const structured = cloudEventRequest(event, "structured");
    assert.match(structured.headers["content-type"]!, /^application\/cloudevents\+json/);
    assert.deepEqual(JSON.parse(structured.body), event);
  });
});
