// loaderFromEnv's startup checks against the local GCS and the BigQuery REST fake: a landing bucket
// BigQuery cannot load from, or jobs sent to another location than the datasets', stop the function with
// one line naming the setting, before any event is handled.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Storage } from "@google-cloud/storage";
import { ConfigError } from "../../lib/config/errors.ts";
import { type LocalGcs, startLocalGcs } from "../../local/gcs/server.ts";
import { BigQueryWarehouse } from "../warehouse/bigquery.ts";
import {
  type FakeBigQuery,
  fakeBigQueryClient,
  startFakeBigQuery,
} from "../warehouse/test_support/fake-bigquery.ts";
import { loaderFromEnv } from "./from-env.ts";

const PROJECT = "proj";
const POLICY_YAML = `
archive: { prefix: logs, include: ["*"] }
analytics: { include: ["*"] }
warehouse:
  dataset: logs
  table: container_logs
  routes:
    - { namespaces: ["audit-*"], dataset: audit, table: "{namespace}" }
`;

describe("loaderFromEnv: location checks at startup (BigQuery)", () => {
  let dir: string;
  let gcs: LocalGcs;
  let fake: FakeBigQuery;
  let storage: Storage;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logarchive-from-env-"));
    gcs = await startLocalGcs({ dataDir: join(dir, "gcs"), port: 0, host: "127.0.0.1" });
    storage = new Storage({ apiEndpoint: gcs.url, projectId: "local" });
    await storage.createBucket("landing-eu", { location: "EU" });
    await storage.createBucket("landing-asia", { location: "ASIA" });
    await storage.createBucket("loader-state", { location: "EU" });
    fake = await startFakeBigQuery();
    fake.addDataset(PROJECT, "logs", "EU");
    fake.addDataset(PROJECT, "audit", "EU");
  });
  after(async () => {
    await fake.stop();
    await gcs.stop();
    await rm(dir, { recursive: true, force: true });
  });

  function start(env: Record<string, string>, log: (line: object) => void = () => {}) {
    const location = env.LOGARCHIVE_BIGQUERY_LOCATION ?? "EU";
    return loaderFromEnv(
      {
        LOGARCHIVE_STATE_BUCKET: "loader-state",
        LOGARCHIVE_POLICY_YAML: POLICY_YAML,
        LOGARCHIVE_BIGQUERY_PROJECT: PROJECT,
        LOGARCHIVE_BIGQUERY_LOCATION: location,
        LOGARCHIVE_GCS_ENDPOINT: gcs.url,
        ...env,
      },
      log,
      {
        warehouse: new BigQueryWarehouse({
          projectId: PROJECT,
          location,
          bigquery: fakeBigQueryClient(fake, PROJECT),
        }),
      },
    );
  }

  async function problemsOf(env: Record<string, string>): Promise<readonly string[]> {
    try {
      await start(env);
    } catch (error) {
      assert.ok(error instanceof ConfigError, String(error));
      return error.problems;
    }
    assert.fail("expected the loader to refuse to start");
  }

  it("starts when the bucket, the datasets and the job location agree, reading each dataset once", async () => {
    fake.requests.length = 0;
    const lines: object[] = [];
    const loader = await start({ LOGARCHIVE_LANDING_BUCKET: "landing-eu" }, (line) => lines.push(line));
    assert.equal(loader.config.landingBucket, "landing-eu");
    assert.ok(lines.some((l) => (l as { event?: string }).event === "loader_started"));
    assert.equal(fake.requestsTo("GET", `/projects/${PROJECT}/datasets/logs`).length, 1);
    assert.equal(
      fake.requestsTo("GET", `/projects/${PROJECT}/datasets/audit`).length,
      1,
      "{namespace} routes too",
    );
    await loader.close();
  });

  it("refuses a landing bucket in another location than the dataset, naming LOGARCHIVE_LANDING_BUCKET", async () => {
    const problems = await problemsOf({ LOGARCHIVE_LANDING_BUCKET: "landing-asia" });
    assert.equal(problems.length, 2, problems.join("\n")); // one per dataset
    assert.match(
      problems[0]!,
      /^LOGARCHIVE_LANDING_BUCKET: bucket landing-asia is in ASIA but dataset proj:logs is in EU/,
    );
    for (const p of problems) assert.ok(!p.includes("\n"), p);
  });

  it("refuses load jobs in another location than the datasets, naming LOGARCHIVE_BIGQUERY_LOCATION", async () => {
    const problems = await problemsOf({
      LOGARCHIVE_LANDING_BUCKET: "landing-eu",
      LOGARCHIVE_BIGQUERY_LOCATION: "US",
    });
    assert.deepEqual(
      problems.map((p) => p.split(";")[0]),
      [
        'LOGARCHIVE_BIGQUERY_LOCATION: is "US" but dataset proj:logs is in EU',
        'LOGARCHIVE_BIGQUERY_LOCATION: is "US" but dataset proj:audit is in EU',
      ],
    );
  });

  it("refuses a landing bucket that does not exist", async () => {
    const problems = await problemsOf({ LOGARCHIVE_LANDING_BUCKET: "no-such-bucket" });
    assert.deepEqual(problems, ["LOGARCHIVE_LANDING_BUCKET: bucket no-such-bucket does not exist"]);
  });

  it("refuses the landing bucket as the state bucket before any request", async () => {
    fake.requests.length = 0;
    await assert.rejects(
      start({ LOGARCHIVE_LANDING_BUCKET: "landing-eu", LOGARCHIVE_STATE_BUCKET: "landing-eu" }),
      /LOGARCHIVE_STATE_BUCKET: must not be the landing bucket/,
    );
    assert.equal(fake.requests.length, 0);
  });
});
