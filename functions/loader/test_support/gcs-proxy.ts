// A pass-through HTTP proxy in front of the local GCS, for the loader's tests and benchmark:
// it counts each request by GCS's pricing class, and can forward a request but drop its
// response (the client then sees a reset connection and retries, as on a real network).
//
//   const proxy = await startGcsProxy(gcs.url);
//   new Storage({ apiEndpoint: proxy.url, projectId: "test" });

import { createServer, type IncomingMessage, request } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * GCS operation classes as billed (cloud.google.com/storage/pricing#operations-by-class):
 * A = inserts, lists, copies/rewrites, patches; B = gets (metadata and media); free = deletes.
 */
export type OperationClass = "A" | "B" | "free";

export interface ProxiedRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  query: URLSearchParams;
  operationClass: OperationClass;
}

export interface GcsProxy {
  url: string;
  readonly counts: Record<OperationClass, number>;
  resetCounts(): void;
  /** Every request since recording was turned on (off by default: a benchmark sends many). */
  readonly requests: ProxiedRequest[];
  /** The most requests in flight at once (received, response not yet sent) since recording was turned on. */
  readonly peakInFlight: number;
  record(on: boolean): void;
  /**
   * The next request `matches` accepts is forwarded (the server acts on it), but its response
   * is never sent: the client's socket is destroyed. Resolves once that has happened.
   */
  dropResponseOnce(matches: (r: ProxiedRequest) => boolean): Promise<ProxiedRequest>;
  /**
   * A crash at step n: the next `n` requests go through, and every one after them is refused
   * (403, never forwarded, so the server does nothing) until `failAfter(null)`. 403 is not retried
   * by the client, so the caller stops where a process that died at that step would have.
   */
  failAfter(n: number | null): void;
  stop(): Promise<void>;
}

export function operationClassOf(method: string, path: string): OperationClass {
  if (method === "DELETE") return "free";
  if (method === "GET" || method === "HEAD") {
    // objects.list is GET /storage/v1/b/<bucket>/o: class A; a get names an object after /o/.
    return /^\/storage\/v1\/b\/[^/]+\/o\/?$/.test(path) || /^\/storage\/v1\/b\/?$/.test(path) ? "A" : "B";
  }
  return "A";
}

export interface GcsProxyOptions {
  /**
   * Holds every request this long before forwarding it, as a network round trip to GCS would
   * (benchmarks: a run whose time is waiting on latency, as on GCS, rather than on this machine's CPU).
   */
  latencyMs?: number;
}

export async function startGcsProxy(upstream: string, options: GcsProxyOptions = {}): Promise<GcsProxy> {
  const latencyMs = options.latencyMs ?? 0;
  const target = new URL(upstream);
  const counts: Record<OperationClass, number> = { A: 0, B: 0, free: 0 };
  const requests: ProxiedRequest[] = [];
  let recording = false;
  let inFlight = 0;
  let peakInFlight = 0;
  const drops: { matches: (r: ProxiedRequest) => boolean; done: (r: ProxiedRequest) => void }[] = [];
  /** Requests still let through before the injected crash; null: no crash armed. */
  let passesLeft: number | null = null;
  const server = createServer((req: IncomingMessage, res) => {
    if (passesLeft !== null && passesLeft-- <= 0) {
      req.resume();
      const body = JSON.stringify({
        error: { code: 403, message: "injected crash (test proxy)", errors: [{ reason: "forbidden" }] },
      });
      res.writeHead(403, { "content-type": "application/json" }).end(body);
      return;
    }
    const url = new URL(req.url ?? "/", "http://proxy");
    const method = req.method ?? "GET";
    const proxied: ProxiedRequest = {
      method,
      path: url.pathname,
      query: url.searchParams,
      operationClass: operationClassOf(method, url.pathname),
    };
    counts[proxied.operationClass]++;
    if (recording) requests.push(proxied);
    inFlight++;
    if (recording) peakInFlight = Math.max(peakInFlight, inFlight);
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      inFlight--;
    };
    res.on("close", end);
    req.socket.on("close", end);
    const dropAt = drops.findIndex((d) => d.matches(proxied));
    const drop = dropAt < 0 ? undefined : drops.splice(dropAt, 1)[0];
    const forward = () => {
      const upstreamReq = request(
        {
          host: target.hostname,
          port: target.port,
          method,
          path: req.url,
          headers: req.headers,
        },
        (upstreamRes) => {
          if (drop !== undefined) {
            // The server committed the request; the client never hears of it.
            upstreamRes.resume();
            upstreamRes.on("end", () => {
              req.socket.destroy();
              drop.done(proxied);
            });
            return;
          }
          res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
          upstreamRes.pipe(res);
        },
      );
      upstreamReq.on("error", () => req.socket.destroy());
      req.pipe(upstreamReq);
    };
    if (latencyMs > 0) setTimeout(forward, latencyMs);
    else forward();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    counts,
    requests,
    get peakInFlight() {
      return peakInFlight;
    },
    record(on) {
      recording = on;
      if (on) {
        requests.length = 0;
        peakInFlight = 0;
      }
    },
    resetCounts() {
      counts.A = 0;
      counts.B = 0;
      counts.free = 0;
    },
    dropResponseOnce(matches) {
      return new Promise((done) => drops.push({ matches, done }));
    },
    failAfter(n) {
      passesLeft = n;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
