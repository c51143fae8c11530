// Test support: an HTTP proxy in front of a local S3 endpoint that lets a test see every request
// a child process sends and stop one before it reaches S3, so the test can crash the process at
// an exact point of its protocol (for example: its parts are stored, its manifest PUT is not)
// instead of guessing when that point comes.

import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface GatedRequest {
  method: string;
  /** The path-style key, decoded: the path without the bucket. */
  key: string;
  query: URLSearchParams;
}

export interface S3RequestGate {
  endpoint: string;
  /** Requests forwarded so far, in order. */
  forwarded: GatedRequest[];
  /**
   * The first request for which `match` holds is held, not forwarded: the promise resolves with
   * it, and that request is never answered (its connection is cut at stop()).
   */
  holdFirst(match: (r: GatedRequest) => boolean): Promise<GatedRequest>;
  stop(): Promise<void>;
}

export async function startS3RequestGate(upstream: string): Promise<S3RequestGate> {
  const target = new URL(upstream);
  const forwarded: GatedRequest[] = [];
  const held: IncomingMessage[] = [];
  let hold: { match: (r: GatedRequest) => boolean; resolve: (r: GatedRequest) => void } | undefined;

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://gate");
    const [, , ...rest] = url.pathname.split("/");
    const seen: GatedRequest = {
      method: req.method ?? "GET",
      key: decodeURIComponent(rest.join("/")),
      query: url.searchParams,
    };
    if (hold?.match(seen)) {
      const { resolve } = hold;
      hold = undefined;
      held.push(req);
      resolve(seen);
      return;
    }
    forwarded.push(seen);
    const out = request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: target.host },
      },
      (from) => {
        res.writeHead(from.statusCode ?? 502, from.headers);
        from.pipe(res);
      },
    );
    out.on("error", (error) => {
      if (!res.headersSent) res.writeHead(502);
      res.end(String(error));
    });
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    forwarded,
    holdFirst: (match) =>
      new Promise((resolve) => {
        hold = { match, resolve };
      }),
    stop: async () => {
      for (const req of held) req.socket.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
