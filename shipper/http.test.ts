import assert from "node:assert/strict";
import { request } from "node:http";
import { describe, it } from "node:test";
import { Gauge, Registry } from "prom-client";
import { type ShipperHealth, startShipperHttp } from "./http.ts";
import { ShipperMetrics } from "./metrics.ts";

function fixture(health: () => ShipperHealth = () => ({ live: true, ready: true, detail: {} })) {
  const metrics = new ShipperMetrics({ defaultMetrics: false });
  return startShipperHttp({ host: "127.0.0.1", port: 0, registry: metrics.registry, health }).then(
    (http) => ({
      http,
      metrics,
    }),
  );
}

describe("shipper HTTP server", () => {
  it("serves the registry as Prometheus text with the registry's content type", async () => {
    const { http, metrics } = await fixture();
    try {
      metrics.bytesRead.inc(1234);
      metrics.records.inc({ namespace: "payments" }, 3);
      const res = await fetch(`${http.url}/metrics`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), metrics.registry.contentType);
      assert.match(res.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
      const text = await res.text();
      assert.match(text, /^logarchive_shipper_read_bytes_total 1234$/m);
      assert.match(text, /^logarchive_shipper_records_total\{namespace="payments"\} 3$/m);
      assert.match(text, /^# TYPE logarchive_shipper_spool_bytes gauge$/m);
    } finally {
      await http.stop();
    }
  });

  it("answers /healthz 200 with the detail while live and 503 when not", async () => {
    let live = true;
    const { http } = await fixture(() => ({ live, ready: false, detail: { files: 7, status: "ignored" } }));
    try {
      const ok = await fetch(`${http.url}/healthz`);
      assert.equal(ok.status, 200);
      assert.match(ok.headers.get("content-type")!, /^application\/json/);
      assert.deepEqual(await ok.json(), { status: "ok", files: 7 });
      live = false;
      const down = await fetch(`${http.url}/healthz`);
      assert.equal(down.status, 503);
      assert.deepEqual(await down.json(), { status: "unhealthy", files: 7 });
    } finally {
      await http.stop();
    }
  });

  it("answers /readyz by readiness alone, independent of liveness", async () => {
    let ready = false;
    const { http } = await fixture(() => ({ live: true, ready, detail: { phase: "starting" } }));
    try {
      const notReady = await fetch(`${http.url}/readyz`);
      assert.equal(notReady.status, 503);
      assert.deepEqual(await notReady.json(), { status: "not ready", phase: "starting" });
      assert.equal((await fetch(`${http.url}/healthz`)).status, 200);
      ready = true;
      const res = await fetch(`${http.url}/readyz?verbose`);
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as { status: string }).status, "ready");
    } finally {
      await http.stop();
    }
  });

  it("reports a throwing health callback as 503 with the error, and keeps serving", async () => {
    const { http } = await fixture(() => {
      throw new Error("loop wedged");
    });
    try {
      const res = await fetch(`${http.url}/healthz`);
      assert.equal(res.status, 503);
      assert.deepEqual(await res.json(), { status: "unhealthy", error: "loop wedged" });
      assert.equal((await fetch(`${http.url}/readyz`)).status, 503);
      assert.equal((await fetch(`${http.url}/metrics`)).status, 200);
    } finally {
      await http.stop();
    }
  });

  it("answers 500 when collecting a metric fails", async () => {
    const registry = new Registry();
    new Gauge({
      name: "broken",
      help: "throws on collect",
      registers: [registry],
      collect() {
        throw new Error("collector failed");
      },
    });
    const http = await startShipperHttp({
      host: "127.0.0.1",
      port: 0,
      registry,
      health: () => ({ live: true, ready: true, detail: {} }),
    });
    try {
      const res = await fetch(`${http.url}/metrics`);
      assert.equal(res.status, 500);
      assert.match(await res.text(), /collector failed/);
    } finally {
      await http.stop();
    }
  });

  it("answers 404 for unknown paths and 405 for other methods on known ones", async () => {
    const { http } = await fixture();
    try {
      for (const path of ["/", "/metricsx", "/healthz/extra", "/favicon.ico"]) {
        const res = await fetch(`${http.url}${path}`);
        assert.equal(res.status, 404, path);
        await res.body?.cancel();
      }
      const post = await fetch(`${http.url}/metrics`, { method: "POST", body: "x" });
      assert.equal(post.status, 405);
      assert.equal(post.headers.get("allow"), "GET, HEAD");
      await post.body?.cancel();
      const head = await fetch(`${http.url}/healthz`, { method: "HEAD" });
      assert.equal(head.status, 200);
      assert.equal(await head.text(), "");
    } finally {
      await http.stop();
    }
  });

  it("picks a distinct free port for port 0 and rejects a port in use", async () => {
    const a = await fixture();
    const b = await fixture();
    try {
      assert.ok(a.http.port > 0 && b.http.port > 0);
      assert.notEqual(a.http.port, b.http.port);
      assert.equal(a.http.url, `http://127.0.0.1:${a.http.port}`);
      await assert.rejects(
        startShipperHttp({
          host: "127.0.0.1",
          port: a.http.port,
          registry: new Registry(),
          health: () => ({ live: true, ready: true, detail: {} }),
        }),
        { code: "EADDRINUSE" },
      );
    } finally {
      await a.http.stop();
      await b.http.stop();
    }
  });

  it("stops promptly despite an idle keep-alive connection, then refuses connections", async () => {
    const { http } = await fixture();
    // fetch keeps the connection open in its pool after the response.
    const res = await fetch(`${http.url}/healthz`);
    assert.equal(res.status, 200);
    await res.text();
    const started = performance.now();
    await http.stop();
    assert.ok(performance.now() - started < 1000, "stop() waited for the idle keep-alive socket");
    await assert.rejects(fetch(`${http.url}/healthz`));
    await http.stop(); // a second stop is harmless
  });

  it("lets a request in flight finish when stopped", async () => {
    const registry = new Registry();
    let collecting!: () => void;
    const started = new Promise<void>((resolve) => {
      collecting = resolve;
    });
    new Gauge({
      name: "slow",
      help: "takes 200ms to collect",
      registers: [registry],
      async collect() {
        collecting();
        await new Promise((resolve) => setTimeout(resolve, 200));
        this.set(1);
      },
    });
    const http = await startShipperHttp({
      host: "127.0.0.1",
      port: 0,
      registry,
      health: () => ({ live: true, ready: true, detail: {} }),
    });
    // A keep-alive agent, as Prometheus uses, so the socket would stay open after the response.
    const body = new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(`${http.url}/metrics`, { headers: { connection: "keep-alive" } }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          text += chunk;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on("error", reject);
      req.end();
    });
    await started;
    const stopStarted = performance.now();
    await http.stop();
    const res = await body;
    assert.equal(res.status, 200);
    assert.match(res.text, /^slow 1$/m);
    assert.ok(performance.now() - stopStarted < 1500, "stop() did not close the finished connection");
  });
});
