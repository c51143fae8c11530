// The namespace policy: the single source for which namespaces are archived, which are
// loaded for analytics, and where they go. The shipper applies it when it names keys,
// infra/ and the local S3 bridge derive the bucket notification rules from it, and the
// loader applies it again when it routes objects to tables. docs/policy.md documents it.

import { matchesGlob } from "node:path";
import { z } from "zod";
import { loadYamlConfig, parseYamlConfig } from "../config/yaml.ts";
import { OBJECT_SUFFIX, prefixProblem, type Tier, tierPrefix } from "../keys/layout.ts";
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

const selection = z.strictObject({
  include: globList,
  exclude: globList,
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
    })
    .prefault({}),
  analytics: selection.prefault({}),
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

/** What happens to one namespace's logs under the policy. */
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
    tier: "analytics",
    destination: {
      dataset: route?.dataset ?? policy.warehouse.dataset,
      table: route ? namespaceTableName(route.table, namespace) : policy.warehouse.table,
    },
  };
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
 * non-overlapping configurations S3 allows per bucket.
 */
export function notificationRules(policy: NamespacePolicy): NotificationRule[] {
  return [
    {
      id: "logarchive-analytics",
      prefix: encodeFilterValue(tierPrefix(policy.archive.prefix, "analytics")),
      suffix: encodeFilterValue(OBJECT_SUFFIX),
      events: ["s3:ObjectCreated:*"],
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
