// Builds a Loader from LOGARCHIVE_* environment variables, as the deployed functions do.

import { Storage } from "@google-cloud/storage";
import { ConfigError } from "../../lib/config/errors.ts";
import type { StageLog } from "../../lib/log.ts";
import { loadPolicy, type NamespacePolicy, parsePolicy } from "../../lib/policy/policy.ts";
import { checkLoadLocations, type DatasetLocation } from "../warehouse/locations.ts";
import type { WarehousePort } from "../warehouse/port.ts";
import { type LoaderConfig, loaderEnvOf, resolveLoaderConfig } from "./config.ts";
import { Loader } from "./loader.ts";

export async function loadLoaderPolicy(config: LoaderConfig): Promise<NamespacePolicy> {
  if (config.policyYaml !== undefined) return parsePolicy(config.policyYaml, "LOGARCHIVE_POLICY_YAML");
  return loadPolicy(config.policyFile);
}

export function storageFor(config: LoaderConfig): Storage {
  return config.gcsEndpoint === undefined
    ? new Storage()
    : new Storage({ apiEndpoint: config.gcsEndpoint, projectId: "logarchive-local" });
}

export async function warehouseFor(
  config: LoaderConfig,
  policy: NamespacePolicy,
  storage: Storage,
): Promise<WarehousePort> {
  if (config.warehouse === "duckdb") {
    const { DuckDbWarehouse } = await import("../warehouse/duckdb.ts");
    return DuckDbWarehouse.open({
      database: config.duckdbPath,
      storage,
      defaultDataset: policy.warehouse.dataset,
    });
  }
  const { BigQueryWarehouse } = await import("../warehouse/bigquery.ts");
  return new BigQueryWarehouse({
    projectId: config.bigqueryProject as string,
    location: config.bigqueryLocation,
  });
}

/** Every dataset the policy can route to, `{namespace}` routes included. */
function policyDatasets(policy: NamespacePolicy): string[] {
  const datasets = [policy.warehouse.dataset, ...policy.warehouse.routes.map((r) => r.dataset)];
  return [...new Set(datasets.filter((d): d is string => d !== undefined))];
}

const codeOf = (error: unknown) => (error as { code?: unknown } | undefined)?.code;

/**
 * Checks, before anything is loaded, that load jobs can read the landing bucket: the policy's datasets
 * exist in LOGARCHIVE_BIGQUERY_LOCATION and the bucket is where BigQuery loads them from. Otherwise every
 * job would fail `invalid` and pause its table. Throws a ConfigError naming the setting to change;
 * combinations it cannot decide are logged as `location_unverified`. Other errors (GCS or BigQuery
 * unreachable) are thrown as they are, so the next invocation checks again.
 */
export async function checkDeploymentLocations(
  config: LoaderConfig,
  policy: NamespacePolicy,
  storage: Storage,
  warehouse: WarehousePort,
  log: StageLog,
): Promise<void> {
  if (warehouse.datasetLocation === undefined) return;
  const problems: string[] = [];
  const landing = loaderEnvOf("landing_bucket");
  let bucketLocation: string | undefined;
  try {
    const [metadata] = await storage.bucket(config.landingBucket).getMetadata();
    bucketLocation = metadata.location ?? "US";
  } catch (error) {
    const code = codeOf(error);
    if (code === 404) problems.push(`${landing}: bucket ${config.landingBucket} does not exist`);
    else if (code === 403)
      problems.push(
        `${landing}: cannot read the location of bucket ${config.landingBucket} (403); grant the functions' service account storage.buckets.get on it (roles/storage.legacyBucketReader)`,
      );
    else throw error;
  }
  const datasets: DatasetLocation[] = [];
  for (const dataset of policyDatasets(policy)) {
    try {
      datasets.push({ dataset, location: await warehouse.datasetLocation(dataset) });
    } catch (error) {
      if (codeOf(error) !== 403) throw error;
      problems.push(
        `cannot read the location of dataset ${config.bigqueryProject}:${dataset} (403); grant the functions' service account bigquery.datasets.get on it (roles/bigquery.metadataViewer)`,
      );
    }
  }
  if (bucketLocation !== undefined) {
    const check = checkLoadLocations({
      project: config.bigqueryProject ?? "",
      jobLocation: config.bigqueryLocation,
      jobLocationSetting: loaderEnvOf("bigquery_location"),
      landingBucket: { name: config.landingBucket, location: bucketLocation, setting: landing },
      datasets,
    });
    problems.push(...check.problems);
    for (const detail of check.unverified) log("warn", "location_unverified", { detail });
  }
  if (problems.length > 0) throw new ConfigError("loader deployment", problems);
}

export interface LoaderFromEnvParts {
  /** Default: from LOGARCHIVE_GCS_ENDPOINT, or Application Default Credentials. */
  storage?: Storage;
  /** Default: from LOGARCHIVE_WAREHOUSE. */
  warehouse?: WarehousePort;
}

export async function loaderFromEnv(
  env: NodeJS.ProcessEnv,
  log: (line: object) => void,
  parts: LoaderFromEnvParts = {},
): Promise<Loader> {
  const config = resolveLoaderConfig(env);
  const policy = await loadLoaderPolicy(config);
  const storage = parts.storage ?? storageFor(config);
  const warehouse = parts.warehouse ?? (await warehouseFor(config, policy, storage));
  const stageLog: StageLog = (level, event, fields) =>
    log({ severity: level === "warn" ? "WARNING" : level.toUpperCase(), event, ...fields });
  try {
    await checkDeploymentLocations(config, policy, storage, warehouse, stageLog);
  } catch (error) {
    if (parts.warehouse === undefined) await warehouse.close();
    throw error;
  }
  const loader = new Loader({ config, policy, storage, warehouse, log: stageLog });
  stageLog("info", "loader_started", { plan: loader.plan, warehouse: warehouse.kind });
  return loader;
}
