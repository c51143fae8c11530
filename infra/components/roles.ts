// The AWS roles that touch the archive besides the transfer: the shipper's IRSA role (write
// only, under the archive prefix), the compactor's IRSA role (read the originals, write only
// under the compacted prefix) and the compliance retrieval role (read, restore, legal hold;
// never delete).

import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import {
  type CompactorOriginalsGrant,
  compactorPolicy,
  irsaTrustPolicy,
  retrievalPolicy,
  retrievalTrustPolicy,
  type ShipperRetentionGrant,
  shipperPolicy,
} from "../iam.ts";
import { COMPONENT_PREFIX } from "./archive-bucket.ts";

/**
 * A role of `parent` named `name` and its one inline policy (`policyName`), the policy document
 * built once the bucket's and the key's ARNs are known: every role here is one of these.
 */
function roleWithPolicy(
  parent: pulumi.ComponentResource,
  name: string,
  o: {
    description: string;
    assumeRolePolicy: pulumi.Input<string>;
    policyName: string;
    bucketArn: pulumi.Input<string>;
    keyArn: pulumi.Input<string>;
    policy: (bucketArn: string, keyArn: string) => object;
  },
): aws.iam.Role {
  const role = new aws.iam.Role(
    name,
    { description: o.description, assumeRolePolicy: o.assumeRolePolicy },
    { parent },
  );
  new aws.iam.RolePolicy(
    o.policyName,
    {
      role: role.id,
      policy: pulumi
        .all([o.bucketArn, o.keyArn])
        .apply(([bucketArn, keyArn]) => JSON.stringify(o.policy(bucketArn, keyArn))),
    },
    { parent },
  );
  return role;
}

export interface ShipperRoleArgs {
  bucketArn: pulumi.Input<string>;
  keyArn: pulumi.Input<string>;
  /** shipperWritePrefixes(policy). */
  writePrefixes: readonly string[];
  /** Where the shipper sets its own, shorter retention (stream copies, landing originals), capped. */
  retention?: ShipperRetentionGrant;
  oidcProviderArn: string;
  namespace: string;
  serviceAccount: string;
}

/**
 * IRSA role of the shipper DaemonSet: its ServiceAccount's token, and no other, may assume it
 * (https://docs.aws.amazon.com/eks/latest/userguide/associate-service-account-role.html). The
 * DaemonSet's ServiceAccount carries `eks.amazonaws.com/role-arn: <roleArn>`.
 */
export class ShipperRole extends pulumi.ComponentResource {
  readonly role: aws.iam.Role;
  readonly roleArn: pulumi.Output<string>;
  constructor(name: string, args: ShipperRoleArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${COMPONENT_PREFIX}:aws:ShipperRole`, name, {}, opts);
    this.role = roleWithPolicy(this, name, {
      description: "logarchive shipper (IRSA): PutObject under the archive prefix, HeadObject after a 412",
      assumeRolePolicy: JSON.stringify(irsaTrustPolicy(args)),
      policyName: `${name}-write`,
      bucketArn: args.bucketArn,
      keyArn: args.keyArn,
      policy: (bucketArn, keyArn) =>
        shipperPolicy({
          bucketArn,
          keyArn,
          writePrefixes: args.writePrefixes,
          ...(args.retention === undefined ? {} : { retention: args.retention }),
        }),
    });
    this.roleArn = this.role.arn;
    this.registerOutputs({ roleArn: this.roleArn });
  }
}

/** originalPrefixes and maxRetentionDays: delete markers and retention extensions, on the tiers only. */
export interface CompactorRoleArgs extends CompactorOriginalsGrant {
  bucketArn: pulumi.Input<string>;
  keyArn: pulumi.Input<string>;
  /** The long-lived tiers' prefixes and the hour indexes' (from lib/keys/layout.ts). */
  readPrefixes: readonly string[];
  /** compactedPrefix(policy.archive.prefix): the only place it writes. */
  compactedPrefix: string;
  oidcProviderArn: string;
  namespace: string;
  serviceAccount: string;
}

/** IRSA role of the compactor CronJob (infra/k8s/compactor-cronjob.ts). */
export class CompactorRole extends pulumi.ComponentResource {
  readonly role: aws.iam.Role;
  readonly roleArn: pulumi.Output<string>;
  constructor(name: string, args: CompactorRoleArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${COMPONENT_PREFIX}:aws:CompactorRole`, name, {}, opts);
    this.role = roleWithPolicy(this, name, {
      description:
        "logarchive compactor (IRSA): read the originals and hour indexes, write parts and manifests under the compacted prefix, delete markers and capped retention on the tiers; never a version delete",
      assumeRolePolicy: JSON.stringify(irsaTrustPolicy(args)),
      policyName: `${name}-compact`,
      bucketArn: args.bucketArn,
      keyArn: args.keyArn,
      policy: (bucketArn, keyArn) =>
        compactorPolicy({
          bucketArn,
          keyArn,
          readPrefixes: args.readPrefixes,
          compactedPrefix: args.compactedPrefix,
          originalPrefixes: args.originalPrefixes,
          maxRetentionDays: args.maxRetentionDays,
        }),
    });
    this.roleArn = this.role.arn;
    this.registerOutputs({ roleArn: this.roleArn });
  }
}

export interface RetrievalRoleArgs {
  bucketArn: pulumi.Input<string>;
  keyArn: pulumi.Input<string>;
  /** The roles or users that alone may assume the role (logarchive:retrievalPrincipals; never an account root). */
  principals: pulumi.Input<string>[];
  /** retrievalPrefixes(policy): the tiers, loss records, hour indexes and compacted prefix. */
  objectPrefixes: readonly string[];
}

export class RetrievalRole extends pulumi.ComponentResource {
  readonly role: aws.iam.Role;
  readonly roleArn: pulumi.Output<string>;
  constructor(name: string, args: RetrievalRoleArgs, opts?: pulumi.ComponentResourceOptions) {
    super(`${COMPONENT_PREFIX}:aws:RetrievalRole`, name, {}, opts);
    this.role = roleWithPolicy(this, name, {
      description: "logarchive compliance retrieval: read, restore and legal hold; never delete",
      assumeRolePolicy: pulumi
        .all(args.principals)
        .apply((principals) => JSON.stringify(retrievalTrustPolicy({ principals }))),
      policyName: `${name}-retrieve`,
      bucketArn: args.bucketArn,
      keyArn: args.keyArn,
      policy: (bucketArn, keyArn) =>
        retrievalPolicy({ bucketArn, keyArn, objectPrefixes: args.objectPrefixes }),
    });
    this.roleArn = this.role.arn;
    this.registerOutputs({ roleArn: this.roleArn });
  }
}
