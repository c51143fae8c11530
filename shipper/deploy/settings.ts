// The settings file of `logarchive manifests --config FILE`: the arguments of
// shipperManifests (and of infra/k8s's ShipperDaemonSet) as YAML, with the same names, so
// one shape serves kubectl users and Pulumi stacks. Checked with zod; every problem names
// its key.

import { z } from "zod";
import { ConfigError, describeIssues } from "../../lib/config/errors.ts";
import { parseYamlConfig } from "../../lib/config/yaml.ts";
import { s3BucketNameProblem } from "../../lib/s3-bucket-name.ts";
import type { ShipperManifestArgs } from "./daemonset.ts";

const stringMap = z.record(z.string(), z.string());
const resourceList = z.strictObject({
  cpu: z.string().optional(),
  memory: z.string().optional(),
  "ephemeral-storage": z.string().optional(),
});
const toleration = z.strictObject({
  key: z.string().optional(),
  operator: z.enum(["Exists", "Equal"]).optional(),
  value: z.string().optional(),
  effect: z.enum(["NoSchedule", "PreferNoSchedule", "NoExecute"]).optional(),
  tolerationSeconds: z.number().int().optional(),
});
const shipperValue = z.union([
  z.string(),
  z.number(),
  z.boolean(),
  z.array(z.string()),
  z.array(z.record(z.string(), z.unknown())),
]);

export const manifestSettingsSchema = z.strictObject({
  namespace: z.string().optional(),
  createNamespace: z.boolean().optional(),
  image: z.string().optional(),
  bucket: z
    .string()
    .superRefine((name, ctx) => {
      const problem = s3BucketNameProblem(name);
      if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
    })
    .optional(),
  region: z.string().optional(),
  prefix: z.string().optional(),
  roleArn: z.string().optional(),
  s3Endpoint: z.string().optional(),
  serviceAccountAnnotations: stringMap.optional(),
  resources: z
    .strictObject({ requests: resourceList.optional(), limits: resourceList.optional() })
    .optional(),
  drainTimeoutSeconds: z.number().int().min(0).optional(),
  priorityClassName: z.string().optional(),
  criticalPodQuota: z.boolean().optional(),
  runAs: z.enum(["non-root", "root"]).optional(),
  uid: z.number().int().positive().optional(),
  tolerations: z.array(toleration).optional(),
  networkPolicy: z.boolean().optional(),
  metricsScrapers: z.array(z.record(z.string(), z.unknown())).optional(),
  podMonitor: z.boolean().optional(),
  podMonitorLabels: stringMap.optional(),
  podMonitorInterval: z.string().optional(),
  docker: z.boolean().optional(),
  dockerContainersDir: z.string().optional(),
  podLogsDir: z.string().optional(),
  /** shipper.yaml options, keys as in docs/shipper.md. */
  shipperConfig: z.record(z.string(), shipperValue).optional(),
  extraEnv: z
    .array(
      z.strictObject({
        name: z.string(),
        value: z.string().optional(),
        valueFrom: z.record(z.string(), z.unknown()).optional(),
      }),
    )
    .optional(),
  nodeSelector: stringMap.optional(),
  imagePullSecrets: z.array(z.string()).optional(),
});

export type ManifestSettingsFile = z.output<typeof manifestSettingsSchema>;

export function parseManifestSettings(text: string, path: string): ManifestSettingsFile {
  return parseYamlConfig(text, manifestSettingsSchema, path);
}

/**
 * The same check for a value already parsed, such as a Pulumi stack config object
 * (`config.getObject("shipper")`): problems name their key under `source`.
 */
export function checkManifestSettings(value: unknown, source: string): ManifestSettingsFile {
  const result = manifestSettingsSchema.safeParse(value ?? {});
  if (!result.success) throw new ConfigError(source, describeIssues(result.error));
  return result.data;
}

// Every argument but the policy text can be set in the file, and nothing else: an argument
// added to ShipperManifestArgs and not here (or the reverse) fails the typecheck.
type SettableKeys = keyof Omit<ShipperManifestArgs, "policyYaml">;
type FileKeys = keyof ManifestSettingsFile;
const sameKeys: [SettableKeys] extends [FileKeys]
  ? [FileKeys] extends [SettableKeys]
    ? true
    : never
  : never = true;
void sameKeys;
