// The Grafana dashboard and the alert rules name metrics by string; these tests fail when
// one of those names is not a metric the shipper registers (a rename in metrics.ts, a
// typo in a panel), and when the files lose the structure Grafana and Prometheus need.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { METRIC_PREFIX, ShipperMetrics } from "../metrics.ts";

interface Target {
  expr: string;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: Target[];
}
interface Dashboard {
  schemaVersion: number;
  uid: string;
  templating: { list: { name: string; type: string; query: string | { query: string } }[] };
  panels: Panel[];
}
interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

const dashboard = JSON.parse(
  readFileSync(join(import.meta.dirname, "grafana-dashboard.json"), "utf8"),
) as Dashboard;
const rules = (
  parse(readFileSync(join(import.meta.dirname, "prometheus-rules.yaml"), "utf8")) as {
    groups: { name: string; rules: Rule[] }[];
  }
).groups.flatMap((g) => g.rules);

const panels = dashboard.panels.filter((p) => p.type !== "row");
const dashboardExprs = [
  ...panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
  ...dashboard.templating.list.map((v) => (typeof v.query === "string" ? v.query : v.query.query)),
];

/** Every `logarchive_shipper_*` name in PromQL text. */
function metricNames(promql: string): string[] {
  return [...promql.matchAll(new RegExp(`\\b${METRIC_PREFIX}[a-zA-Z0-9_]*`, "g"))].map((m) => m[0]);
}

/** Series names the registry exposes, default process metrics included; histograms add their suffixes. */
async function exposedNames(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const m of await new ShipperMetrics().registry.getMetricsAsJSON()) {
    names.add(m.name);
    const type = String(m.type);
    if (type === "histogram") for (const s of ["_bucket", "_sum", "_count"]) names.add(m.name + s);
    if (type === "summary") for (const s of ["_sum", "_count"]) names.add(m.name + s);
  }
  return names;
}

async function unknownMetrics(exprs: readonly string[]): Promise<string[]> {
  const known = await exposedNames();
  return [...new Set(exprs.flatMap(metricNames))].filter((n) => !known.has(n)).sort();
}

function balanced(expr: string): boolean {
  let depth = 0;
  for (const ch of expr.replace(/"(?:[^"\\]|\\.)*"/g, '""')) {
    if ("({[".includes(ch)) depth++;
    if (")}]".includes(ch) && --depth < 0) return false;
  }
  return depth === 0;
}

describe("metric names in the dashboard and alerts", () => {
  it("flags a name the registry does not expose, and accepts default process metrics", async () => {
    assert.deepEqual(
      await unknownMetrics([
        "rate(logarchive_shipper_read_bytes_total[5m]) + logarchive_shipper_reed_lines_total",
        "logarchive_shipper_process_resident_memory_bytes",
        "logarchive_shipper_nodejs_gc_duration_seconds_bucket",
      ]),
      ["logarchive_shipper_reed_lines_total"],
    );
  });

  it("uses only metrics the shipper registers in the Grafana dashboard", async () => {
    assert.ok(dashboardExprs.length > 20);
    assert.deepEqual(await unknownMetrics(dashboardExprs), []);
  });

  it("uses only metrics the shipper registers in the alert rules", async () => {
    assert.deepEqual(await unknownMetrics(rules.map((r) => r.expr)), []);
  });
});

describe("Grafana dashboard", () => {
  it("is a current-schema dashboard on a ${DS_PROMETHEUS} data source with node and instance variables", () => {
    assert.ok(dashboard.schemaVersion >= 39);
    assert.equal(dashboard.uid, "logarchive-shipper");
    const vars = Object.fromEntries(dashboard.templating.list.map((v) => [v.name, v]));
    assert.equal(vars.DS_PROMETHEUS?.type, "datasource");
    assert.equal(vars.DS_PROMETHEUS.query, "prometheus");
    assert.equal(vars.node?.type, "query");
    assert.equal(vars.instance?.type, "query");
    for (const p of panels)
      assert.deepEqual(p.datasource, { type: "prometheus", uid: "${DS_PROMETHEUS}" }, p.title);
  });

  it("filters every shipper metric by the node and instance variables", () => {
    for (const p of panels) {
      for (const t of p.targets ?? []) {
        for (const m of t.expr.matchAll(new RegExp(`${METRIC_PREFIX}\\w+(\\{[^}]*\\})?`, "g"))) {
          assert.equal(m[1], '{node=~"$node", instance=~"$instance"}', `${p.title}: ${t.expr}`);
        }
        assert.ok(balanced(t.expr), `${p.title}: unbalanced ${t.expr}`);
      }
    }
  });

  it("charts what the runbooks point at", () => {
    const charted = new Set(panels.flatMap((p) => (p.targets ?? []).flatMap((t) => metricNames(t.expr))));
    for (const name of [
      "read_bytes_total",
      "read_lines_total",
      "records_total",
      "uploaded_bytes_total",
      "batches_uploaded_total",
      "upload_failures_total",
      "upload_retries_total",
      "spool_bytes",
      "spool_limit_bytes",
      "backpressure",
      "lag_bytes",
      "file_lag_bytes",
      "lost_bytes_total",
      "lines_truncated_total",
      "parse_errors_total",
      "checkpoint_commits_total",
      "last_commit_timestamp_seconds",
      "process_resident_memory_bytes",
      "process_cpu_seconds_total",
    ]) {
      assert.ok(charted.has(METRIC_PREFIX + name), `no panel charts ${METRIC_PREFIX}${name}`);
    }
  });

  it("has unique panel ids and no overlapping panels on the 24-column grid", () => {
    const all = dashboard.panels;
    assert.equal(new Set(all.map((p) => p.id)).size, all.length);
    for (const [i, a] of all.entries()) {
      assert.ok(a.gridPos.x >= 0 && a.gridPos.x + a.gridPos.w <= 24, a.title);
      for (const b of all.slice(i + 1)) {
        const overlap =
          a.gridPos.x < b.gridPos.x + b.gridPos.w &&
          b.gridPos.x < a.gridPos.x + a.gridPos.w &&
          a.gridPos.y < b.gridPos.y + b.gridPos.h &&
          b.gridPos.y < a.gridPos.y + a.gridPos.h;
        assert.ok(!overlap, `${a.title} overlaps ${b.title}`);
      }
    }
  });
});

describe("Prometheus alert rules", () => {
  it("covers spool, backpressure, uploads, loss, lag, commits and liveness", () => {
    assert.deepEqual(rules.map((r) => r.alert).sort(), [
      "LogarchiveBackpressure",
      "LogarchiveBytesLost",
      "LogarchiveLagGrowing",
      "LogarchiveNoCheckpointCommit",
      "LogarchiveShipperAbsent",
      "LogarchiveShipperDown",
      "LogarchiveSpoolFilling",
      "LogarchiveUploadsFailing",
    ]);
  });

  it("gives every alert a severity and a summary, description and runbook", () => {
    for (const r of rules) {
      assert.ok(["warning", "critical"].includes(r.labels.severity ?? ""), r.alert);
      for (const key of ["summary", "description", "runbook"]) {
        assert.ok((r.annotations[key]?.length ?? 0) > 20, `${r.alert}: ${key}`);
      }
      assert.ok(balanced(r.expr), `${r.alert}: unbalanced ${r.expr}`);
      if (r.for !== undefined) assert.match(r.for, /^\d+[smh]$/, r.alert);
    }
  });

  it("pages on any lost byte at once and on the thresholds the runbooks explain", () => {
    const by = Object.fromEntries(rules.map((r) => [r.alert, r]));
    assert.equal(by.LogarchiveBytesLost?.labels.severity, "critical");
    assert.equal(by.LogarchiveBytesLost.for, undefined);
    assert.match(by.LogarchiveBytesLost.expr, /increase\(logarchive_shipper_lost_bytes_total\[10m\]\) > 0/);
    assert.match(by.LogarchiveSpoolFilling?.expr ?? "", /> 0\.8$/);
    assert.equal(by.LogarchiveSpoolFilling?.for, "10m");
    assert.equal(by.LogarchiveBackpressure?.for, "5m");
    assert.equal(by.LogarchiveUploadsFailing?.for, "15m");
    assert.match(by.LogarchiveLagGrowing?.expr ?? "", /deriv\(logarchive_shipper_lag_bytes\[15m\]\) > 0/);
    assert.match(by.LogarchiveLagGrowing?.expr ?? "", /50 \* 1024 \* 1024/);
    assert.match(by.LogarchiveLagGrowing?.annotations.description ?? "", /10Mi/);
    assert.match(by.LogarchiveNoCheckpointCommit?.expr ?? "", /> 300/);
  });
});
