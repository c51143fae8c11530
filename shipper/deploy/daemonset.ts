// Kubernetes manifests for `logarchive ship`, as plain objects: infra/k8s passes them to
// Pulumi (one typed resource per object, ShipperDaemonSet) and `logarchive manifests`
// prints them for kubectl, Helm or Argo. Pure functions, no cluster access. Every
// setting, its default and the reason for it: docs/shipper.md#deploy.

import { createHash } from "node:crypto";
import { posix } from "node:path";
import { stringify } from "yaml";
import { ConfigError } from "../../lib/config/errors.ts";
import { isNamespaceName, parsePolicy } from "../../lib/policy/policy.ts";
import { FILE_ONLY_OPTIONS, resolveShipperConfig, SHIPPER_OPTIONS } from "../config.ts";

export const SHIPPER_NAME = "logarchive-shipper";
export const DEFAULT_NAMESPACE = "logarchive";
export const METRICS_PORT = 2021;
export const METRICS_PORT_NAME = "http-metrics";
export const CONFIG_DIR = "/etc/logarchive";
export const CONFIG_PATH = `${CONFIG_DIR}/shipper.yaml`;
export const POLICY_PATH = `${CONFIG_DIR}/namespaces.yaml`;
export const STATE_DIR = "/var/lib/logarchive";
export const POD_LOGS_DIR = "/var/log/pods";
export const CONTAINERS_LOGS_DIR = "/var/log/containers";
export const DOCKER_CONTAINERS_DIR = "/var/lib/docker/containers";
/** A built-in class (2,000,001,000), in every cluster: no PriorityClass of our own to create. */
export const DEFAULT_PRIORITY_CLASS = "system-node-critical";
/** uid of the `node` user in the official node images (the Dockerfile's USER). */
export const DEFAULT_NON_ROOT_UID = 1000;
/**
 * Requests from the shipper's measurement (docs/benchmarks.md#shipper, 2026-12-07, realistic
 * workload, stream delivery): peak RSS 124-126 MiB as deployed plus the memory-backed /tmp;
 * CPU about 8.5m + 0.28m per container log file (quiet files polled with back-off, 1 s scans)
 * + 40m per MB/s of node logs, so 50m covers 5 GB/day on nodes of up to ~140 log files.
 */
export const DEFAULT_REQUESTS = { cpu: "50m", memory: "160Mi" } as const;
export const DEFAULT_LIMITS = { memory: "256Mi" } as const;
/**
 * Disk the state directory holds beyond spool_max_bytes: the checkpoint (twice while it is
 * atomically replaced) and the one read chunk the shipper may take after the spool fills.
 */
export const STATE_DIR_OVERHEAD_BYTES = 64 * 2 ** 20;
/** Where Prometheus runs in most installations (kube-prometheus-stack's documented namespace). */
export const DEFAULT_SCRAPER_NAMESPACE = "monitoring";
/** The quota that admits critical-priority pods outside kube-system; one pod per node is far below it. */
export const CRITICAL_POD_QUOTA = "100000";

/** Keys of shipper.yaml that shipperManifests sets from its own arguments. */
const MANAGED_KEYS = [
  "bucket",
  "prefix",
  "policy",
  "state_dir",
  "listen",
  "drain_timeout",
  "s3_endpoint",
  "region",
  "node",
];

export interface ResourceList {
  cpu?: string;
  memory?: string;
  "ephemeral-storage"?: string;
}

export interface Toleration {
  key?: string;
  operator?: "Exists" | "Equal";
  value?: string;
  effect?: "NoSchedule" | "PreferNoSchedule" | "NoExecute";
  tolerationSeconds?: number;
}

/** A NetworkPolicy `from` peer: podSelector, namespaceSelector and/or ipBlock. */
export type NetworkPolicyPeer = Record<string, unknown>;

export type ShipperConfigValue = string | number | boolean | string[] | Record<string, unknown>[];

/** Everything but the values that may come from other resources (image, bucket, role, …). */
export interface ShipperManifestSettings {
  /** Default "logarchive". */
  namespace?: string;
  /** Create the Namespace, labelled with the Pod Security level the pod needs. Default true. */
  createNamespace?: boolean;
  /** Extra ServiceAccount annotations (GKE Workload Identity: `iam.gke.io/gcp-service-account`). */
  serviceAccountAnnotations?: Record<string, string>;
  /**
   * Merged over requests cpu 50m / memory 160Mi / ephemeral-storage spool_max_bytes + 64Mi
   * and limits memory 256Mi; no CPU or ephemeral-storage limit by default.
   */
  resources?: { requests?: ResourceList; limits?: ResourceList };
  /** Default 25; terminationGracePeriodSeconds is this plus 5. */
  drainTimeoutSeconds?: number;
  /** Default system-node-critical; any other name must already exist. */
  priorityClassName?: string;
  /**
   * With a system-* priority class, a ResourceQuota in the namespace that admits it where the
   * API server limits critical classes to namespaces with such a quota. Default true.
   */
  criticalPodQuota?: boolean;
  /**
   * "non-root" (default): the uid below with supplementary group 0 and no capability; an
   * init container (root, CAP_CHOWN only) hands it the state directory. "root": uid 0 with
   * no capability, for nodes whose logs are 0600.
   */
  runAs?: "non-root" | "root";
  /** uid (and gid) for runAs non-root. Default 1000. */
  uid?: number;
  /** Default [{ operator: Exists }]: every taint, NoExecute included. */
  tolerations?: Toleration[];
  /** A NetworkPolicy that admits only `metricsScrapers` to the metrics port. Default true. */
  networkPolicy?: boolean;
  /** Default: pods in the namespace named "monitoring". [] admits nothing. */
  metricsScrapers?: NetworkPolicyPeer[];
  /** A Prometheus Operator PodMonitor (monitoring.coreos.com/v1). Default true. */
  podMonitor?: boolean;
  /** Labels the Prometheus' podMonitorSelector matches, e.g. { release: "kube-prometheus-stack" }. */
  podMonitorLabels?: Record<string, string>;
  /** Scrape interval. Default 30s. */
  podMonitorInterval?: string;
  /** Mount Docker's container dir read-only: on cri-dockerd nodes /var/log/pods holds symlinks into it. */
  docker?: boolean;
  dockerContainersDir?: string;
  /** kubelet's podLogsDir. Default /var/log/pods. */
  podLogsDir?: string;
  /**
   * More shipper.yaml options (keys of docs/shipper.md), e.g. `{ batch_max_bytes: "16MiB" }`
   * or `{ multiline: [{ namespaces: ["payments"], mode: "java" }] }`.
   */
  shipperConfig?: Record<string, ShipperConfigValue>;
  extraEnv?: EnvVar[];
  nodeSelector?: Record<string, string>;
  imagePullSecrets?: string[];
}

export interface ShipperManifestArgs extends ShipperManifestSettings {
  image: string;
  bucket: string;
  region: string;
  /** Default: the policy's archive.prefix. */
  prefix?: string;
  /** Contents of namespaces.yaml; checked, and shipped in the ConfigMap. */
  policyYaml: string;
  /** IRSA: the shipper role's ARN, written as the ServiceAccount's `eks.amazonaws.com/role-arn`. */
  roleArn?: string;
  s3Endpoint?: string;
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: Record<string, unknown>;
}

export interface KubernetesObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

/** Which object shipperManifests makes, known before any value that may be a Pulumi Output. */
export interface ObjectId {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
}

const SELECTOR = { "app.kubernetes.io/name": "logarchive", "app.kubernetes.io/component": "shipper" };
const LABELS = { ...SELECTOR, "app.kubernetes.io/part-of": "logarchive" };
const METRICS_POLICY_NAME = `${SHIPPER_NAME}-metrics`;
const CRITICAL_QUOTA_NAME = `${SHIPPER_NAME}-critical-pods`;

function isSystemPriorityClass(name: string): boolean {
  return name.startsWith("system-");
}

/**
 * The objects shipperManifests returns, in apply order, from the settings alone: infra/k8s
 * declares one resource per entry before the image, bucket or role ARN are known.
 */
export function plannedObjects(settings: ShipperManifestSettings): ObjectId[] {
  const namespace = settings.namespace ?? DEFAULT_NAMESPACE;
  const priorityClassName = settings.priorityClassName ?? DEFAULT_PRIORITY_CLASS;
  const ids: ObjectId[] = [];
  if (settings.createNamespace ?? true) ids.push({ apiVersion: "v1", kind: "Namespace", name: namespace });
  if ((settings.criticalPodQuota ?? true) && isSystemPriorityClass(priorityClassName)) {
    ids.push({ apiVersion: "v1", kind: "ResourceQuota", name: CRITICAL_QUOTA_NAME, namespace });
  }
  ids.push({ apiVersion: "v1", kind: "ServiceAccount", name: SHIPPER_NAME, namespace });
  ids.push({ apiVersion: "v1", kind: "ConfigMap", name: SHIPPER_NAME, namespace });
  if (settings.networkPolicy ?? true) {
    ids.push({
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      name: METRICS_POLICY_NAME,
      namespace,
    });
  }
  ids.push({ apiVersion: "apps/v1", kind: "DaemonSet", name: SHIPPER_NAME, namespace });
  if (settings.podMonitor ?? true) {
    ids.push({ apiVersion: "monitoring.coreos.com/v1", kind: "PodMonitor", name: SHIPPER_NAME, namespace });
  }
  return ids;
}

/** Kubernetes resource quantities: 100m, 128Mi, 1.5Gi, 2. */
const QUANTITY = /^(\d+(\.\d+)?|\.\d+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;

function checkSettings(args: ShipperManifestArgs): string[] {
  const problems: string[] = [];
  const namespace = args.namespace ?? DEFAULT_NAMESPACE;
  if (!isNamespaceName(namespace))
    problems.push(`namespace: ${JSON.stringify(namespace)} is not a namespace name`);
  const drain = args.drainTimeoutSeconds ?? 25;
  if (!Number.isInteger(drain) || drain < 0)
    problems.push(`drainTimeoutSeconds: must be a whole number ≥ 0, got ${drain}`);
  if (args.image === "") problems.push("image: must not be empty");
  if (args.bucket === "") problems.push("bucket: must not be empty");
  if (args.region === "") problems.push("region: must not be empty");
  if (args.runAs !== undefined && args.runAs !== "non-root" && args.runAs !== "root")
    problems.push(`runAs: expected non-root or root, got ${JSON.stringify(args.runAs)}`);
  const uid = args.uid ?? DEFAULT_NON_ROOT_UID;
  if (!Number.isInteger(uid) || uid <= 0) problems.push(`uid: must be a positive integer, got ${uid}`);
  if (args.roleArn !== undefined && !/^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/.test(args.roleArn))
    problems.push(
      `roleArn: expected an IAM role ARN (arn:aws:iam::<account>:role/<name>), got ${args.roleArn}`,
    );
  for (const kind of ["requests", "limits"] as const) {
    for (const [name, value] of Object.entries(args.resources?.[kind] ?? {})) {
      if (!["cpu", "memory", "ephemeral-storage"].includes(name))
        problems.push(`resources.${kind}.${name}: expected cpu, memory or ephemeral-storage`);
      else if (typeof value !== "string" || !QUANTITY.test(value))
        problems.push(
          `resources.${kind}.${name}: expected a quantity such as 100m, 128Mi or 2Gi, got ${value}`,
        );
    }
  }
  try {
    parsePolicy(args.policyYaml, "policy");
  } catch (error) {
    problems.push(...(error instanceof ConfigError ? error.problems : [(error as Error).message]));
  }
  return problems;
}

export function shipperManifests(args: ShipperManifestArgs): KubernetesObject[] {
  const problems = checkSettings(args);
  if (problems.length > 0) throw new ConfigError("shipper manifests", problems);
  const namespace = args.namespace ?? DEFAULT_NAMESPACE;
  const drain = args.drainTimeoutSeconds ?? 25;
  const podLogsDir = args.podLogsDir ?? POD_LOGS_DIR;
  const dockerDir = args.docker ? (args.dockerContainersDir ?? DOCKER_CONTAINERS_DIR) : undefined;
  const logDirs = [podLogsDir, CONTAINERS_LOGS_DIR, ...(dockerDir ? [dockerDir] : [])];
  const { yaml: shipperYaml, spoolMaxBytes } = shipperConfigYaml(args, podLogsDir, drain, logDirs);
  const priorityClassName = args.priorityClassName ?? DEFAULT_PRIORITY_CLASS;
  const nonRootUid =
    (args.runAs ?? "non-root") === "non-root" ? (args.uid ?? DEFAULT_NON_ROOT_UID) : undefined;
  const meta = (name: string, namespaced = true) => ({
    name,
    ...(namespaced ? { namespace } : {}),
    labels: { ...LABELS } as Record<string, string>,
  });
  const configData = { "shipper.yaml": shipperYaml, "namespaces.yaml": args.policyYaml };

  const build: Record<string, () => KubernetesObject> = {
    Namespace: () => ({
      apiVersion: "v1",
      kind: "Namespace",
      metadata: {
        ...meta(namespace, false),
        labels: {
          ...LABELS,
          // hostPath volumes are forbidden by the baseline and restricted levels: privileged is
          // the only level that admits the shipper (docs/shipper.md#pod-security).
          "pod-security.kubernetes.io/enforce": "privileged",
        },
      },
    }),
    ResourceQuota: () => ({
      apiVersion: "v1",
      kind: "ResourceQuota",
      metadata: meta(CRITICAL_QUOTA_NAME),
      spec: {
        hard: { pods: CRITICAL_POD_QUOTA },
        scopeSelector: {
          matchExpressions: [{ scopeName: "PriorityClass", operator: "In", values: [priorityClassName] }],
        },
      },
    }),
    ServiceAccount: () => {
      const annotations = {
        ...args.serviceAccountAnnotations,
        ...(args.roleArn !== undefined ? { "eks.amazonaws.com/role-arn": args.roleArn } : {}),
      };
      return {
        apiVersion: "v1",
        kind: "ServiceAccount",
        metadata: { ...meta(SHIPPER_NAME), annotations },
        // The shipper never calls the API server; IRSA and EKS Pod Identity inject their own token volume.
        automountServiceAccountToken: false,
      };
    },
    ConfigMap: () => ({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: meta(SHIPPER_NAME),
      data: configData,
    }),
    NetworkPolicy: () => {
      const scrapers = args.metricsScrapers ?? [
        { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": DEFAULT_SCRAPER_NAMESPACE } } },
      ];
      return {
        apiVersion: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: meta(METRICS_POLICY_NAME),
        spec: {
          podSelector: { matchLabels: { ...SELECTOR } },
          policyTypes: ["Ingress"],
          // Selecting the pods denies every other ingress. An empty `from` would mean
          // everyone, so no scrapers means no rule at all. kubelet's probes come from the
          // node, which a NetworkPolicy does not block.
          ingress:
            scrapers.length === 0
              ? []
              : [{ from: scrapers, ports: [{ protocol: "TCP", port: METRICS_PORT }] }],
        },
      };
    },
    DaemonSet: () => daemonSet(),
    PodMonitor: () => ({
      apiVersion: "monitoring.coreos.com/v1",
      kind: "PodMonitor",
      metadata: { ...meta(SHIPPER_NAME), labels: { ...LABELS, ...args.podMonitorLabels } },
      spec: {
        selector: { matchLabels: { ...SELECTOR } },
        namespaceSelector: { matchNames: [namespace] },
        podMetricsEndpoints: [
          {
            port: METRICS_PORT_NAME,
            path: "/metrics",
            interval: args.podMonitorInterval ?? "30s",
            // The dashboard and alerts filter by node.
            relabelings: [
              { action: "replace", sourceLabels: ["__meta_kubernetes_pod_node_name"], targetLabel: "node" },
            ],
          },
        ],
      },
    }),
  };

  function daemonSet(): KubernetesObject {
    const volumes: Record<string, unknown>[] = [
      { name: "config", configMap: { name: SHIPPER_NAME } },
      { name: "state", hostPath: { path: STATE_DIR, type: "DirectoryOrCreate" } },
      { name: "tmp", emptyDir: { medium: "Memory", sizeLimit: "16Mi" } },
    ];
    const mounts: Record<string, unknown>[] = [
      { name: "config", mountPath: CONFIG_DIR, readOnly: true },
      { name: "state", mountPath: STATE_DIR },
      { name: "tmp", mountPath: "/tmp" },
    ];
    // Log directories are mounted at their host paths, read-only, so the absolute symlinks
    // (/var/log/containers → /var/log/pods → Docker's dir) resolve inside the container.
    logDirs.forEach((dir, i) => {
      const name = ["pod-logs", "container-logs", "docker-containers"][i]!;
      volumes.push({ name, hostPath: { path: dir, ...(i === 0 ? { type: "Directory" } : {}) } });
      mounts.push({ name, mountPath: dir, readOnly: true });
    });

    const httpGet = (path: string) => ({ path, port: METRICS_PORT_NAME });
    const hardened = {
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ["ALL"] },
    };
    const container = {
      name: "shipper",
      image: args.image,
      imagePullPolicy: "IfNotPresent",
      args: ["ship", "--config", CONFIG_PATH],
      env: [
        { name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
        { name: "AWS_REGION", value: args.region },
        ...(args.extraEnv ?? []),
      ],
      ports: [{ name: METRICS_PORT_NAME, containerPort: METRICS_PORT, protocol: "TCP" }],
      resources: {
        requests: {
          ...DEFAULT_REQUESTS,
          // The spool lives in a hostPath, which kubelet does not measure; the request makes
          // the scheduler reserve its disk on the node's filesystem all the same.
          "ephemeral-storage": spoolStorageRequest(spoolMaxBytes),
          ...args.resources?.requests,
        },
        limits: { ...DEFAULT_LIMITS, ...args.resources?.limits },
      },
      startupProbe: {
        httpGet: httpGet("/healthz"),
        periodSeconds: 5,
        timeoutSeconds: 5,
        failureThreshold: 24,
      },
      livenessProbe: {
        httpGet: httpGet("/healthz"),
        periodSeconds: 10,
        timeoutSeconds: 5,
        failureThreshold: 3,
      },
      readinessProbe: {
        httpGet: httpGet("/readyz"),
        periodSeconds: 10,
        timeoutSeconds: 5,
        failureThreshold: 3,
      },
      securityContext:
        nonRootUid === undefined
          ? // uid 0 with no capabilities: owner bits of root-owned logs and of the state dir suffice.
            { ...hardened, runAsUser: 0, runAsGroup: 0, runAsNonRoot: false }
          : // Group 0 (supplementalGroups below) reads 0640 root:root logs through the group bits.
            { ...hardened, runAsUser: nonRootUid, runAsGroup: nonRootUid, runAsNonRoot: true },
      volumeMounts: mounts,
      terminationMessagePolicy: "FallbackToLogsOnError",
    };
    // kubelet creates a DirectoryOrCreate hostPath root-owned 0755 and applies no fsGroup to
    // hostPaths: only root (with CAP_CHOWN, nothing else) can hand it to the shipper's uid.
    // Also in root mode, so a switch between modes or uids finds the state directory its own.
    const stateOwner = nonRootUid ?? 0;
    const initContainers = [
      {
        name: "state-dir-owner",
        image: args.image,
        imagePullPolicy: "IfNotPresent",
        command: ["node", "-e", CHOWN_SCRIPT, STATE_DIR, String(stateOwner)],
        securityContext: {
          ...hardened,
          capabilities: { drop: ["ALL"], add: ["CHOWN"] },
          runAsUser: 0,
          runAsGroup: 0,
          runAsNonRoot: false,
        },
        volumeMounts: [{ name: "state", mountPath: STATE_DIR }],
        resources: { requests: { cpu: "10m", memory: "32Mi" }, limits: { memory: "64Mi" } },
      },
    ];

    return {
      apiVersion: "apps/v1",
      kind: "DaemonSet",
      metadata: meta(SHIPPER_NAME),
      spec: {
        selector: { matchLabels: { ...SELECTOR } },
        // maxSurge must stay 0: two shippers on one node would share one state directory.
        updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: "10%", maxSurge: 0 } },
        minReadySeconds: 10,
        revisionHistoryLimit: 5,
        template: {
          metadata: {
            labels: { ...LABELS },
            annotations: {
              "prometheus.io/scrape": "true",
              "prometheus.io/port": String(METRICS_PORT),
              "prometheus.io/path": "/metrics",
              // A config change rolls the pods; kubelet would otherwise update the files under a running shipper.
              "checksum/config": sha256(JSON.stringify(configData)),
            },
          },
          spec: {
            serviceAccountName: SHIPPER_NAME,
            automountServiceAccountToken: false,
            priorityClassName,
            terminationGracePeriodSeconds: drain + 5,
            // Default: every taint, NoExecute included: the shipper stays to ship the last lines of a draining node.
            tolerations: args.tolerations ?? [{ operator: "Exists" }],
            nodeSelector: { "kubernetes.io/os": "linux", ...args.nodeSelector },
            enableServiceLinks: false,
            securityContext: {
              seccompProfile: { type: "RuntimeDefault" },
              ...(nonRootUid === undefined ? {} : { supplementalGroups: [0] }),
            },
            ...(args.imagePullSecrets?.length
              ? { imagePullSecrets: args.imagePullSecrets.map((name) => ({ name })) }
              : {}),
            initContainers,
            containers: [container],
            volumes,
          },
        },
      },
    };
  }

  return plannedObjects(args).map((id) => build[id.kind]!());
}

/** Multi-document YAML for `kubectl apply -f -`. */
export function renderManifestsYaml(objects: readonly KubernetesObject[]): string {
  return objects.map((o) => `---\n${stringify(o, { lineWidth: 0 })}`).join("");
}

function shipperConfigYaml(
  args: ShipperManifestArgs,
  podLogsDir: string,
  drain: number,
  logDirs: string[],
): { yaml: string; spoolMaxBytes: number } {
  const known = new Set<string>([...SHIPPER_OPTIONS, ...FILE_ONLY_OPTIONS].map((o) => o.key));
  const problems: string[] = [];
  for (const key of Object.keys(args.shipperConfig ?? {})) {
    if (!known.has(key)) problems.push(`shipperConfig.${key}: not a shipper option; see docs/shipper.md`);
    else if (MANAGED_KEYS.includes(key))
      problems.push(`shipperConfig.${key}: set by the manifests from their own setting; use that instead`);
  }
  const values: Record<string, unknown> = {
    bucket: args.bucket,
    ...(args.prefix !== undefined ? { prefix: args.prefix } : {}),
    policy: POLICY_PATH,
    state_dir: STATE_DIR,
    listen: `0.0.0.0:${METRICS_PORT}`,
    drain_timeout: `${drain}s`,
    ...(args.s3Endpoint !== undefined ? { s3_endpoint: args.s3Endpoint } : {}),
    ...(podLogsDir !== POD_LOGS_DIR ? { logs: [`${podLogsDir}/*/*/*.log*`] } : {}),
    ...Object.fromEntries(
      Object.entries(args.shipperConfig ?? {}).filter(([k]) => !MANAGED_KEYS.includes(k)),
    ),
  };
  const logs = Array.isArray(values.logs) ? (values.logs as string[]) : [`${POD_LOGS_DIR}/*/*/*.log*`];
  for (const glob of logs) {
    if (typeof glob === "string" && !logDirs.some((dir) => posix.normalize(glob).startsWith(`${dir}/`))) {
      problems.push(
        `shipperConfig.logs: ${glob} is outside the mounted log directories (${logDirs.join(", ")})`,
      );
    }
  }
  if (problems.length > 0) throw new ConfigError("shipper manifests", problems);
  // Fail at render time, not in a crash loop on every node.
  const resolved = resolveShipperConfig({
    file: { path: "shipperConfig", values },
    env: { NODE_NAME: "render-check", AWS_REGION: args.region },
  });
  return {
    yaml: `# logarchive ship; every option: docs/shipper.md. Region and node come from the environment.\n${stringify(values, { lineWidth: 0 })}`,
    spoolMaxBytes: resolved.spoolMaxBytes,
  };
}

/** The state directory's ephemeral-storage request: the spool's bound plus overhead, in whole MiB. */
export function spoolStorageRequest(spoolMaxBytes: number): string {
  return `${Math.ceil((spoolMaxBytes + STATE_DIR_OVERHEAD_BYTES) / 2 ** 20)}Mi`;
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/**
 * Run by the init container as root with only CAP_CHOWN: gives the state directory (0700)
 * and everything in it to the uid (0 in root mode), whoever owned them before (kubelet's
 * root, a root shipper, another uid). Root without CAP_DAC_* or CAP_FOWNER may enter, list
 * and chmod only what it owns, so each directory is first taken to root, then its children
 * are handed over, then the directory itself. Every start walks it all: a walk cut short
 * is finished by the next one, and a spool of a few thousand files takes milliseconds.
 */
const CHOWN_SCRIPT = `const fs = process.getBuiltinModule("node:fs");
const path = process.getBuiltinModule("node:path");
const [dir, id] = [process.argv[1], Number(process.argv[2])];
const walk = (d) => {
  fs.lchownSync(d, 0, 0);
  if (d === dir) fs.chmodSync(d, 0o700);
  for (const e of fs.readdirSync(d, { withFileTypes: true })) {
    const p = path.join(d, e.name);
    if (e.isDirectory()) walk(p);
    else fs.lchownSync(p, id, id);
  }
  fs.lchownSync(d, id, id);
};
walk(dir);`;
