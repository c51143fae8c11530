// What `logarchive local` does: start the local pipeline, feed it (a generated sample
// workload unless --logs is given), and either run until Ctrl-C or, with --once, ship
// what is there, wait until every object is loaded or quarantined, and print a summary.

import { glob } from "node:fs/promises";
import { join } from "node:path";
import { describeEndpoints } from "../cli/commands/local.ts";
import { describeReconcile, OK_VERDICTS, type ReconcileReport } from "../functions/loader/reconcile.ts";
import { compactPending, isFailure } from "../lib/compaction/pending.ts";
import type { Logger } from "../lib/log.ts";
import { classifyNamespace, type NamespacePolicy } from "../lib/policy/policy.ts";
import { shippedByNamespace, shippedRecords, waitUntilShipped } from "./drain.ts";
import type { LocalLog } from "./log.ts";
import { LocalPipeline } from "./pipeline.ts";
import { localS3Client } from "./s3.ts";
import { startLiveSampleWorkload, writeSampleBacklog } from "./sample-workload.ts";

export interface RunLocalOptions {
  dataDir: string;
  policy: NamespacePolicy;
  policyLabel: string;
  once: boolean;
  logs?: readonly string[];
  host: string;
  s3Port: number;
  sqsPort: number;
  gcsPort: number;
  /** The archive bucket has Object Lock (`logarchive hold` can be rehearsed). */
  objectLock?: boolean;
  /**
   * Archive compaction on (needs objectLock): originals kept the landing days, and the closed,
   * settled hours compacted as the stack's CronJob does (`compact --pending`): at the end of
   * --once, and every COMPACTION_INTERVAL_MS while live.
   */
  compaction?: boolean;
  sampleLines: number;
  linesPerSecond: number;
  seed: number;
  logger: Logger;
  version: string;
  out: (text: string) => void;
  /** Where `logger` writes, and what it counted; named on the terminal. */
  logFile?: Pick<LocalLog, "path" | "problems" | "lastProblem">;
  /** How long --once waits for every object to load. Default 300 s. */
  settleTimeoutMs?: number;
}

const fmt = (n: number) => n.toLocaleString("en-US");
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export async function runLocal(o: RunLocalOptions): Promise<number> {
  const started = Date.now();
  // A backlog (--once) goes under its own directory, so a second run adds new pods instead
  // of rewriting files the shipper has already read; the live sample goes on writing the
  // same files every run, so what one run leaves unread stays in the next run's globs.
  const sampleRoot = join(
    o.dataDir,
    "sample-logs",
    o.once ? `run-${new Date().toISOString().replace(/[:.]/g, "")}` : "live",
  );
  const logs = o.logs ?? [`${sampleRoot}/*/*/*.log*`];
  const pipeline = await LocalPipeline.start({
    dataDir: o.dataDir,
    policy: o.policy,
    logs,
    once: o.once,
    host: o.host,
    s3Port: o.s3Port,
    sqsPort: o.sqsPort,
    gcsPort: o.gcsPort,
    ...(o.objectLock ? { objectLock: true } : {}),
    ...(o.compaction ? { compaction: true } : {}),
    logger: o.logger,
    version: o.version,
  });
  o.out(`${describeEndpoints(pipeline.parts.cloud.endpoints)}\n`);
  o.out(`  Policy    ${o.policyLabel}\n`);
  o.out(`  Function  finalize ${pipeline.parts.finalizeUrl}  flush ${pipeline.parts.flushUrl}\n`);
  o.out(
    `  Loader    state bucket ${pipeline.parts.loader.config.stateBucket} (for \`logarchive loader resume --gcs-endpoint … --state-bucket …\`)\n`,
  );
  o.out(`  Logs      ${logs.join(", ")}${o.logs ? "" : "  (generated sample workload)"}\n`);
  if (o.logFile)
    o.out(`  Log file  ${o.logFile.path}  (every component's JSON events; warnings are counted below)\n`);
  try {
    return o.once ? await runOnce(pipeline, o, sampleRoot, started) : await runLive(pipeline, o, sampleRoot);
  } finally {
    await pipeline.stop();
  }
}

async function runOnce(
  pipeline: LocalPipeline,
  o: RunLocalOptions,
  sampleRoot: string,
  started: number,
): Promise<number> {
  if (o.logs === undefined) {
    const sample = await writeSampleBacklog({ root: sampleRoot, lines: o.sampleLines, seed: o.seed });
    o.out(
      `Wrote a sample backlog of ${fmt(sample.lines)} lines in ${Object.keys(sample.linesByNamespace).length} namespaces.\n`,
    );
  }
  const shipper = await pipeline.openShipper();
  await shipper.run();
  await shipper.close();
  const linesRead = await shippedRecords(shipper);
  if (linesRead === 0) {
    if (o.logs !== undefined && (await anyFileMatches(o.logs))) {
      // The files are there and were read before: the data dir's checkpoint is up to date.
      o.out(
        `Nothing new to ship: the files matching ${o.logs.join(", ")} hold no line that this --data-dir's checkpoint (${o.dataDir}) has not shipped already. Append lines, or use another --data-dir to ship them again.\n`,
      );
      return 0;
    }
    o.out(
      `No log lines found under ${o.logs?.join(", ") ?? sampleRoot}: check --logs (a glob of container log files, such as '/var/log/pods/*/*/*.log*').\n`,
    );
    return 1;
  }
  o.out(`Shipped ${fmt(linesRead)} lines; waiting for the transfer and the loader…\n`);
  const report = await pipeline.settle(o.settleTimeoutMs ?? 300_000);
  const freshness = await pipeline.freshness();
  const rows = await pipeline.rowsByNamespace();
  o.out(`${summarize(report, linesRead, freshness, Date.now() - started, pipeline, true, rows)}\n`);
  if (o.compaction) o.out(`${await compactClosedHours(pipeline, o)}\n`);
  // Quarantined is a final state (the object is set aside with its reason, and the summary
  // lists it); anything still missing, duplicated or in conflict is a failure.
  const settled = report.objects.every((x) => OK_VERDICTS.has(x.verdict) || x.verdict === "quarantined");
  return settled ? 0 : 1;
}

function summarize(
  report: ReconcileReport,
  linesRead: number,
  freshness: Awaited<ReturnType<LocalPipeline["freshness"]>>,
  elapsedMs: number,
  pipeline: LocalPipeline,
  backlog: boolean,
  rowsByNamespace: ReadonlyMap<string, number> = new Map(),
): string {
  const loaded = report.objects.filter((x) => x.verdict === "loaded");
  const stats = pipeline.parts.loader.stats();
  const lines = [
    "",
    `logarchive local --once: done in ${seconds(elapsedMs)}`,
    `  lines read by the shipper   ${fmt(linesRead)}`,
    `  objects to load in S3       ${fmt(report.objects.length)} (loaded ${loaded.length}, excluded by policy ${report.counts.excluded}, quarantined ${report.counts.quarantined})`,
    `  finalize events             ${Object.entries(stats.events)
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${k} ${n}`)
      .join(", ")}`,
    "  rows in the warehouse per namespace (whole archive):",
  ];
  const streams: string[] = [];
  for (const [ns, n] of Object.entries(report.perNamespace).sort()) {
    if (report.namespaces[ns]?.tier === "stream") {
      streams.push(
        `    ${ns.slice("stream:".length).padEnd(32)} ${fmt(n.rows).padStart(10)} rows for ${fmt(n.records).padStart(10)} records in ${fmt(n.objects)} stream objects`,
      );
      continue;
    }
    lines.push(
      `    ${ns.padEnd(22)} ${fmt(n.rows).padStart(10)} rows of ${fmt(n.records).padStart(10)} records`,
    );
  }
  // Stream delivery: stream objects are per table and mix namespaces, so each analytics
  // namespace's rows are counted in the warehouse against the records of its archive objects.
  if (pipeline.options.policy.analytics.delivery === "stream") {
    for (const [ns, n] of Object.entries(report.namespaces).sort()) {
      const c = classifyNamespace(pipeline.options.policy, ns);
      if (n.tier !== "archive" || !c.archived || c.destination === null) continue;
      lines.push(
        `    ${ns.padEnd(22)} ${fmt(rowsByNamespace.get(ns) ?? 0).padStart(10)} rows of ${fmt(n.records).padStart(10)} records`,
      );
    }
  }
  if (streams.length > 0) lines.push("  stream objects per table (stream delivery):", ...streams);
  if (freshness !== null) {
    lines.push(
      `  freshness (line written → row queryable) p50 ${seconds(freshness.p50Ms)}, p95 ${seconds(freshness.p95Ms)} over ${fmt(freshness.rows)} rows${backlog ? "\n    (a backlog's lines were written before the run started; `npm start` without --once or `npm run bench:e2e` measure live freshness)" : ""}`,
    );
  }
  const problems = report.objects.filter((x) => !OK_VERDICTS.has(x.verdict));
  lines.push(
    problems.length === 0
      ? "  reconcile: OK, every analytics object is loaded exactly once or excluded by the policy"
      : `  reconcile: NOT OK\n${describeReconcile(report)}`,
  );
  lines.push(
    `  warehouse: ${pipeline.parts.cloud.endpoints.warehouse.path} (open it with DuckDB; table container_logs)`,
  );
  return lines.join("\n");
}

/** How often a live run with --compaction looks for hours to compact (the stack's CronJob runs hourly). */
const COMPACTION_INTERVAL_MS = 5 * 60_000;

/**
 * One `compact --pending` over the local archive (lib/compaction/pending.ts, at its defaults:
 * the settle delay, the lookback): one line saying what it committed, or, with `quiet`, nothing
 * when there was nothing to do. Never throws: compaction failing leaves the originals in place.
 */
export async function compactClosedHours(
  pipeline: Pick<LocalPipeline, "parts">,
  o: Pick<RunLocalOptions, "policy" | "version" | "logger">,
  options: { quiet?: boolean } = {},
): Promise<string> {
  const e = pipeline.parts.cloud.endpoints;
  const s3 = localS3Client(e.s3.endpoint, e.region);
  try {
    const run = await compactPending({
      s3,
      bucket: e.s3.bucket,
      prefix: o.policy.archive.prefix,
      toolVersion: o.version,
    });
    const committed = run.results.filter((r) => r.outcome?.status === "committed");
    const failed = run.results.filter(isFailure);
    for (const r of failed) {
      o.logger.warn(
        {
          event: "compaction_failed",
          namespace: r.namespace,
          hour: `${r.dt}T${r.hour}`,
          ...(r.error ? { error: String(r.error) } : { status: r.outcome?.status }),
        },
        "compaction_failed",
      );
    }
    if (options.quiet && run.pending.length === 0) return "";
    const window =
      run.window === null ? "no settled hour yet" : `hours ${run.window.from} to ${run.window.to}`;
    return `  compaction (compact --pending, ${window}): ${fmt(committed.length)} namespace-hour(s) committed of ${fmt(run.pending.length)} pending${failed.length > 0 ? `, ${fmt(failed.length)} not compacted (see the log)` : ""}`;
  } catch (error) {
    o.logger.warn({ event: "compaction_failed", error: String(error) }, "compaction_failed");
    return `  compaction failed: ${String(error)} (the originals stay; the next run tries again)`;
  } finally {
    s3.destroy();
  }
}

/** The live sample's pods: the same every run, so a restart appends to the same files. */
const SAMPLE_LAYOUT_SEED = 0x10ca1;
/** How long stopping waits for the shipper to read the sample's last lines. */
const CATCH_UP_TIMEOUT_MS = 60_000;
const STATUS_INTERVAL_MS = 10_000;

async function runLive(pipeline: LocalPipeline, o: RunLocalOptions, sampleRoot: string): Promise<number> {
  const workload =
    o.logs === undefined
      ? startLiveSampleWorkload({
          root: sampleRoot,
          linesPerSecond: o.linesPerSecond,
          seed: o.seed,
          layoutSeed: SAMPLE_LAYOUT_SEED,
        })
      : null;
  const liveSince = Date.now();
  const shipper = await pipeline.openShipper();
  const shipping = shipper.run();
  // The stack's compactor CronJob, locally: closed, settled hours compacted now and then.
  let compacting: Promise<void> | null = null;
  const compactNow = () => {
    if (compacting !== null) return;
    compacting = compactClosedHours(pipeline, o, { quiet: true })
      .then((line) => {
        if (line !== "") o.out(`${line}\n`);
      })
      .finally(() => {
        compacting = null;
      });
  };
  const compactor = o.compaction ? setInterval(compactNow, COMPACTION_INTERVAL_MS) : null;
  if (o.compaction) compactNow();
  o.out(
    `Running${workload ? `, writing ${o.linesPerSecond} sample lines/s` : ""}. Rows land in the warehouse within seconds. Press Ctrl-C to stop.\n`,
  );
  let matching = o.logs === undefined || (await anyFileMatches(o.logs));
  if (!matching) o.out(`  ${noMatchWarning(o.logs ?? [])}\n`);
  let stopping = false;
  let reporting = false;
  const status = setInterval(() => {
    if (reporting) return;
    reporting = true;
    void (async () => {
      if (!matching && o.logs) matching = await anyFileMatches(o.logs);
      const stats = pipeline.parts.loader.stats();
      // Read-only and idempotent: one retry rides over a connection the local GCS closed
      // under the request (its keep-alive is Node's 5 s).
      const freshness = await pipeline
        .freshness(liveSince)
        .catch(() => pipeline.freshness(liveSince))
        .catch((error: unknown) => {
          o.logger.warn({ event: "freshness_failed", error: String(error) }, "freshness_failed");
          return null;
        });
      const shipped = await shippedRecords(shipper);
      const archiveOnly = archiveOnlyShipped(await shippedByNamespace(shipper), o.policy);
      const lost = await lostBytes(shipper);
      if (stopping) return;
      o.out(
        `  shipped ${fmt(shipped)} lines · ${describeLoaded(stats.rowsLoaded, archiveOnly)} in ${stats.batchesLoaded} load jobs · quarantined ${stats.events.quarantined + stats.quarantinedAtLoad}${freshness ? ` · freshness p50 ${seconds(freshness.p50Ms)} p95 ${seconds(freshness.p95Ms)}` : ""}${lost > 0 ? ` · LOST ${fmt(lost)} bytes` : ""}${problemsNote(o)}${matching ? "" : ` · no file matches --logs ${o.logs?.join(", ")} yet`}\n`,
      );
    })().finally(() => {
      reporting = false;
    });
  }, STATUS_INTERVAL_MS);
  const signal = await new Promise<string>((resolve) => {
    process.once("SIGINT", () => resolve("SIGINT"));
    process.once("SIGTERM", () => resolve("SIGTERM"));
  });
  stopping = true;
  clearInterval(status);
  if (compactor !== null) clearInterval(compactor);
  await compacting;
  o.out(
    `\n${signal}: stopping: ${workload ? "the sample writer stops, the shipper reads what it wrote, " : ""}the shipper uploads its open batches, then the loader loads them. (Ctrl-C again quits at once; the next run then reads what this one did not.)\n`,
  );
  const written = await workload?.stop();
  if (written) {
    // The sample's files stay in the next run's globs, so a line not read now is read then;
    // waiting here keeps the archive and the warehouse complete when this run ends.
    const caught = await waitUntilShipped(shipper, written.linesByNamespace, o.policy, {
      timeoutMs: CATCH_UP_TIMEOUT_MS,
    });
    if (!caught.caughtUp) {
      o.out(
        `  The shipper has not read the last ${fmt(caught.unshipped)} lines after ${seconds(CATCH_UP_TIMEOUT_MS)}; they stay on disk and the next run reads them.\n`,
      );
    }
  }
  shipper.stop();
  await shipping;
  await shipper.close();
  const shipped = await shippedRecords(shipper);
  const archiveOnly = archiveOnlyShipped(await shippedByNamespace(shipper), o.policy);
  // Checking the loads is the last step: if it fails, what was shipped is safe in S3 and the
  // next run loads what this one did not, so the stop still ends cleanly.
  const report = await pipeline.settle(15_000).catch((error: unknown) => {
    o.logger.error({ event: "settle_failed", error: String(error) }, "settle_failed");
    return null;
  });
  const waiting =
    report?.objects.filter((x) => !OK_VERDICTS.has(x.verdict) && x.verdict !== "quarantined") ?? [];
  const lost = await lostBytes(shipper);
  o.out(
    `Stopped. This run: ${written ? `wrote ${fmt(written.lines)} sample lines, ` : ""}shipped ${fmt(shipped)} lines, ${describeLoaded(pipeline.parts.loader.stats().rowsLoaded, archiveOnly)}${report === null ? `; could not check the loads (see ${o.logFile?.path ?? "the log"}); the next run loads what is left` : ""}${waiting.length > 0 ? `; ${waiting.length} objects are not loaded yet (the next run loads them)` : ""}${lost > 0 ? `; LOST ${fmt(lost)} bytes (see ${o.logFile?.path ?? "the log"})` : ""}.\n` +
      `State is kept in ${o.dataDir}; the next run continues where this one stopped.\n`,
  );
  return 0;
}

/**
 * The lines shipped to namespaces the policy archives but does not load (kube-system in the
 * shipped policy): why "shipped" and "loaded" differ even when every object is loaded.
 */
export function archiveOnlyShipped(
  shippedPerNamespace: ReadonlyMap<string, number>,
  policy: NamespacePolicy,
): { lines: number; namespaces: string[] } {
  let lines = 0;
  const namespaces: string[] = [];
  for (const [namespace, n] of shippedPerNamespace) {
    const c = classifyNamespace(policy, namespace);
    if (!c.archived || c.destination !== null || n === 0) continue;
    lines += n;
    namespaces.push(namespace);
  }
  return { lines, namespaces: namespaces.sort() };
}

/** "loaded M rows (K lines of archive-only namespaces a, b not loaded)", or without the note when K is 0. */
export function describeLoaded(
  rowsLoaded: number,
  archiveOnly: { lines: number; namespaces: string[] },
): string {
  const note =
    archiveOnly.lines === 0
      ? ""
      : ` (${fmt(archiveOnly.lines)} lines of archive-only namespace${archiveOnly.namespaces.length === 1 ? "" : "s"} ${archiveOnly.namespaces.join(", ")} not loaded)`;
  return `loaded ${fmt(rowsLoaded)} rows${note}`;
}

async function lostBytes(shipper: {
  metrics: { bytesLost: { get(): Promise<{ values: { value: number }[] }> } };
}) {
  return (await shipper.metrics.bytesLost.get()).values.reduce((n, v) => n + v.value, 0);
}

function problemsNote(o: RunLocalOptions): string {
  const problems = o.logFile?.problems() ?? 0;
  if (problems === 0) return "";
  const last = o.logFile?.lastProblem();
  return ` · ${fmt(problems)} warning${problems === 1 ? "" : "s"} in ${o.logFile?.path}${last ? ` (last: ${last})` : ""}`;
}

async function anyFileMatches(globs: readonly string[]): Promise<boolean> {
  for (const pattern of globs) {
    for await (const _ of glob(pattern)) return true;
  }
  return false;
}

function noMatchWarning(globs: readonly string[]): string {
  return `Warning: no file matches --logs ${globs.join(", ")}; nothing is shipped until one does. Check the glob (container log files, such as '/var/log/pods/*/*/*.log*').`;
}
