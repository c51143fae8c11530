// Dry runs for the fake BigQuery (fake-bigquery.ts): a small HTTP front that answers a jobs.query
// request with `dryRun: true` the way BigQuery does, and passes every other request to the fake
// unchanged. BigQuery runs no job for a dry run: the answer comes at once, complete, with no rows and
// no job ID, and says in totalBytesProcessed what the query would bill (an int64, so a string). The
// bytes come from the test, which knows what its query should scan.
//
//   const fake = await startFakeBigQuery();
//   const front = await startDryRunFront(fake, ({ query }) => (query.includes("timestamp >=") ? 10 : 1e12));
//   const bigquery = fakeBigQueryClient({ ...fake, url: front.url }, "my-project");
//
// `bytesFor` answering null stands for a query on a table that does not exist: BigQuery's dry run fails
// then as the query would, 404 notFound.

import { createServer, type IncomingMessage, request, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { FakeBigQuery } from "./fake-bigquery.ts";

/** The parts of a jobs.query body a dry run is priced on. */
export interface DryRunRequest {
  query: string;
  queryParameters?: unknown[];
  location?: string;
}

export interface DryRunFront {
  url: string;
  /** Every dry-run request body, in order. */
  readonly dryRuns: DryRunRequest[];
  stop(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const QUERIES_PATH = /\/projects\/([^/]+)\/queries$/;

function isDryRunQuery(req: IncomingMessage, body: Buffer): DryRunRequest | null {
  if (req.method !== "POST" || !QUERIES_PATH.test(new URL(req.url ?? "/", "http://x").pathname)) return null;
  try {
    const parsed = JSON.parse(body.toString("utf8")) as Partial<DryRunRequest> & { dryRun?: unknown };
    return parsed.dryRun === true && typeof parsed.query === "string" ? (parsed as DryRunRequest) : null;
  } catch {
    return null;
  }
}

function forward(target: URL, req: IncomingMessage, body: Buffer, res: ServerResponse): void {
  const upstream = request(
    {
      host: target.hostname,
      port: target.port,
      method: req.method,
      path: req.url,
      headers: { ...req.headers, host: target.host, "content-length": String(body.length) },
    },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on("error", (error) => {
    res.writeHead(502, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: { code: 502, message: `dry-run front: ${error.message}` } }));
  });
  upstream.end(body);
}

/** Starts a front for `fake` on 127.0.0.1 that prices each dry run with `bytesFor` (null: no such table). */
export async function startDryRunFront(
  fake: Pick<FakeBigQuery, "url">,
  bytesFor: (request: DryRunRequest) => number | null,
): Promise<DryRunFront> {
  const target = new URL(fake.url);
  const dryRuns: DryRunRequest[] = [];
  const server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      const dryRun = isDryRunQuery(req, body);
      if (dryRun === null) {
        forward(target, req, body, res);
        return;
      }
      dryRuns.push(dryRun);
      const path = new URL(req.url ?? "/", "http://x").pathname;
      const projectId = decodeURIComponent(QUERIES_PATH.exec(path)?.[1] ?? "");
      const bytes = bytesFor(dryRun);
      if (bytes === null) {
        const message = `Not found: Table in the query ${JSON.stringify(dryRun.query)} was not found in location ${dryRun.location ?? "US"}`;
        res.writeHead(404, { "content-type": "application/json" });
        res.end(
          JSON.stringify({
            error: {
              code: 404,
              message,
              errors: [{ message, domain: "global", reason: "notFound" }],
              status: "NOT_FOUND",
            },
          }),
        );
        return;
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          kind: "bigquery#queryResponse",
          jobReference: {
            projectId,
            ...(dryRun.location === undefined ? {} : { location: dryRun.location }),
          },
          totalBytesProcessed: String(bytes),
          jobComplete: true,
          cacheHit: false,
        }),
      );
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    dryRuns,
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
