// Reconcile: does every archived analytics object have exactly its records in the
// warehouse? Per object it compares the S3 archive (record count and SHA-256 in the
// object metadata), the GCS landing copy, the loader's markers, and the warehouse's row
// count for the object's batch_id. Used by `logarchive reconcile`, the local pipeline's
// summary and the end-to-end tests.

import { matchesGlob } from "node:path";
import { HeadObjectCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import type { Bucket } from "@google-cloud/storage";
import { type ObjectKey, parseObjectKey, tierPrefix } from "../../lib/keys/layout.ts";
import { fromUserMetadata } from "../../lib/object/metadata.ts";
import { classifyNamespace, type NamespacePolicy, namespaceTableName } from "../../lib/policy/policy.ts";
import type { TableRef, WarehousePort } from "../warehouse/port.ts";
import { type ClaimMarker, markerPaths, objectId, type QuarantineMarker, tableKey } from "./markers.ts";
import { forEachLimited, isNotFound, type StateStore } from "./state.ts";

export type ObjectVerdict =
  | "loaded"
  | "excluded"
  | "queued"
  | "not-transferred"
  | "not-queued"
  | "quarantined"
  | "conflict"
  | "duplicated"
  | "partial"
  | "unexpected-rows"
  | "bad-metadata";

/** Verdicts that are fine: the object is where the policy says it should be. */
export const OK_VERDICTS: ReadonlySet<ObjectVerdict> = new Set(["loaded", "excluded"]);

export interface ObjectReport {
  key: string;
  namespace: string;
  table: string | null;
  records: number | null;
  rows: number;
  verdict: ObjectVerdict;
  detail?: string;
}

export interface ReconcileReport {
  from: string;
  to: string;
  namespace: string | null;
  objects: ObjectReport[];
  counts: Record<ObjectVerdict, number>;
  perNamespace: Record<string, { objects: number; records: number; rows: number }>;
  ok: boolean;
}

export interface ReconcileInput {
  s3: S3Client;
  s3Bucket: string;
  landing: Bucket;
  state: StateStore;
  warehouse: WarehousePort;
  policy: NamespacePolicy;
  /** Hour partitions [from, to). */
  from: Date;
  to: Date;
  namespace?: string;
}

function tableFor(policy: NamespacePolicy, namespace: string): TableRef {
  const route = policy.warehouse.routes.find((r) => r.namespaces.some((g) => matchesGlob(namespace, g)));
  return {
    dataset: route?.dataset ?? policy.warehouse.dataset,
    table: route ? namespaceTableName(route.table, namespace) : policy.warehouse.table,
  };
}

function hourStart(key: ObjectKey): number {
  return Date.parse(`${key.dt}T${key.hour}:00:00Z`);
}

export async function reconcile(input: ReconcileInput): Promise<ReconcileReport> {
  const { s3, s3Bucket, policy } = input;
  const prefix =
    tierPrefix(policy.archive.prefix, "analytics") +
    (input.namespace === undefined ? "" : `namespace=${input.namespace}/`);
  const keys: { key: string; parsed: ObjectKey }[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({
        Bucket: s3Bucket,
        Prefix: prefix,
        ...(token ? { ContinuationToken: token } : {}),
      }),
    );
    for (const o of page.Contents ?? []) {
      if (o.Key === undefined) continue;
      let parsed: ObjectKey;
      try {
        parsed = parseObjectKey(o.Key);
      } catch {
        continue;
      }
      const t = hourStart(parsed);
      if (t >= input.from.getTime() && t < input.to.getTime()) keys.push({ key: o.Key, parsed });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);

  const conflictIds = new Set(
    (await input.state.list("conflicts/")).map((e) => e.path.slice("conflicts/".length).split(".")[0]),
  );
  const objects: (ObjectReport & {
    batchId: string | null;
    tableRef: TableRef | null;
    sha256: string | null;
  })[] = [];
  await forEachLimited(keys, 16, async ({ key, parsed }) => {
    const report: (typeof objects)[number] = {
      key,
      namespace: parsed.namespace,
      table: null,
      tableRef: null,
      records: null,
      rows: 0,
      verdict: "loaded",
      batchId: null,
      sha256: null,
    };
    objects.push(report);
    const head = await s3.send(new HeadObjectCommand({ Bucket: s3Bucket, Key: key }));
    try {
      const meta = fromUserMetadata(head.Metadata ?? {});
      report.records = meta.records;
      report.batchId = meta.batchId;
      report.sha256 = meta.sha256;
    } catch (error) {
      report.verdict = "bad-metadata";
      report.detail = (error as Error).message;
      return;
    }
    const id = objectId(key);
    const claim = await input.state.read<ClaimMarker>(markerPaths.claim(id));
    const classification = classifyNamespace(policy, parsed.namespace);
    // A namespace the policy does not load is still checked in the table it would go to, so
    // rows that should not be there are found.
    report.tableRef =
      claim?.table ??
      (classification.archived && classification.destination
        ? classification.destination
        : tableFor(policy, parsed.namespace));
    report.table = report.tableRef === null ? null : tableKey(report.tableRef);
  });

  // Rows per batch, one query per table.
  const byTable = new Map<string, { ref: TableRef; batchIds: string[] }>();
  for (const o of objects) {
    if (o.tableRef === null || o.batchId === null) continue;
    const entry = byTable.get(tableKey(o.tableRef)) ?? { ref: o.tableRef, batchIds: [] };
    entry.batchIds.push(o.batchId);
    byTable.set(tableKey(o.tableRef), entry);
  }
  const rows = new Map<string, Map<string, number>>();
  for (const [name, { ref, batchIds }] of byTable) {
    rows.set(name, await input.warehouse.rowCountsByBatch(ref, batchIds));
  }

  await forEachLimited(objects, 16, async (o) => {
    if (o.verdict === "bad-metadata" || o.batchId === null || o.records === null) return;
    o.rows = o.table === null ? 0 : (rows.get(o.table)?.get(o.batchId) ?? 0);
    const classification = classifyNamespace(policy, o.namespace);
    const loadable = classification.archived && classification.destination !== null;
    if (!loadable) {
      o.verdict = o.rows === 0 ? "excluded" : "unexpected-rows";
      if (o.rows > 0) o.detail = "the policy does not load this namespace, yet the warehouse has its rows";
      return;
    }
    if (o.rows === o.records) {
      o.verdict = "loaded";
      return;
    }
    if (o.rows > o.records) {
      o.verdict = "duplicated";
      o.detail = `${o.rows} rows for ${o.records} records`;
      return;
    }
    if (o.rows > 0) {
      o.verdict = "partial";
      o.detail = `${o.rows} rows for ${o.records} records`;
      return;
    }
    const id = objectId(o.key);
    if (conflictIds.has(id)) {
      o.verdict = "conflict";
      o.detail = "a different body arrived under this name; see the loader's conflicts/ markers";
      return;
    }
    const quarantined = await input.state.read<QuarantineMarker>(markerPaths.quarantined(id));
    if (quarantined !== null) {
      o.verdict = "quarantined";
      o.detail = quarantined.reason;
      return;
    }
    let gcsSha: string | undefined;
    try {
      const [meta] = await input.landing.file(o.key).getMetadata();
      gcsSha = (meta.metadata as Record<string, string> | undefined)?.["logarchive-sha256"];
    } catch (error) {
      if (!isNotFound(error)) throw error;
      o.verdict = "not-transferred";
      o.detail = "in S3 but not in the GCS landing bucket";
      return;
    }
    if (gcsSha !== undefined && gcsSha !== o.sha256) {
      o.verdict = "conflict";
      o.detail = `the GCS copy's SHA-256 ${gcsSha} differs from S3's ${o.sha256}`;
      return;
    }
    if (o.tableRef !== null && (await input.state.exists(markerPaths.pending(o.tableRef, id)))) {
      o.verdict = "queued";
      o.detail = "queued for the table's next load";
      return;
    }
    o.verdict = "not-queued";
    o.detail = "in GCS but never queued: its finalize event was lost or is still being retried";
  });

  const counts = Object.fromEntries(
    (
      [
        "loaded",
        "excluded",
        "queued",
        "not-transferred",
        "not-queued",
        "quarantined",
        "conflict",
        "duplicated",
        "partial",
        "unexpected-rows",
        "bad-metadata",
      ] as const
    ).map((v) => [v, 0]),
  ) as Record<ObjectVerdict, number>;
  const perNamespace: ReconcileReport["perNamespace"] = {};
  for (const o of objects) {
    counts[o.verdict]++;
    const ns = perNamespace[o.namespace] ?? { objects: 0, records: 0, rows: 0 };
    perNamespace[o.namespace] = ns;
    ns.objects++;
    ns.records += o.records ?? 0;
    ns.rows += o.rows;
  }
  objects.sort((a, b) => a.key.localeCompare(b.key));
  return {
    from: input.from.toISOString(),
    to: input.to.toISOString(),
    namespace: input.namespace ?? null,
    objects: objects.map(({ batchId: _b, tableRef: _t, sha256: _s, ...o }) => o),
    counts,
    perNamespace,
    ok: objects.every((o) => OK_VERDICTS.has(o.verdict)),
  };
}

export function describeReconcile(report: ReconcileReport): string {
  const lines = [
    `reconcile ${report.from} → ${report.to}${report.namespace ? ` namespace ${report.namespace}` : ""}: ${report.objects.length} analytics object(s)`,
  ];
  for (const [ns, n] of Object.entries(report.perNamespace).sort()) {
    lines.push(
      `  ${ns.padEnd(24)} objects ${String(n.objects).padStart(6)}  records ${String(n.records).padStart(9)}  rows ${String(n.rows).padStart(9)}`,
    );
  }
  const counts = Object.entries(report.counts)
    .filter(([, n]) => n > 0)
    .map(([v, n]) => `${v} ${n}`)
    .join(", ");
  lines.push(`  verdicts: ${counts || "none"}`);
  for (const o of report.objects) {
    if (OK_VERDICTS.has(o.verdict)) continue;
    lines.push(`  ${o.verdict.toUpperCase().padEnd(16)} ${o.key}${o.detail ? `: ${o.detail}` : ""}`);
  }
  lines.push(
    report.ok
      ? "OK: every object is loaded exactly once or excluded by the policy"
      : "NOT OK: see the objects above",
  );
  return lines.join("\n");
}
