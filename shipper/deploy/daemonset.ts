// Kubernetes manifests for `logarchive ship`, as plain objects: infra/ passes them to
// Pulumi (`k8s.yaml.ConfigGroup({ objs })`) and renderManifestsYaml() prints them for
// kubectl. Pure functions, no cluster access. The choices are explained in
// docs/shipper.md#deploy; the short version is in the comments below.

import { createHash } from "node:crypto";
import { posix } from "node:path";
import { stringify } from "yaml";
import { FILE_ONLY_OPTIONS, resolveShipperConfig, SHIPPER_OPTIONS } from "../config.ts";

export const SHIPPER_NAME = "logarchive-shipper";
export const METRICS_PORT = 2021;
export const METRICS_PORT_NAME = "http-metrics";
export const CONFIG_DIR = "/etc/logarchive";
export const CONFIG_PATH = `${CONFIG_DIR}/shipper.yaml`;
export const POLICY_PATH = `${CONFIG_DIR}/namespaces.yaml`;
export const STATE_DIR = "/var/lib/logarchive";
export const POD_LOGS_DIR = "/var/log/pods";
export const CONTAINERS_LOGS_DIR = "/var/log/containers";
export const DOCKER_CONTAINERS_DIR = "/var/lib/docker/containers";
/** Created by shipperManifests unless another priorityClassName is given. */
export const DEFAULT_PRIORITY_CLASS = "logarchive-node-critical";
/** Above every workload (0 unless set), below the reserved system classes (2,000,000,000 and up). */
export const DEFAULT_PRIORITY_VALUE = 100_000_000;
/** uid of the `node` user in the official node images. */
export const DEFAULT_NON_ROOT_UID = 1000;

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
}

export interface ShipperManifestArgs {
  /** Default "logarchive". */
  namespace?: string;
  /** Create the Namespace (labelled for the privileged Pod Security level). Default true. */
  createNamespace?: boolean;
  image: string;
  bucket: string;
  region: string;
  /** Default: the policy's archive.prefix. */
  prefix?: string;
  /** Contents of namespaces.yaml; shipped in the ConfigMap. */
  policyYaml: string;
  /** IRSA: `eks.amazonaws.com/role-arn`; GKE: `iam.gke.io/gcp-service-account`. */
  serviceAccountAnnotations?: Record<string, string>;
  s3Endpoint?: string;
  /** Merged over requests cpu 100m / memory 128Mi and limits memory 256Mi; no CPU limit by default. */
  resources?: { requests?: ResourceList; limits?: ResourceList };
  /** Default 25; terminationGracePeriodSeconds is this plus 5. */
  drainTimeoutSeconds?: number;
  /** Default DEFAULT_PRIORITY_CLASS, which is created; any other name must already exist. */
  priorityClassName?: string;
  /**
   * Run as this non-root uid with supplementary group 0 instead of as root without
   * capabilities. Needs group-readable logs (0640 root:root, containerd and current
   * CRI-O); an init container hands the state directory to the uid.
   */
  nonRoot?: boolean | { uid: number };
  /** Mount Docker's container dir read-only: on cri-dockerd nodes /var/log/pods holds symlinks into it. */
  docker?: boolean;
  dockerContainersDir?: string;
  /** kubelet's podLogsDir. Default /var/log/pods. */
  podLogsDir?: string;
  /**
   * More shipper.yaml options (keys of docs/shipper.md), e.g. `{ batch_max_bytes: "16MiB" }`
   * or `{ multiline: [{ namespaces: ["payments"], mode: "java" }] }`.
   */
  config?: Record<string, string | number | boolean | string[] | Record<string, unknown>[]>;
  extraEnv?: EnvVar[];
  nodeSelector?: Record<string, string>;
  imagePullSecrets?: string[];
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

const SELECTOR = { "app.kubernetes.io/name": "logarchive", "app.kubernetes.io/component": "shipper" };
const LABELS = { ...SELECTOR, "app.kubernetes.io/part-of": "logarchive" };

export function shipperManifests(args: ShipperManifestArgs): KubernetesObject[] {
  const namespace = args.namespace ?? "logarchive";
  const drain = args.drainTimeoutSeconds ?? 25;
  if (!Number.isInteger(drain) || drain < 0)
    throw new Error(`drainTimeoutSeconds must be a whole number ≥ 0, got ${drain}`);
  if (args.image === "") throw new Error("image must not be empty");
  const podLogsDir = args.podLogsDir ?? POD_LOGS_DIR;
  const dockerDir = args.docker ? (args.dockerContainersDir ?? DOCKER_CONTAINERS_DIR) : undefined;
  const logDirs = [podLogsDir, CONTAINERS_LOGS_DIR, ...(dockerDir ? [dockerDir] : [])];
  const shipperYaml = shipperConfigYaml(args, podLogsDir, drain, logDirs);
  const priorityClassName = args.priorityClassName ?? DEFAULT_PRIORITY_CLASS;
  const nonRootUid =
    args.nonRoot === true ? DEFAULT_NON_ROOT_UID : args.nonRoot ? args.nonRoot.uid : undefined;
  if (nonRootUid !== undefined && (!Number.isInteger(nonRootUid) || nonRootUid <= 0)) {
    throw new Error(`nonRoot.uid must be a positive integer, got ${nonRootUid}`);
  }
  const meta = (name: string, namespaced = true) => ({
    name,
    ...(namespaced ? { namespace } : {}),
    labels: { ...LABELS } as Record<string, string>,
  });
  const configData = { "shipper.yaml": shipperYaml, "namespaces.yaml": args.policyYaml };

  const objects: KubernetesObject[] = [];
  if (args.createNamespace ?? true) {
    // hostPath volumes are forbidden by the baseline and restricted Pod Security levels.
    const ns = meta(namespace, false);
    ns.labels = { ...ns.labels, "pod-security.kubernetes.io/enforce": "privileged" };
    objects.push({ apiVersion: "v1", kind: "Namespace", metadata: ns });
  }
  if (priorityClassName === DEFAULT_PRIORITY_CLASS) {
    objects.push({
      apiVersion: "scheduling.k8s.io/v1",
      kind: "PriorityClass",
      metadata: meta(DEFAULT_PRIORITY_CLASS, false),
      value: DEFAULT_PRIORITY_VALUE,
      globalDefault: false,
      preemptionPolicy: "PreemptLowerPriority",
      description:
        "logarchive shipper: above workloads, so it preempts one to run on a full node and container logs are always shipped.",
    });
  }
  objects.push({
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: { ...meta(SHIPPER_NAME), annotations: { ...args.serviceAccountAnnotations } },
    // The shipper never calls the API server; IRSA and EKS Pod Identity inject their own token volume.
    automountServiceAccountToken: false,
  });
  objects.push({ apiVersion: "v1", kind: "ConfigMap", metadata: meta(SHIPPER_NAME), data: configData });

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
      requests: { cpu: "100m", memory: "128Mi", ...args.resources?.requests },
      limits: { memory: "256Mi", ...args.resources?.limits },
    },
    startupProbe: { httpGet: httpGet("/healthz"), periodSeconds: 5, timeoutSeconds: 5, failureThreshold: 24 },
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
        ? // uid 0 with no capabilities: owner bits of root-owned 0640 logs and of the state dir suffice.
          { ...hardened, runAsUser: 0, runAsGroup: 0, runAsNonRoot: false }
        : { ...hardened, runAsUser: nonRootUid, runAsGroup: nonRootUid, runAsNonRoot: true },
    volumeMounts: mounts,
    terminationMessagePolicy: "FallbackToLogsOnError",
  };
  const initContainers =
    nonRootUid === undefined
      ? []
      : [
          {
            name: "state-dir-owner",
            image: args.image,
            imagePullPolicy: "IfNotPresent",
            command: ["node", "-e", CHOWN_SCRIPT, STATE_DIR, String(nonRootUid)],
            securityContext: {
              ...hardened,
              capabilities: { drop: ["ALL"], add: ["CHOWN"] },
              runAsUser: 0,
              runAsGroup: 0,
            },
            volumeMounts: [{ name: "state", mountPath: STATE_DIR }],
            resources: { requests: { cpu: "10m", memory: "32Mi" }, limits: { memory: "64Mi" } },
          },
        ];

  objects.push({
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
          // Every taint, NoExecute included: the shipper stays to ship the last lines of a draining node.
          tolerations: [{ operator: "Exists" }],
          nodeSelector: { "kubernetes.io/os": "linux", ...args.nodeSelector },
          enableServiceLinks: false,
          securityContext: {
            seccompProfile: { type: "RuntimeDefault" },
            ...(nonRootUid === undefined ? {} : { supplementalGroups: [0] }),
          },
          ...(args.imagePullSecrets?.length
            ? { imagePullSecrets: args.imagePullSecrets.map((name) => ({ name })) }
            : {}),
          ...(initContainers.length > 0 ? { initContainers } : {}),
          containers: [container],
          volumes,
        },
      },
    },
  });
  return objects;
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
): string {
  const known = new Set<string>([...SHIPPER_OPTIONS, ...FILE_ONLY_OPTIONS].map((o) => o.key));
  for (const key of Object.keys(args.config ?? {})) {
    if (!known.has(key)) throw new Error(`config.${key}: not a shipper option; see docs/shipper.md`);
    if (MANAGED_KEYS.includes(key))
      throw new Error(`config.${key}: set by shipperManifests; use its own argument`);
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
    ...args.config,
  };
  const logs = (values.logs as string[] | undefined) ?? [`${POD_LOGS_DIR}/*/*/*.log*`];
  for (const glob of logs) {
    if (!logDirs.some((dir) => posix.normalize(glob).startsWith(`${dir}/`))) {
      throw new Error(`config.logs: ${glob} is outside the mounted log directories (${logDirs.join(", ")})`);
    }
  }
  // Fail at render time, not in a crash loop on every node.
  resolveShipperConfig({
    file: { path: "shipper.yaml", values },
    env: { NODE_NAME: "render-check", AWS_REGION: args.region },
  });
  return `# logarchive ship; every option: docs/shipper.md. Region and node come from the environment.\n${stringify(values, { lineWidth: 0 })}`;
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/**
 * Run by the init container in non-root mode, as root with only CAP_CHOWN: gives the
 * state directory (0700) and anything a root shipper left in it to the uid. Children
 * first, the directory last, since root without CAP_DAC_* cannot enter a 0700 directory
 * it no longer owns; a directory already owned by the uid is left alone.
 */
const CHOWN_SCRIPT = `const fs = process.getBuiltinModule("node:fs");
const path = process.getBuiltinModule("node:path");
const [dir, id] = [process.argv[1], Number(process.argv[2])];
if (fs.lstatSync(dir).uid !== id) {
  fs.chmodSync(dir, 0o700);
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      fs.lchownSync(p, id, id);
    }
  };
  walk(dir);
  fs.lchownSync(dir, id, id);
}`;
