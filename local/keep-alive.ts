// Keep-alive for the local servers. The whole local pipeline shares one event loop with its
// servers, and the SDKs' agents keep idle connections with no timeout of their own. When the
// loop pauses (a load, a big gzip, a busy machine) past a server's keep-alive (Node: 5 s,
// +1 s), the server's timer and a client's due request run in the same turn: the server
// closes the connection the client has just written to, and the client gets ECONNRESET
// ("socket hang up"). Idle connections are left open much longer than any client pauses
// between requests, so they are reused long before a server would close them.

import type { Server } from "node:http";

export const LOCAL_KEEP_ALIVE_MS = 65_000;

export function keepIdleConnections(server: Server): void {
  server.keepAliveTimeout = LOCAL_KEEP_ALIVE_MS;
}
