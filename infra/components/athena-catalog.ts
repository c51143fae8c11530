// Athena over the archive: a workgroup with enforced, encrypted results and a scan limit per
// query, a Glue database, and a table whose columns, partition keys and partition projection
// come from lib/record/ddl.ts (and through it from the key layout).
//
// With archive compaction on (docs/design/compaction.md), a second table over the compacted
// prefix (`<prefix>/compacted/namespace=/dt=/hour=/`, lib/keys/layout.ts), and the pack's view
// (the `_definitions` named query, queries/definitions.ts athenaArchiveSource) reads hours that
// ended athenaCutoffHours or more before the query from the compacted table and newer hours
// from the originals' table: Athena cannot see manifests, so the compactor's deadline decides
// (docs/queries.md#reads-and-compaction).

import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { DEFAULT_ATHENA_CUTOFF_HOURS } from "../../lib/compaction/defaults.ts";
import { archiveLocation, compactedPrefix } from "../../lib/keys/layout.ts";
import {
  ATHENA_PARTITION_KEYS,
  ATHENA_STORAGE,
  athenaColumns,
  athenaTableProperties,
  DEFAULT_TABLE,
} from "../../lib/record/ddl.ts";
import {
  ATHENA_COMPACTED_TABLE,
  ATHENA_DEFINITIONS_QUERY,
  athenaArchiveSource,
  athenaDefinitions,
} from "../../queries/definitions.ts";
import { AthenaResultsBucket, COMPONENT_PREFIX } from "./archive-bucket.ts";

/** The compacted table's partition keys: the compacted layout has no tier segment (a part holds both tiers' members). */
export const ATHENA_COMPACTED_PARTITION_KEYS = ATHENA_PARTITION_KEYS.filter((k) => k !== "tier");

/**
 * Partition projection over the compacted layout: the originals' table's properties
 * (lib/record/ddl.ts) without the tier, and the compacted prefix's location template.
 */
export function athenaCompactedTableProperties(o: {
  database: string;
  bucket: string;
  prefix: string;
  projectionStart: string;
}): Record<string, string> {
  const properties = Object.fromEntries(
    Object.entries(athenaTableProperties(o)).filter(([k]) => !k.startsWith("projection.tier.")),
  );
  return {
    ...properties,
    "storage.location.template": `${athenaCompactedLocation(o.bucket, o.prefix)}namespace=\${namespace}/dt=\${dt}/hour=\${hour}/`,
  };
}

/** s3:// URL of the compacted prefix: the compacted table's LOCATION. */
export function athenaCompactedLocation(bucket: string, prefix: string): string {
  return `s3://${bucket}/${compactedPrefix(prefix)}`;
}

/**
 * The storage of both tables at `location`: the objects are gzip NDJSON (an original is one gzip
 * member, a part several), read by the same SerDe into the same columns.
 */
function gzipNdjsonStorage(
  location: pulumi.Output<string>,
): aws.types.input.glue.CatalogTableStorageDescriptor {
  return {
    location,
    inputFormat: ATHENA_STORAGE.inputFormat,
    outputFormat: ATHENA_STORAGE.outputFormat,
    serDeInfo: { serializationLibrary: ATHENA_STORAGE.serde },
    columns: athenaColumns(),
    compressed: true,
  };
}

export interface AthenaNamedQuery {
  name: string;
  description: string;
  query: string;
}

export interface AthenaCatalogArgs {
  /** Glue database name: lowercase letters, digits and `_`. */
  databaseName: string;
  archiveBucketName: pulumi.Input<string>;
  archivePrefix: string;
  projectionStart: string;
  bytesScannedCutoffPerQuery: number;
  resultsExpirationDays: number;
  /** The query pack's Athena queries (queries/athena/), saved in the workgroup. */
  namedQueries: readonly AthenaNamedQuery[];
  /**
   * Archive compaction (stack setting archiveCompaction): when enabled, the compacted table is
   * made and the `_definitions` view reads it for hours that ended athenaCutoffHours (default
   * DEFAULT_ATHENA_CUTOFF_HOURS) or more before the query. Off (the default): as before.
   */
  compaction?: { enabled: boolean; athenaCutoffHours?: number };
}

export class AthenaCatalog extends pulumi.ComponentResource {
  readonly workgroup: aws.athena.Workgroup;
  readonly database: aws.glue.CatalogDatabase;
  readonly table: aws.glue.CatalogTable;
  /** The compacted parts' table, with compaction on. */
  readonly compactedTable: aws.glue.CatalogTable | undefined;
  readonly resultsBucket: AthenaResultsBucket;

  constructor(name: string, args: AthenaCatalogArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${COMPONENT_PREFIX}:aws:AthenaCatalog`, name, {}, opts);
    const parent = { parent: this };
    this.resultsBucket = new AthenaResultsBucket(
      `${name}-results`,
      { expirationDays: args.resultsExpirationDays },
      parent,
    );
    this.workgroup = new aws.athena.Workgroup(
      name,
      {
        description: "logarchive: queries over the S3 archive",
        state: "ENABLED",
        forceDestroy: true,
        configuration: {
          // Clients cannot override the result location, its encryption or the scan limit.
          enforceWorkgroupConfiguration: true,
          // Engine 3 is the one that can read restored Glacier objects (read_restored_glacier_objects).
          engineVersion: { selectedEngineVersion: "Athena engine version 3" },
          publishCloudwatchMetricsEnabled: true,
          bytesScannedCutoffPerQuery: args.bytesScannedCutoffPerQuery,
          resultConfiguration: {
            outputLocation: pulumi.interpolate`s3://${this.resultsBucket.bucket.bucket}/results/`,
            encryptionConfiguration: { encryptionOption: "SSE_KMS", kmsKeyArn: this.resultsBucket.keyArn },
          },
        },
      },
      parent,
    );
    this.database = new aws.glue.CatalogDatabase(
      name,
      { name: args.databaseName, description: "logarchive: the S3 log archive" },
      parent,
    );
    this.table = new aws.glue.CatalogTable(
      name,
      {
        databaseName: this.database.name,
        name: DEFAULT_TABLE,
        tableType: "EXTERNAL_TABLE",
        parameters: pulumi.output(args.archiveBucketName).apply((bucket) => ({
          EXTERNAL: "TRUE",
          classification: "json",
          ...athenaTableProperties({
            database: args.databaseName,
            bucket,
            prefix: args.archivePrefix,
            projectionStart: args.projectionStart,
          }),
        })),
        partitionKeys: ATHENA_PARTITION_KEYS.map((k) => ({ name: k, type: "string" })),
        storageDescriptor: gzipNdjsonStorage(
          pulumi
            .output(args.archiveBucketName)
            .apply((bucket) => archiveLocation(bucket, args.archivePrefix)),
        ),
      },
      parent,
    );
    let namedQueries = args.namedQueries;
    this.compactedTable = undefined;
    if (args.compaction?.enabled === true) {
      const cutoffHours = args.compaction.athenaCutoffHours ?? DEFAULT_ATHENA_CUTOFF_HOURS;
      this.compactedTable = new aws.glue.CatalogTable(
        `${name}-compacted`,
        {
          databaseName: this.database.name,
          name: ATHENA_COMPACTED_TABLE,
          tableType: "EXTERNAL_TABLE",
          description:
            "Compacted parts of the archive (multi-member gzip NDJSON); query the pack's view, not this table",
          parameters: pulumi.output(args.archiveBucketName).apply((bucket) => ({
            EXTERNAL: "TRUE",
            classification: "json",
            ...athenaCompactedTableProperties({
              database: args.databaseName,
              bucket,
              prefix: args.archivePrefix,
              projectionStart: args.projectionStart,
            }),
          })),
          partitionKeys: ATHENA_COMPACTED_PARTITION_KEYS.map((k) => ({ name: k, type: "string" })),
          storageDescriptor: gzipNdjsonStorage(
            pulumi
              .output(args.archiveBucketName)
              .apply((bucket) => athenaCompactedLocation(bucket, args.archivePrefix)),
          ),
        },
        parent,
      );
      // The view the pack reads, over both tables split at the cutoff.
      const definitions = athenaDefinitions(
        athenaArchiveSource({
          originals: DEFAULT_TABLE,
          columns: athenaColumns().map((c) => c.name),
          compaction: { compacted: ATHENA_COMPACTED_TABLE, cutoffHours },
        }),
      );
      namedQueries = namedQueries.map((q) =>
        q.name === ATHENA_DEFINITIONS_QUERY ? { ...q, query: definitions } : q,
      );
    }
    for (const q of namedQueries) {
      new aws.athena.NamedQuery(
        `${name}-query-${q.name}`,
        {
          name: q.name,
          description: q.description.slice(0, 1024),
          database: this.database.name,
          workgroup: this.workgroup.name,
          query: q.query,
        },
        parent,
      );
    }
    this.registerOutputs({
      workgroup: this.workgroup.name,
      database: this.database.name,
      table: this.table.name,
    });
  }
}
