// `logarchive compact`: compact one namespace-hour of the archive (lib/compaction/compact.ts):
// the hour's archive objects from every node, verified against their metadata, concatenated
// into a few large gzip parts under the compacted segment and committed by a manifest. Prints
// what it did, part by part and batch by batch. Exit 0 when the hour is committed (or was
// already, or has nothing), 1 when an original was refused, the shippers' hour indexes say
// batches are missing or still to come, or the stored manifests disagree,
// 2 on a usage mistake (a bad flag, an hour not yet closed plus the settle delay).

import { Command, InvalidArgumentError, Option } from "commander";
import { DEFAULT_PART_MAX_BYTES, DEFAULT_SETTLE_MS } from "../../lib/compaction/defaults.ts";
import { UserError } from "../../lib/config/errors.ts";
import { formatDuration, formatSize, parseDuration, parseSize } from "../../lib/config/units.ts";
import { checkCalendarDate, EXIT, parseNamespaceArg, s3SetupError } from "../options.ts";
import {
  type ArchiveLocationOptions,
  archiveLocation,
  archiveS3Target,
  withArchiveLocationOptions,
} from "./retrieve.ts";

interface CompactCommandOptions extends ArchiveLocationOptions {
  namespace: string;
  hour: { dt: string; hour: string };
  partMaxBytes: number;
  settle: number;
  dryRun?: boolean;
  /** Commander's --no-index-check: false when given. */
  indexCheck: boolean;
}

/** `YYYY-MM-DDTHH`, a UTC hour. */
export function parseHourArg(value: string): { dt: string; hour: string } {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2})$/.exec(value);
  if (m === null) throw new InvalidArgumentError("expected a UTC hour, YYYY-MM-DDTHH (e.g. 2026-03-03T10).");
  checkCalendarDate(value, Number(m[1]), Number(m[2]), Number(m[3]));
  if (Number(m[4]) > 23) throw new InvalidArgumentError(`${value} is not an hour: hours are 00-23.`);
  return { dt: value.slice(0, 10), hour: value.slice(11, 13) };
}

/** S3's largest object: 5 TiB (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html). */
const MAX_PART_BYTES = 5 * 2 ** 40;

function parsePartMaxBytes(value: string): number {
  const n = parseSize(value);
  if (n === null || n < 1 || n > MAX_PART_BYTES) {
    throw new InvalidArgumentError("expected a size from 1 byte to 5TiB, such as 1GiB, 256MiB or 1000000.");
  }
  return n;
}

function parseSettle(value: string): number {
  const ms = parseDuration(value);
  if (ms === null) throw new InvalidArgumentError("expected a duration such as 75m, 2h or 0s.");
  return ms;
}

export function compactCommand(version: string): Command {
  const command = new Command("compact")
    .description(
      "Compact one namespace-hour of the archive: verify each of its archive objects (both tiers, every node) against its metadata's SHA-256, concatenate them byte for byte in key order into gzip parts of at most --part-max-bytes under <prefix>/compacted/, and commit them with a manifest written last. Safe to re-run; batches that arrive after the hour was committed go into the next generation. Exit 0 when committed (or nothing to do), 1 when an original was refused or the hour indexes say the hour is not complete, 2 on a usage mistake or an hour not yet settled.",
    )
    .requiredOption("--namespace <ns>", "the namespace", parseNamespaceArg)
    .requiredOption("--hour <YYYY-MM-DDTHH>", "the UTC hour of the records", parseHourArg)
    .addOption(
      new Option("--part-max-bytes <size>", "largest compacted part (a larger batch gets a part of its own)")
        .default(DEFAULT_PART_MAX_BYTES, formatSize(DEFAULT_PART_MAX_BYTES))
        .argParser(parsePartMaxBytes),
    )
    .addOption(
      new Option("--settle <duration>", "how long after the hour ends it may be compacted")
        .default(DEFAULT_SETTLE_MS, formatDuration(DEFAULT_SETTLE_MS))
        .argParser(parseSettle),
    )
    .option(
      "--no-index-check",
      "compact once the settle delay has passed, without waiting for the shippers' hour indexes to account for the hour",
    )
    .option("--dry-run", "list and check metadata, print the parts it would write; write nothing");
  return withArchiveLocationOptions(command).action(async (o: CompactCommandOptions) => {
    const location = await archiveLocation(o);
    const { S3Client } = await import("@aws-sdk/client-s3");
    const { compactNamespaceHour, CompactionError, HourNotSettledError } = await import(
      "../../lib/compaction/compact.ts"
    );
    const s3 = new S3Client({
      region: location.region ?? "us-east-1",
      ...(location.s3Endpoint ? { endpoint: location.s3Endpoint, forcePathStyle: true } : {}),
    });
    const hourText = `${o.hour.dt}T${o.hour.hour}`;
    try {
      let outcome: Awaited<ReturnType<typeof compactNamespaceHour>>;
      try {
        outcome = await compactNamespaceHour({
          s3,
          bucket: location.bucket,
          prefix: location.prefix,
          namespace: o.namespace,
          ...o.hour,
          partMaxBytes: o.partMaxBytes,
          settleMs: o.settle,
          dryRun: o.dryRun === true,
          indexCheck: o.indexCheck,
          toolVersion: version,
        });
      } catch (error) {
        if (error instanceof HourNotSettledError) throw new UserError(`--hour ${error.message}`);
        const setup = s3SetupError(error, archiveS3Target(o, location));
        if (setup !== undefined) throw setup;
        if (error instanceof CompactionError || (error as Error).name === "CompactionManifestError") {
          process.stdout.write(`compact: FAILED ${o.namespace} ${hourText}: ${(error as Error).message}\n`);
          process.exitCode = EXIT.verdict;
          return;
        }
        throw error;
      }
      const head = `compact: ${o.namespace} ${hourText} generation ${outcome.generation}`;
      const lines: string[] = [];
      const totalBytes = outcome.parts.reduce((n, p) => n + p.bytes, 0);
      const totalRecords = outcome.members.reduce((n, m) => n + m.records, 0);
      const earlier =
        outcome.alreadyCompacted > 0
          ? `; ${outcome.alreadyCompacted} batch(es) already in generation(s) 0-${outcome.generation - 1}`
          : "";
      switch (outcome.status) {
        case "empty":
          lines.push(`${head}: no archive object of ${o.namespace} in ${hourText}; nothing to compact`);
          break;
        case "up-to-date":
          lines.push(`${head}: nothing new${earlier}; nothing written`);
          break;
        case "not-ready":
          lines.push(`${head}: not ready by the shippers' hour indexes; nothing written (run again later)`);
          for (const why of outcome.notReady) lines.push(`NOT READY ${why}`);
          break;
        case "planned":
        case "committed":
        case "refused": {
          const verb =
            outcome.status === "committed" ? "committed" : o.dryRun ? "would compact" : "did not commit";
          lines.push(
            `${head}: ${verb} ${outcome.members.length} batch(es), ${totalRecords} record(s), ${formatSize(totalBytes)} in ${outcome.parts.length} part(s)${earlier}`,
          );
          for (const part of outcome.parts) {
            const sha = outcome.manifest?.parts[part.part]?.sha256;
            lines.push(
              `  part ${part.part} ${part.key}: ${part.bytes} bytes, ${part.members} batch(es)${sha === undefined ? "" : `, sha256 ${sha}`} (${o.dryRun ? "planned" : part.outcome})`,
            );
          }
          for (const m of outcome.members) {
            lines.push(
              `  batch ${m.key}${m.versionId === null ? "" : ` (version ${m.versionId})`}: ${m.bytes} bytes, ${m.records} record(s) -> part ${m.part}`,
            );
          }
          for (const r of outcome.refused) {
            lines.push(
              `REFUSED ${r.key}${r.versionId === null ? "" : ` (version ${r.versionId})`}: ${r.reason}`,
            );
          }
          if (outcome.status === "committed") {
            lines.push(
              `compact: manifest ${outcome.manifestKey} ${outcome.manifestWritten ? "written" : "was already stored with these bytes (an earlier run committed)"}`,
            );
          } else if (outcome.status === "refused") {
            lines.push(
              `compact: ${outcome.refused.length} archive object(s) refused; the hour is not committed and its originals stay what readers use`,
            );
          } else {
            lines.push(`compact: dry run; would write manifest ${outcome.manifestKey}`);
          }
          break;
        }
      }
      for (const key of outcome.ignored) lines.push(`  ignored ${key}: not an archive object of this hour`);
      for (const node of outcome.indexes.unindexedNodes) {
        lines.push(
          `  node ${node}: no hour index read for its batches (a shipper before indexes, or its index is late)`,
        );
      }
      for (const u of outcome.indexes.unusable) lines.push(`  hour index ${u.key} not used: ${u.problem}`);
      process.stdout.write(`${lines.join("\n")}\n`);
      process.exitCode =
        outcome.status === "refused" || outcome.status === "not-ready" ? EXIT.verdict : EXIT.ok;
    } finally {
      s3.destroy();
    }
  });
}
