// `logarchive schema`: the warehouse schemas generated from the record contract.

import { Command, InvalidArgumentError, Option } from "commander";
import { prefixProblem } from "../../lib/keys/layout.ts";
import { athenaDdl, bigQueryDdl, bigQuerySchema, duckDbDdl } from "../../lib/record/ddl.ts";
import { parseDateArg } from "../options.ts";

/** A key prefix the layout can carry, so the DDL's LOCATION and projection template are valid. */
function parsePrefixArg(value: string): string {
  const problem = prefixProblem(value);
  if (problem !== undefined) throw new InvalidArgumentError(`The key prefix ${problem}.`);
  return value;
}

export function schemaCommand(): Command {
  const schema = new Command("schema").description(
    "Print the warehouse schemas generated from the record contract.",
  );
  schema
    .command("bigquery")
    .description("BigQuery table schema as JSON (for `bq mk --schema` or a load job), or DDL with --ddl.")
    .option("--ddl", "print CREATE TABLE instead of the JSON schema")
    .option("--dataset <name>", "dataset for --ddl", "logarchive")
    .option("--table <name>", "table for --ddl", "container_logs")
    .action((o: { ddl?: boolean; dataset: string; table: string }) => {
      process.stdout.write(
        o.ddl ? `${bigQueryDdl(o.dataset, o.table)}\n` : `${JSON.stringify(bigQuerySchema(), null, 2)}\n`,
      );
    });
  schema
    .command("athena")
    .description("Athena CREATE TABLE with partition projection over the archive bucket.")
    .requiredOption("--bucket <name>", "S3 bucket of the archive")
    .addOption(
      new Option("--prefix <prefix>", "key prefix of the archive (archive.prefix of the policy)")
        .argParser(parsePrefixArg)
        .default("logs"),
    )
    .option("--database <name>", "Glue database", "logarchive")
    .option("--table <name>", "table name", "container_logs")
    .addOption(
      new Option("--since <YYYY-MM-DD>", "first day the date projection covers")
        .argParser(parseDateArg)
        .default("2024-01-01"),
    )
    .action((o: { bucket: string; prefix: string; database: string; table: string; since: string }) => {
      process.stdout.write(
        `${athenaDdl({ database: o.database, table: o.table, bucket: o.bucket, prefix: o.prefix, projectionStart: o.since })}\n`,
      );
    });
  schema
    .command("duckdb")
    .description("DuckDB CREATE TABLE, as the local warehouse uses.")
    .option("--table <name>", "table name", "container_logs")
    .action((o: { table: string }) => {
      process.stdout.write(`${duckDbDdl(o.table)}\n`);
    });
  return schema;
}
