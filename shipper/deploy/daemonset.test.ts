import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { promisify } from "node:util";
import { parseAllDocuments } from "yaml";
import { ConfigError } from "../../lib/config/errors.ts";
import { parsePolicy } from "../../lib/policy/policy.ts";
import { parseListen, parseShipperConfigFile, resolveShipperConfig } from "../config.ts";
import {
  DEFAULT_PRIORITY_CLASS,
  type KubernetesObject,
  plannedObjects,
  renderManifestsYaml,
  type ShipperManifestArgs,
  shipperManifests,
  spoolStorageRequest,
} from "./daemonset.ts";

interface Mount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
}
interface Volume {
  name: string;
  hostPath?: { path: string; type?: string };
  emptyDir?: { medium?: string; sizeLimit?: string };
}
interface Probe {
  httpGet: { path: string; port: string | number };
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  ports: { name: string; containerPort: number }[];
  resources: { requests: Record<string, string>; limits: Record<string, string> };
  livenessProbe: Probe;
  readinessProbe: Probe;
  startupProbe: Probe;
  securityContext: {
    readOnlyRootFilesystem: boolean;
    allowPrivilegeEscalation: boolean;
    privileged?: boolean;
    runAsUser: number;
    runAsGroup?: number;
    runAsNonRoot?: boolean;
    capabilities: { drop: string[]; add?: string[] };
  };
  volumeMounts: Mount[];
}
interface PodSpec {
  priorityClassName: string;
  terminationGracePeriodSeconds: number;
  tolerations: Record<string, string | number>[];
  automountServiceAccountToken: boolean;
  securityContext: { supplementalGroups?: number[]; seccompProfile?: { type: string } };
  initContainers?: Container[];
  containers: Container[];
  volumes: Volume[];
}
interface DaemonSetView {
  spec: {
    updateStrategy: { type: string; rollingUpdate: { maxUnavailable: string; maxSurge: number } };
    template: { metadata: { annotations: Record<string, string> }; spec: PodSpec };
  };
}

const POLICY = "archive:\n  prefix: k8s/logs\nanalytics:\n  include: [web]\n";
const BASE: ShipperManifestArgs = {
  image: "registry.example/logarchive:1.2.3",
  bucket: "acme-logs",
  region: "eu-west-1",
  policyYaml: POLICY,
};

function find(objects: KubernetesObject[], kind: string): KubernetesObject {
  const found = objects.find((o) => o.kind === kind);
  assert.ok(found, `no ${kind} among ${objects.map((o) => o.kind).join(", ")}`);
  return found;
}

function pod(args: Partial<ShipperManifestArgs> = {}): PodSpec {
  return (find(shipperManifests({ ...BASE, ...args }), "DaemonSet") as unknown as DaemonSetView).spec.template
    .spec;
}

function shipper(args: Partial<ShipperManifestArgs> = {}): Container {
  return pod(args).containers[0]!;
}

function shipperConfig(args: Partial<ShipperManifestArgs> = {}) {
  const cm = find(shipperManifests({ ...BASE, ...args }), "ConfigMap") as unknown as {
    data: Record<string, string>;
  };
  const values = parseShipperConfigFile(cm.data["shipper.yaml"]!, "shipper.yaml");
  return { data: cm.data, config: resolveShipperConfig({ file: { path: "shipper.yaml", values }, env: {} }) };
}

function mountFor(container: Container, volumes: Volume[], hostPath: string): Mount | undefined {
  const volume = volumes.find((v) => v.hostPath?.path === hostPath);
  return volume && container.volumeMounts.find((m) => m.name === volume.name);
}

function objectIds(objects: KubernetesObject[]) {
  return objects.map((o) => ({
    apiVersion: o.apiVersion,
    kind: o.kind,
    name: o.metadata.name,
    ...(o.metadata.namespace !== undefined ? { namespace: o.metadata.namespace } : {}),
  }));
}

/** Runs node as the container would, with setpriv: uid, gid, groups and capabilities as given. */
async function runAs(
  identity: { uid: number; groups: number[]; caps: string[]; ambient?: boolean },
  script: string,
): Promise<{ ok: boolean; stderr: string }> {
  const caps = identity.caps.map((c) => `+${c.toLowerCase()}`).join(",");
  const argv = [
    "--reuid",
    String(identity.uid),
    "--regid",
    String(identity.uid),
    ...(identity.groups.length > 0 ? ["--groups", identity.groups.join(",")] : ["--clear-groups"]),
    `--inh-caps=-all${caps ? `,${caps}` : ""}`,
    ...(identity.ambient && caps ? [`--ambient-caps=${caps}`] : []),
    `--bounding-set=-all${caps ? `,${caps}` : ""}`,
    // allowPrivilegeEscalation: false is no_new_privs.
    "--no-new-privs",
    process.execPath,
    "-e",
    script,
  ];
  try {
    await promisify(execFile)("/usr/bin/setpriv", argv);
    return { ok: true, stderr: "" };
  } catch (error) {
    return { ok: false, stderr: String((error as { stderr?: string }).stderr) };
  }
}

describe("shipper DaemonSet manifests", () => {
  it("emits Namespace, ResourceQuota, ServiceAccount, ConfigMap, NetworkPolicy, DaemonSet and PodMonitor in apply order", () => {
    const objects = shipperManifests(BASE);
    assert.deepEqual(
      objects.map((o) => o.kind),
      [
        "Namespace",
        "ResourceQuota",
        "ServiceAccount",
        "ConfigMap",
        "NetworkPolicy",
        "DaemonSet",
        "PodMonitor",
      ],
    );
    for (const o of objects.filter((o) => o.kind !== "Namespace")) {
      assert.equal(o.metadata.namespace, "logarchive", o.kind);
    }
    assert.ok(!objects.some((o) => o.kind === "PriorityClass"), "no preempting class of our own");
    const other = shipperManifests({ ...BASE, namespace: "obs", createNamespace: false });
    assert.ok(!other.some((o) => o.kind === "Namespace"));
    assert.equal(find(other, "DaemonSet").metadata.namespace, "obs");
  });

  it("plans exactly the objects it makes, from the settings alone, for every combination", () => {
    for (const createNamespace of [true, false]) {
      for (const networkPolicy of [true, false]) {
        for (const podMonitor of [true, false]) {
          for (const priorityClassName of [undefined, "system-cluster-critical", "logging-high"]) {
            for (const criticalPodQuota of [undefined, false]) {
              const settings = {
                namespace: "obs",
                createNamespace,
                networkPolicy,
                podMonitor,
                ...(priorityClassName ? { priorityClassName } : {}),
                ...(criticalPodQuota === false ? { criticalPodQuota } : {}),
              };
              assert.deepEqual(
                objectIds(shipperManifests({ ...BASE, ...settings })),
                plannedObjects(settings),
                JSON.stringify(settings),
              );
            }
          }
        }
      }
    }
  });

  it("labels the namespace privileged, the only Pod Security level that admits hostPath volumes", () => {
    const objects = shipperManifests(BASE);
    assert.deepEqual(
      Object.entries(find(objects, "Namespace").metadata.labels ?? {}).filter(([k]) =>
        k.startsWith("pod-security.kubernetes.io/"),
      ),
      [["pod-security.kubernetes.io/enforce", "privileged"]],
    );
    // The reason: baseline forbids spec.volumes[*].hostPath, and the pod has them.
    assert.ok(pod().volumes.some((v) => v.hostPath));
  });

  it("gives the pod 5 seconds more than the drain timeout written into shipper.yaml", () => {
    assert.equal(pod().terminationGracePeriodSeconds, 30);
    assert.equal(shipperConfig().config.drainTimeoutMs, 25_000);
    assert.equal(pod({ drainTimeoutSeconds: 50 }).terminationGracePeriodSeconds, 55);
    assert.equal(shipperConfig({ drainTimeoutSeconds: 50 }).config.drainTimeoutMs, 50_000);
    assert.throws(
      () => shipperManifests({ ...BASE, drainTimeoutSeconds: 2.5 }),
      /drainTimeoutSeconds.*whole number/,
    );
  });

  it("mounts log directories read-only at their host paths and only state and /tmp writable", () => {
    const spec = pod();
    const c = spec.containers[0]!;
    for (const dir of ["/var/log/pods", "/var/log/containers"]) {
      const m = mountFor(c, spec.volumes, dir);
      assert.ok(m, dir);
      assert.equal(m.mountPath, dir, "same path, so absolute symlinks resolve");
      assert.equal(m.readOnly, true, dir);
    }
    assert.equal(
      mountFor(c, spec.volumes, "/var/lib/docker/containers"),
      undefined,
      "Docker dir only on request",
    );
    const state = spec.volumes.find((v) => v.hostPath?.path === "/var/lib/logarchive");
    assert.equal(state?.hostPath?.type, "DirectoryOrCreate");
    assert.equal(mountFor(c, spec.volumes, "/var/lib/logarchive")?.readOnly, undefined, "state read-write");
    assert.equal(
      mountFor(c, spec.volumes, "/var/lib/logarchive")?.mountPath,
      shipperConfig().config.stateDir,
    );
    const writable = c.volumeMounts.filter((m) => !m.readOnly).map((m) => m.mountPath);
    assert.deepEqual(writable.sort(), ["/tmp", "/var/lib/logarchive"]);
    const tmp = spec.volumes.find((v) => v.name === c.volumeMounts.find((m) => m.mountPath === "/tmp")?.name);
    assert.equal(tmp?.emptyDir?.medium, "Memory");
    assert.ok(tmp?.emptyDir?.sizeLimit);

    const docker = pod({ docker: true });
    const m = mountFor(docker.containers[0]!, docker.volumes, "/var/lib/docker/containers");
    assert.deepEqual(m && { path: m.mountPath, readOnly: m.readOnly }, {
      path: "/var/lib/docker/containers",
      readOnly: true,
    });
  });

  it("probes /healthz and /readyz on the named metrics port the shipper listens on", () => {
    const c = shipper();
    const port = c.ports.find((p) => p.name === "http-metrics");
    assert.equal(port?.containerPort, 2021);
    assert.equal(parseListen(shipperConfig().config.listen)?.port, port.containerPort);
    assert.deepEqual(c.livenessProbe.httpGet, { path: "/healthz", port: "http-metrics" });
    assert.deepEqual(c.startupProbe.httpGet, { path: "/healthz", port: "http-metrics" });
    assert.deepEqual(c.readinessProbe.httpGet, { path: "/readyz", port: "http-metrics" });
    const ds = find(shipperManifests(BASE), "DaemonSet") as unknown as DaemonSetView;
    const annotations = ds.spec.template.metadata.annotations;
    assert.equal(annotations["prometheus.io/scrape"], "true");
    assert.equal(annotations["prometheus.io/port"], "2021");
  });

  it("tolerates every taint by default, and only the tolerations given when set", () => {
    assert.deepEqual(pod().tolerations, [{ operator: "Exists" }]);
    const only = [
      { key: "dedicated", operator: "Equal" as const, value: "logging", effect: "NoSchedule" as const },
    ];
    assert.deepEqual(pod({ tolerations: only }).tolerations, only);
    assert.deepEqual(pod({ tolerations: [] }).tolerations, []);
  });

  it("writes the IRSA role ARN on the ServiceAccount and mounts no API token", () => {
    const arn = "arn:aws:iam::123456789012:role/logarchive-shipper";
    const sa = find(shipperManifests({ ...BASE, roleArn: arn }), "ServiceAccount");
    assert.deepEqual(sa.metadata.annotations, { "eks.amazonaws.com/role-arn": arn });
    assert.equal(sa.automountServiceAccountToken, false);
    assert.equal(pod().automountServiceAccountToken, false);
    assert.deepEqual(find(shipperManifests(BASE), "ServiceAccount").metadata.annotations, {});
    const gke = { "iam.gke.io/gcp-service-account": "shipper@p.iam.gserviceaccount.com" };
    assert.deepEqual(
      find(shipperManifests({ ...BASE, serviceAccountAnnotations: gke }), "ServiceAccount").metadata
        .annotations,
      gke,
    );
    assert.throws(
      () => shipperManifests({ ...BASE, roleArn: "logarchive-shipper" }),
      /roleArn: expected an IAM role ARN/,
    );
  });

  it("runs as non-root uid 1000 with group 0, no capability, no escalation and a read-only root by default", () => {
    const spec = pod();
    const c = spec.containers[0]!;
    assert.deepEqual(c.securityContext, {
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ["ALL"] },
      runAsUser: 1000,
      runAsGroup: 1000,
      runAsNonRoot: true,
    });
    assert.deepEqual(spec.securityContext.supplementalGroups, [0], "reads 0640 root:root logs by group");
    assert.equal(spec.securityContext.seccompProfile?.type, "RuntimeDefault");
    const init = spec.initContainers?.[0];
    assert.ok(init, "hands the root-created state dir to the uid");
    assert.deepEqual(init.securityContext.capabilities, { drop: ["ALL"], add: ["CHOWN"] });
    assert.equal(init.securityContext.allowPrivilegeEscalation, false);
    assert.equal(init.securityContext.readOnlyRootFilesystem, true);
    assert.deepEqual(init.command?.slice(-2), ["/var/lib/logarchive", "1000"]);
    assert.deepEqual(
      init.volumeMounts.map((m) => m.name),
      ["state"],
      "the init container sees no logs",
    );
    assert.equal(pod({ uid: 4242 }).containers[0]!.securityContext.runAsUser, 4242);
    assert.throws(() => shipperManifests({ ...BASE, uid: 0 }), /uid: must be a positive integer/);
  });

  it("runs as root without capabilities when runAs is root, its init container keeping the state dir root's", () => {
    const spec = pod({ runAs: "root" });
    const c = spec.containers[0]!;
    assert.equal(c.securityContext.runAsUser, 0);
    assert.equal(c.securityContext.runAsNonRoot, false);
    assert.deepEqual(c.securityContext.capabilities, { drop: ["ALL"] });
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    assert.deepEqual(spec.initContainers?.[0]?.command?.slice(-2), ["/var/lib/logarchive", "0"]);
    assert.equal(spec.securityContext.supplementalGroups, undefined);
  });

  it("reads a 0640 root:root log as the manifests' non-root identity, and not without group 0", async (t) => {
    if (process.getuid?.() !== 0 || !existsSync("/usr/bin/setpriv")) return t.skip("needs root and setpriv");
    const dir = await mkdtemp(join(tmpdir(), "logarchive-logs-"));
    try {
      const log = join(dir, "0.log");
      await writeFile(log, "line\n", { mode: 0o640 });
      await chmod(dir, 0o755);
      const spec = pod();
      const c = spec.containers[0]!;
      const read = `process.getBuiltinModule("node:fs").readFileSync(${JSON.stringify(log)})`;
      const identity = {
        uid: c.securityContext.runAsUser,
        groups: spec.securityContext.supplementalGroups ?? [],
        caps: c.securityContext.capabilities.add ?? [],
      };
      assert.deepEqual(await runAs(identity, read), { ok: true, stderr: "" });
      const withoutGroup = await runAs({ ...identity, groups: [] }, read);
      assert.equal(withoutGroup.ok, false);
      assert.match(withoutGroup.stderr, /EACCES/);
      // Why not CAP_DAC_READ_SEARCH instead: granted to a non-root uid, it does not survive the
      // execve of node unless it is ambient, and Kubernetes sets no ambient capabilities.
      const capOnly = await runAs({ ...identity, groups: [], caps: ["DAC_READ_SEARCH"] }, read);
      assert.match(capOnly.stderr, /EACCES/);
      assert.equal(
        (await runAs({ ...identity, groups: [], caps: ["DAC_READ_SEARCH"], ambient: true }, read)).ok,
        true,
        "only an ambient capability would do",
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("hands the state directory to the shipper's uid from any earlier owner, as root with only CAP_CHOWN", async (t) => {
    if (process.getuid?.() !== 0) return t.skip("needs root to chown");
    const dir = await mkdtemp(join(tmpdir(), "logarchive-state-"));
    const paths = [
      dir,
      join(dir, "spool"),
      join(dir, "spool", "000001.ndjson.gz"),
      join(dir, "checkpoint.json"),
    ];
    /** Runs the init container's command for these settings on dir, as the pod runs it. */
    const own = async (args: Partial<ShipperManifestArgs>, expected: string) => {
      const init = pod(args).initContainers![0]!;
      assert.deepEqual(init.securityContext.capabilities, { drop: ["ALL"], add: ["CHOWN"] });
      assert.equal(init.securityContext.runAsUser, 0);
      const [, ...rest] = init.command!;
      assert.equal(rest.at(-1), expected);
      // With setpriv, as in the pod: root whose only capability is CAP_CHOWN.
      const setpriv = existsSync("/usr/bin/setpriv")
        ? ["/usr/bin/setpriv", "--bounding-set", "-all,+chown", "--no-new-privs"]
        : [];
      const [file, ...fileArgs] = [...setpriv, process.execPath, ...rest.slice(0, -2), dir, expected];
      await promisify(execFile)(file!, fileArgs);
      for (const p of paths) {
        const s = await stat(p);
        assert.deepEqual([s.uid, s.gid], [Number(expected), Number(expected)], p);
      }
      assert.equal((await stat(dir)).mode & 0o777, 0o700);
    };
    try {
      // As kubelet and a root shipper leave it: root-owned, the directory 0755.
      await chmod(dir, 0o755);
      await mkdir(join(dir, "spool"), { mode: 0o700 });
      await writeFile(join(dir, "spool", "000001.ndjson.gz"), "x", { mode: 0o600 });
      await writeFile(join(dir, "checkpoint.json"), "{}", { mode: 0o600 });
      await own({ uid: 4242 }, "4242");
      await own({ uid: 4242 }, "4242"); // already owned: unchanged, not an error
      await own({}, "1000"); // another uid: from 4242's private 0700/0600 files
      await own({ runAs: "root" }, "0"); // back to root mode
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("takes NODE_NAME from the downward API and the region from AWS_REGION", () => {
    const c = shipper({ extraEnv: [{ name: "LOGARCHIVE_GZIP_LEVEL", value: "9" }] });
    const env = Object.fromEntries(c.env.map((e) => [e.name, e]));
    assert.deepEqual(env.NODE_NAME?.valueFrom, { fieldRef: { fieldPath: "spec.nodeName" } });
    assert.equal(env.AWS_REGION?.value, "eu-west-1");
    assert.equal(env.LOGARCHIVE_GZIP_LEVEL?.value, "9");
    assert.deepEqual(c.args, ["ship", "--config", "/etc/logarchive/shipper.yaml"]);
  });

  it("writes a shipper.yaml that resolves to the bucket, policy file and options given", () => {
    const { data, config } = shipperConfig({
      prefix: "k8s/logs",
      s3Endpoint: "http://minio.minio:9000",
      shipperConfig: { batch_max_bytes: "16MiB", gzip_level: 9 },
    });
    assert.equal(config.bucket, "acme-logs");
    assert.equal(config.prefix, "k8s/logs");
    assert.equal(config.s3Endpoint, "http://minio.minio:9000");
    assert.equal(config.batchMaxBytes, 16 * 2 ** 20);
    assert.equal(config.gzipLevel, 9);
    assert.equal(config.policy, "/etc/logarchive/namespaces.yaml");
    assert.equal(data["namespaces.yaml"], POLICY);
    assert.equal(parsePolicy(data["namespaces.yaml"]!).archive.prefix, "k8s/logs");
    const configMount = shipper().volumeMounts.find((m) => config.policy!.startsWith(`${m.mountPath}/`));
    assert.equal(configMount?.name, "config");
    assert.equal(configMount.readOnly, true);
  });

  it("passes multiline rules through to shipper.yaml, checked at render time", () => {
    const { config } = shipperConfig({
      shipperConfig: {
        multiline: [{ namespaces: ["payments"], containers: ["app"], mode: "java", max_lines: 200 }],
      },
    });
    assert.deepEqual(config.multiline, [
      {
        namespaces: ["payments"],
        containers: ["app"],
        mode: "java",
        maxLines: 200,
        maxBytes: 512 * 1024,
        flushTimeoutMs: 2000,
      },
    ]);
    assert.throws(
      () =>
        shipperManifests({
          ...BASE,
          shipperConfig: { multiline: [{ namespaces: ["payments"], mode: "jav" }] },
        }),
      /multiline\[0\]\.mode/,
    );
  });

  it("rejects unknown, managed, invalid and unmounted shipper options and a bad policy, naming the field", () => {
    const problems = (args: Partial<ShipperManifestArgs>) => {
      try {
        shipperManifests({ ...BASE, ...args });
      } catch (error) {
        assert.ok(error instanceof ConfigError, String(error));
        return error.problems.join("\n");
      }
      assert.fail("no error");
    };
    assert.match(
      problems({ shipperConfig: { batch_size: "1MiB" } }),
      /shipperConfig\.batch_size: not a shipper option/,
    );
    assert.match(
      problems({ shipperConfig: { bucket: "other" } }),
      /shipperConfig\.bucket: set by the manifests/,
    );
    assert.match(
      problems({ shipperConfig: { gzip_level: 12 } }),
      /gzip_level \(in shipperConfig\): must be at most 9/,
    );
    assert.match(
      problems({ shipperConfig: { logs: ["/home/*/*.log"] } }),
      /shipperConfig\.logs: \/home\/\*\/\*\.log is outside the mounted/,
    );
    assert.match(problems({ policyYaml: "archive:\n  prefix: a//b\n" }), /archive\.prefix/);
    assert.match(problems({ namespace: "Logs" }), /namespace: "Logs" is not a namespace name/);
    assert.match(
      problems({ resources: { requests: { cpu: "lots" } } }),
      /resources\.requests\.cpu: expected a quantity/,
    );
    assert.doesNotThrow(() =>
      shipperManifests({ ...BASE, shipperConfig: { logs: ["/var/log/containers/*.log"] } }),
    );
  });

  it("uses system-node-critical with a quota that admits it in the namespace, and only references other classes", () => {
    const objects = shipperManifests(BASE);
    assert.equal(DEFAULT_PRIORITY_CLASS, "system-node-critical");
    assert.equal(pod().priorityClassName, "system-node-critical");
    assert.deepEqual(find(objects, "ResourceQuota").spec, {
      hard: { pods: "100000" },
      scopeSelector: {
        matchExpressions: [{ scopeName: "PriorityClass", operator: "In", values: ["system-node-critical"] }],
      },
    });
    const custom = shipperManifests({ ...BASE, priorityClassName: "logging-high" });
    assert.ok(!custom.some((o) => o.kind === "ResourceQuota" || o.kind === "PriorityClass"));
    assert.equal(pod({ priorityClassName: "logging-high" }).priorityClassName, "logging-high");
    assert.ok(
      !shipperManifests({ ...BASE, criticalPodQuota: false }).some((o) => o.kind === "ResourceQuota"),
    );
  });

  it("admits only the scrapers to the metrics port with a NetworkPolicy on the shipper pods", () => {
    const policy = find(shipperManifests(BASE), "NetworkPolicy") as unknown as {
      spec: {
        podSelector: { matchLabels: Record<string, string> };
        policyTypes: string[];
        ingress: { from: unknown[]; ports: { protocol: string; port: number }[] }[];
      };
    };
    const ds = find(shipperManifests(BASE), "DaemonSet") as unknown as {
      spec: { template: { metadata: { labels: Record<string, string> } } };
    };
    for (const [k, v] of Object.entries(policy.spec.podSelector.matchLabels)) {
      assert.equal(ds.spec.template.metadata.labels[k], v, k);
    }
    assert.deepEqual(policy.spec.policyTypes, ["Ingress"]);
    assert.deepEqual(policy.spec.ingress, [
      {
        from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } } }],
        ports: [{ protocol: "TCP", port: shipper().ports[0]!.containerPort }],
      },
    ]);
    const gmp = [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "gmp-system" } } }];
    assert.deepEqual(
      (
        find(shipperManifests({ ...BASE, metricsScrapers: gmp }), "NetworkPolicy").spec as {
          ingress: unknown[];
        }
      ).ingress,
      [{ from: gmp, ports: [{ protocol: "TCP", port: 2021 }] }],
    );
    assert.deepEqual(
      (
        find(shipperManifests({ ...BASE, metricsScrapers: [] }), "NetworkPolicy").spec as {
          ingress: unknown[];
        }
      ).ingress,
      [],
      "no scrapers: no rule, not an open one",
    );
    assert.ok(!shipperManifests({ ...BASE, networkPolicy: false }).some((o) => o.kind === "NetworkPolicy"));
  });

  it("ships a PodMonitor on the metrics port that labels series with the node, unless turned off", () => {
    const monitor = find(shipperManifests({ ...BASE, podMonitorLabels: { release: "prom" } }), "PodMonitor");
    assert.equal(monitor.apiVersion, "monitoring.coreos.com/v1");
    assert.equal(monitor.metadata.labels?.release, "prom");
    const spec = monitor.spec as {
      selector: { matchLabels: Record<string, string> };
      namespaceSelector: { matchNames: string[] };
      podMetricsEndpoints: {
        port: string;
        path: string;
        interval: string;
        relabelings: Record<string, unknown>[];
      }[];
    };
    assert.deepEqual(spec.namespaceSelector, { matchNames: ["logarchive"] });
    const [endpoint] = spec.podMetricsEndpoints;
    assert.equal(endpoint?.port, shipper().ports[0]!.name);
    assert.equal(endpoint.path, "/metrics");
    assert.equal(endpoint.interval, "30s");
    assert.deepEqual(endpoint.relabelings, [
      { action: "replace", sourceLabels: ["__meta_kubernetes_pod_node_name"], targetLabel: "node" },
    ]);
    assert.ok(!shipperManifests({ ...BASE, podMonitor: false }).some((o) => o.kind === "PodMonitor"));
  });

  it("rolls 10% of nodes at a time, never two shippers on one node", () => {
    const ds = find(shipperManifests(BASE), "DaemonSet") as unknown as DaemonSetView;
    assert.deepEqual(ds.spec.updateStrategy, {
      type: "RollingUpdate",
      rollingUpdate: { maxUnavailable: "10%", maxSurge: 0 },
    });
  });

  it("rolls the pods when the config or the policy changes", () => {
    const checksum = (args: Partial<ShipperManifestArgs>) =>
      (find(shipperManifests({ ...BASE, ...args }), "DaemonSet") as unknown as DaemonSetView).spec.template
        .metadata.annotations["checksum/config"];
    assert.equal(checksum({}), checksum({}));
    assert.notEqual(checksum({}), checksum({ policyYaml: `${POLICY}# changed\n` }));
    assert.notEqual(checksum({}), checksum({ bucket: "other-bucket" }));
  });

  it("requests CPU, memory and the spool's disk, limits memory only, and merges overrides", () => {
    assert.deepEqual(shipper().resources, {
      requests: { cpu: "50m", memory: "160Mi", "ephemeral-storage": "1088Mi" },
      limits: { memory: "256Mi" },
    });
    assert.deepEqual(shipper({ resources: { limits: { memory: "512Mi", cpu: "2" } } }).resources, {
      requests: { cpu: "50m", memory: "160Mi", "ephemeral-storage": "1088Mi" },
      limits: { memory: "512Mi", cpu: "2" },
    });
  });

  it("sizes the ephemeral-storage request from spool_max_bytes, so the scheduler reserves the spool's disk", () => {
    const request = (args: Partial<ShipperManifestArgs>) =>
      shipper(args).resources.requests["ephemeral-storage"];
    assert.equal(request({ shipperConfig: { spool_max_bytes: "4GiB" } }), "4160Mi");
    assert.equal(request({ shipperConfig: { spool_max_bytes: "4GiB" } }), spoolStorageRequest(4 * 2 ** 30));
    assert.equal(
      shipperConfig({ shipperConfig: { spool_max_bytes: "4GiB" } }).config.spoolMaxBytes,
      4 * 2 ** 30,
    );
    assert.equal(request({ resources: { requests: { "ephemeral-storage": "10Gi" } } }), "10Gi");
  });

  it("renders multi-document YAML that parses back to the same objects", () => {
    const objects = shipperManifests({
      ...BASE,
      roleArn: "arn:aws:iam::123456789012:role/x",
      docker: true,
    });
    const text = renderManifestsYaml(objects);
    const docs = parseAllDocuments(text);
    assert.ok(Array.isArray(docs));
    for (const doc of docs) assert.deepEqual(doc.errors, []);
    assert.deepEqual(
      docs.map((d) => d.toJS()),
      JSON.parse(JSON.stringify(objects)),
    );
    assert.equal(docs.length, 7);
  });
});
