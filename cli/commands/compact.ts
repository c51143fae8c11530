// `logarchive compact`: compact one namespace-hour of the archive (lib/compaction/compact.ts):
// the hour's archive objects from every node, verified against their metadata, concatenated
// into a few large gzip parts under the compacted segment and committed by a manifest. Prints
// what it did, part by part and batch by batch. Exit 0 when the hour is committed (or was
// already, or has nothing), 1 when an original was refused, the shippers' hour indexes say
// batches are missing or still to come, or the stored manifests disagree,
// 2 on a usage mistake (a bad flag, an hour not yet closed plus the settle delay).
//
// `--pending` is the scheduled job's mode (infra/k8s/compactor-cronjob.ts, hourly): every
// settled namespace-hour in --lookback with originals no committed manifest names
// (lib/compaction/pending.ts), one line each as it finishes, a total line, and last a JSON
// line for the job's logs. Exit 1 when any of them failed (or the originals' sweep failed or found
// a conflict: a key written again after compaction), 0 otherwise. `--shard i/N` (an
// Indexed Job's pod i of N, lib/compaction/shard.ts) limits the run to its share of namespaces.

import type { S3Client } from "@aws-sdk/client-s3";
import { Command, type Command as CommandType, InvalidArgumentError, Option } from "commander";
import type { CompactionOutcome } from "../../lib/compaction/compact.ts";
import {
  DEFAULT_ATHENA_CUTOFF_HOURS,
  DEFAULT_LANDING_DAYS,
  DEFAULT_LOCK_DAYS,
  DEFAULT_LOOKBACK_MS,
  DEFAULT_PART_MAX_BYTES,
  DEFAULT_PENDING_CONCURRENCY,
  DEFAULT_SETTLE_MS,
} from "../../lib/compaction/defaults.ts";
import type { KeptWhole, PendingResult, PendingRun, SweepConflict } from "../../lib/compaction/pending.ts";
import { formatShard, parseShard, type Shard, WHOLE_ARCHIVE } from "../../lib/compaction/shard.ts";
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
  /** Both required unless --pending, which takes neither. */
  namespace?: string;
  hour?: { dt: string; hour: string };
  pending?: boolean;
  shard: Shard;
  lookback: number;
  landingDays: number;
  lockDays: number;
  deleteAfter: number;
  concurrency: number;
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

function parseShardArg(value: string): Shard {
  try {
    return parseShard(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

function parseSettle(value: string): number {
  const ms = parseDuration(value);
  if (ms === null) throw new InvalidArgumentError("expected a duration such as 75m, 2h or 0s.");
  return ms;
}

function parseLookback(value: string): number {
  const ms = parseDuration(value);
  if (ms === null || ms <= 0) throw new InvalidArgumentError("expected a duration such as 48h or 36h.");
  return ms;
}

function parseDays(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 36_500) {
    throw new InvalidArgumentError("expected a whole number of days from 1 to 36500.");
  }
  return n;
}

/**
 * At least an hour: a shorter one would delete originals of hours Athena's cutoff view still
 * reads as originals (the CronJob passes the stack's athenaCutoffHours, 6 by default).
 */
const MIN_DELETE_AFTER_MS = 3_600_000;

function parseDeleteAfter(value: string): number {
  const ms = parseDuration(value);
  if (ms === null) throw new InvalidArgumentError("expected a duration such as 6h or 90m.");
  if (ms < MIN_DELETE_AFTER_MS) {
    throw new InvalidArgumentError(
      `expected at least ${formatDuration(MIN_DELETE_AFTER_MS)} (and at least the stack's athenaCutoffHours).`,
    );
  }
  return ms;
}

/** Namespace-hours at once: each holds an upload chunk and a few originals in memory. */
const MAX_CONCURRENCY = 64;

function parseConcurrency(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > MAX_CONCURRENCY) {
    throw new InvalidArgumentError(`expected a whole number from 1 to ${MAX_CONCURRENCY}.`);
  }
  return n;
}

/** The flags' mode rules, each broken one a usage error naming the flag. */
function checkMode(o: CompactCommandOptions, command: CommandType): void {
  const given = (name: string) => command.getOptionValueSource(name) === "cli";
  if (o.pending) {
    for (const flag of ["namespace", "hour"] as const) {
      if (o[flag] !== undefined) {
        throw new InvalidArgumentError(
          `--${flag} is for one namespace-hour; --pending compacts every pending one (drop one of them).`,
        );
      }
    }
    const shortest = 3_600_000 + o.settle;
    if (o.lookback <= shortest) {
      throw new InvalidArgumentError(
        `--lookback ${formatDuration(o.lookback)} must be longer than an hour plus --settle (${formatDuration(shortest)}), or no hour is ever looked at.`,
      );
    }
    return;
  }
  for (const [flag, value] of [
    ["--namespace <ns>", o.namespace],
    ["--hour <YYYY-MM-DDTHH>", o.hour],
  ] as const) {
    if (value === undefined) {
      throw new InvalidArgumentError(
        `required option '${flag}' not specified (or --pending for every pending hour).`,
      );
    }
  }
  for (const flag of ["lookback", "concurrency", "shard", "landingDays", "lockDays", "deleteAfter"]) {
    if (given(flag)) {
      const name = flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
      throw new InvalidArgumentError(`--${name} is for --pending only.`);
    }
  }
}

export function compactCommand(version: string): Command {
  const command = new Command("compact")
    .description(
      "Compact one namespace-hour of the archive (--namespace, --hour), or with --pending every settled one in --lookback that has originals no manifest names: verify each of its archive objects (both tiers, every node) against its metadata's SHA-256, concatenate them byte for byte in key order into gzip parts of at most --part-max-bytes under <prefix>/compacted/, and commit them with a manifest written last. Safe to re-run; batches that arrive after the hour was committed go into the next generation. Exit 0 when committed (or nothing to do), 1 when an original was refused or the hour indexes say the hour is not complete (with --pending: any hour), 2 on a usage mistake or an hour not yet settled.",
    )
    .option("--namespace <ns>", "the namespace (required without --pending)", parseNamespaceArg)
    .option(
      "--hour <YYYY-MM-DDTHH>",
      "the UTC hour of the records (required without --pending)",
      parseHourArg,
    )
    .option(
      "--pending",
      "the scheduled job: every settled namespace-hour in --lookback with archive originals no committed manifest names; one line each, a total and a JSON summary line; exit 1 if any failed",
    )
    .addOption(
      new Option(
        "--shard <index>/<count>",
        "with --pending: handle only the namespaces whose hash (first 4 bytes of the SHA-256 of the name) mod <count> is <index> (0-based), so <count> runs with 0/<count> to <count-1>/<count> share the archive, each namespace in exactly one",
      )
        .default(WHOLE_ARCHIVE, formatShard(WHOLE_ARCHIVE))
        .argParser(parseShardArg),
    )
    .addOption(
      new Option(
        "--lookback <duration>",
        "with --pending: how far back hours are looked at for originals to compact, delete (--delete-after) or keep whole; an original no committed manifest names gets the full lock in every run from a day after its hour while its hour is still in it",
      )
        .default(DEFAULT_LOOKBACK_MS, formatDuration(DEFAULT_LOOKBACK_MS))
        .argParser(parseLookback),
    )
    .addOption(
      new Option(
        "--landing-days <n>",
        "with --pending: the originals' landing retention in days after the end of their hour (the shipper's landing_days); reported with each original kept whole (no committed manifest names it: it gets the full lock, --lock-days, from a day after its hour)",
      )
        .default(DEFAULT_LANDING_DAYS)
        .argParser(parseDays),
    )
    .addOption(
      new Option(
        "--lock-days <n>",
        "with --pending: the retention, in days from its LastModified, given to an original kept whole (no committed manifest names it): the bucket's default retention",
      )
        .default(DEFAULT_LOCK_DAYS)
        .argParser(parseDays),
    )
    .addOption(
      new Option(
        "--delete-after <duration>",
        "with --pending: how long after its hour ends an original a committed manifest names gets a delete marker (DeleteObject without a version id, only while its current version is the one the manifest names; its locked version stays until its retention ends); at least 1h, and it must be at least the stack's athenaCutoffHours (the CronJob passes that), or Athena's view loses lines",
      )
        .default(
          DEFAULT_ATHENA_CUTOFF_HOURS * 3_600_000,
          formatDuration(DEFAULT_ATHENA_CUTOFF_HOURS * 3_600_000),
        )
        .argParser(parseDeleteAfter),
    )
    .addOption(
      new Option("--concurrency <n>", "with --pending: namespace-hours compacted at once")
        .default(DEFAULT_PENDING_CONCURRENCY)
        .argParser(parseConcurrency),
    )
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
  return withArchiveLocationOptions(command).action(async (o: CompactCommandOptions, self: CommandType) => {
    checkMode(o, self);
    const location = await archiveLocation(o);
    const { S3Client } = await import("@aws-sdk/client-s3");
    const { compactNamespaceHour, CompactionError, HourNotSettledError } = await import(
      "../../lib/compaction/compact.ts"
    );
    const s3 = new S3Client({
      region: location.region ?? "us-east-1",
      ...(location.s3Endpoint ? { endpoint: location.s3Endpoint, forcePathStyle: true } : {}),
    });
    if (o.pending) {
      try {
        await runPending(o, location, s3, version);
      } finally {
        s3.destroy();
      }
      return;
    }
    const namespace = o.namespace!;
    const hour = o.hour!;
    const hourText = `${hour.dt}T${hour.hour}`;
    try {
      let outcome: Awaited<ReturnType<typeof compactNamespaceHour>>;
      try {
        outcome = await compactNamespaceHour({
          s3,
          bucket: location.bucket,
          prefix: location.prefix,
          namespace,
          ...hour,
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
          process.stdout.write(`compact: FAILED ${namespace} ${hourText}: ${(error as Error).message}\n`);
          process.exitCode = EXIT.verdict;
          return;
        }
        throw error;
      }
      const head = `compact: ${namespace} ${hourText} generation ${outcome.generation}`;
      const lines: string[] = [];
      const totalBytes = outcome.parts.reduce((n, p) => n + p.bytes, 0);
      const totalRecords = outcome.members.reduce((n, m) => n + m.records, 0);
      const earlier =
        outcome.alreadyCompacted > 0
          ? `; ${outcome.alreadyCompacted} batch(es) already in generation(s) 0-${outcome.generation - 1}`
          : "";
      switch (outcome.status) {
        case "empty":
          lines.push(`${head}: no archive object of ${namespace} in ${hourText}; nothing to compact`);
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
          if (outcome.resumedPlan) {
            lines.push(
              `compact: ${o.dryRun ? "would complete" : "completed"} the plan ${outcome.planKey} an interrupted run wrote; batches that arrived after it go into generation ${outcome.generation + 1} at the next run`,
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

/** The run's totals, as the total line and the JSON summary line give them. */
export interface PendingSummary {
  event: "compact-pending";
  window: PendingRun["window"];
  /** `<index>/<count>`. */
  shard: string;
  lookbackMs: number;
  settleMs: number;
  namespaces: number;
  pending: number;
  committed: number;
  planned: number;
  upToDate: number;
  failed: number;
  members: number;
  records: number;
  bytes: number;
  parts: number;
  partsWritten: number;
  partsKept: number;
  requests: PendingRun["requests"];
  failures: { namespace: string; hour: string; reason: string }[];
  /** Originals given a delete marker (dry run: that would be): named by a committed manifest, their hour ended --delete-after ago. */
  deleted: number;
  /** Originals no committed manifest names, near the end of their landing retention: kept at the full lock. */
  kept_whole: KeptWhole[];
  /** Sweep requests that failed, and originals kept whole without Object Lock retention (the run fails). */
  sweepErrors: { key: string; message: string }[];
  /** Originals a committed manifest names whose current version is another (written again after compaction): not deleted, kept whole (the run fails). */
  conflicts: SweepConflict[];
}

function failureReason(result: PendingResult): string | null {
  if (result.error !== undefined) return `${result.error.name}: ${result.error.message}`;
  const o = result.outcome;
  if (o.status === "refused")
    return `${o.refused.length} archive object(s) refused: ${o.refused.map((r) => r.key).join(", ")}`;
  if (o.status === "not-ready") return `not ready by the shippers' hour indexes: ${o.notReady.join("; ")}`;
  return null;
}

/** One line for a namespace-hour, then its refusals or reasons indented. */
function describePendingResult(result: PendingResult, dryRun: boolean): string[] {
  const where = `${result.namespace} ${result.dt}T${result.hour}`;
  if (result.error !== undefined) return [`compact: ${where}: FAILED: ${result.error.message}`];
  const o: CompactionOutcome = result.outcome;
  const head = `compact: ${where} generation ${o.generation}`;
  const bytes = o.parts.reduce((n, p) => n + p.bytes, 0);
  const records = o.members.reduce((n, m) => n + m.records, 0);
  const what = `${o.members.length} batch(es), ${records} record(s), ${formatSize(bytes)} in ${o.parts.length} part(s)`;
  const earlier =
    o.alreadyCompacted > 0 ? `; ${o.alreadyCompacted} batch(es) already in earlier generation(s)` : "";
  switch (o.status) {
    case "committed": {
      const written = o.parts.filter((p) => p.outcome === "written").length;
      const resumed = o.resumedPlan ? ", completing the plan an interrupted run wrote" : "";
      return [
        `${head}: committed ${what} (${written} part(s) written, ${o.parts.length - written} kept${resumed})${earlier}`,
      ];
    }
    case "planned":
      return [`${head}: would compact ${what}${earlier}${dryRun ? " (dry run)" : ""}`];
    case "up-to-date":
    case "empty":
      return [`${head}: nothing new${earlier}`];
    case "refused":
      return [
        `${head}: FAILED: ${o.refused.length} archive object(s) refused; not committed, its originals stay what readers use`,
        ...o.refused.map(
          (r) => `  REFUSED ${r.key}${r.versionId === null ? "" : ` (version ${r.versionId})`}: ${r.reason}`,
        ),
      ];
    case "not-ready":
      return [
        `${head}: FAILED: not ready by the shippers' hour indexes; nothing written`,
        ...o.notReady.map((why) => `  NOT READY ${why}`),
      ];
  }
}

export function summarizePending(run: PendingRun, lookbackMs: number, settleMs: number): PendingSummary {
  const summary: PendingSummary = {
    event: "compact-pending",
    window: run.window,
    shard: formatShard(run.shard),
    lookbackMs,
    settleMs,
    namespaces: run.namespaces,
    pending: run.pending.length,
    committed: 0,
    planned: 0,
    upToDate: 0,
    failed: 0,
    members: 0,
    records: 0,
    bytes: 0,
    parts: 0,
    partsWritten: 0,
    partsKept: 0,
    requests: run.requests,
    failures: [],
    deleted: run.sweep.deleted,
    kept_whole: run.sweep.keptWhole,
    sweepErrors: run.sweep.errors,
    conflicts: run.sweep.conflicts,
  };
  for (const result of run.results) {
    const reason = failureReason(result);
    if (reason !== null) {
      summary.failed++;
      summary.failures.push({ namespace: result.namespace, hour: `${result.dt}T${result.hour}`, reason });
      continue;
    }
    const o = result.outcome!;
    if (o.status === "committed") summary.committed++;
    else if (o.status === "planned") summary.planned++;
    else summary.upToDate++;
    if (o.status !== "committed") continue;
    summary.members += o.members.length;
    summary.records += o.members.reduce((n, m) => n + m.records, 0);
    summary.bytes += o.parts.reduce((n, p) => n + p.bytes, 0);
    summary.parts += o.parts.length;
    summary.partsWritten += o.parts.filter((p) => p.outcome === "written").length;
    summary.partsKept += o.parts.filter((p) => p.outcome === "kept").length;
  }
  return summary;
}

async function runPending(
  o: CompactCommandOptions,
  location: Awaited<ReturnType<typeof archiveLocation>>,
  s3: S3Client,
  version: string,
): Promise<void> {
  const { compactPending } = await import("../../lib/compaction/pending.ts");
  let run: PendingRun;
  try {
    run = await compactPending({
      s3,
      bucket: location.bucket,
      prefix: location.prefix,
      settleMs: o.settle,
      lookbackMs: o.lookback,
      partMaxBytes: o.partMaxBytes,
      concurrency: o.concurrency,
      shard: o.shard,
      landingDays: o.landingDays,
      lockDays: o.lockDays,
      deleteAfterMs: o.deleteAfter,
      indexCheck: o.indexCheck,
      dryRun: o.dryRun === true,
      toolVersion: version,
      onResult: (result) =>
        process.stdout.write(`${describePendingResult(result, o.dryRun === true).join("\n")}\n`),
    });
  } catch (error) {
    const setup = s3SetupError(error, archiveS3Target(o, location));
    if (setup !== undefined) throw setup;
    throw error;
  }
  const s = summarizePending(run, o.lookback, o.settle);
  const window =
    s.window === null ? "no settled hour in the lookback" : `hours ${s.window.from} to ${s.window.to}`;
  const verb = o.dryRun ? `${s.planned} planned` : `${s.committed} committed`;
  process.stdout.write(
    `compact --pending: ${window} (lookback ${formatDuration(o.lookback)}, settle ${formatDuration(o.settle)}${o.shard.count > 1 ? `, shard ${s.shard}` : ""}), ${s.namespaces} namespace(s): ${s.pending} namespace-hour(s) pending, ${verb}, ${s.failed} failed${s.upToDate > 0 ? `, ${s.upToDate} already up to date` : ""}; ${s.members} batch(es), ${s.records} record(s), ${formatSize(s.bytes)} in ${s.parts} part(s)\n`,
  );
  const lines: string[] = [];
  for (const k of s.kept_whole) {
    const verb =
      k.action === "extended"
        ? `${o.dryRun ? "would extend" : "extended"} its retention to ${k.retainUntil} (${k.mode})`
        : k.action === "already"
          ? `already retained until ${k.retainUntil} (${k.mode})`
          : k.action === "gone"
            ? "gone since the listing"
            : "its HEAD shows no Object Lock retention (a sweep error: the role lacks s3:GetObjectRetention, or the object is unlocked)";
    lines.push(
      `compact: KEPT WHOLE ${k.key} (hour ${k.hour}, landing retention ends ${k.landingEnds}): no committed manifest names it; ${verb}`,
    );
  }
  for (const c of s.conflicts) lines.push(`compact: CONFLICT ${c.key} (hour ${c.hour}): ${c.message}`);
  for (const e of s.sweepErrors) lines.push(`compact: FAILED ${e.key}: ${e.message}`);
  lines.push(
    `compact --pending: ${s.deleted} compacted original(s) ${o.dryRun ? "would get" : "given"} a delete marker (hours ended ${formatDuration(o.deleteAfter)} ago or more), ${s.kept_whole.length} original(s) kept whole${s.conflicts.length > 0 ? `, ${s.conflicts.length} conflict(s) (written again after compaction, not deleted)` : ""}${s.sweepErrors.length > 0 ? `, ${s.sweepErrors.length} sweep request(s) failed` : ""}`,
  );
  process.stdout.write(`${lines.join("\n")}\n`);
  process.stdout.write(`${JSON.stringify(s)}\n`);
  process.exitCode =
    s.failed > 0 || s.sweepErrors.length > 0 || s.conflicts.length > 0 ? EXIT.verdict : EXIT.ok;
}
