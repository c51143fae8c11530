// The loader's test stack with a counting, failure-injecting proxy in front of the local GCS
// (gcs-proxy.ts): the loader's client goes through the proxy, the test's own uploads and the
// DuckDB warehouse's reads go straight to the local GCS.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { Storage } from "@google-cloud/storage";
import { startLocalGcs } from "../../../local/gcs/server.ts";
import { DuckDbWarehouse } from "../../warehouse/duckdb.ts";
import { type GcsProxy, startGcsProxy } from "./gcs-proxy.ts";

export interface ProxiedLoaderStack {
  proxy: GcsProxy;
  /** The loader's client, through the proxy. */
  storage: Storage;
  /**
   * The test's own uploads. @google-cloud/storage turns retries off for the whole client after
   * any write without a precondition, so those must not go through the loader's client.
   */
  direct: Storage;
  warehouse: DuckDbWarehouse;
  stop(): Promise<void>;
}

/** Starts the stack in a new temp dir named after `name`, with `buckets` created. */
export async function startProxiedLoaderStack(
  name: string,
  buckets: readonly string[],
): Promise<ProxiedLoaderStack> {
  const dir = await mkdtemp(join(tmpdir(), `${name}-`));
  const gcs = await startLocalGcs({ dataDir: join(dir, "gcs"), host: "127.0.0.1", port: 0 });
  const proxy = await startGcsProxy(gcs.url);
  const storage = new Storage({
    apiEndpoint: proxy.url,
    projectId: "test",
    retryOptions: { retryDelayMultiplier: 1.5, maxRetryDelay: 2, totalTimeout: 60 },
  });
  const direct = new Storage({ apiEndpoint: gcs.url, projectId: "test" });
  for (const bucket of buckets) await direct.createBucket(bucket);
  const instance = await DuckDBInstance.create(join(dir, "warehouse.duckdb"));
  const warehouse = await DuckDbWarehouse.open({
    database: instance,
    storage: direct,
    defaultDataset: "logs",
  });
  return {
    proxy,
    storage,
    direct,
    warehouse,
    async stop() {
      await warehouse.close();
      instance.closeSync();
      await proxy.stop();
      await gcs.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
