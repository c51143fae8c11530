import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { BigQuery } from "@google-cloud/bigquery";
import { type DryRunFront, startDryRunFront } from "./dry-run.ts";
import { type FakeBigQuery, fakeBigQueryClient, startFakeBigQuery } from "./fake-bigquery.ts";

let fake: FakeBigQuery;
let front: DryRunFront;
let bigquery: BigQuery;

const call = <T>(options: Parameters<BigQuery["request"]>[0]) =>
  new Promise<T>((resolve, reject) =>
    bigquery.request({ ...options, projectId: "p" }, (error, body) =>
      error ? reject(error) : resolve(body as T),
    ),
  );

before(async () => {
  fake = await startFakeBigQuery();
  front = await startDryRunFront(fake, ({ query }) => {
    if (query.includes("nosuch")) return null;
    return query.includes("timestamp >=") ? 2048 : 10 ** 12;
  });
  bigquery = fakeBigQueryClient({ ...fake, url: front.url }, "p");
});

after(async () => {
  await front.stop();
  await fake.stop();
});

describe("dry-run front for the fake BigQuery", () => {
  it("answers a dryRun jobs.query as BigQuery does: complete, no job ID, no rows, the bytes as an int64 string", async () => {
    const body = {
      query: "SELECT 1 FROM t WHERE timestamp >= @from",
      useLegacySql: false,
      dryRun: true,
      location: "EU",
    };
    const answer = await call<Record<string, unknown>>({ method: "POST", uri: "/queries", json: body });
    assert.deepEqual(answer, {
      kind: "bigquery#queryResponse",
      jobReference: { projectId: "p", location: "EU" },
      totalBytesProcessed: "2048",
      jobComplete: true,
      cacheHit: false,
    });
    assert.equal(front.dryRuns.length, 1);
    assert.equal(front.dryRuns[0]?.query, body.query);
    assert.equal(fake.requestsTo("POST", "/queries").length, 0, "a dry run never reaches the fake");
  });

  it("answers a dry run priced null with BigQuery's 404 notFound, as for a table that does not exist", async () => {
    await assert.rejects(
      call({ method: "POST", uri: "/queries", json: { query: "SELECT 1 FROM `p.d.nosuch`", dryRun: true } }),
      (error: { code?: number; errors?: { reason?: string }[] }) =>
        error.code === 404 && error.errors?.[0]?.reason === "notFound",
    );
    assert.equal(fake.requestsTo("POST", "/queries").length, 0);
  });

  it("passes every other request to the fake unchanged", async () => {
    fake.queueQueryResult({ fields: [{ name: "n", type: "INTEGER" }], rows: [["7"]] });
    const answer = await call<{ jobComplete: boolean; rows: { f: { v: string }[] }[] }>({
      method: "POST",
      uri: "/queries",
      json: { query: "SELECT 7 AS n", useLegacySql: false },
    });
    assert.equal(answer.jobComplete, true);
    assert.deepEqual(answer.rows, [{ f: [{ v: "7" }] }]);
    assert.equal(fake.requestsTo("POST", "/queries").length, 1);
    await assert.rejects(call({ method: "GET", uri: "/jobs/nosuch" }), { code: 404 });
  });
});
