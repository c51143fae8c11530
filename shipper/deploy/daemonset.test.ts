import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
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
  renderManifestsYaml,
  type ShipperManifestArgs,
  shipperManifests,
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
    runAsUser: number;
    runAsNonRoot?: boolean;
    capabilities: { drop: string[]; add?: string[] };
  };
  volumeMounts: Mount[];
}
interface PodSpec {
  priorityClassName: string;
  terminationGracePeriodSeconds: number;
  tolerations: Record<string, string>[];
  automountServiceAccountToken: boolean;
  securityContext: { supplementalGroups?: number[] };
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

describe("shipper DaemonSet manifests", () => {
  it("emits Namespace, PriorityClass, ServiceAccount, ConfigMap and DaemonSet in apply order", () => {
    const objects = shipperManifests(BASE);
    assert.deepEqual(
      objects.map((o) => o.kind),
      ["Namespace", "PriorityClass", "ServiceAccount", "ConfigMap", "DaemonSet"],
    );
    for (const o of objects.filter((o) => !["Namespace", "PriorityClass"].includes(o.kind))) {
      assert.equal(o.metadata.namespace, "logarchive", o.kind);
    }
    assert.equal(
      find(objects, "Namespace").metadata.labels?.["pod-security.kubernetes.io/enforce"],
      "privileged",
    );
    const other = shipperManifests({ ...BASE, namespace: "obs", createNamespace: false });
    assert.ok(!other.some((o) => o.kind === "Namespace"));
    assert.equal(find(other, "DaemonSet").metadata.namespace, "obs");
  });

  it("gives the pod 5 seconds more than the drain timeout written into shipper.yaml", () => {
    assert.equal(pod().terminationGracePeriodSeconds, 30);
    assert.equal(shipperConfig().config.drainTimeoutMs, 25_000);
    assert.equal(pod({ drainTimeoutSeconds: 50 }).terminationGracePeriodSeconds, 55);
    assert.equal(shipperConfig({ drainTimeoutSeconds: 50 }).config.drainTimeoutMs, 50_000);
    assert.throws(() => shipperManifests({ ...BASE, drainTimeoutSeconds: 2.5 }), /whole number/);
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

  it("tolerates every taint so every node is covered", () => {
    assert.deepEqual(pod().tolerations, [{ operator: "Exists" }]);
  });

  it("passes IRSA annotations to the ServiceAccount and mounts no API token", () => {
    const arn = "arn:aws:iam::123456789012:role/logarchive-shipper";
    const sa = find(
      shipperManifests({ ...BASE, serviceAccountAnnotations: { "eks.amazonaws.com/role-arn": arn } }),
      "ServiceAccount",
    );
    assert.deepEqual(sa.metadata.annotations, { "eks.amazonaws.com/role-arn": arn });
    assert.equal(sa.automountServiceAccountToken, false);
    assert.equal(pod().automountServiceAccountToken, false);
  });

  it("runs as root without capabilities on a read-only root filesystem by default", () => {
    const c = shipper();
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    assert.deepEqual(c.securityContext.capabilities, { drop: ["ALL"] });
    assert.equal(c.securityContext.runAsUser, 0);
    assert.equal(pod().initContainers, undefined);
  });

  it("runs as a non-root uid with group 0 and hands it the state dir when asked", () => {
    const spec = pod({ nonRoot: { uid: 4242 } });
    const c = spec.containers[0]!;
    assert.equal(c.securityContext.runAsUser, 4242);
    assert.equal(c.securityContext.runAsNonRoot, true);
    assert.deepEqual(c.securityContext.capabilities, { drop: ["ALL"] });
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.deepEqual(spec.securityContext.supplementalGroups, [0]);
    const init = spec.initContainers?.[0];
    assert.ok(init);
    assert.deepEqual(init.securityContext.capabilities, { drop: ["ALL"], add: ["CHOWN"] });
    assert.deepEqual(init.command?.slice(-2), ["/var/lib/logarchive", "4242"]);
    assert.equal(pod({ nonRoot: true }).containers[0]!.securityContext.runAsUser, 1000);
    assert.throws(() => shipperManifests({ ...BASE, nonRoot: { uid: 0 } }), /positive/);
  });

  it("hands a root-owned state directory to the uid with the init container's script", async (t) => {
    if (process.getuid?.() !== 0) return t.skip("needs root to chown");
    const init = pod({ nonRoot: { uid: 4242 } }).initContainers![0]!;
    const dir = await mkdtemp(join(tmpdir(), "logarchive-state-"));
    try {
      await mkdir(join(dir, "spool"));
      await writeFile(join(dir, "spool", "000001.ndjson.gz"), "x");
      await writeFile(join(dir, "checkpoint.json"), "{}");
      const [, ...rest] = init.command!;
      const argv = [process.execPath, ...rest.slice(0, -2), dir, "4242"];
      // With setpriv, as in the pod: root whose only capability is CAP_CHOWN.
      const setpriv = existsSync("/usr/bin/setpriv")
        ? ["/usr/bin/setpriv", "--bounding-set", "-all,+chown"]
        : [];
      const [file, ...fileArgs] = [...setpriv, ...argv];
      const run = () => promisify(execFile)(file!, fileArgs);
      await run();
      for (const p of [
        dir,
        join(dir, "spool"),
        join(dir, "spool", "000001.ndjson.gz"),
        join(dir, "checkpoint.json"),
      ]) {
        const s = await stat(p);
        assert.deepEqual([s.uid, s.gid], [4242, 4242], p);
      }
      assert.equal((await stat(dir)).mode & 0o777, 0o700);
      await run(); // already owned: a no-op, not an error
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
      config: { batch_max_bytes: "16MiB", gzip_level: 9 },
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
      config: {
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
      () => shipperManifests({ ...BASE, config: { multiline: [{ namespaces: ["payments"], mode: "jav" }] } }),
      /multiline\[0\]\.mode/,
    );
  });

  it("rejects unknown, managed, invalid and unmounted shipper options at render time", () => {
    assert.throws(
      () => shipperManifests({ ...BASE, config: { batch_size: "1MiB" } }),
      /not a shipper option/,
    );
    assert.throws(
      () => shipperManifests({ ...BASE, config: { bucket: "other" } }),
      /set by shipperManifests/,
    );
    assert.throws(() => shipperManifests({ ...BASE, config: { gzip_level: 12 } }), ConfigError);
    assert.throws(
      () => shipperManifests({ ...BASE, config: { logs: ["/home/*/*.log"] } }),
      /outside the mounted/,
    );
    assert.doesNotThrow(() => shipperManifests({ ...BASE, config: { logs: ["/var/log/containers/*.log"] } }));
  });

  it("creates its own PriorityClass by default and only references another one", () => {
    const objects = shipperManifests(BASE);
    const pc = find(objects, "PriorityClass");
    assert.equal(pc.metadata.name, DEFAULT_PRIORITY_CLASS);
    assert.ok(
      (pc.value as number) > 0 && (pc.value as number) <= 1_000_000_000,
      "user classes max out at 1e9",
    );
    assert.equal(pod().priorityClassName, DEFAULT_PRIORITY_CLASS);
    const system = shipperManifests({ ...BASE, priorityClassName: "system-node-critical" });
    assert.ok(!system.some((o) => o.kind === "PriorityClass"));
    assert.equal(
      pod({ priorityClassName: "system-node-critical" }).priorityClassName,
      "system-node-critical",
    );
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

  it("requests memory and CPU, limits memory only, and merges overrides", () => {
    assert.deepEqual(shipper().resources, {
      requests: { cpu: "100m", memory: "128Mi" },
      limits: { memory: "256Mi" },
    });
    assert.deepEqual(shipper({ resources: { limits: { memory: "512Mi", cpu: "2" } } }).resources, {
      requests: { cpu: "100m", memory: "128Mi" },
      limits: { memory: "512Mi", cpu: "2" },
    });
  });

  it("renders multi-document YAML that parses back to the same objects", () => {
    const objects = shipperManifests({
      ...BASE,
      serviceAccountAnnotations: { "eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/x" },
      nonRoot: true,
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
    assert.equal(docs.length, 5);
  });
});
