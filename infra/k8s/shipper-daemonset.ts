// The shipper on Kubernetes as one Pulumi component: the objects shipperManifests makes
// (shipper/deploy/daemonset.ts), one typed resource each, so `pulumi up` deploys exactly
// what `logarchive manifests` prints for kubectl users. Settings, defaults and reasons:
// docs/shipper.md#deploy.

import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import {
  DEFAULT_NAMESPACE,
  type KubernetesObject,
  type ObjectId,
  plannedObjects,
  type ShipperManifestSettings,
  shipperManifests,
} from "../../shipper/deploy/daemonset.ts";

export interface ShipperDaemonSetArgs extends ShipperManifestSettings {
  /** Shipper image, built from shipper/deploy/Dockerfile. */
  image: pulumi.Input<string>;
  /** The archive bucket's name. */
  bucket: pulumi.Input<string>;
  /** The archive bucket's region (the shipper's AWS_REGION). */
  region: pulumi.Input<string>;
  /** Default: the policy's archive.prefix. */
  prefix?: pulumi.Input<string>;
  /** Contents of namespaces.yaml, shipped in the ConfigMap. */
  policyYaml: pulumi.Input<string>;
  /** IRSA: the shipper role's ARN (made by the AWS part of the stack). */
  roleArn?: pulumi.Input<string>;
  s3Endpoint?: pulumi.Input<string>;
}

/** The top-level fields each kind carries besides apiVersion, kind and metadata. */
const SPEC_FIELDS: Record<string, readonly string[]> = {
  Namespace: [],
  ResourceQuota: ["spec"],
  ServiceAccount: ["automountServiceAccountToken"],
  ConfigMap: ["data"],
  NetworkPolicy: ["spec"],
  DaemonSet: ["spec"],
  PodMonitor: ["spec"],
};

/**
 * The object with the id's kind and name, checked to carry no field the component would
 * drop: a new field in shipperManifests fails `pulumi preview` instead of silently
 * deploying less than `logarchive manifests` prints.
 */
export function objectFor(objects: readonly KubernetesObject[], id: ObjectId): KubernetesObject {
  const found = objects.find((o) => o.kind === id.kind && o.metadata.name === id.name);
  if (found === undefined)
    throw new Error(`ShipperDaemonSet: shipperManifests made no ${id.kind} ${id.name}`);
  const known = new Set(["apiVersion", "kind", "metadata", ...(SPEC_FIELDS[id.kind] ?? [])]);
  const extra = Object.keys(found).filter((field) => !known.has(field));
  if (SPEC_FIELDS[id.kind] === undefined || extra.length > 0) {
    throw new Error(
      `ShipperDaemonSet: ${id.kind} ${id.name} has fields it does not deploy: ${extra.join(", ")}`,
    );
  }
  return found;
}

export class ShipperDaemonSet extends pulumi.ComponentResource {
  /** The objects as shipperManifests made them (what `logarchive manifests` prints). */
  readonly objects: pulumi.Output<KubernetesObject[]>;
  /** One resource per object, in apply order. */
  readonly resources: pulumi.CustomResource[];
  readonly namespace: string;
  readonly daemonSet: k8s.apps.v1.DaemonSet;
  readonly serviceAccount: k8s.core.v1.ServiceAccount;

  constructor(name: string, args: ShipperDaemonSetArgs, opts?: pulumi.ComponentResourceOptions) {
    super("logarchive:k8s:ShipperDaemonSet", name, {}, opts);
    const { image, bucket, region, prefix, policyYaml, roleArn, s3Endpoint, ...settings } = args;
    this.namespace = settings.namespace ?? DEFAULT_NAMESPACE;
    this.objects = pulumi
      .all([image, bucket, region, prefix, policyYaml, roleArn, s3Endpoint])
      .apply(([image, bucket, region, prefix, policyYaml, roleArn, s3Endpoint]) =>
        shipperManifests({
          ...settings,
          image,
          bucket,
          region,
          policyYaml,
          ...(prefix !== undefined ? { prefix } : {}),
          ...(roleArn !== undefined ? { roleArn } : {}),
          ...(s3Endpoint !== undefined ? { s3Endpoint } : {}),
        }),
      );

    // The objects are known only once the inputs are; which objects there are follows from
    // the settings alone, so the resources can be declared now.
    const resources = new Map<string, pulumi.CustomResource>();
    let namespaceResource: pulumi.CustomResource | undefined;
    for (const id of plannedObjects(settings)) {
      const object = this.objects.apply((objects) => objectFor(objects, id));
      const field = (key: string) => object.apply((o) => o[key]) as pulumi.Output<never>;
      const metadata = object.apply((o) => o.metadata);
      const dependsOn = [
        ...(namespaceResource ? [namespaceResource] : []),
        // Pods are admitted only once the quota for their priority class, their
        // ServiceAccount and their ConfigMap exist.
        ...(id.kind === "DaemonSet" ? [...resources.values()].filter((r) => r !== namespaceResource) : []),
      ];
      // Names are fixed (metadata.name), so a replacement must delete before it creates.
      const childOpts: pulumi.CustomResourceOptions = { parent: this, dependsOn, deleteBeforeReplace: true };
      const resourceName = `${name}-${id.kind.toLowerCase()}`;
      let resource: pulumi.CustomResource;
      switch (id.kind) {
        case "Namespace":
          resource = namespaceResource = new k8s.core.v1.Namespace(resourceName, { metadata }, childOpts);
          break;
        case "ResourceQuota":
          resource = new k8s.core.v1.ResourceQuota(
            resourceName,
            { metadata, spec: field("spec") },
            childOpts,
          );
          break;
        case "ServiceAccount":
          resource = new k8s.core.v1.ServiceAccount(
            resourceName,
            { metadata, automountServiceAccountToken: field("automountServiceAccountToken") },
            childOpts,
          );
          break;
        case "ConfigMap":
          resource = new k8s.core.v1.ConfigMap(resourceName, { metadata, data: field("data") }, childOpts);
          break;
        case "NetworkPolicy":
          resource = new k8s.networking.v1.NetworkPolicy(
            resourceName,
            { metadata, spec: field("spec") },
            childOpts,
          );
          break;
        case "DaemonSet":
          resource = new k8s.apps.v1.DaemonSet(resourceName, { metadata, spec: field("spec") }, childOpts);
          break;
        case "PodMonitor":
          resource = new k8s.apiextensions.CustomResource(
            resourceName,
            { apiVersion: id.apiVersion, kind: id.kind, metadata, spec: field("spec") },
            childOpts,
          );
          break;
        default:
          throw new Error(`ShipperDaemonSet: no resource type for ${id.kind}`);
      }
      resources.set(id.kind, resource);
    }
    this.resources = [...resources.values()];
    this.daemonSet = resources.get("DaemonSet") as k8s.apps.v1.DaemonSet;
    this.serviceAccount = resources.get("ServiceAccount") as k8s.core.v1.ServiceAccount;
    this.registerOutputs({
      namespace: this.namespace,
      daemonSetName: this.daemonSet.metadata.name,
      serviceAccountName: this.serviceAccount.metadata.name,
    });
  }
}
