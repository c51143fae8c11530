// The shipper's HTTP endpoints: /metrics for Prometheus, /healthz for the liveness probe
// and /readyz for the readiness probe. Plain node:http, no framework: three routes.
//
// /healthz answers 503 only when the process should be restarted (the shipper's loop is
// wedged); /readyz answers 503 while the shipper cannot make progress (starting up,
// draining). A DaemonSet's rolling update waits for /readyz, so a shipper that cannot
// start stops the rollout instead of spreading to every node.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

export interface ShipperHealth {
  live: boolean;
  ready: boolean;
  /** Merged into the JSON body of /healthz and /readyz; for humans, not for probes. */
  detail: Record<string, unknown>;
}

export interface ShipperHttpOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  registry: Registry;
  health: () => ShipperHealth;
}

export interface ShipperHttp {
  /** Where a client on this machine reaches the server (a wildcard host becomes loopback). */
  url: string;
  port: number;
  /** Stops accepting, closes idle keep-alive sockets, lets requests in flight finish (briefly). */
  stop(): Promise<void>;
}

/** How long stop() lets requests in flight finish before their sockets are destroyed. */
const STOP_GRACE_MS = 2000;

export function startShipperHttp(options: ShipperHttpOptions): Promise<ShipperHttp> {
  const state = { stopping: false };
  const server = createServer((req, res) => {
    handle(options, state, req, res).catch((error: unknown) => {
      if (!res.headersSent) {
        send(
          state,
          res,
          500,
          "text/plain; charset=utf-8",
          `internal error: ${describe(error)}\n`,
          req.method,
        );
      } else {
        res.destroy();
      }
    });
  });
  // Probes and scrapes are small and frequent; a stuck client must not hold a socket long.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;

  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      const port = (server.address() as AddressInfo).port;
      resolve({
        url: `http://${urlHost(options.host)}:${port}`,
        port,
        stop: () => {
          state.stopping = true;
          return stop(server);
        },
      });
    });
  });
}

interface State {
  /** Set by stop(): responses still being written then close their socket instead of keeping it alive. */
  stopping: boolean;
}

async function handle(
  options: ShipperHttpOptions,
  state: State,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const path = new URL(req.url ?? "/", "http://localhost").pathname;
  const text = "text/plain; charset=utf-8";
  switch (path) {
    case "/metrics":
    case "/healthz":
    case "/readyz":
      break;
    default:
      send(state, res, 404, text, "not found; try /metrics, /healthz or /readyz\n", req.method);
      return;
  }
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.setHeader("allow", "GET, HEAD");
    send(state, res, 405, text, "method not allowed\n", req.method);
    return;
  }
  if (path === "/metrics") {
    const body = await options.registry.metrics();
    send(state, res, 200, options.registry.contentType, body, req.method);
    return;
  }
  const h = safeHealth(options.health);
  const [ok, good, bad] = path === "/healthz" ? [h.live, "ok", "unhealthy"] : [h.ready, "ready", "not ready"];
  const body: Record<string, unknown> = { status: "", ...h.detail };
  body.status = ok ? good : bad; // the probe's verdict wins over a `status` key in the detail
  send(
    state,
    res,
    ok ? 200 : 503,
    "application/json; charset=utf-8",
    `${JSON.stringify(body)}\n`,
    req.method,
  );
}

/** A health callback that throws is reported as not live and not ready, with the error. */
function safeHealth(health: () => ShipperHealth): ShipperHealth {
  try {
    return health();
  } catch (error) {
    return { live: false, ready: false, detail: { error: describe(error) } };
  }
}

function send(
  state: State,
  res: ServerResponse,
  code: number,
  type: string,
  body: string,
  method: string | undefined,
): void {
  res.statusCode = code;
  res.setHeader("content-type", type);
  res.setHeader("cache-control", "no-store");
  res.setHeader("content-length", Buffer.byteLength(body));
  if (state.stopping) res.setHeader("connection", "close");
  res.end(method === "HEAD" ? undefined : body);
}

function stop(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    const force = setTimeout(() => server.closeAllConnections(), STOP_GRACE_MS);
    force.unref();
    server.close((error) => {
      clearTimeout(force);
      // ERR_SERVER_NOT_RUNNING: stop() called twice; the server is stopped either way.
      if (error && (error as NodeJS.ErrnoException).code !== "ERR_SERVER_NOT_RUNNING") reject(error);
      else resolve();
    });
    server.closeIdleConnections();
  });
}

function urlHost(host: string): string {
  if (host === "" || host === "0.0.0.0") return "127.0.0.1";
  if (host === "::") return "[::1]";
  return host.includes(":") ? `[${host}]` : host;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
