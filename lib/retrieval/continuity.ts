// The sequence-continuity verdict per node: did every batch of the shippers that wrote this
// namespace's objects in the range arrive?
//
// A shipper numbers its batches 0, 1, 2, … per state epoch across every namespace and tier,
// and uploads a batch only after its number is committed (docs/architecture.md#object-keys),
// so a number missing between two of a node's objects is a batch that never arrived, and it
// may have held lines of this namespace. The numbers of other namespaces' batches fill the
// sequence, so the check lists every namespace's objects in the range's hours plus a margin
// each side, as `logarchive reconcile` does (functions/loader/reconcile.ts, the same listing
// and the same gap rules): about two LIST calls per namespace and tier plus one per 1,000
// objects of every namespace in those hours, not the whole bucket.
// What it cannot decide is said: a number below a node's first object that is not in the
// listed hours is "unknown", and numbers after a node's last object cannot be told from
// batches still open on the node.

import type { S3Client } from "@aws-sdk/client-s3";
import {
  DEFAULT_GAP_MARGIN_HOURS,
  type ListedLoss,
  type ListedObject,
  listLossHours,
  listTierHours,
  type SequenceProblem,
  sequenceProblems,
} from "../../functions/loader/reconcile.ts";
import { tierPrefix } from "../keys/layout.ts";
import { longLivedTiers } from "../keys/tiers.ts";

export interface NodeContinuity {
  node: string;
  epoch: string;
  /** Batch numbers of this namespace's objects in the range. */
  batches: number[];
  verdict: "continuous" | "gap" | "reused";
  /** Missing or reused numbers next to this namespace's objects; "unknown" ones are listed but do not fail. */
  problems: SequenceProblem[];
}

export interface ContinuityReport {
  /** The hours listed across every namespace, ISO times [from, to). */
  listed: { from: string; to: string };
  nodes: NodeContinuity[];
}

const HOUR_MS = 3_600_000;

export async function checkContinuity(
  s3: S3Client,
  bucket: string,
  keyPrefix: string,
  /** This namespace's objects in the range (the versions whose records are read). */
  selected: readonly ListedObject[],
  /** Start of the first and end of the last hour partition of the range, ms. */
  rangeStart: number,
  rangeEnd: number,
  marginHours: number = DEFAULT_GAP_MARGIN_HOURS,
  /** This namespace's loss records in the range: batch numbers too (docs/shipper.md#loss-records). */
  selectedLosses: readonly ListedLoss[] = [],
): Promise<ContinuityReport> {
  const listFrom = rangeStart - marginHours * HOUR_MS;
  const listTo = rangeEnd + marginHours * HOUR_MS;
  const listed: (ListedObject | ListedLoss)[] = (
    await Promise.all([
      ...longLivedTiers().map((tier) =>
        listTierHours(s3, bucket, tierPrefix(keyPrefix, tier), listFrom, listTo),
      ),
      // Every namespace's loss records hold numbers of the same sequences.
      listLossHours(s3, bucket, keyPrefix, listFrom, listTo),
    ])
  ).flat();
  // A selected object that is no longer current (a delete marker hides it from ListObjectsV2)
  // still holds its batch number: the body is there in an older version.
  const byKey = new Map(listed.map((o) => [o.key, o]));
  for (const o of [...selected, ...selectedLosses]) if (!byKey.has(o.key)) byKey.set(o.key, o);
  const selectedKeys = new Set([...selected, ...selectedLosses].map((o) => o.key));
  const inRange = (o: ListedObject | ListedLoss) => selectedKeys.has(o.key);
  const problems = sequenceProblems<ListedObject | ListedLoss>(
    [...byKey.values()],
    [...selected, ...selectedLosses],
    inRange,
  );
  const nodes = new Map<string, NodeContinuity>();
  for (const o of selected) {
    const id = `${o.parsed.node}\u0000${o.parsed.epoch}`;
    const entry = nodes.get(id) ?? {
      node: o.parsed.node,
      epoch: o.parsed.epoch,
      batches: [],
      verdict: "continuous",
      problems: [],
    };
    nodes.set(id, entry);
    if (!entry.batches.includes(o.parsed.seq)) entry.batches.push(o.parsed.seq);
  }
  for (const p of problems) {
    const entry = nodes.get(`${p.node}\u0000${p.epoch}`);
    if (entry === undefined) continue;
    entry.problems.push(p);
    if (p.kind === "missing") entry.verdict = "gap";
    else if (p.kind === "reused" && entry.verdict === "continuous") entry.verdict = "reused";
  }
  for (const entry of nodes.values()) entry.batches.sort((a, b) => a - b);
  return {
    listed: { from: new Date(listFrom).toISOString(), to: new Date(listTo).toISOString() },
    nodes: [...nodes.values()].sort((a, b) => a.node.localeCompare(b.node) || a.epoch.localeCompare(b.epoch)),
  };
}
