// Athena over the archive: a workgroup with enforced, encrypted results and a scan limit per
// query, a Glue database, and a table whose columns, partition keys and partition projection
// come from lib/record/ddl.ts (and through it from the key layout).

import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { archiveLocation } from "../../lib/keys/layout.ts";
import {
  ATHENA_PARTITION_KEYS,
  ATHENA_STORAGE,
  athenaColumns,
  athenaTableProperties,
  DEFAULT_TABLE,
} from "../../lib/record/ddl.ts";
import { AthenaResultsBucket, COMPONENT_PREFIX } from "./archive-bucket.ts";

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
}

export class AthenaCatalog extends pulumi.ComponentResource {
  readonly workgroup: aws.athena.Workgroup;
  readonly database: aws.glue.CatalogDatabase;
  readonly table: aws.glue.CatalogTable;
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
        storageDescriptor: {
          location: pulumi
            .output(args.archiveBucketName)
            .apply((bucket) => archiveLocation(bucket, args.archivePrefix)),
          inputFormat: ATHENA_STORAGE.inputFormat,
          outputFormat: ATHENA_STORAGE.outputFormat,
          serDeInfo: { serializationLibrary: ATHENA_STORAGE.serde },
          columns: athenaColumns(),
          compressed: true,
        },
      },
      parent,
    );
    for (const q of args.namedQueries) {
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
