// docs/loader.md describes the load jobs the loader starts: this checks its opening description
// against the load configuration the BigQuery adapter actually sends (through the REST fake).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { BigQueryWarehouse } from "../warehouse/bigquery.ts";
import {
  type FakeBigQuery,
  fakeBigQueryClient,
  startFakeBigQuery,
} from "../warehouse/test_support/fake-bigquery.ts";

const PROJECT = "logarchive-docs";

/** The paragraph of docs/loader.md that describes the load jobs. */
function loadJobParagraph(): string {
  const doc = readFileSync(new URL("../../docs/loader.md", import.meta.url), "utf8");
  const start = doc.indexOf("Rows reach BigQuery only through **load jobs**");
  assert.ok(start >= 0, "docs/loader.md describes the load jobs");
  const end = doc.indexOf("\n\n", start);
  return doc.slice(start, end < 0 ? undefined : end).replace(/\s+/g, " ");
}

describe("docs/loader.md: the load jobs", () => {
  let fake: FakeBigQuery;
  let warehouse: BigQueryWarehouse;
  before(async () => {
    fake = await startFakeBigQuery();
    warehouse = new BigQueryWarehouse({
      projectId: PROJECT,
      location: "US",
      bigquery: fakeBigQueryClient(fake, PROJECT),
    });
  });
  after(async () => {
    await warehouse.close();
    await fake.stop();
  });

  it("names the format and dispositions the adapter sends, and says whether a schema is sent", async () => {
    const jobId = "logarchive_docs_a1";
    fake.scriptJob(jobId, { outputRows: 1 });
    await warehouse.insertLoadJob({
      jobId,
      destination: { dataset: "logs", table: "container_logs" },
      sourceUris: ["gs://landing/logs/analytics/namespace=a/dt=2026-11-21/hour=09/x.ndjson.gz"],
      labels: {},
    });
    const [insert] = fake.requestsTo("POST", `/bigquery/v2/projects/${PROJECT}/jobs`);
    assert.ok(insert !== undefined, "one jobs.insert");
    const load = (insert.body as { configuration: { load: Record<string, unknown> } }).configuration.load;
    const text = loadJobParagraph();
    for (const key of ["sourceFormat", "writeDisposition", "createDisposition"]) {
      const value = load[key];
      assert.equal(typeof value, "string", `${key} is sent`);
      assert.ok(text.includes(`\`${value}\``), `the paragraph names ${key} ${value}: ${text}`);
    }
    if ("schema" in load) {
      assert.doesNotMatch(text, /no schema/, "the adapter sends a schema");
    } else {
      assert.match(text, /\*\*no schema\*\*/, "the adapter sends no schema: the paragraph says so");
      assert.doesNotMatch(text, /the schema generated from/, "no claim that the job carries a schema");
    }
  });
});
