// The archive's object key layout, shared by the shipper (writes), the S3 notification
// rules (filter), the transfer and loader (read), Athena's partition projection and
// DuckDB's hive partitioning. docs/architecture.md#object-keys explains it.
//
//   <prefix>/<tier>/namespace=<ns>/dt=<YYYY-MM-DD>/hour=<HH>/<node>_<epoch>_<seq>.ndjson.gz
//
// <tier> is `analytics` for namespaces the policy loads into the warehouse and `archive`
// for the rest. S3 allows about 100 non-overlapping notification rules per bucket, and a
// cluster can have hundreds of namespaces, so the tier, not the namespace, is what the
// bucket notification filters on: one rule covers every analytics namespace.
//
// In stream delivery (namespaces.yaml `analytics.delivery: stream`, see
// docs/architecture.md#stream-delivery) a third tier carries the analytics lines again,
// per destination table instead of per namespace, in short-lived objects that expire:
//
//   <prefix>/stream/table=<dataset>.<table>/dt=<YYYY-MM-DD>/hour=<HH>/<node>_<epoch>_<seq>.ndjson.gz
//
// Only `<prefix>/stream/` is then notified to SQS; every namespace's archive objects go
// under `<prefix>/archive/`, analytics namespaces included.
//
// Keys are deterministic: the batch identity (node, state epoch, sequence number) is fixed
// before the first upload attempt, so a retry or a replay after a crash writes the same key.

export const TIERS = ["analytics", "archive"] as const;
export type Tier = (typeof TIERS)[number];

export const OBJECT_SUFFIX = ".ndjson.gz";

/** The tier segment of stream objects: one per (destination table, hour) per node batch. */
export const STREAM_TIER = "stream";

/** Sequence numbers are zero-padded so keys sort in batch order within a partition. */
const SEQ_DIGITS = 12;
const MAX_SEQ = 10 ** SEQ_DIGITS - 1;

export interface BatchIdentity {
  /** Kubernetes node name. */
  readonly node: string;
  /** Random id made once per shipper state directory, so a node rebuilt with an empty state never reuses keys. */
  readonly epoch: string;
  /** Per-node batch counter, persisted before upload. */
  readonly seq: number;
}

export interface ObjectKey extends BatchIdentity {
  readonly prefix: string;
  readonly tier: Tier;
  readonly namespace: string;
  /** UTC date of every record in the object, YYYY-MM-DD. */
  readonly dt: string;
  /** UTC hour of every record in the object, 00-23. */
  readonly hour: string;
}

const EPOCH = /^[0-9a-f]{8,32}$/;
const DT = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/;
const HOUR = /^([01]\d|2[0-3])$/;

// Hive-style escaping, as Hive and Spark do for partition values: percent-encode anything
// that could be read as a separator. Kubernetes names never need it (DNS labels and
// subdomains), but keys must round-trip whatever they are given. `_` separates the
// parts of the file name, so node names escape it too.
const SAFE_PATH_VALUE = /[^A-Za-z0-9.\-_]/gu;
const SAFE_NAME_PART = /[^A-Za-z0-9.-]/gu;

function percentEncode(ch: string): string {
  return Array.from(Buffer.from(ch, "utf8"), (b) => `%${b.toString(16).toUpperCase().padStart(2, "0")}`).join(
    "",
  );
}

export function escapeKeyValue(value: string): string {
  return value.replace(SAFE_PATH_VALUE, percentEncode);
}

function escapeNamePart(value: string): string {
  return value.replace(SAFE_NAME_PART, percentEncode);
}

// A table partition is `<dataset>.<table>`: both parts escape `.` too, so the one literal
// `.` separates them whatever the names (BigQuery names never need an escape).
const SAFE_TABLE_PART = /[^A-Za-z0-9_-]/gu;

function escapeTablePart(value: string): string {
  return value.replace(SAFE_TABLE_PART, percentEncode);
}

function unescapeKeyValue(value: string, what: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw new KeyLayoutError(`${what} ${JSON.stringify(value)} has a malformed %-escape`);
  }
}

export class KeyLayoutError extends Error {
  override name = "KeyLayoutError";
}

// A prefix is `/`-separated segments of characters no consumer of the keys reads as syntax:
// S3's "safe characters" (which its notification filters take literally) minus
//   `*`  a wildcard in BigQuery load URIs, gsutil/gcloud and DuckDB globs, so the loader
//        would load other objects than the one named;
//   `'`  it ends the quoted LOCATION in the Athena DDL;
// and with none of `=` (a Hive partition key=value to Athena, DuckDB and Spark), `%`
// (Hive unescapes it), `?`, `[`, `]`, `{`, `}`, `#` (globs, URLs), `$` (Athena's
// ${...} location template) or whitespace and control characters. Empty, `.` and `..`
// segments are refused: S3 and GCS store them, but filesystem tools, DuckDB's local
// reads and `aws s3 sync` resolve them as paths, and an empty one does not round-trip.
// One leading or trailing `/` run is trimmed, as users write "/logs/".
const PREFIX_SEGMENT = /^[A-Za-z0-9!\-_.()]+$/;
/** S3 keys are at most 1024 bytes; the layout after the prefix needs up to ~700 for long node names. */
export const MAX_PREFIX_LENGTH = 256;

/** Why a key prefix cannot be used, in words for a message that names the field; undefined if it can. */
export function prefixProblem(prefix: string): string | undefined {
  if (prefix.length > MAX_PREFIX_LENGTH) return `is longer than ${MAX_PREFIX_LENGTH} characters`;
  const trimmed = prefix.replace(/^\/+|\/+$/g, "");
  return trimmed === "" ? undefined : segmentsProblem(trimmed.split("/"), prefix);
}

function segmentsProblem(segments: readonly string[], prefix: string): string | undefined {
  for (const segment of segments) {
    if (segment === "") return `has an empty segment (${JSON.stringify(prefix)}): write one / between parts`;
    if (segment === "." || segment === "..") {
      return `has a ${JSON.stringify(segment)} segment (${JSON.stringify(prefix)}): keys must not climb or repeat directories`;
    }
    if (!PREFIX_SEGMENT.test(segment)) {
      return `may use only letters, digits, ! - _ . ( ) and / between parts, the S3 safe characters no consumer reads as syntax (got ${JSON.stringify(prefix)})`;
    }
  }
  return undefined;
}

function normalizePrefix(prefix: string): string {
  const problem = prefixProblem(prefix);
  if (problem !== undefined) throw new KeyLayoutError(`key prefix ${problem}`);
  return prefix.replace(/^\/+|\/+$/g, "");
}

export function batchId(id: BatchIdentity): string {
  if (!Number.isSafeInteger(id.seq) || id.seq < 0 || id.seq > MAX_SEQ) {
    throw new KeyLayoutError(`batch seq ${id.seq} is outside 0..${MAX_SEQ}`);
  }
  if (!EPOCH.test(id.epoch))
    throw new KeyLayoutError(`batch epoch ${JSON.stringify(id.epoch)} is not 8-32 hex digits`);
  if (id.node.length === 0) throw new KeyLayoutError("node name is empty");
  return `${escapeNamePart(id.node)}_${id.epoch}_${String(id.seq).padStart(SEQ_DIGITS, "0")}`;
}

export function parseBatchId(text: string): BatchIdentity {
  const parts = text.split("_");
  const [node, epoch, seq] = parts;
  if (parts.length !== 3 || node === undefined || epoch === undefined || seq === undefined) {
    throw new KeyLayoutError(`batch id ${JSON.stringify(text)} is not <node>_<epoch>_<seq>`);
  }
  if (!EPOCH.test(epoch)) throw new KeyLayoutError(`batch id ${JSON.stringify(text)} has a bad epoch`);
  if (!/^\d{12}$/.test(seq)) throw new KeyLayoutError(`batch id ${JSON.stringify(text)} has a bad sequence`);
  const decodedNode = unescapeKeyValue(node, "node");
  if (decodedNode.length === 0)
    throw new KeyLayoutError(`batch id ${JSON.stringify(text)} has an empty node`);
  return { node: decodedNode, epoch, seq: Number(seq) };
}

/** The key prefix shared by every object of one tier: what the bucket notification filters on. */
export function tierPrefix(prefix: string, tier: Tier): string {
  const p = normalizePrefix(prefix);
  return p === "" ? `${tier}/` : `${p}/${tier}/`;
}

/** Key prefix of one namespace's partition, for listing (compliance retrieval, reconcile). */
export function partitionPrefix(
  prefix: string,
  tier: Tier,
  namespace: string,
  dt?: string,
  hour?: string,
): string {
  let key = `${tierPrefix(prefix, tier)}namespace=${escapeKeyValue(namespace)}/`;
  if (dt !== undefined) key += `dt=${dt}/`;
  if (dt !== undefined && hour !== undefined) key += `hour=${hour}/`;
  return key;
}

export function formatObjectKey(key: ObjectKey): string {
  if (!TIERS.includes(key.tier))
    throw new KeyLayoutError(`tier ${JSON.stringify(key.tier)} is not one of ${TIERS}`);
  if (key.namespace.length === 0) throw new KeyLayoutError("namespace is empty");
  if (!DT.test(key.dt)) throw new KeyLayoutError(`dt ${JSON.stringify(key.dt)} is not YYYY-MM-DD`);
  if (!HOUR.test(key.hour)) throw new KeyLayoutError(`hour ${JSON.stringify(key.hour)} is not 00-23`);
  return `${partitionPrefix(key.prefix, key.tier, key.namespace, key.dt, key.hour)}${batchId(key)}${OBJECT_SUFFIX}`;
}

/**
 * A key's last `count` `/` parts (the layout below the prefix: five for objects and loss
 * records, four for hour indexes) and its prefix, checked as formatters write it (so parse
 * and format stay inverses: a leading `/` or a `//` would otherwise be trimmed away on the
 * way back), with an error maker naming the key.
 */
function splitLayoutKey<N extends 4 | 5>(
  key: string,
  count: N,
): {
  prefix: string;
  parts: N extends 5 ? [string, string, string, string, string] : [string, string, string, string];
  fail: (why: string) => KeyLayoutError;
} {
  const parts = key.split("/");
  if (parts.length < count)
    throw new KeyLayoutError(`key ${JSON.stringify(key)} has too few parts for the layout`);
  const prefixParts = parts.slice(0, -count);
  const prefix = prefixParts.join("/");
  const fail = (why: string) => new KeyLayoutError(`key ${JSON.stringify(key)}: ${why}`);
  const badPrefix =
    prefix.length > MAX_PREFIX_LENGTH
      ? `is longer than ${MAX_PREFIX_LENGTH} characters`
      : segmentsProblem(prefixParts, prefix);
  if (badPrefix !== undefined) throw fail(`prefix ${badPrefix}`);
  return {
    prefix,
    parts: parts.slice(-count) as N extends 5
      ? [string, string, string, string, string]
      : [string, string, string, string],
    fail,
  };
}

export function parseObjectKey(key: string): ObjectKey {
  const {
    prefix,
    parts: [tier, nsPart, dtPart, hourPart, file],
    fail,
  } = splitLayoutKey(key, 5);
  if (!(TIERS as readonly string[]).includes(tier))
    throw fail(`tier ${JSON.stringify(tier)} is not one of ${TIERS}`);
  if (!nsPart.startsWith("namespace=")) throw fail("expected namespace=<ns>");
  if (!dtPart.startsWith("dt=") || !DT.test(dtPart.slice(3))) throw fail("expected dt=YYYY-MM-DD");
  if (!hourPart.startsWith("hour=") || !HOUR.test(hourPart.slice(5))) throw fail("expected hour=HH");
  if (!file.endsWith(OBJECT_SUFFIX)) throw fail(`expected a ${OBJECT_SUFFIX} object`);
  const namespace = unescapeKeyValue(nsPart.slice("namespace=".length), "namespace");
  if (namespace.length === 0) throw fail("namespace is empty");
  return {
    prefix,
    tier: tier as Tier,
    namespace,
    dt: dtPart.slice(3),
    hour: hourPart.slice(5),
    ...parseBatchId(file.slice(0, -OBJECT_SUFFIX.length)),
  };
}

/** s3:// URL of the archive root: the Athena table's LOCATION. */
export function archiveLocation(bucket: string, prefix: string): string {
  const p = normalizePrefix(prefix);
  return `s3://${bucket}/${p === "" ? "" : `${p}/`}`;
}

/** Athena's storage.location.template for the layout, with ${...} placeholders for projection. */
export function athenaLocationTemplate(bucket: string, prefix: string): string {
  return `${archiveLocation(bucket, prefix)}\${tier}/namespace=\${namespace}/dt=\${dt}/hour=\${hour}/`;
}

/** A destination table as it appears in a stream key. */
export interface StreamTable {
  readonly dataset: string;
  readonly table: string;
}

export interface StreamObjectKey extends BatchIdentity, StreamTable {
  readonly prefix: string;
  /** UTC date of every record in the object, YYYY-MM-DD. */
  readonly dt: string;
  /** UTC hour of every record in the object, 00-23. */
  readonly hour: string;
}

/** Every stream object's key starts with this: the only prefix notified in stream delivery. */
export function streamPrefix(prefix: string): string {
  const p = normalizePrefix(prefix);
  return p === "" ? `${STREAM_TIER}/` : `${p}/${STREAM_TIER}/`;
}

/** `table=<dataset>.<table>`, the stream tier's partition segment. */
export function tablePartition(destination: StreamTable): string {
  if (destination.dataset.length === 0) throw new KeyLayoutError("dataset is empty");
  if (destination.table.length === 0) throw new KeyLayoutError("table is empty");
  return `table=${escapeTablePart(destination.dataset)}.${escapeTablePart(destination.table)}`;
}

/** Key prefix of one table's stream objects, for listing (reconcile). */
export function streamPartitionPrefix(
  prefix: string,
  destination: StreamTable,
  dt?: string,
  hour?: string,
): string {
  let key = `${streamPrefix(prefix)}${tablePartition(destination)}/`;
  if (dt !== undefined) key += `dt=${dt}/`;
  if (dt !== undefined && hour !== undefined) key += `hour=${hour}/`;
  return key;
}

export function formatStreamKey(key: StreamObjectKey): string {
  if (!DT.test(key.dt)) throw new KeyLayoutError(`dt ${JSON.stringify(key.dt)} is not YYYY-MM-DD`);
  if (!HOUR.test(key.hour)) throw new KeyLayoutError(`hour ${JSON.stringify(key.hour)} is not 00-23`);
  return `${streamPartitionPrefix(key.prefix, key, key.dt, key.hour)}${batchId(key)}${OBJECT_SUFFIX}`;
}

/** Whether `key` is laid out as a stream object (its tier segment), without checking the rest. */
export function isStreamKey(key: string): boolean {
  const parts = key.split("/");
  return parts.length >= 5 && parts[parts.length - 5] === STREAM_TIER;
}

export function parseStreamKey(key: string): StreamObjectKey {
  const {
    prefix,
    parts: [tier, tablePart, dtPart, hourPart, file],
    fail,
  } = splitLayoutKey(key, 5);
  if (tier !== STREAM_TIER) throw fail(`tier ${JSON.stringify(tier)} is not ${STREAM_TIER}`);
  const names = tablePart.startsWith("table=") ? tablePart.slice("table=".length).split(".") : [];
  if (names.length !== 2 || names[0] === "" || names[1] === "")
    throw fail("expected table=<dataset>.<table>");
  const dataset = unescapeKeyValue(names[0]!, "dataset");
  const table = unescapeKeyValue(names[1]!, "table");
  if (!dtPart.startsWith("dt=") || !DT.test(dtPart.slice(3))) throw fail("expected dt=YYYY-MM-DD");
  if (!hourPart.startsWith("hour=") || !HOUR.test(hourPart.slice(5))) throw fail("expected hour=HH");
  if (!file.endsWith(OBJECT_SUFFIX)) throw fail(`expected a ${OBJECT_SUFFIX} object`);
  return {
    prefix,
    dataset,
    table,
    dt: dtPart.slice(3),
    hour: hourPart.slice(5),
    ...parseBatchId(file.slice(0, -OBJECT_SUFFIX.length)),
  };
}

/** Either kind of object key, told apart by its tier segment. */
export type AnyObjectKey = ({ kind: "namespace" } & ObjectKey) | ({ kind: "stream" } & StreamObjectKey);

export function parseAnyObjectKey(key: string): AnyObjectKey {
  return isStreamKey(key)
    ? { kind: "stream", ...parseStreamKey(key) }
    : { kind: "namespace", ...parseObjectKey(key) };
}

// Loss records (docs/shipper.md#loss-records): when the shipper counts bytes of a log file
// as lost, it writes that fact to the archive, numbered from the same per-node batch
// sequence as the namespace objects, under a segment of its own beside the tiers:
//
//   <prefix>/losses/namespace=<ns>/dt=<YYYY-MM-DD>/hour=<HH>/<node>_<epoch>_<seq>.loss.json
//
// Not inside a tier's hour partition: Athena reads every file under a partition's location
// (https://docs.aws.amazon.com/athena/latest/ug/tables-location-format.html), and its
// projection enumerates only TIERS, so nothing under `losses/` is ever read as records. The
// S3 notification rules filter on the `analytics/` or `stream/` prefix and the
// `.ndjson.gz` suffix, which a loss key has neither of.

/** The segment, beside the tiers, under which loss records go. */
export const LOSS_SEGMENT = "losses";
export const LOSS_SUFFIX = ".loss.json";

export interface LossRecordKey extends BatchIdentity {
  readonly prefix: string;
  readonly namespace: string;
  /** UTC date and hour the loss is filed under (see docs/shipper.md#loss-records). */
  readonly dt: string;
  readonly hour: string;
}

/** Every loss record's key starts with this. */
export function lossPrefix(prefix: string): string {
  const p = normalizePrefix(prefix);
  return p === "" ? `${LOSS_SEGMENT}/` : `${p}/${LOSS_SEGMENT}/`;
}

/** Key prefix of one namespace's loss records (in one hour), for listing. */
export function lossPartitionPrefix(prefix: string, namespace: string, dt?: string, hour?: string): string {
  let key = `${lossPrefix(prefix)}namespace=${escapeKeyValue(namespace)}/`;
  if (dt !== undefined) key += `dt=${dt}/`;
  if (dt !== undefined && hour !== undefined) key += `hour=${hour}/`;
  return key;
}

export function formatLossKey(key: LossRecordKey): string {
  if (key.namespace.length === 0) throw new KeyLayoutError("namespace is empty");
  if (!DT.test(key.dt)) throw new KeyLayoutError(`dt ${JSON.stringify(key.dt)} is not YYYY-MM-DD`);
  if (!HOUR.test(key.hour)) throw new KeyLayoutError(`hour ${JSON.stringify(key.hour)} is not 00-23`);
  return `${lossPartitionPrefix(key.prefix, key.namespace, key.dt, key.hour)}${batchId(key)}${LOSS_SUFFIX}`;
}

export function parseLossKey(key: string): LossRecordKey {
  const {
    prefix,
    parts: [segment, nsPart, dtPart, hourPart, file],
    fail,
  } = splitLayoutKey(key, 5);
  if (segment !== LOSS_SEGMENT) throw fail(`segment ${JSON.stringify(segment)} is not ${LOSS_SEGMENT}`);
  if (!nsPart.startsWith("namespace=")) throw fail("expected namespace=<ns>");
  if (!dtPart.startsWith("dt=") || !DT.test(dtPart.slice(3))) throw fail("expected dt=YYYY-MM-DD");
  if (!hourPart.startsWith("hour=") || !HOUR.test(hourPart.slice(5))) throw fail("expected hour=HH");
  if (!file.endsWith(LOSS_SUFFIX)) throw fail(`expected a ${LOSS_SUFFIX} object`);
  const namespace = unescapeKeyValue(nsPart.slice("namespace=".length), "namespace");
  if (namespace.length === 0) throw fail("namespace is empty");
  return {
    prefix,
    namespace,
    dt: dtPart.slice(3),
    hour: hourPart.slice(5),
    ...parseBatchId(file.slice(0, -LOSS_SUFFIX.length)),
  };
}

// Hour indexes (docs/retrieval.md#hour-indexes): once a UTC hour has closed and every batch
// the shipper numbered in it is acknowledged, the shipper writes one small JSON object per
// node, state epoch and hour listing those batches (and loss records), with their keys and
// checksums and a link to the node's previous index, so retrieval proves a node's sequence
// continuous by reading one object per node-hour instead of listing every namespace:
//
//   <prefix>/index/dt=<YYYY-MM-DD>/hour=<HH>/<node>_<epoch>.json
//
// The hour is the one in which the shipper numbered the batches (its clock), not the hour of
// their records: numbers are handed out in order, so an hour's batches are one contiguous
// range and the indexes chain. Beside the tiers like losses/, for the same reasons: Athena
// never reads it and no notification rule matches it.

/** The segment, beside the tiers, under which hour indexes go. */
export const INDEX_SEGMENT = "index";
export const INDEX_SUFFIX = ".json";

export interface HourIndexKey {
  readonly prefix: string;
  /** UTC date and hour in which the indexed batches were numbered. */
  readonly dt: string;
  readonly hour: string;
  readonly node: string;
  readonly epoch: string;
}

/** Every hour index's key starts with this. */
export function indexPrefix(prefix: string): string {
  const p = normalizePrefix(prefix);
  return p === "" ? `${INDEX_SEGMENT}/` : `${p}/${INDEX_SEGMENT}/`;
}

/** Key prefix of every node's index of one hour (one LIST per hour at retrieval). */
export function indexHourPrefix(prefix: string, dt: string, hour: string): string {
  if (!DT.test(dt)) throw new KeyLayoutError(`dt ${JSON.stringify(dt)} is not YYYY-MM-DD`);
  if (!HOUR.test(hour)) throw new KeyLayoutError(`hour ${JSON.stringify(hour)} is not 00-23`);
  return `${indexPrefix(prefix)}dt=${dt}/hour=${hour}/`;
}

/** `<node>_<epoch>`: the index's name, and its id in the object metadata. */
export function indexId(node: string, epoch: string): string {
  if (!EPOCH.test(epoch)) throw new KeyLayoutError(`epoch ${JSON.stringify(epoch)} is not 8-32 hex digits`);
  if (node.length === 0) throw new KeyLayoutError("node name is empty");
  return `${escapeNamePart(node)}_${epoch}`;
}

export function formatIndexKey(key: HourIndexKey): string {
  return `${indexHourPrefix(key.prefix, key.dt, key.hour)}${indexId(key.node, key.epoch)}${INDEX_SUFFIX}`;
}

/** Whether `key` is laid out as an hour index (its segment), without checking the rest. */
export function isIndexKey(key: string): boolean {
  const parts = key.split("/");
  return parts.length >= 4 && parts[parts.length - 4] === INDEX_SEGMENT && key.endsWith(INDEX_SUFFIX);
}

export function parseIndexKey(key: string): HourIndexKey {
  const {
    prefix,
    parts: [segment, dtPart, hourPart, file],
    fail,
  } = splitLayoutKey(key, 4);
  if (segment !== INDEX_SEGMENT) throw fail(`segment ${JSON.stringify(segment)} is not ${INDEX_SEGMENT}`);
  if (!dtPart.startsWith("dt=") || !DT.test(dtPart.slice(3))) throw fail("expected dt=YYYY-MM-DD");
  if (!hourPart.startsWith("hour=") || !HOUR.test(hourPart.slice(5))) throw fail("expected hour=HH");
  if (!file.endsWith(INDEX_SUFFIX)) throw fail(`expected a ${INDEX_SUFFIX} object`);
  const name = file.slice(0, -INDEX_SUFFIX.length).split("_");
  const [node, epoch] = name;
  if (name.length !== 2 || node === undefined || epoch === undefined) throw fail("expected <node>_<epoch>");
  if (!EPOCH.test(epoch)) throw fail("bad epoch");
  const decodedNode = unescapeKeyValue(node, "node");
  if (decodedNode.length === 0) throw fail("empty node");
  return { prefix, dt: dtPart.slice(3), hour: hourPart.slice(5), node: decodedNode, epoch };
}

// Compacted segments (issue 9; the design: docs/design/compaction.md): the compactor
// (lib/compaction/) concatenates one namespace-hour's archive objects from every node, byte
// for byte, into a few large gzip parts, and commits them with a manifest written last:
//
//   <prefix>/compacted/namespace=<ns>/dt=<YYYY-MM-DD>/hour=<HH>/manifest-<GGGG>.json
//   <prefix>/compacted/namespace=<ns>/dt=<YYYY-MM-DD>/hour=<HH>/part-<GGGG>-<NNNN>-<plan>.ndjson.gz
//   <prefix>/compacted/namespace=<ns>/dt=<YYYY-MM-DD>/hour=<HH>/plan-<GGGG>.json
//
// The plan (JSON, never `.ndjson.gz`, so Athena's compacted table, which reads every
// `.ndjson.gz` under the prefix, never takes it for data) is written after every part of the
// generation is uploaded and verified but before any becomes visible: a complete part exists
// only inside a written plan, which a re-run completes (lib/compaction/compact.ts).
//
// <GGGG> is the generation: 0000 for an hour's first compaction, then one more for each
// supplement that carries batches which arrived after the hour was committed. <NNNN> is the
// part's index in its generation, and <plan> the first 16 hex digits of the SHA-256 of what
// the part holds (its members' keys, versions, checksums and lengths), so a run that plans
// other members (a late batch, a concurrent run) never overwrites a part another run's
// manifest may name, and a re-run after a crash finds its own parts by key.
//
// Beside the tiers like losses/ and index/: Athena projects `tier` over TIERS only, DuckDB's
// `logarchive query` and retrieval list the tier prefixes, and the notification rules match
// `analytics/` and `stream/`, so until the readers are taught to use manifests nothing reads
// a compacted line twice.

/** The segment, beside the tiers, under which compacted parts and their manifests go. */
export const COMPACTED_SEGMENT = "compacted";
export const COMPACTION_MANIFEST_SUFFIX = ".json";
const GENERATION_DIGITS = 4;
const PART_DIGITS = 4;
/** The largest generation and part index the four-digit fields hold. */
export const MAX_COMPACTION_GENERATION = 10 ** GENERATION_DIGITS - 1;
export const MAX_COMPACTED_PART = 10 ** PART_DIGITS - 1;
const PLAN_DIGEST = /^[0-9a-f]{16}$/;

/** One namespace-hour of the compacted segment. */
export interface CompactedHour {
  readonly prefix: string;
  readonly namespace: string;
  /** UTC date and hour of every record in the hour's archive objects. */
  readonly dt: string;
  readonly hour: string;
}

export interface CompactionManifestKey extends CompactedHour {
  readonly generation: number;
}

export interface CompactedPartKey extends CompactedHour {
  readonly generation: number;
  /** The part's index in its generation, from 0. */
  readonly part: number;
  /** 16 lowercase hex digits: the start of the SHA-256 of the part's member plan. */
  readonly plan: string;
}

export type AnyCompactedKey =
  | ({ kind: "manifest" } & CompactionManifestKey)
  | ({ kind: "plan" } & CompactionManifestKey)
  | ({ kind: "part" } & CompactedPartKey);

/** Every compacted part's and manifest's key starts with this. */
export function compactedPrefix(prefix: string): string {
  const p = normalizePrefix(prefix);
  return p === "" ? `${COMPACTED_SEGMENT}/` : `${p}/${COMPACTED_SEGMENT}/`;
}

/** Key prefix of one namespace-hour's parts and manifests (one LIST finds its manifests). */
export function compactedHourPrefix(prefix: string, namespace: string, dt: string, hour: string): string {
  if (namespace.length === 0) throw new KeyLayoutError("namespace is empty");
  if (!DT.test(dt)) throw new KeyLayoutError(`dt ${JSON.stringify(dt)} is not YYYY-MM-DD`);
  if (!HOUR.test(hour)) throw new KeyLayoutError(`hour ${JSON.stringify(hour)} is not 00-23`);
  return `${compactedPrefix(prefix)}namespace=${escapeKeyValue(namespace)}/dt=${dt}/hour=${hour}/`;
}

/** Key prefix of one namespace-hour's manifests only: every generation, in order. */
export function compactionManifestsPrefix(
  prefix: string,
  namespace: string,
  dt: string,
  hour: string,
): string {
  return `${compactedHourPrefix(prefix, namespace, dt, hour)}manifest-`;
}

function checkedNumber(value: number, max: number, what: string, digits: number): string {
  if (!Number.isSafeInteger(value) || value < 0 || value > max) {
    throw new KeyLayoutError(`${what} ${value} is outside 0..${max}`);
  }
  return String(value).padStart(digits, "0");
}

export function formatCompactionManifestKey(key: CompactionManifestKey): string {
  const generation = checkedNumber(
    key.generation,
    MAX_COMPACTION_GENERATION,
    "generation",
    GENERATION_DIGITS,
  );
  return `${compactionManifestsPrefix(key.prefix, key.namespace, key.dt, key.hour)}${generation}${COMPACTION_MANIFEST_SUFFIX}`;
}

/** The plan of a generation: the manifest-to-be, written before any of its parts is completed. */
export function formatCompactionPlanKey(key: CompactionManifestKey): string {
  const generation = checkedNumber(
    key.generation,
    MAX_COMPACTION_GENERATION,
    "generation",
    GENERATION_DIGITS,
  );
  return `${compactedHourPrefix(key.prefix, key.namespace, key.dt, key.hour)}plan-${generation}${COMPACTION_MANIFEST_SUFFIX}`;
}

export function formatCompactedPartKey(key: CompactedPartKey): string {
  const generation = checkedNumber(
    key.generation,
    MAX_COMPACTION_GENERATION,
    "generation",
    GENERATION_DIGITS,
  );
  const part = checkedNumber(key.part, MAX_COMPACTED_PART, "part", PART_DIGITS);
  if (!PLAN_DIGEST.test(key.plan))
    throw new KeyLayoutError(`part plan ${JSON.stringify(key.plan)} is not 16 lowercase hex digits`);
  return `${compactedHourPrefix(key.prefix, key.namespace, key.dt, key.hour)}part-${generation}-${part}-${key.plan}${OBJECT_SUFFIX}`;
}

const MANIFEST_FILE = /^manifest-(\d{4})\.json$/;
const PLAN_FILE = /^plan-(\d{4})\.json$/;
const PART_FILE = /^part-(\d{4})-(\d{4})-([0-9a-f]{16})\.ndjson\.gz$/;

/** A compacted part's or manifest's key, back to its fields. */
export function parseCompactedKey(key: string): AnyCompactedKey {
  const {
    prefix,
    parts: [segment, nsPart, dtPart, hourPart, file],
    fail,
  } = splitLayoutKey(key, 5);
  if (segment !== COMPACTED_SEGMENT)
    throw fail(`segment ${JSON.stringify(segment)} is not ${COMPACTED_SEGMENT}`);
  if (!nsPart.startsWith("namespace=")) throw fail("expected namespace=<ns>");
  if (!dtPart.startsWith("dt=") || !DT.test(dtPart.slice(3))) throw fail("expected dt=YYYY-MM-DD");
  if (!hourPart.startsWith("hour=") || !HOUR.test(hourPart.slice(5))) throw fail("expected hour=HH");
  const namespace = unescapeKeyValue(nsPart.slice("namespace=".length), "namespace");
  if (namespace.length === 0) throw fail("namespace is empty");
  const hour: CompactedHour = { prefix, namespace, dt: dtPart.slice(3), hour: hourPart.slice(5) };
  const manifest = MANIFEST_FILE.exec(file);
  if (manifest !== null) return { kind: "manifest", ...hour, generation: Number(manifest[1]) };
  const plan = PLAN_FILE.exec(file);
  if (plan !== null) return { kind: "plan", ...hour, generation: Number(plan[1]) };
  const part = PART_FILE.exec(file);
  if (part !== null) {
    return {
      kind: "part",
      ...hour,
      generation: Number(part[1]),
      part: Number(part[2]),
      plan: part[3]!,
    };
  }
  throw fail("expected manifest-<GGGG>.json, plan-<GGGG>.json or part-<GGGG>-<NNNN>-<16 hex>.ndjson.gz");
}
