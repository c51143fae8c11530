// Text tables for `logarchive plan` and `logarchive cost`.

import type { CostReport, TransitionBySize } from "./cost.ts";
import { MONTH_DAYS } from "./cost.ts";
import {
  type Assumptions,
  COMPACTION_ASSUMPTIONS,
  COMPACTOR_RUN_DEADLINE_SECONDS,
  type GcsOps,
  type PlanModel,
} from "./model.ts";
import { PRICES_AS_OF } from "./prices.ts";
import { type QuotaCheck, REQUIRED_HEADROOM } from "./quotas.ts";

export function count(n: number): string {
  if (!Number.isFinite(n)) return n > 0 ? "∞" : "–";
  const abs = Math.abs(n);
  if (abs >= 100 || Number.isInteger(n)) return Math.round(n).toLocaleString("en-US");
  if (abs >= 10) return n.toFixed(1);
  if (abs >= 1) return n.toFixed(2);
  if (abs === 0) return "0";
  return n.toPrecision(2);
}

export function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

export function usd(n: number): string {
  if (n >= 100) return `$${Math.round(n).toLocaleString("en-US")}`;
  return `$${n.toFixed(2)}`;
}

function seconds(s: number): string {
  if (s >= 120) return `${(s / 60).toFixed(1)} min`;
  return `${s.toFixed(0)} s`;
}

/** A Markdown-compatible table, columns padded. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n");
}

const TIER_NAMES = { analytics: "analytics/", archive: "archive/", stream: "stream/" } as const;

function opsRow(name: string, o: GcsOps): string[] {
  return [name, count(o.classA), count(o.classB), count(o.notBilled), count(o.deletes)];
}

export function formatPlan(
  model: PlanModel,
  quotas: readonly QuotaCheck[],
  notes: readonly string[],
): string {
  const w = model.inputs.workload;
  const out: string[] = [];
  out.push(
    `logarchive plan: ${count(w.nodes)} nodes × ${count(w.rawBytesPerNodeDay / 1e9)} GB/day raw, ${w.namespaces} namespaces, ${Math.min(w.activePerNode, w.namespaces)} active per node, zipf:${w.zipfExponent}, analytics share ${(w.analyticsShare * 100).toFixed(1)}%, stored/raw ${w.storedPerRaw.toFixed(3)}, ${w.rawLineBytes} B/line`,
  );
  for (const n of notes) out.push(`  ${n}`);
  out.push("", "## Objects per day and their sizes (compressed)");
  const sizeRows = [
    ...Object.entries(model.sizes.byTier).map(([tier, s]) => [
      TIER_NAMES[tier as keyof typeof TIER_NAMES],
      s,
    ]),
    ["all", model.sizes.all],
    ...(model.compaction === null
      ? []
      : [["compacted/ (replaces archived objects after their landing days)", model.compaction.sizes]]),
  ] as [string, typeof model.sizes.all][];
  out.push(
    table(
      ["prefix", "objects/day", "bytes/day", "mean", "median", "p90", "under 128 KiB"],
      sizeRows.map(([name, s]) => [
        name,
        count(s.objectsPerDay),
        bytes(s.storedBytesPerDay),
        bytes(s.meanBytes),
        bytes(s.medianBytes),
        bytes(s.p90Bytes),
        `${(s.shareUnder128KiB * 100).toFixed(1)}%`,
      ]),
    ),
  );
  const l = model.loader;
  out.push("", "## Requests and rates");
  out.push(
    table(
      ["what", "modelled"],
      [
        ["S3 PUT/s, all prefixes", count(model.s3.putsPerSecond)],
        [
          `S3 PUT/s, hottest namespace prefix (on ${count(model.s3.hottestPrefix.nodes)} nodes)`,
          count(model.s3.hottestPrefix.putsPerSecond),
        ],
        ["SQS messages/s (analytics objects)", count(model.sqs.messagesPerSecond)],
        ["SQS requests/s", count(model.sqs.requestsPerSecond)],
        ["SQS messages in flight", count(model.sqs.inFlight)],
        ["Storage Transfer: objects copied/day", count(model.transfer.objectsPerDay)],
        ["Storage Transfer: bytes copied/day", bytes(model.transfer.bytesPerDay)],
        ["Storage Transfer: S3 GET+HEAD/day", count(model.transfer.s3ReadsPerDay)],
        ["Storage Transfer: operations in progress", count(model.transfer.operationsInProgress)],
        ["Function invocations/day: finalize of objects", count(model.functions.finalizeChecked)],
        [
          "Function invocations/day: finalize of marker writes (ignored)",
          count(model.functions.finalizeIgnored),
        ],
        ["Function invocations/day: flush", count(model.functions.flushRuns)],
        ["Function instances busy at once (finalize)", count(model.functions.concurrentInstances)],
        [`Load window per table (${l.tables} table(s))`, seconds(l.windowSeconds)],
        ["Loaded objects per table per window", count(l.objectsPerWindow)],
        [
          `Loader job ceiling, objects per table per day (${count(l.allowedJobsPerTablePerDay)} jobs × URIs per job)`,
          count(l.jobCeilingObjectsPerTablePerDay),
        ],
        [
          `Loader flush ceiling, objects per table per day (${Math.round(l.fullBatchSeconds)} s per full batch, until flush_deadline)`,
          count(l.flushCeilingObjectsPerTablePerDay),
        ],
        [
          `Loader capacity, objects per table per day (bound by ${l.capacityBoundBy})`,
          count(l.capacityObjectsPerTablePerDay),
        ],
        ["Backlog growth, objects/day (over capacity)", count(l.backlogGrowthPerDay)],
        ["Share of analytics objects the loader can load", `${(l.loadedShare * 100).toFixed(1)}%`],
        ["Load jobs per table per day", count(l.jobsPerTablePerDay)],
        ["Load jobs per project per day", count(l.jobsPerProjectPerDay)],
        ["BigQuery rows/day (all analytics lines)", count(model.bigquery.rowsPerDay)],
        ["BigQuery load input/day (gzip, from GCS)", bytes(model.bigquery.loadedBytesPerDay)],
        ["BigQuery logical bytes/day", bytes(model.bigquery.logicalBytesPerDay)],
        ["BigQuery physical bytes/day (estimate)", bytes(model.bigquery.physicalBytesPerDay)],
        [
          "Freshness, analytics line → row, p50 / p95",
          model.freshness === null
            ? "unbounded: the queue grows faster than the loader drains it"
            : `${seconds(model.freshness.p50Seconds)} / ${seconds(model.freshness.p95Seconds)}`,
        ],
      ],
    ),
  );
  out.push("", "## GCS operations per day, by class (counted from functions/loader/*.ts)");
  out.push(
    table(
      ["purpose", "class A", "class B", "not billed (404/412)", "deletes (free)"],
      [
        ...Object.entries(model.gcs.byPurpose).map(([name, o]) => opsRow(name, o)),
        opsRow("total", model.gcs.perDay),
      ],
    ),
  );
  out.push("", `## Quotas (required headroom ${REQUIRED_HEADROOM}×)`);
  out.push(
    table(
      ["quota", "limit", "modelled use", "headroom", "", "change", "source"],
      quotas.map((q) => [
        q.name,
        `${count(q.limit)} ${q.unit}`,
        count(q.use),
        Number.isFinite(q.headroom)
          ? `${q.headroom >= 100 ? Math.round(q.headroom) : q.headroom.toFixed(2)}×`
          : "∞",
        q.ok ? "ok" : q.hard ? "SHORT" : "short (guideline)",
        q.ok ? "" : q.setting,
        q.source,
      ]),
    ),
  );
  const c = model.compaction;
  if (c !== null) {
    out.push(
      "",
      `## Archive compaction (docs/design/compaction.md; the hourly compact --pending CronJob: each compacted original deleted ${c.design.deleteAfterHours} h after its hour, its version kept to its ${c.design.landingDays}-day retention; parts of at most ${bytes(c.design.partMaxBytes)})`,
    );
    out.push(
      table(
        ["what", "per day"],
        [
          ["Originals compacted (members)", count(c.membersPerDay)],
          ["DeleteObject of compacted originals (a delete marker each; free)", count(c.deletesPerDay)],
          ["Originals kept whole (lock extended with PutObjectRetention)", count(c.keptWholePerDay)],
          ["Namespace-hours compacted", count(c.namespaceHoursPerDay)],
          [
            `Compacted parts (median ${bytes(c.sizes.medianBytes)}, ${(c.sizes.shareUnder128KiB * 100).toFixed(1)}% under 128 KiB)`,
            count(c.sizes.objectsPerDay),
          ],
          ["Supplement generations (late batches)", count(c.supplementsPerDay)],
          ["Manifests written", count(c.manifestsPerDay)],
          ["Bytes streamed (S3 to S3, in region)", bytes(c.bytesPerDay)],
          [
            `S3 GET, enumeration (committed manifests in each run's ${c.windowHours}-hour window)`,
            count(c.enumeration.getsPerDay),
          ],
          [
            "S3 LIST pages, enumeration (namespaces, originals and compacted keys in the window)",
            count(c.enumeration.listPagesPerDay),
          ],
          [
            `S3 GET, hour indexes (${2 + c.design.indexMarginHours} index hours a run, every node's, by each of ${c.design.shards} pod(s))`,
            count(c.indexes.getsPerDay),
          ],
          ["S3 LIST pages, hour indexes", count(c.indexes.listPagesPerDay)],
          [
            "S3 GET/HEAD, compacting (a GET per original, 2 HEADs per part, a plan GET per generation)",
            count(c.compacting.getsPerDay),
          ],
          [
            "S3 LIST pages, compacting (manifests and originals per pending hour)",
            count(c.compacting.listPagesPerDay),
          ],
          [
            `S3 PUT-class, compacting (parts as multipart uploads in ${bytes(c.design.uploadPartBytes)} chunks, plans, manifests)`,
            count(c.compacting.putsPerDay),
          ],
          [
            `Compactor pod-seconds (${c.design.shards} pod(s) a run, the pods' life)`,
            count(c.podSecondsPerDay),
          ],
          [
            `One hourly run of each pod, seconds (the CronJob ends a run at ${count(COMPACTOR_RUN_DEADLINE_SECONDS)})`,
            count(c.runSecondsPerRun),
          ],
        ],
      ),
    );
  }
  out.push("", "## Assumptions (not published by the providers; override with --assumptions FILE)");
  out.push(
    table(
      ["assumption", "value"],
      Object.entries(model.inputs.assumptions)
        .filter(([k]) => c !== null || !COMPACTION_ASSUMPTIONS.includes(k as keyof Assumptions))
        .map(([k, v]) => [k, String(v as Assumptions[keyof Assumptions])]),
    ),
  );
  return `${out.join("\n")}\n`;
}

/** Per transition: from what size, and the archived objects and GB a day it moves and leaves. */
export function transitionReachTable(reach: readonly TransitionBySize[]): string {
  const gb = (b: number) => `${count(b / 2 ** 30)} GB`;
  return table(
    [
      "transition",
      "object sizes",
      "moving objects/day",
      "moving GB/day",
      "staying objects/day",
      "staying GB/day",
    ],
    reach.map((t) => [
      `${t.storageClass}@${t.afterDays}d`,
      t.ranges.length === 0
        ? "none"
        : t.ranges
            .map((r) =>
              r.maxBytes === null ? `≥ ${bytes(r.minBytes)}` : `${bytes(r.minBytes)}–${bytes(r.maxBytes)}`,
            )
            .join(", "),
      count(t.movingObjectsPerDay),
      gb(t.movingBytesPerDay),
      count(t.stayingObjectsPerDay),
      gb(t.stayingBytesPerDay),
    ]),
  );
}

export function formatCost(report: CostReport, heading: string): string {
  const out: string[] = [heading, ""];
  const groups = ["storage", "requests", "egress", "fleet"] as const;
  const rows: string[][] = [];
  for (const g of groups) {
    for (const l of report.lines.filter((x) => x.group === g)) {
      rows.push([
        l.inTotal ? g : `(${g})`,
        l.item,
        `${count(l.quantity)} ${l.unit}`,
        usd(l.steady),
        usd(l.first),
        l.note ?? "",
      ]);
    }
  }
  out.push(table(["group", "line", "quantity (steady month)", "steady month", "first month", "note"], rows));
  out.push("");
  out.push(
    table(
      ["total", "steady month", "first month"],
      [
        ...groups.map((g) => [g, usd(report.totals.steady[g]), usd(report.totals.first[g])]),
        ["total", usd(report.totals.steady.total), usd(report.totals.first.total)],
      ],
    ),
  );
  if (report.transitionsBySize.length > 0) {
    out.push(
      "",
      report.transitionBands.length > 0
        ? "Lifecycle transitions by size (break-even: each only where its request costs less than the storage it saves; --transition-sizes off for age-only):"
        : "Lifecycle transitions by size (age-only: S3's default minimum object size):",
      transitionReachTable(report.transitionsBySize),
    );
  }
  out.push(
    "",
    `request charges: ${(report.requestShare * 100).toFixed(1)}% of the steady-state bill without egress${report.requestShareCompactorAsFleet === report.requestShare ? "" : ` (${(report.requestShareCompactorAsFleet * 100).toFixed(1)}% with the compactor's pod counted as compute beside the fleet)`}; first month: requests ${usd(report.totals.first.requests)} vs storage ${usd(report.totals.first.storage)}`,
    `median archived object: ${bytes(report.medianArchivedObjectBytes)}; a month is ${MONTH_DAYS.toFixed(2)} days`,
    "",
    `## Prices (list prices as of ${PRICES_AS_OF}; override with --prices FILE)`,
  );
  out.push(
    table(
      ["id", "price", "what", "source"],
      Object.entries(report.prices).map(([id, p]) => [id, `${p.value} ${p.unit}`, p.what, p.source]),
    ),
  );
  return `${out.join("\n")}\n`;
}
