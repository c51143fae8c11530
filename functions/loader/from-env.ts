// Builds a Loader from LOGARCHIVE_* environment variables, as the deployed functions do.

import { Storage } from "@google-cloud/storage";
import type { StageLog } from "../../lib/log.ts";
import { loadPolicy, type NamespacePolicy, parsePolicy } from "../../lib/policy/policy.ts";
import type { WarehousePort } from "../warehouse/port.ts";
import { type LoaderConfig, resolveLoaderConfig } from "./config.ts";
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

export async function loaderFromEnv(env: NodeJS.ProcessEnv, log: (line: object) => void): Promise<Loader> {
  const config = resolveLoaderConfig(env);
  const policy = await loadLoaderPolicy(config);
  const storage = storageFor(config);
  const warehouse = await warehouseFor(config, policy, storage);
  const stageLog: StageLog = (level, event, fields) =>
    log({ severity: level === "warn" ? "WARNING" : level.toUpperCase(), event, ...fields });
  const loader = new Loader({ config, policy, storage, warehouse, log: stageLog });
  stageLog("info", "loader_started", { plan: loader.plan, warehouse: warehouse.kind });
  return loader;
}
