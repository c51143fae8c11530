// The namespace policy: the single source for which namespaces are archived, which are
// loaded for analytics, and where they go. The shipper applies it when it names keys,
// infra/ and the local S3 bridge derive the bucket notification rules from it, and the
// loader applies it again when it routes objects to tables. docs/policy.md documents it.

import { matchesGlob } from "node:path";
import { z } from "zod";
import { checkDuration, type DurationLimits } from "../config/units.ts";
import { loadYamlConfig, parseYamlConfig } from "../config/yaml.ts";
import { OBJECT_SUFFIX, prefixProblem, streamPrefix, type Tier, tierPrefix } from "../keys/layout.ts";
import { DEFAULT_TABLE } from "../record/ddl.ts";

// Namespaces are DNS labels: lowercase letters, digits and `-`. A pattern with any other
// character (an uppercase letter, `_`, `/`) can never match, so it is a typo to report.
const NAMESPACE_GLOB = /^[a-z0-9\-*?[\]{},!]+$/;
const BIGQUERY_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,1023}$/;
const NAMESPACE_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/**
 * Whether `name` can be a Kubernetes namespace: a DNS-1123 label, at most 63 lowercase
 * letters, digits and `-`, starting and ending with a letter or digit.
 */
export function isNamespaceName(name: string): boolean {
  return NAMESPACE_NAME.test(name);
}

const globList = z
  .array(
    z
      .string()
      .regex(
        NAMESPACE_GLOB,
        "is not a namespace glob: namespaces are lowercase letters, digits and '-', globs add * ? [] {}",
      ),
  )
  .default([]);

/**
 * How analytics lines reach the warehouse (docs/architecture.md#stream-delivery):
 * - `per-namespace`: each analytics namespace's objects are written under
 *   `<prefix>/analytics/` and are themselves what SQS, the transfer and the loader see;
 * - `stream`: every namespace's objects go under `<prefix>/archive/` (long-lived, one per
 *   namespace and hour), and analytics lines are written a second time into short-lived
 *   per-table objects under `<prefix>/stream/`, the only prefix notified.
 */
export const DELIVERY_MODES = ["per-namespace", "stream"] as const;
export type DeliveryMode = (typeof DELIVERY_MODES)[number];

/** Batch ages in stream delivery: a batch never crosses an hour, so an hour is the longest useful. */
const STREAM_AGE_LIMITS: DurationLimits = { min: 1000, max: 3_600_000 };
const ARCHIVE_AGE_LIMITS: DurationLimits = { min: 1000, max: 3_600_000 };

function duration(limits: DurationLimits, fallback: string) {
  return z
    .string()
    .superRefine((text, ctx) => {
      const checked = checkDuration(text, limits);
      if ("problem" in checked)
        ctx.addIssue({ code: "custom", message: `${checked.problem} (got ${JSON.stringify(text)})` });
    })
    .default(fallback);
}

const analyticsSelection = z.strictObject({
  include: globList,
  exclude: globList,
  // Not stream, although namespaces.yaml as shipped sets stream: a policy file written
  // before stream delivery keeps its layout on upgrade, and a shipper run without any
  // policy (archive all, load none) keeps cutting its batches at batch_max_age.
  delivery: z.enum(DELIVERY_MODES).default("per-namespace"),
  stream_batch_max_age: duration(STREAM_AGE_LIMITS, "4m"),
  stream_expiration_days: z.number().int().min(1).max(365).default(3),
});

/** The placeholder that makes a route a table per namespace: `logs_{namespace}`. */
export const NAMESPACE_PLACEHOLDER = "{namespace}";

const route = z.strictObject({
  namespaces: globList.refine((l) => l.length > 0, "list at least one namespace glob"),
  dataset: z.string().regex(BIGQUERY_NAME, "is not a BigQuery dataset name (letters, digits, _)").optional(),
  table: z
    .string()
    .refine(
      (t) => BIGQUERY_NAME.test(t.replaceAll(NAMESPACE_PLACEHOLDER, "ns")),
      "is not a BigQuery table name (letters, digits, _), optionally with {namespace} for a table per namespace",
    ),
});

/** A namespace as part of a table name: `-` is not allowed there, so it becomes `_`. */
export function namespaceTableName(template: string, namespace: string): string {
  return template.replaceAll(NAMESPACE_PLACEHOLDER, namespace.replaceAll("-", "_"));
}

export const policySchema = z.strictObject({
  archive: z
    .strictObject({
      prefix: z
        .string()
        .superRefine((prefix, ctx) => {
          const problem = prefixProblem(prefix);
          if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
        })
        .default("logs"),
      include: globList.default(["*"]),
      exclude: globList,
      batch_max_age: duration(ARCHIVE_AGE_LIMITS, "1h"),
      // Stream delivery: other ages for some namespaces' archive batches, first match wins
      // (e.g. a namespace whose archive Athena should see within minutes).
      batch_age_overrides: z
        .array(
          z.strictObject({
            namespaces: globList.refine((l) => l.length > 0, "list at least one namespace glob"),
            batch_max_age: z.string().superRefine((text, ctx) => {
              const checked = checkDuration(text, ARCHIVE_AGE_LIMITS);
              if ("problem" in checked)
                ctx.addIssue({ code: "custom", message: `${checked.problem} (got ${JSON.stringify(text)})` });
            }),
          }),
        )
        .default([]),
    })
    .prefault({}),
  analytics: analyticsSelection.prefault({}),
  warehouse: z
    .strictObject({
      dataset: z
        .string()
        .regex(BIGQUERY_NAME, "is not a BigQuery dataset name (letters, digits, _)")
        .default("logarchive"),
      table: z
        .string()
        .regex(BIGQUERY_NAME, "is not a BigQuery table name (letters, digits, _)")
        .default(DEFAULT_TABLE),
      routes: z.array(route).default([]),
    })
    .prefault({}),
});

export type NamespacePolicy = z.output<typeof policySchema>;

export interface Destination {
  dataset: string;
  table: string;
}

export type Classification =
  | { archived: false; reason: string }
  | { archived: true; tier: Tier; destination: Destination | null };

function matchesAny(namespace: string, globs: readonly string[]): string | undefined {
  return globs.find((g) => matchesGlob(namespace, g));
}

/**
 * What happens to one namespace's logs under the policy. `tier` is where its
 * per-namespace objects go: in stream delivery always `archive`, and `destination` (not
 * null for an analytics namespace) is the table whose stream objects carry its lines.
 */
export function classifyNamespace(policy: NamespacePolicy, namespace: string): Classification {
  if (!matchesAny(namespace, policy.archive.include)) {
    return { archived: false, reason: "not in archive.include" };
  }
  const excludedBy = matchesAny(namespace, policy.archive.exclude);
  if (excludedBy !== undefined) return { archived: false, reason: `archive.exclude ${excludedBy}` };
  const analytics =
    matchesAny(namespace, policy.analytics.include) !== undefined &&
    matchesAny(namespace, policy.analytics.exclude) === undefined;
  if (!analytics) return { archived: true, tier: "archive", destination: null };
  const route = policy.warehouse.routes.find((r) => matchesAny(namespace, r.namespaces));
  return {
    archived: true,
    tier: policy.analytics.delivery === "stream" ? "archive" : "analytics",
    destination: {
      dataset: route?.dataset ?? policy.warehouse.dataset,
      table: route ? namespaceTableName(route.table, namespace) : policy.warehouse.table,
    },
  };
}

/**
 * Why a record of `namespace` may not be in a stream object of `table` under the policy
 * (null when it may): the shipper writes a line there only if its namespace is an analytics
 * namespace routed to that table, and the loader checks every record of a stream object
 * against this before loading it.
 */
export function streamNamespaceProblem(
  policy: NamespacePolicy,
  namespace: string,
  table: Destination,
): string | null {
  const c = classifyNamespace(policy, namespace);
  if (!c.archived) return `is not archived (${c.reason})`;
  if (c.destination === null) return "is not an analytics namespace (analytics.include/exclude)";
  if (c.destination.dataset !== table.dataset || c.destination.table !== table.table) {
    return `routes to ${c.destination.dataset}.${c.destination.table}, not to the stream's ${table.dataset}.${table.table}`;
  }
  return null;
}

/** Whether a route makes a table per namespace, so the tables are known only as namespaces appear. */
export function hasTablePerNamespace(policy: NamespacePolicy): boolean {
  return policy.warehouse.routes.some((r) => r.table.includes(NAMESPACE_PLACEHOLDER));
}

/**
 * Every destination table the policy names; the loader's quota budget divides by this count.
 * Routes with a {namespace} table add tables as namespaces appear and are not listed here.
 */
export function destinations(policy: NamespacePolicy): Destination[] {
  const all = [
    { dataset: policy.warehouse.dataset, table: policy.warehouse.table },
    ...policy.warehouse.routes
      .filter((r) => !r.table.includes(NAMESPACE_PLACEHOLDER))
      .map((r) => ({
        dataset: r.dataset ?? policy.warehouse.dataset,
        table: r.table,
      })),
  ];
  const seen = new Set<string>();
  return all.filter((d) => {
    const id = `${d.dataset}.${d.table}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/** What the shipper does in stream delivery, from the policy. */
export interface StreamDelivery {
  /** Age at which a per-table stream batch is cut (analytics.stream_batch_max_age). */
  streamBatchMaxAgeMs: number;
  /** Age at which a per-namespace archive batch is cut (archive.batch_max_age). */
  archiveBatchMaxAgeMs: number;
  /** The archive batch age of one namespace: its archive.batch_age_overrides entry, else archiveBatchMaxAgeMs. */
  archiveBatchMaxAgeMsFor(namespace: string): number;
}

function durationMs(text: string, limits: DurationLimits): number {
  const checked = checkDuration(text, limits);
  if ("problem" in checked) throw new Error(`unreachable: the policy schema checked ${text}`);
  return checked.ms;
}

/** The stream delivery settings, or null when the policy delivers per namespace. */
export function streamDelivery(policy: NamespacePolicy): StreamDelivery | null {
  if (policy.analytics.delivery !== "stream") return null;
  const archiveBatchMaxAgeMs = durationMs(policy.archive.batch_max_age, ARCHIVE_AGE_LIMITS);
  const overrides = policy.archive.batch_age_overrides.map((o) => ({
    namespaces: o.namespaces,
    ms: durationMs(o.batch_max_age, ARCHIVE_AGE_LIMITS),
  }));
  // The shipper asks for every open batch on every loop: globs are matched once per namespace.
  const byNamespace = new Map<string, number>();
  return {
    streamBatchMaxAgeMs: durationMs(policy.analytics.stream_batch_max_age, STREAM_AGE_LIMITS),
    archiveBatchMaxAgeMs,
    archiveBatchMaxAgeMsFor: (namespace) => {
      let ms = byNamespace.get(namespace);
      if (ms === undefined) {
        ms =
          overrides.find((o) => matchesAny(namespace, o.namespaces) !== undefined)?.ms ??
          archiveBatchMaxAgeMs;
        byNamespace.set(namespace, ms);
      }
      return ms;
    },
  };
}

export interface NotificationRule {
  id: string;
  /** S3 filter values, URL-encoded as the S3 API requires for special characters. */
  prefix: string;
  suffix: string;
  events: string[];
}

// S3 wants special characters in filter values percent-encoded; `/` stays literal.
function encodeFilterValue(value: string): string {
  return encodeURIComponent(value).replaceAll("%2F", "/");
}

/**
 * The bucket's S3 → SQS notification rules. The tier in the key layout means one rule
 * selects every analytics namespace, however many there are, far under the ~100
 * non-overlapping configurations S3 allows per bucket. A second rule selects the stream
 * prefix of stream delivery. Both are there in either mode: the two prefixes do not
 * overlap, a shipper writes under only one of them, and a change of
 * `analytics.delivery` reaches the shippers one by one, so during a rollout both carry
 * objects to load. In stream delivery which namespaces reach SQS is decided by the
 * shipper from this policy (and checked again by the loader), not by these rules.
 */
export function notificationRules(policy: NamespacePolicy): NotificationRule[] {
  const rule = (id: string, prefix: string): NotificationRule => ({
    id,
    prefix: encodeFilterValue(prefix),
    suffix: encodeFilterValue(OBJECT_SUFFIX),
    events: ["s3:ObjectCreated:*"],
  });
  return [
    rule("logarchive-analytics", tierPrefix(policy.archive.prefix, "analytics")),
    rule("logarchive-stream", streamPrefix(policy.archive.prefix)),
  ];
}

/** An S3 lifecycle rule the policy needs on the archive bucket. */
export interface LifecycleExpirationRule {
  id: string;
  /** Key prefix the rule applies to (the S3 Filter.Prefix, literal). */
  prefix: string;
  /** Objects expire this many days after creation (Expiration.Days). */
  expirationDays: number;
}

/**
 * The lifecycle rules the policy itself implies: in stream delivery the stream objects
 * are a second copy of lines the archive holds, needed only until the transfer has
 * copied them, so they expire after analytics.stream_expiration_days. infra/ puts these
 * on the bucket next to its archive transitions (which must not select the stream prefix).
 */
export function lifecycleExpirationRules(policy: NamespacePolicy): LifecycleExpirationRule[] {
  if (policy.analytics.delivery !== "stream") return [];
  return [
    {
      id: "logarchive-stream-expiry",
      prefix: streamPrefix(policy.archive.prefix),
      expirationDays: policy.analytics.stream_expiration_days,
    },
  ];
}

/** Whether a key passes a rule, the way S3 evaluates it (decoded prefix and suffix match). */
export function ruleMatches(rule: NotificationRule, eventName: string, key: string): boolean {
  const eventOk = rule.events.some((e) =>
    e.endsWith(":*") ? `s3:${eventName}`.startsWith(e.slice(0, -1)) : e === `s3:${eventName}`,
  );
  return (
    eventOk &&
    key.startsWith(decodeURIComponent(rule.prefix)) &&
    key.endsWith(decodeURIComponent(rule.suffix))
  );
}

export const DEFAULT_POLICY: NamespacePolicy = policySchema.parse({});

export function parsePolicy(text: string, source = "namespace policy"): NamespacePolicy {
  return parseYamlConfig(text, policySchema, source);
}

export function loadPolicy(path: string): Promise<NamespacePolicy> {
  return loadYamlConfig(path, policySchema);
}
