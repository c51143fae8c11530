// The stack's security rules, as plain functions over a list of resources (type, name, props),
// and as @pulumi/policy stack policies that call them. The functions are what the tests run:
// a policy pack itself runs only under the Pulumi CLI (`pulumi preview --policy-pack …`), and
// `new PolicyPack()` starts the CLI's gRPC server, so it lives apart in infra/policy-pack/.
//
// Rules: no public buckets, encryption everywhere, TLS-only data buckets, no wildcard actions
// on data buckets, no destructive actions (but a bounded retention grant and the compactor's
// delete-marker grant), Object Lock present
// (in the required mode) when one is configured.

import type { PolicyResource, StackValidationPolicy } from "@pulumi/policy";
import { longLivedTiers } from "../../lib/keys/tiers.ts";
import { DESTRUCTIVE_S3_ACTIONS, RETENTION_DAYS_CONDITION_KEY } from "../iam.ts";

/** What a rule needs of a resource; PolicyResource has it, and tests build it by hand. */
export interface ResourceLike {
  type: string;
  name: string;
  urn?: string;
  // biome-ignore lint/suspicious/noExplicitAny: provider properties are untyped JSON
  props: Record<string, any>;
}

export interface Violation {
  resource: string;
  message: string;
  urn?: string;
}

const T = {
  s3Bucket: "aws:s3/bucket:Bucket",
  s3PublicAccess: "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
  s3Encryption: "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
  s3Policy: "aws:s3/bucketPolicy:BucketPolicy",
  s3Acl: "aws:s3/bucketAcl:BucketAcl",
  s3ObjectLock: "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
  sqsQueue: "aws:sqs/queue:Queue",
  iamRolePolicy: "aws:iam/rolePolicy:RolePolicy",
  iamPolicy: "aws:iam/policy:Policy",
  athenaWorkgroup: "aws:athena/workgroup:Workgroup",
  gcsBucket: "gcp:storage/bucket:Bucket",
  gcsIamMember: "gcp:storage/bucketIAMMember:BucketIAMMember",
  gcsIamBinding: "gcp:storage/bucketIAMBinding:BucketIAMBinding",
  bqDatasetIamMember: "gcp:bigquery/datasetIamMember:DatasetIamMember",
  bqTableIamMember: "gcp:bigquery/iamMember:IamMember",
} as const;

const PUBLIC_MEMBERS = new Set(["allUsers", "allAuthenticatedUsers"]);
const PUBLIC_ACLS = new Set(["public-read", "public-read-write", "authenticated-read"]);

const ofType = (resources: readonly ResourceLike[], type: string) => resources.filter((r) => r.type === type);
const violation = (r: ResourceLike, message: string): Violation => ({
  resource: r.name,
  message: `${r.name}: ${message}`,
  ...(r.urn === undefined ? {} : { urn: r.urn }),
});

/** The S3 bucket name a bucket-scoped resource applies to (its `bucket` property). */
function bucketNameOf(r: ResourceLike): string | undefined {
  return typeof r.props.bucket === "string" ? r.props.bucket : undefined;
}

/** The companions of each S3 bucket, matched by bucket name; buckets whose name is not known yet are skipped. */
function s3BucketsWith(resources: readonly ResourceLike[], type: string) {
  const companions = ofType(resources, type);
  return ofType(resources, T.s3Bucket)
    .filter((b) => typeof b.props.bucket === "string")
    .map((bucket) => ({
      bucket,
      companions: companions.filter((c) => bucketNameOf(c) === bucket.props.bucket),
    }));
}

// biome-ignore lint/suspicious/noExplicitAny: IAM JSON
type Statement = Record<string, any>;

function statementsOf(policy: unknown): Statement[] {
  if (typeof policy !== "string") return [];
  try {
    const doc = JSON.parse(policy);
    return [doc.Statement ?? []].flat();
  } catch {
    return [];
  }
}

const list = (v: unknown): string[] => (v === undefined ? [] : [v].flat().map(String));

// ---------------------------------------------------------------- no public buckets

export function publicAccessViolations(resources: readonly ResourceLike[]): Violation[] {
  const out: Violation[] = [];
  for (const { bucket, companions } of s3BucketsWith(resources, T.s3PublicAccess)) {
    const blocked = companions.some((c) =>
      ["blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"].every(
        (k) => c.props[k] === true,
      ),
    );
    if (!blocked)
      out.push(
        violation(bucket, "S3 bucket lacks a Block Public Access configuration with all four settings on"),
      );
  }
  for (const acl of ofType(resources, T.s3Acl)) {
    if (PUBLIC_ACLS.has(acl.props.acl))
      out.push(violation(acl, `S3 bucket ACL ${acl.props.acl} makes objects public`));
  }
  for (const policy of ofType(resources, T.s3Policy)) {
    for (const st of statementsOf(policy.props.policy)) {
      const principal = st.Principal;
      const everyone =
        principal === "*" || (typeof principal === "object" && list(principal?.AWS).includes("*"));
      if (st.Effect === "Allow" && everyone && st.Condition === undefined) {
        out.push(violation(policy, "bucket policy allows anyone (Principal *) without a condition"));
      }
    }
  }
  for (const b of ofType(resources, T.gcsBucket)) {
    if (b.props.publicAccessPrevention !== "enforced")
      out.push(violation(b, "GCS bucket does not enforce public access prevention"));
    if (b.props.uniformBucketLevelAccess !== true)
      out.push(
        violation(
          b,
          "GCS bucket does not use uniform bucket-level access (object ACLs could make objects public)",
        ),
      );
  }
  for (const type of [T.gcsIamMember, T.gcsIamBinding, T.bqDatasetIamMember, T.bqTableIamMember]) {
    for (const grant of ofType(resources, type)) {
      const members = [...list(grant.props.member), ...list(grant.props.members)];
      if (members.some((m) => PUBLIC_MEMBERS.has(m)))
        out.push(violation(grant, "grants access to allUsers or allAuthenticatedUsers"));
    }
  }
  return out;
}

// ---------------------------------------------------------------- encryption everywhere

export function encryptionViolations(resources: readonly ResourceLike[]): Violation[] {
  const out: Violation[] = [];
  for (const { bucket, companions } of s3BucketsWith(resources, T.s3Encryption)) {
    const kms = companions.some((c) =>
      list(c.props.rules).length === 0
        ? false
        : // biome-ignore lint/suspicious/noExplicitAny: provider JSON
          (c.props.rules as any[]).some(
            (r) => r?.applyServerSideEncryptionByDefault?.sseAlgorithm === "aws:kms",
          ),
    );
    if (!kms) out.push(violation(bucket, "S3 bucket has no default SSE-KMS encryption"));
  }
  for (const q of ofType(resources, T.sqsQueue)) {
    if (q.props.sqsManagedSseEnabled !== true && typeof q.props.kmsMasterKeyId !== "string") {
      out.push(violation(q, "SQS queue is not encrypted at rest (SSE-SQS or SSE-KMS)"));
    }
  }
  for (const wg of ofType(resources, T.athenaWorkgroup)) {
    const option = wg.props.configuration?.resultConfiguration?.encryptionConfiguration?.encryptionOption;
    if (option === undefined) out.push(violation(wg, "Athena workgroup does not encrypt query results"));
    if (wg.props.configuration?.enforceWorkgroupConfiguration !== true) {
      out.push(violation(wg, "Athena workgroup does not enforce its result location and encryption"));
    }
  }
  return out;
}

// ---------------------------------------------------------------- TLS only

/** Whether a statement denies every non-TLS request to the bucket and its objects. */
function deniesInsecureTransport(st: Statement, bucketName: string): boolean {
  if (st.Effect !== "Deny") return false;
  if (
    st.Condition?.Bool?.["aws:SecureTransport"] !== "false" &&
    st.Condition?.Bool?.["aws:SecureTransport"] !== false
  ) {
    return false;
  }
  const actions = list(st.Action);
  if (!actions.includes("s3:*") && !actions.includes("*")) return false;
  const resources = list(st.Resource);
  return (
    resources.some((r) => r.endsWith(`:::${bucketName}`)) &&
    resources.some((r) => r.endsWith(`:::${bucketName}/*`))
  );
}

export function tlsOnlyViolations(resources: readonly ResourceLike[]): Violation[] {
  const out: Violation[] = [];
  for (const { bucket, companions } of s3BucketsWith(resources, T.s3Policy)) {
    const ok = companions.some((p) =>
      statementsOf(p.props.policy).some((st) => deniesInsecureTransport(st, bucket.props.bucket)),
    );
    if (!ok)
      out.push(
        violation(bucket, "S3 bucket policy does not deny requests without TLS (aws:SecureTransport false)"),
      );
  }
  return out;
}

// ---------------------------------------------------------------- no wildcard actions on data buckets

/** An Allow statement whose action has a wildcard and whose resource is an S3 bucket or everything. */
export function wildcardActionViolations(resources: readonly ResourceLike[]): Violation[] {
  const out: Violation[] = [];
  for (const type of [T.iamRolePolicy, T.iamPolicy, T.s3Policy]) {
    for (const r of ofType(resources, type)) {
      for (const st of statementsOf(r.props.policy)) {
        if (st.Effect !== "Allow") continue;
        const wild = list(st.Action).filter((a) => a.includes("*"));
        const onData =
          type === T.s3Policy ||
          list(st.Resource).some(
            (res) => res === "*" || res.startsWith("arn:aws:s3:::") || /^arn:aws[a-z-]*:s3:::/.test(res),
          );
        if (wild.length > 0 && onData)
          out.push(violation(r, `allows wildcard action(s) ${wild.join(", ")} on a data bucket`));
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------- no destructive actions

const DESTRUCTIVE = new Map(DESTRUCTIVE_S3_ACTIONS.map((a) => [a.toLowerCase(), a]));
const PUT_OBJECT_RETENTION = "s3:putobjectretention";
const DELETE_OBJECT = "s3:deleteobject";

/** The destructive actions an action pattern (IAM wildcards `*` and `?`, case-insensitive) covers. */
function destructiveActionsOf(pattern: string): string[] {
  const lower = pattern.toLowerCase();
  if (!/[*?]/.test(lower)) return DESTRUCTIVE.has(lower) ? [DESTRUCTIVE.get(lower)!] : [];
  const re = new RegExp(
    `^${lower
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replaceAll("*", ".*")
      .replaceAll("?", ".")}$`,
  );
  return [...DESTRUCTIVE.entries()].filter(([k]) => re.test(k)).map(([, v]) => v);
}

/**
 * Whether an Allow of s3:PutObjectRetention is the shipper's kind of grant: on named key
 * prefixes of a bucket (never a whole bucket's objects, never `*`), with every request's
 * retention capped by a numeric upper bound on s3:object-lock-remaining-retention-days, and
 * no NotAction/NotResource that could widen it.
 */
export function boundedRetentionGrant(st: Statement): boolean {
  if (st.NotAction !== undefined || st.NotResource !== undefined) return false;
  const onPrefixes = onKeyPrefixes(st);
  const caps = ["NumericLessThanEquals", "NumericLessThan"].map(
    (op) => st.Condition?.[op]?.[RETENTION_DAYS_CONDITION_KEY],
  );
  const capped = caps.some((v) => {
    const values = list(v);
    return values.length > 0 && values.every((x) => /^\d+$/.test(x));
  });
  // An IfExists operator would let a request without the key (no retention asked) through.
  const ifExists = Object.keys(st.Condition ?? {}).some(
    (op) => op.endsWith("IfExists") && st.Condition[op]?.[RETENTION_DAYS_CONDITION_KEY] !== undefined,
  );
  return onPrefixes && capped && !ifExists;
}

/** Whether every resource of a statement is a bucket's key prefix (never a whole bucket's objects, never `*`). */
function onKeyPrefixes(st: Statement): boolean {
  const resources = list(st.Resource);
  return (
    resources.length > 0 &&
    resources.every((r) => {
      const m = /^arn:aws[a-z-]*:s3:::[^/*?]+\/(.*)$/.exec(r);
      // A key prefix: something before any wildcard, and a whole segment (ends in `/*`).
      return m !== null && /^[^*?]+\/\*$/.test(m[1]!);
    })
  );
}

/**
 * Whether an Allow of s3:DeleteObject is the compactor's delete-marker grant: in an identity
 * policy (no Principal: never a bucket policy's grant to others), on key prefixes that each end
 * in a long-lived tier's segment (lib/keys/tiers.ts: `<prefix>/archive/`, `<prefix>/analytics/`;
 * never the hour indexes, loss records, compacted parts or a whole bucket), with no
 * NotAction/NotResource. In a versioned bucket DeleteObject without a version id only puts a
 * delete marker; removing a version is s3:DeleteObjectVersion, which no grant may hold.
 */
export function deleteMarkerGrant(st: Statement): boolean {
  if (st.NotAction !== undefined || st.NotResource !== undefined || st.Principal !== undefined) return false;
  const tiers = new Set<string>(longLivedTiers());
  return (
    onKeyPrefixes(st) &&
    list(st.Resource).every((r) => {
      const segments = r.split("/");
      // `arn:aws:s3:::bucket/<prefix>/<tier>/*`: the tier is the segment before the `*`, under a prefix.
      return segments.length >= 4 && tiers.has(segments.at(-2)!);
    })
  );
}

/** Whether a statement's grant of one destructive action is one of the two bounded exceptions. */
function boundedException(action: string, st: Statement): boolean {
  const lower = action.toLowerCase();
  if (lower === PUT_OBJECT_RETENTION) return boundedRetentionGrant(st);
  if (lower === DELETE_OBJECT) return deleteMarkerGrant(st);
  return false;
}

/**
 * No IAM policy, role policy or bucket policy allows an action that deletes archived data,
 * weakens its protection or could steer the lifecycle (DESTRUCTIVE_S3_ACTIONS, also through
 * wildcards), except s3:PutObjectRetention in a bounded grant (boundedRetentionGrant) and
 * s3:DeleteObject in the compactor's delete-marker grant (deleteMarkerGrant). Deny statements
 * are fine.
 */
export function destructiveActionViolations(resources: readonly ResourceLike[]): Violation[] {
  const out: Violation[] = [];
  for (const type of [T.iamRolePolicy, T.iamPolicy, T.s3Policy]) {
    for (const r of ofType(resources, type)) {
      for (const st of statementsOf(r.props.policy)) {
        if (st.Effect !== "Allow") continue;
        if (st.NotAction !== undefined) {
          out.push(violation(r, "allows NotAction, which covers destructive S3 actions"));
          continue;
        }
        const actions = [...new Set(list(st.Action).flatMap(destructiveActionsOf))];
        const bad = actions.filter((a) => !boundedException(a, st));
        if (bad.length > 0) {
          const lower = bad.map((a) => a.toLowerCase());
          const why = [
            ...(lower.includes(PUT_OBJECT_RETENTION)
              ? [
                  "s3:PutObjectRetention only on key prefixes, with a NumericLessThanEquals cap on s3:object-lock-remaining-retention-days",
                ]
              : []),
            ...(lower.includes(DELETE_OBJECT)
              ? [
                  `s3:DeleteObject only in a role's own policy, on key prefixes of the long-lived tiers (${longLivedTiers().join(", ")})`,
                ]
              : []),
          ]
            .map((w) => ` (${w})`)
            .join("");
          out.push(violation(r, `allows destructive action(s) ${bad.join(", ")}${why}`));
        }
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------- Object Lock

export interface ObjectLockRequirement {
  /**
   * The least the archive must have: GOVERNANCE means Object Lock in either mode (COMPLIANCE is
   * stricter), COMPLIANCE means compliance mode only; none: no requirement.
   */
  requiredMode: "COMPLIANCE" | "GOVERNANCE" | "none";
}

export function objectLockViolations(
  resources: readonly ResourceLike[],
  req: ObjectLockRequirement,
): Violation[] {
  if (req.requiredMode === "none") return [];
  const out: Violation[] = [];
  const locked = ofType(resources, T.s3Bucket).filter((b) => b.props.objectLockEnabled === true);
  if (locked.length === 0) {
    return [
      {
        resource: "(stack)",
        message: `no S3 bucket has Object Lock enabled, but ${req.requiredMode} mode is required`,
      },
    ];
  }
  const configs = ofType(resources, T.s3ObjectLock);
  for (const bucket of locked) {
    const name = bucket.props.bucket;
    const config = configs.find((c) => typeof name !== "string" || bucketNameOf(c) === name);
    const mode = config?.props.rule?.defaultRetention?.mode;
    const enough =
      req.requiredMode === "GOVERNANCE"
        ? mode === "GOVERNANCE" || mode === "COMPLIANCE"
        : mode === req.requiredMode;
    if (!enough) {
      out.push(
        violation(
          bucket,
          `Object Lock default retention mode is ${mode ?? "unset"}, ${req.requiredMode} is required`,
        ),
      );
    }
  }
  return out;
}

// ---------------------------------------------------------------- the policies

function stackPolicy(
  name: string,
  description: string,
  check: (resources: readonly ResourceLike[], config: ObjectLockRequirement) => Violation[],
  configSchema?: StackValidationPolicy["configSchema"],
): StackValidationPolicy {
  return {
    name,
    description,
    enforcementLevel: "mandatory",
    ...(configSchema === undefined ? {} : { configSchema }),
    validateStack: (args, reportViolation) => {
      const resources: ResourceLike[] = args.resources.map((r: PolicyResource) => ({
        type: r.type,
        name: r.name,
        urn: r.urn,
        props: r.props,
      }));
      const config =
        configSchema === undefined
          ? { requiredMode: "none" as const }
          : args.getConfig<ObjectLockRequirement>();
      for (const v of check(resources, config)) reportViolation(v.message, v.urn);
    },
  };
}

export const securityPolicies: StackValidationPolicy[] = [
  stackPolicy(
    "logarchive-no-public-buckets",
    "No S3 or GCS bucket, and no warehouse table, can be made public.",
    publicAccessViolations,
  ),
  stackPolicy(
    "logarchive-encryption-everywhere",
    "S3 buckets use SSE-KMS, queues are encrypted, Athena results are encrypted.",
    encryptionViolations,
  ),
  stackPolicy(
    "logarchive-tls-only",
    "Every S3 bucket policy denies requests made without TLS.",
    tlsOnlyViolations,
  ),
  stackPolicy(
    "logarchive-no-wildcard-data-actions",
    "No IAM or bucket policy allows a wildcard action on a data bucket.",
    wildcardActionViolations,
  ),
  stackPolicy(
    "logarchive-no-destructive-actions",
    "No policy allows deleting archived data, weakening its lock or tagging it; s3:PutObjectRetention only on key prefixes with a capped retention, s3:DeleteObject (delete markers) only on the long-lived tiers' key prefixes.",
    destructiveActionViolations,
  ),
  stackPolicy(
    "logarchive-object-lock",
    "The archive has Object Lock with a default retention; set requiredMode to COMPLIANCE for a compliance stack.",
    objectLockViolations,
    {
      properties: {
        requiredMode: { type: "string", enum: ["COMPLIANCE", "GOVERNANCE", "none"], default: "GOVERNANCE" },
      },
    },
  ),
];
