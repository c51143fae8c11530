// `logarchive manifests`: the shipper's Kubernetes objects as YAML, for teams that deploy
// with kubectl, Helm or Argo CD instead of Pulumi. The objects are the ones infra/k8s's
// ShipperDaemonSet creates (shipper/deploy/daemonset.ts makes both).

import { readFile } from "node:fs/promises";
import { Command, InvalidArgumentError, Option } from "commander";
import { ConfigError, UserError } from "../../lib/config/errors.ts";
import { s3BucketNameProblem } from "../../lib/s3-bucket-name.ts";
import {
  renderManifestsYaml,
  type ShipperManifestArgs,
  shipperManifests,
} from "../../shipper/deploy/daemonset.ts";
import { type ManifestSettingsFile, parseManifestSettings } from "../../shipper/deploy/settings.ts";
import { policyPathOrDefault } from "../options.ts";

interface ManifestsFlags {
  config?: string;
  policy?: string;
  image?: string;
  bucket?: string;
  region?: string;
  prefix?: string;
  namespace?: string;
  roleArn?: string;
  s3Endpoint?: string;
  runAs?: "non-root" | "root";
  uid?: number;
  priorityClass?: string;
  createNamespace?: boolean;
  networkPolicy?: boolean;
  podMonitor?: boolean;
  podMonitorLabel?: Record<string, string>;
}

function parseUid(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError("expected a positive integer uid.");
  return n;
}

function parseBucketName(value: string): string {
  const problem = s3BucketNameProblem(value);
  if (problem !== undefined) throw new InvalidArgumentError(`--bucket ${problem}.`);
  return value;
}

/** The --config file's text; a file that cannot be read is named by its flag, in one line. */
async function readConfigFile(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    throw new UserError(`--config ${path}: ${code ?? message}`);
  }
}

function collectLabel(value: string, previous: Record<string, string> | undefined): Record<string, string> {
  const m = /^([^=]+)=(.*)$/.exec(value);
  if (m === null) throw new InvalidArgumentError("expected key=value.");
  return { ...previous, [m[1]!]: m[2]! };
}

export function manifestsCommand(): Command {
  return new Command("manifests")
    .description(
      "Print the shipper's Kubernetes manifests (Namespace, ResourceQuota, ServiceAccount, ConfigMap, NetworkPolicy, DaemonSet, PodMonitor) as YAML for kubectl apply -f -.",
    )
    .option("--config <file>", "settings YAML: the ShipperDaemonSet arguments (docs/shipper.md#deploy)")
    .option("--policy <file>", "namespace policy shipped in the ConfigMap (default ./namespaces.yaml)")
    .option("--image <ref>", "shipper image (built from shipper/deploy/Dockerfile)")
    .option("--bucket <name>", "S3 bucket of the archive", parseBucketName)
    .option("--region <region>", "AWS region of the bucket")
    .option("--prefix <prefix>", "key prefix (default: the policy's archive.prefix)")
    .option("--namespace <name>", "namespace of the shipper (default logarchive)")
    .option(
      "--role-arn <arn>",
      "IRSA: IAM role of the shipper, as the ServiceAccount's eks.amazonaws.com/role-arn",
    )
    .option("--s3-endpoint <url>", "S3 endpoint (VPC endpoint, MinIO)")
    .addOption(new Option("--run-as <user>", "non-root (default) or root").choices(["non-root", "root"]))
    .addOption(new Option("--uid <uid>", "uid for --run-as non-root (default 1000)").argParser(parseUid))
    .option("--priority-class <name>", "priorityClassName (default system-node-critical)")
    .option("--no-create-namespace", "do not emit the Namespace (it exists already)")
    .option("--no-network-policy", "do not emit the metrics NetworkPolicy")
    .option("--no-pod-monitor", "do not emit the PodMonitor (no Prometheus Operator CRDs)")
    .option(
      "--pod-monitor-label <key=value>",
      "label for the Prometheus' podMonitorSelector (repeatable)",
      collectLabel,
    )
    .action(async (flags: ManifestsFlags, command: Command) => {
      const file: ManifestSettingsFile = flags.config
        ? parseManifestSettings(await readConfigFile(flags.config), flags.config)
        : {};
      const given = (name: keyof ManifestsFlags) => command.getOptionValueSource(name) === "cli";
      // Flags win over the file; a --no-* flag only when given, so the file's value stands otherwise.
      const settings: ManifestSettingsFile = {
        ...file,
        ...(flags.image !== undefined ? { image: flags.image } : {}),
        ...(flags.bucket !== undefined ? { bucket: flags.bucket } : {}),
        ...(flags.region !== undefined ? { region: flags.region } : {}),
        ...(flags.prefix !== undefined ? { prefix: flags.prefix } : {}),
        ...(flags.namespace !== undefined ? { namespace: flags.namespace } : {}),
        ...(flags.roleArn !== undefined ? { roleArn: flags.roleArn } : {}),
        ...(flags.s3Endpoint !== undefined ? { s3Endpoint: flags.s3Endpoint } : {}),
        ...(flags.runAs !== undefined ? { runAs: flags.runAs } : {}),
        ...(flags.uid !== undefined ? { uid: flags.uid } : {}),
        ...(flags.priorityClass !== undefined ? { priorityClassName: flags.priorityClass } : {}),
        ...(given("createNamespace") ? { createNamespace: false } : {}),
        ...(given("networkPolicy") ? { networkPolicy: false } : {}),
        ...(given("podMonitor") ? { podMonitor: false } : {}),
        ...(flags.podMonitorLabel
          ? { podMonitorLabels: { ...file.podMonitorLabels, ...flags.podMonitorLabel } }
          : {}),
      };
      const missing = (["image", "bucket", "region"] as const)
        .filter((key) => settings[key] === undefined)
        .map((key) => `${key}: required; set --${key} or \`${key}:\` in the --config file`);
      const policyPath = await policyPathOrDefault(flags.policy);
      if (policyPath === undefined)
        missing.push("policy: required; set --policy (no namespaces.yaml in this directory)");
      if (missing.length > 0) throw new ConfigError("manifests settings", missing);
      const args = { ...settings, policyYaml: await readFile(policyPath!, "utf8") } as ShipperManifestArgs;
      process.stdout.write(renderManifestsYaml(shipperManifests(args)));
    });
}
