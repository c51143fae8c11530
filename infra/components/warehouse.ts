// BigQuery: one dataset per dataset the policy routes to, the destination tables with the
// contract's schema (lib/record/ddl.ts), partitioned by day on `timestamp`, clustered, with a
// partition filter required, and who may read and write them.

import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";
import type { Destination } from "../../lib/policy/policy.ts";
import { BIGQUERY_CLUSTERING, BIGQUERY_TIME_PARTITIONING, bigQuerySchema } from "../../lib/record/ddl.ts";
import { StackConfigError } from "../config.ts";
import { COMPONENT_PREFIX } from "./archive-bucket.ts";

const DAY_MS = 86_400_000;

/** What the loader's accounts need on each dataset. */
export const WAREHOUSE_ROLES = {
  /** Load jobs append rows (WRITE_APPEND into existing tables). */
  loaderWrite: "roles/bigquery.dataEditor",
  /** The loader's startup check reads each dataset's location (bigquery.datasets.get). */
  loaderCheck: "roles/bigquery.metadataViewer",
  reader: "roles/bigquery.dataViewer",
} as const;

export interface WarehouseReader {
  member: string;
  dataset: string;
  table?: string;
}

export interface WarehouseArgs {
  project: string;
  location: string;
  /** Every dataset the policy can route to, {namespace} routes included. */
  datasets: readonly string[];
  /** knownDestinations(policy, destinations(policy), namespaces). */
  tables: readonly Destination[];
  storageBillingModel: "PHYSICAL" | "LOGICAL";
  /** null: partitions never expire. */
  partitionExpirationDays: number | null;
  deletionProtection: boolean;
  /** Members that run load jobs into every dataset (the flush function). */
  loaderWriters: pulumi.Input<string>[];
  /** Members that only check datasets exist and where (the finalize function). */
  loaderCheckers: pulumi.Input<string>[];
  readers: readonly WarehouseReader[];
}

/** BigQuery's table schema JSON for the record: the contract's fields, nothing else. */
export function tableSchemaJson(): string {
  return JSON.stringify(bigQuerySchema());
}

export class Warehouse extends pulumi.ComponentResource {
  readonly datasets: Map<string, gcp.bigquery.Dataset>;
  readonly tables: Map<string, gcp.bigquery.Table>;

  constructor(name: string, args: WarehouseArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${COMPONENT_PREFIX}:gcp:Warehouse`, name, {}, opts);
    const parent = { parent: this };
    const expirationMs =
      args.partitionExpirationDays === null ? undefined : args.partitionExpirationDays * DAY_MS;
    this.datasets = new Map();
    for (const datasetId of args.datasets) {
      const dataset = new gcp.bigquery.Dataset(
        `${name}-${datasetId}`,
        {
          project: args.project,
          datasetId,
          location: args.location,
          description: "logarchive: container logs loaded from the archive",
          storageBillingModel: args.storageBillingModel,
          // Tables made later (a {namespace} route's) get the same expiration.
          ...(expirationMs === undefined ? {} : { defaultPartitionExpirationMs: expirationMs }),
          deleteContentsOnDestroy: false,
        },
        parent,
      );
      this.datasets.set(datasetId, dataset);
      args.loaderWriters.forEach((member, i) => {
        new gcp.bigquery.DatasetIamMember(
          `${name}-${datasetId}-loader-write-${i}`,
          { project: args.project, datasetId: dataset.datasetId, role: WAREHOUSE_ROLES.loaderWrite, member },
          parent,
        );
      });
      args.loaderCheckers.forEach((member, i) => {
        new gcp.bigquery.DatasetIamMember(
          `${name}-${datasetId}-loader-check-${i}`,
          { project: args.project, datasetId: dataset.datasetId, role: WAREHOUSE_ROLES.loaderCheck, member },
          parent,
        );
      });
    }
    this.tables = new Map();
    for (const t of args.tables) {
      const dataset = this.datasets.get(t.dataset);
      if (dataset === undefined)
        throw new Error(
          `table ${t.dataset}.${t.table}: dataset ${t.dataset} is not among the warehouse's datasets`,
        );
      const table = new gcp.bigquery.Table(
        `${name}-${t.dataset}-${t.table}`,
        {
          project: args.project,
          datasetId: dataset.datasetId,
          tableId: t.table,
          description: "logarchive: one row per log line (docs/record-format.md)",
          schema: tableSchemaJson(),
          timePartitioning: {
            type: BIGQUERY_TIME_PARTITIONING.type,
            field: BIGQUERY_TIME_PARTITIONING.field,
            ...(expirationMs === undefined ? {} : { expirationMs }),
          },
          clusterings: [...BIGQUERY_CLUSTERING.fields],
          // A query must name the days it reads: a forgotten WHERE never scans years of logs.
          requirePartitionFilter: true,
          deletionProtection: args.deletionProtection,
        },
        parent,
      );
      this.tables.set(`${t.dataset}.${t.table}`, table);
    }
    args.readers.forEach((r, i) => {
      const dataset = this.datasets.get(r.dataset);
      if (dataset === undefined)
        throw new StackConfigError([
          `logarchive:warehouseReaders[${i}].dataset: ${r.dataset} is not a dataset the policy routes to (${[...this.datasets.keys()].join(", ")})`,
        ]);
      if (r.table === undefined) {
        new gcp.bigquery.DatasetIamMember(
          `${name}-reader-${i}`,
          {
            project: args.project,
            datasetId: dataset.datasetId,
            role: WAREHOUSE_ROLES.reader,
            member: r.member,
          },
          parent,
        );
        return;
      }
      const table = this.tables.get(`${r.dataset}.${r.table}`);
      if (table === undefined)
        throw new StackConfigError([
          `logarchive:warehouseReaders[${i}].table: ${r.dataset}.${r.table} is not a table the stack creates (list its namespace in warehouseNamespaces)`,
        ]);
      new gcp.bigquery.IamMember(
        `${name}-reader-${i}`,
        {
          project: args.project,
          datasetId: dataset.datasetId,
          tableId: table.tableId,
          role: WAREHOUSE_ROLES.reader,
          member: r.member,
        },
        parent,
      );
    });
    this.registerOutputs({ datasets: [...this.datasets.keys()] });
  }
}
