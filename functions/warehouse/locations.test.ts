import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bucketLoadableFrom, checkLoadLocations, type LocationCheckInput } from "./locations.ts";

describe("bucketLoadableFrom (BigQuery's colocation rule for loads from GCS)", () => {
  for (const [dataset, bucket, expected] of [
    ["EU", "EU", "yes"],
    ["europe-west1", "EUROPE-WEST1", "yes"], // BigQuery answers lower case, GCS upper case
    ["US", "ASIA", "yes"], // the US multi-region loads from anywhere
    ["US", "EUROPE-WEST1", "yes"],
    ["EU", "US", "no"],
    ["EU", "ASIA-NORTHEAST1", "no"],
    ["europe-west1", "EU", "no"], // a regional dataset needs the same region
    ["asia-northeast1", "ASIA", "no"],
    ["us-central1", "US", "no"],
    ["EU", "EUROPE-WEST4", "unverified"], // most europe-* regions are in the EU, not all
    ["EU", "EUR4", "unverified"],
  ] as const) {
    it(`dataset ${dataset}, bucket ${bucket}: ${expected}`, () => {
      assert.equal(bucketLoadableFrom(dataset, bucket), expected);
    });
  }
});

describe("checkLoadLocations", () => {
  const input = (over: Partial<LocationCheckInput> = {}): LocationCheckInput => ({
    project: "p",
    jobLocation: "EU",
    jobLocationSetting: "LOGARCHIVE_BIGQUERY_LOCATION",
    landingBucket: { name: "landing", location: "EU", setting: "LOGARCHIVE_LANDING_BUCKET" },
    datasets: [{ dataset: "logs", location: "EU" }],
    ...over,
  });

  it("passes colocated settings", () => {
    assert.deepEqual(checkLoadLocations(input()), { problems: [], unverified: [] });
  });

  it("names the landing bucket setting when the bucket is elsewhere", () => {
    const { problems } = checkLoadLocations(
      input({ landingBucket: { name: "landing", location: "ASIA", setting: "LOGARCHIVE_LANDING_BUCKET" } }),
    );
    assert.deepEqual(problems, [
      "LOGARCHIVE_LANDING_BUCKET: bucket landing is in ASIA but dataset p:logs is in EU, and BigQuery loads a dataset outside the US multi-region only from its own location; use a landing bucket in EU (or a region inside it), or a dataset in ASIA",
    ]);
  });

  it("names LOGARCHIVE_BIGQUERY_LOCATION when the jobs would run elsewhere than the dataset", () => {
    const { problems } = checkLoadLocations(input({ jobLocation: "US" }));
    assert.deepEqual(problems, [
      'LOGARCHIVE_BIGQUERY_LOCATION: is "US" but dataset p:logs is in EU; set LOGARCHIVE_BIGQUERY_LOCATION=EU (load jobs run in their dataset\'s location)',
    ]);
  });

  it("reports a missing dataset, and every dataset of the policy", () => {
    const { problems } = checkLoadLocations(
      input({
        datasets: [
          { dataset: "logs", location: "EU" },
          { dataset: "audit", location: null },
        ],
      }),
    );
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /^dataset p:audit \(the policy's warehouse\) does not exist; create it in EU/);
  });

  it("reports a bucket that may lie inside the dataset's multi-region as unverified, not as a problem", () => {
    const check = checkLoadLocations(
      input({
        landingBucket: { name: "landing", location: "EUROPE-WEST2", setting: "LOGARCHIVE_LANDING_BUCKET" },
      }),
    );
    assert.deepEqual(check.problems, []);
    assert.equal(check.unverified.length, 1);
  });

  it("every problem is one line", () => {
    const { problems } = checkLoadLocations(
      input({
        jobLocation: "US",
        landingBucket: { name: "landing", location: "ASIA", setting: "LOGARCHIVE_LANDING_BUCKET" },
      }),
    );
    assert.equal(problems.length, 2);
    for (const p of problems) assert.ok(!p.includes("\n"), p);
  });
});
