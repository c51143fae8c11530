// Where BigQuery can load from. A load job runs in its dataset's location and reads its sources from GCS,
// and BigQuery refuses sources in a bucket it cannot load from with reason `invalid`: the loader would
// take that for a bad batch and pause the table. So the locations are checked once, at startup, and a
// mismatch stops the function with the setting to change.
//
// BigQuery's rule (https://cloud.google.com/bigquery/docs/loading-data-cloud-storage-parquet, Limitations,
// the same for every format): "If your dataset's location is set to a value other than the US
// multi-region, then the Cloud Storage bucket must be in the same region or contained in the same
// multi-region as the dataset." Which regions a multi-region contains is not something the APIs say (the
// EU multi-region holds most europe-* regions but not London or Zurich), so a bucket that may be inside
// the dataset's multi-region is reported as unverified rather than refused.

export type LoadableFrom = "yes" | "no" | "unverified";

/** Whether a load job in a dataset at `datasetLocation` can read a bucket at `bucketLocation`. */
export function bucketLoadableFrom(datasetLocation: string, bucketLocation: string): LoadableFrom {
  // BigQuery answers "US", "EU", "europe-west1"; GCS answers "US", "EU", "EUROPE-WEST1", "EUR4".
  const dataset = datasetLocation.toUpperCase();
  const bucket = bucketLocation.toUpperCase();
  if (dataset === bucket || dataset === "US") return "yes";
  // A regional dataset loads only from a bucket in that same region.
  if (dataset.includes("-")) return "no";
  const geography = MULTI_REGION_GEOGRAPHY[dataset];
  if (geography === undefined) return "unverified";
  return geography.regionPrefixes.some((p) => bucket.startsWith(p)) || geography.dualRegions.test(bucket)
    ? "unverified"
    : "no";
}

/** The regions and predefined dual-regions that may lie inside each of BigQuery's multi-regions but US. */
const MULTI_REGION_GEOGRAPHY: Record<string, { regionPrefixes: readonly string[]; dualRegions: RegExp }> = {
  EU: { regionPrefixes: ["EUROPE-"], dualRegions: /^EUR\d+$/ },
};

export interface DatasetLocation {
  dataset: string;
  /** null: the dataset does not exist. */
  location: string | null;
}

export interface LocationCheckInput {
  project: string;
  /** Where load jobs run and are looked up (LOGARCHIVE_BIGQUERY_LOCATION). */
  jobLocation: string;
  jobLocationSetting: string;
  landingBucket: { name: string; location: string; setting: string };
  datasets: readonly DatasetLocation[];
}

export interface LocationCheck {
  /** One line each, naming the setting to change. */
  problems: string[];
  /** Combinations BigQuery may refuse; the loader starts, and a refusal pauses the table. */
  unverified: string[];
}

export function checkLoadLocations(input: LocationCheckInput): LocationCheck {
  const problems: string[] = [];
  const unverified: string[] = [];
  const { landingBucket: bucket } = input;
  for (const { dataset, location } of input.datasets) {
    const id = `${input.project}:${dataset}`;
    if (location === null) {
      problems.push(
        `dataset ${id} (the policy's warehouse) does not exist; create it in ${input.jobLocation} (pulumi up creates the policy's datasets)`,
      );
      continue;
    }
    if (location.toUpperCase() !== input.jobLocation.toUpperCase()) {
      problems.push(
        `${input.jobLocationSetting}: is ${JSON.stringify(input.jobLocation)} but dataset ${id} is in ${location}; set ${input.jobLocationSetting}=${location} (load jobs run in their dataset's location)`,
      );
    }
    const verdict = bucketLoadableFrom(location, bucket.location);
    if (verdict === "no") {
      problems.push(
        `${bucket.setting}: bucket ${bucket.name} is in ${bucket.location} but dataset ${id} is in ${location}, and BigQuery loads a dataset outside the US multi-region only from its own location; use a landing bucket in ${location}${location.includes("-") ? "" : " (or a region inside it)"}, or a dataset in ${bucket.location}`,
      );
    } else if (verdict === "unverified") {
      unverified.push(
        `bucket ${bucket.name} (${bucket.setting}) is in ${bucket.location} and dataset ${id} in ${location}: BigQuery loads only if ${bucket.location} lies inside ${location}`,
      );
    }
  }
  return { problems, unverified };
}
