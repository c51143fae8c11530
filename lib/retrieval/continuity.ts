// The sequence-continuity verdict per node: did every batch of the shippers that wrote this
// namespace's objects in the range arrive?
//
// A shipper numbers its batches 0, 1, 2, … per state epoch across every namespace and tier,
// and uploads a batch only after its number is committed (docs/architecture.md#object-keys),
// so a number missing between two of a node's objects is a batch that never arrived, and it
// may have held lines of this namespace.
//
// First from the shipper's hour indexes (docs/retrieval.md#hour-indexes): each names every
// batch a node numbered in one hour, with its key and SHA-256, and links to the node's previous
// index. They are read for the range's hours and every hour after it up to the margin (never
// the open hour, which has none yet): a batch is numbered when its first line is read, so at
// or after its records' hour, and after a shipper outage hours after it. For a node whose objects they
// cover, and whose indexes chain without a break, the verdict rests on them: every batch of
// the namespace they list in the range's hours must be among the objects listed, with the
// SHA-256 they give. One LIST per hour of the range plus the margin and one GET per node-hour
// read, whatever the number of namespaces.
//
// Where they do not cover a node (an open or unindexed hour, a shipper from before indexes, an
// index missing from the chain, or one read but not usable), that node is decided as before any index
// existed, and the report says so: every namespace's objects in the range's hours plus a
// margin each side are listed, as `logarchive reconcile` does (functions/loader/reconcile.ts,
// the same listing and the same gap rules): about two LIST calls per namespace and tier plus
// one per 1,000 objects of every namespace in those hours, not the whole bucket. What that
// cannot decide is said: a number below a node's first object that is not in the listed hours
// is "unknown", and numbers after a node's last object cannot be told from batches still open
// on the node.

import type { S3Client } from "@aws-sdk/client-s3";
import {
  DEFAULT_GAP_MARGIN_HOURS,
  type ListedLoss,
  type ListedObject,
  listCompactedHours,
  listLossHours,
  listTierHours,
  type SequenceProblem,
  sequenceProblems,
} from "../../functions/loader/reconcile.ts";
import { parseIndexKey, parseObjectKey, tierPrefix } from "../keys/layout.ts";
import { longLivedTiers } from "../keys/tiers.ts";
import type { HourIndexEntry } from "../object/hour-index.ts";
import { parseRfc3339 } from "../record/timestamp.ts";
import { emptyReading, type ReadIndex, readIndexHours } from "./hour-indexes.ts";

/** A finding of the index check on one of the node's numbers. */
export interface IndexProblem {
  /**
   * missing: the index names a batch of this namespace in the range that is not in the archive;
   * checksum: the object's bytes are not the ones the shipper indexed;
   * other-key: the object listed holds a number the index gives to another key;
   * chain: numbers between two indexes read are in no index (an index is missing or unreadable).
   */
  kind: "missing" | "checksum" | "other-key" | "chain";
  first: number;
  last: number;
  key: string | null;
  detail: string;
}

export interface NodeContinuity {
  node: string;
  epoch: string;
  /** Batch numbers of this namespace's objects in the range. */
  batches: number[];
  verdict: "continuous" | "gap" | "reused" | "tampered";
  /**
   * index: the node's hour indexes cover its objects and chain; listing: decided (also) by
   * listing every namespace's hours around the range, for `fallback`'s reason.
   */
  source: "index" | "listing";
  fallback: string | null;
  /** The node's indexes read: hour and number range. */
  indexes: { hour: string; first: number; last: number }[];
  indexProblems: IndexProblem[];
  /** Missing or reused numbers from the listing; "unknown" ones are listed but do not fail. */
  problems: SequenceProblem[];
}

export interface ContinuityReport {
  /** The hour indexes read: hours [from, to), the requests, and the ones not usable. */
  indexes: {
    from: string;
    to: string;
    listCalls: number;
    getCalls: number;
    read: number;
    /**
     * Indexes found but not used, and why, with the node and epoch their key names (null when
     * it names none): that node, or every node when null, is decided by listing.
     */
    unusable: { key: string; problem: string; node: string | null; epoch: string | null }[];
  };
  /** The hours listed across every namespace, ISO times [from, to); null when no node needed it. */
  listed: { from: string; to: string } | null;
  nodes: NodeContinuity[];
}

const HOUR_MS = 3_600_000;

/** An object of the namespace whose records are read, with the SHA-256 computed over its body (null if not read). */
export interface SelectedObject extends ListedObject {
  sha256: string | null;
}

/** A loss record of the namespace that retrieval read, with its computed SHA-256. */
export interface SelectedLoss extends ListedLoss {
  sha256: string;
}

export interface ContinuityInput {
  s3: S3Client;
  bucket: string;
  keyPrefix: string;
  namespace: string;
  /** This namespace's objects in the range (the versions whose records are read). */
  selected: readonly SelectedObject[];
  /** This namespace's loss records whose span overlaps the range: batch numbers too. */
  selectedLosses: readonly SelectedLoss[];
  /** Start of the first and end of the last hour partition of the range, ms. */
  rangeStart: number;
  rangeEnd: number;
  /** The exact range [from, to), ms: loss records the index names in it must be among selectedLosses. */
  from: number;
  to: number;
  marginHours?: number;
  /** Now, ms: no index exists yet for the hour it falls in. */
  now?: number;
}

const nodeId = (node: string, epoch: string) => `${node}\u0000${epoch}`;

export async function checkContinuity(input: ContinuityInput): Promise<ContinuityReport> {
  const { s3, bucket, keyPrefix, selected, rangeStart, rangeEnd } = input;
  const marginHours = input.marginHours ?? DEFAULT_GAP_MARGIN_HOURS;
  const openHour = Math.floor((input.now ?? Date.now()) / HOUR_MS) * HOUR_MS;
  // Every hour up to the margin past the range (as the listing check lists), never the open
  // hour: a batch is numbered when its first line is read, which after a shipper outage can be
  // many hours past its records' hour, and an index missing from the end of the chain shows
  // only against the indexes after it.
  const limit = Math.max(rangeStart, Math.min(rangeEnd + marginHours * HOUR_MS, openHour));
  const reading = emptyReading(rangeStart);
  await readIndexHours(s3, bucket, keyPrefix, reading, limit);

  const byNode = new Map<string, ReadIndex[]>();
  for (const r of reading.indexes) {
    const id = nodeId(r.index.node, r.index.epoch);
    byNode.set(id, [...(byNode.get(id) ?? []), r]);
  }
  const nodes = new Map<string, NodeContinuity>();
  const entryOf = (node: string, epoch: string): NodeContinuity => {
    const id = nodeId(node, epoch);
    let entry = nodes.get(id);
    if (entry === undefined) {
      entry = {
        node,
        epoch,
        batches: [],
        verdict: "continuous",
        source: "index",
        fallback: null,
        indexes: (byNode.get(id) ?? [])
          .sort((a, b) => a.index.first - b.index.first)
          .map((r) => ({ hour: r.index.hour, first: r.index.first, last: r.index.last })),
        indexProblems: [],
        problems: [],
      };
      nodes.set(id, entry);
    }
    return entry;
  };
  for (const o of selected) {
    const entry = entryOf(o.parsed.node, o.parsed.epoch);
    if (!entry.batches.includes(o.parsed.seq)) entry.batches.push(o.parsed.seq);
  }

  // What the indexes say of this namespace in the range.
  const selectedByKey = new Map(selected.map((o) => [o.key, o]));
  const lossesByKey = new Map(input.selectedLosses.map((o) => [o.key, o]));
  const inRangeHours = (e: HourIndexEntry) => {
    if (e.kind === "loss") {
      const first = msOf(e.firstTimestamp);
      const last = msOf(e.lastTimestamp);
      // A loss spans from the last line before it (its filing time) to its detection.
      return first < input.to && last >= input.from;
    }
    const k = parseObjectKey(e.key);
    const start = Date.parse(`${k.dt}T${k.hour}:00:00Z`);
    return start >= rangeStart && start < rangeEnd;
  };
  for (const list of byNode.values()) {
    list.sort((a, b) => a.index.first - b.index.first);
    const { node, epoch } = list[0]!.index;
    const mine = list.flatMap((r) => r.index.batches).filter((e) => e.namespace === input.namespace);
    const relevant = mine.filter(inRangeHours);
    const hasSelected = selected.some((o) => o.parsed.node === node && o.parsed.epoch === epoch);
    if (relevant.length === 0 && !hasSelected) continue;
    const entry = entryOf(node, epoch);
    for (const e of relevant) {
      const found = e.kind === "loss" ? lossesByKey.get(e.key) : selectedByKey.get(e.key);
      if (found === undefined) {
        entry.indexProblems.push({
          kind: "missing",
          first: e.seq,
          last: e.seq,
          key: e.key,
          detail: `the shipper's index names ${e.kind === "loss" ? "loss record" : "batch"} ${e.seq} (${e.key}, ${e.records} records) and it is not in the archive`,
        });
      } else if (found.sha256 !== null && found.sha256 !== e.sha256) {
        entry.indexProblems.push({
          kind: "checksum",
          first: e.seq,
          last: e.seq,
          key: e.key,
          detail: `${e.key} has SHA-256 ${found.sha256}, the shipper's index says ${e.sha256}: the object was replaced`,
        });
      }
    }
    for (let i = 1; i < list.length; i++) {
      const before = list[i - 1]!.index;
      const after = list[i]!.index;
      if (after.first > before.last + 1) {
        entry.indexProblems.push({
          kind: "chain",
          first: before.last + 1,
          last: after.first - 1,
          key: null,
          detail: `numbers ${before.last + 1}-${after.first - 1} are in no index read: the index of hour ${after.previous?.hour ?? "(unknown)"} is missing or unusable`,
        });
      }
    }
  }

  // Each object must be the one its number's index entry names; an object no index covers
  // sends its node to the listing.
  for (const o of selected) {
    const entry = entryOf(o.parsed.node, o.parsed.epoch);
    const covering = (byNode.get(nodeId(o.parsed.node, o.parsed.epoch)) ?? []).find(
      (r) => o.parsed.seq >= r.index.first && o.parsed.seq <= r.index.last,
    );
    if (covering === undefined) {
      entry.fallback ??= `batch ${o.parsed.seq} (${o.key}) is in no hour index read (${new Date(reading.from).toISOString()} → ${new Date(reading.to).toISOString()}): its hour is still open, was never indexed, or its index is missing`;
      continue;
    }
    const indexed = covering.index.batches[o.parsed.seq - covering.index.first]!;
    if (indexed.key !== o.key) {
      entry.indexProblems.push({
        kind: "other-key",
        first: o.parsed.seq,
        last: o.parsed.seq,
        key: o.key,
        detail: `${o.key} holds number ${o.parsed.seq}, which the shipper's index of ${covering.index.hour} gives to ${indexed.key}`,
      });
    }
  }
  // An index read but not usable may name batches of this namespace in the range that no
  // other index names: its node (every node, if its key does not say which) is decided by listing.
  for (const u of reading.unusable) {
    const why = `its hour index ${u.key} is not usable (${u.problem})`;
    const owner = indexKeyOwner(u.key);
    if (owner === null) for (const entry of nodes.values()) entry.fallback ??= why;
    else entryOf(owner.node, owner.epoch).fallback ??= why;
  }
  for (const entry of nodes.values()) {
    const chain = entry.indexProblems.find((p) => p.kind === "chain");
    if (chain !== undefined) entry.fallback ??= chain.detail;
    if (entry.indexes.length === 0)
      entry.fallback ??= "no hour index of this node was found in the hours read";
    if (entry.fallback !== null) entry.source = "listing";
  }

  // The listing, for the nodes the indexes do not decide.
  const fallback = [...nodes.values()].filter((n) => n.source === "listing");
  let listed: ContinuityReport["listed"] = null;
  if (fallback.length > 0) {
    const ids = new Set(fallback.map((n) => nodeId(n.node, n.epoch)));
    const of = (o: { parsed: { node: string; epoch: string } }) =>
      ids.has(nodeId(o.parsed.node, o.parsed.epoch));
    const result = await listingContinuity(
      s3,
      bucket,
      keyPrefix,
      selected.filter(of),
      rangeStart,
      rangeEnd,
      marginHours,
      input.selectedLosses.filter(of),
    );
    listed = result.listed;
    for (const p of result.problems) nodes.get(nodeId(p.node, p.epoch))?.problems.push(p);
  }

  for (const entry of nodes.values()) {
    entry.batches.sort((a, b) => a - b);
    const kinds = new Set([...entry.problems.map((p) => p.kind), ...entry.indexProblems.map((p) => p.kind)]);
    // A chain break the listing then decided is not itself a gap: the listing says whether a number is missing.
    if (kinds.has("missing")) entry.verdict = "gap";
    else if (kinds.has("checksum") || kinds.has("other-key")) entry.verdict = "tampered";
    else if (kinds.has("reused")) entry.verdict = "reused";
  }
  return {
    indexes: {
      from: new Date(reading.from).toISOString(),
      to: new Date(reading.to).toISOString(),
      listCalls: reading.listCalls,
      getCalls: reading.getCalls,
      read: reading.indexes.length,
      unusable: reading.unusable.map((u) => {
        const owner = indexKeyOwner(u.key);
        return { ...u, node: owner?.node ?? null, epoch: owner?.epoch ?? null };
      }),
    },
    listed,
    nodes: [...nodes.values()].sort((a, b) => a.node.localeCompare(b.node) || a.epoch.localeCompare(b.epoch)),
  };
}

/** The node and epoch an index key names, or null if it is not an index key. */
function indexKeyOwner(key: string): { node: string; epoch: string } | null {
  try {
    const { node, epoch } = parseIndexKey(key);
    return { node, epoch };
  } catch {
    return null;
  }
}

function msOf(text: string): number {
  const t = parseRfc3339(text);
  return t === null ? Number.NaN : t.epochSeconds * 1000 + Math.floor(t.nanos / 1e6);
}

/** The listing check (no index): every namespace's objects in the range's hours plus a margin. */
async function listingContinuity(
  s3: S3Client,
  bucket: string,
  keyPrefix: string,
  selected: readonly ListedObject[],
  rangeStart: number,
  rangeEnd: number,
  marginHours: number,
  selectedLosses: readonly ListedLoss[],
): Promise<{ listed: { from: string; to: string }; problems: SequenceProblem[] }> {
  const listFrom = rangeStart - marginHours * HOUR_MS;
  const listTo = rangeEnd + marginHours * HOUR_MS;
  const listed: (ListedObject | ListedLoss)[] = (
    await Promise.all([
      ...longLivedTiers().map((tier) =>
        listTierHours(s3, bucket, tierPrefix(keyPrefix, tier), listFrom, listTo),
      ),
      // Every namespace's loss records hold numbers of the same sequences.
      listLossHours(s3, bucket, keyPrefix, listFrom, listTo),
      // And compacted hours' members, whose originals may have expired.
      listCompactedHours(s3, bucket, keyPrefix, listFrom, listTo).then((hours) =>
        hours.flatMap((h) =>
          h.manifests.flatMap((m) =>
            m.manifest.members.map((member) => ({
              key: member.key,
              parsed: parseObjectKey(member.key),
              storageClass: undefined,
            })),
          ),
        ),
      ),
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
  return {
    listed: { from: new Date(listFrom).toISOString(), to: new Date(listTo).toISOString() },
    problems,
  };
}
