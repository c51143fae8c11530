// Stopping a live local run without stranding lines. The shipper's stop() stops reading at
// once and drains what it has read, so whoever stops it first waits until it has read what
// the writer wrote: the records it counted, per namespace, against the lines the sample
// workload counted (both are logical lines, a P…F chain being one).

import { classifyNamespace, type NamespacePolicy } from "../lib/policy/policy.ts";
import type { ShipperMetrics } from "../shipper/metrics.ts";

type ShipperWithMetrics = { metrics: Pick<ShipperMetrics, "records"> };

/** Records the shipper has added to batches since it started, per namespace. */
export async function shippedByNamespace(shipper: ShipperWithMetrics): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const v of (await shipper.metrics.records.get()).values) {
    const namespace = String(v.labels.namespace);
    out.set(namespace, (out.get(namespace) ?? 0) + v.value);
  }
  return out;
}

export async function shippedRecords(shipper: ShipperWithMetrics): Promise<number> {
  let n = 0;
  for (const v of (await shipper.metrics.records.get()).values) n += v.value;
  return n;
}

/** Lines written to namespaces the policy archives that the shipper has not counted yet. */
export async function unshippedLines(
  shipper: ShipperWithMetrics,
  writtenByNamespace: Readonly<Record<string, number>>,
  policy: NamespacePolicy,
): Promise<number> {
  const shipped = await shippedByNamespace(shipper);
  let unshipped = 0;
  for (const [namespace, written] of Object.entries(writtenByNamespace)) {
    // The shipper never reads a namespace the policy does not archive.
    if (!classifyNamespace(policy, namespace).archived) continue;
    unshipped += Math.max(0, written - (shipped.get(namespace) ?? 0));
  }
  return unshipped;
}

export interface CatchUpResult {
  caughtUp: boolean;
  /** Lines still unread when it gave up (0 when caught up). */
  unshipped: number;
}

/**
 * Resolves once the shipper has read every line the (stopped) writer wrote, or after
 * `timeoutMs`, or when `signal` aborts. Polls the shipper's records counter, which moves
 * at each commit (every commit_interval, or when a batch is due).
 */
export async function waitUntilShipped(
  shipper: ShipperWithMetrics,
  writtenByNamespace: Readonly<Record<string, number>>,
  policy: NamespacePolicy,
  options: { timeoutMs: number; pollMs?: number; signal?: AbortSignal },
): Promise<CatchUpResult> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const unshipped = await unshippedLines(shipper, writtenByNamespace, policy);
    if (unshipped === 0) return { caughtUp: true, unshipped };
    if (Date.now() >= deadline || options.signal?.aborted) return { caughtUp: false, unshipped };
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 100));
  }
}
