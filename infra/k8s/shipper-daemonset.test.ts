// ShipperDaemonSet under Pulumi's mocks: it registers exactly the objects `logarchive
// manifests` prints (run as a child process), with the same specs, so the two cannot
// drift, and those objects carry the security settings docs/shipper.md#deploy promises.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { parseAllDocuments } from "yaml";

interface Registered {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
}
const registered: Registered[] = [];

// Before @pulumi/kubernetes is loaded: its resources register through whatever runtime
// is configured when they are made, and the mocks must be that runtime.
pulumi.runtime.setMocks(
  {
    newResource: (args) => {
      registered.push({ type: args.type, name: args.name, inputs: args.inputs });
      return { id: `${args.name}-id`, state: args.inputs };
    },
    call: (args) => args.inputs,
  },
  "logarchive",
  "test",
  false,
);
const { ShipperDaemonSet, objectFor } = await import("./shipper-daemonset.ts");
type Args = ConstructorParameters<typeof ShipperDaemonSet>[1];

const cli = new URL("../../cli/logarchive.ts", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "shipper-daemonset-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const POLICY = "archive:\n  prefix: k8s/logs\nanalytics:\n  include: [web]\n";
const policyPath = join(dir, "namespaces.yaml");
writeFileSync(policyPath, POLICY);
const ARN = "arn:aws:iam::123456789012:role/logarchive-shipper";
const IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/logarchive:1.2.3";

/**
 * Deploys the component with the mocks and returns the Kubernetes objects it registered, in
 * the component's (apply) order: registrations happen as inputs resolve, in any order.
 */
async function deploy(name: string, args: Args): Promise<{ objects: unknown[] }> {
  const component = new ShipperDaemonSet(name, args);
  const urns = await new Promise<string[]>((resolve) =>
    pulumi.all(component.resources.map((r) => r.urn)).apply(resolve),
  );
  const names = urns.map((urn) => urn.split("::").pop()!);
  const objects = names.map((n) => {
    const found = registered.find((r) => r.type.startsWith("kubernetes:") && r.name === n);
    assert.ok(found, `${n} was not registered`);
    return found.inputs;
  });
  return { objects };
}

function manifests(...args: string[]): unknown[] {
  const r = spawnSync(process.execPath, [cli, "manifests", "--policy", policyPath, ...args], {
    encoding: "utf8",
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  return parseAllDocuments(r.stdout as string).map((d) => (Array.isArray(d) ? assert.fail() : d.toJS()));
}

type Obj = {
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: Record<string, unknown>;
  [k: string]: unknown;
};
const byKind = (objects: unknown[], kind: string) => {
  const found = (objects as Obj[]).find((o) => o.kind === kind);
  assert.ok(found, `no ${kind}`);
  return found;
};

describe("ShipperDaemonSet", () => {
  it("registers exactly the objects `logarchive manifests` prints, spec for spec", async () => {
    const settingsFile = join(dir, "settings.yaml");
    writeFileSync(
      settingsFile,
      [
        "namespace: logging",
        "tolerations: [{ key: dedicated, operator: Equal, value: logging, effect: NoSchedule }]",
        "podMonitorLabels: { release: kube-prometheus-stack }",
        "metricsScrapers: [{ namespaceSelector: { matchLabels: { kubernetes.io/metadata.name: gmp-system } } }]",
        "resources: { requests: { cpu: 200m } }",
        "shipperConfig: { spool_max_bytes: 2GiB, batch_max_age: 2m }",
        "",
      ].join("\n"),
    );
    const printed = manifests(
      "--config",
      settingsFile,
      "--image",
      IMAGE,
      "--bucket",
      "acme-logs",
      "--region",
      "eu-west-1",
      "--role-arn",
      ARN,
    );
    const { objects } = await deploy("shipper", {
      namespace: "logging",
      tolerations: [{ key: "dedicated", operator: "Equal", value: "logging", effect: "NoSchedule" }],
      podMonitorLabels: { release: "kube-prometheus-stack" },
      metricsScrapers: [
        { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "gmp-system" } } },
      ],
      resources: { requests: { cpu: "200m" } },
      shipperConfig: { spool_max_bytes: "2GiB", batch_max_age: "2m" },
      // As the stack passes them: outputs of other resources.
      image: pulumi.output(IMAGE),
      bucket: pulumi.output("acme-logs"),
      region: "eu-west-1",
      roleArn: pulumi.output(ARN),
      policyYaml: pulumi.output(POLICY),
    });
    assert.deepEqual(objects, printed);
    assert.equal(objects.length, 7);
  });

  it("registers fewer objects exactly as the manifests leave them out", async () => {
    const printed = manifests(
      "--image",
      IMAGE,
      "--bucket",
      "acme-logs",
      "--region",
      "us-east-1",
      "--no-pod-monitor",
      "--no-network-policy",
      "--no-create-namespace",
      "--priority-class",
      "logging-high",
      "--run-as",
      "root",
    );
    const { objects } = await deploy("bare", {
      image: IMAGE,
      bucket: "acme-logs",
      region: "us-east-1",
      policyYaml: POLICY,
      podMonitor: false,
      networkPolicy: false,
      createNamespace: false,
      priorityClassName: "logging-high",
      runAs: "root",
    });
    assert.deepEqual(objects, printed);
    assert.deepEqual(
      (objects as Obj[]).map((o) => o.kind),
      ["ServiceAccount", "ConfigMap", "DaemonSet"],
    );
  });

  it("is a logarchive:k8s:ShipperDaemonSet whose objects are its children", async () => {
    const component = new ShipperDaemonSet("child-check", {
      image: IMAGE,
      bucket: "acme-logs",
      region: "r",
      policyYaml: POLICY,
    });
    const urns = await new Promise<string[]>((resolve) =>
      pulumi.all(component.resources.map((r) => r.urn)).apply(resolve),
    );
    const parentUrn = await new Promise<string>((resolve) => component.urn.apply(resolve));
    assert.match(parentUrn, /logarchive:k8s:ShipperDaemonSet::child-check$/);
    for (const urn of urns) assert.match(urn, /logarchive:k8s:ShipperDaemonSet\$kubernetes:/, urn);
    assert.equal(component.namespace, "logarchive");
  });

  describe("the deployed objects", async () => {
    const { objects } = await deploy("secure", {
      image: IMAGE,
      bucket: "acme-logs",
      region: "eu-west-1",
      roleArn: pulumi.output(ARN),
      policyYaml: POLICY,
    });
    const ds = byKind(objects, "DaemonSet") as Obj & {
      spec: {
        template: {
          metadata: { labels: Record<string, string> };
          spec: {
            priorityClassName: string;
            tolerations: unknown[];
            securityContext: { supplementalGroups?: number[] };
            initContainers: { securityContext: { capabilities: unknown; runAsUser: number } }[];
            volumes: { name: string; hostPath?: { path: string } }[];
            containers: {
              securityContext: Record<string, unknown>;
              volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
              ports: { name: string; containerPort: number }[];
              resources: { requests: Record<string, string>; limits: Record<string, string> };
              livenessProbe: { httpGet: { path: string; port: string } };
              readinessProbe: { httpGet: { path: string; port: string } };
              startupProbe: { httpGet: { path: string; port: string } };
            }[];
          };
        };
      };
    };
    const podSpec = ds.spec.template.spec;
    const shipper = podSpec.containers[0]!;

    it("runs the shipper as non-root with every capability dropped, no escalation and a read-only root", () => {
      assert.deepEqual(shipper.securityContext, {
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        privileged: false,
        capabilities: { drop: ["ALL"] },
        runAsUser: 1000,
        runAsGroup: 1000,
        runAsNonRoot: true,
      });
      assert.deepEqual(podSpec.securityContext.supplementalGroups, [0]);
      assert.deepEqual(podSpec.initContainers[0]!.securityContext.capabilities, {
        drop: ["ALL"],
        add: ["CHOWN"],
      });
    });

    it("mounts the logs read-only and the state directory read-write", () => {
      const hostPathOf = (name: string) => podSpec.volumes.find((v) => v.name === name)?.hostPath?.path;
      const mounts = Object.fromEntries(shipper.volumeMounts.map((m) => [hostPathOf(m.name) ?? m.name, m]));
      assert.equal(mounts["/var/log/pods"]?.readOnly, true);
      assert.equal(mounts["/var/log/containers"]?.readOnly, true);
      assert.equal(mounts["/var/lib/logarchive"]?.readOnly, undefined);
      assert.equal(mounts["/var/lib/logarchive"]?.mountPath, "/var/lib/logarchive");
    });

    it("probes, exposes the metrics port, requests resources and runs at system-node-critical", () => {
      assert.deepEqual(shipper.ports, [{ name: "http-metrics", containerPort: 2021, protocol: "TCP" }]);
      assert.deepEqual(shipper.livenessProbe.httpGet, { path: "/healthz", port: "http-metrics" });
      assert.deepEqual(shipper.startupProbe.httpGet, { path: "/healthz", port: "http-metrics" });
      assert.deepEqual(shipper.readinessProbe.httpGet, { path: "/readyz", port: "http-metrics" });
      assert.deepEqual(shipper.resources, {
        requests: { cpu: "50m", memory: "160Mi", "ephemeral-storage": "1088Mi" },
        limits: { memory: "256Mi" },
      });
      assert.equal(podSpec.priorityClassName, "system-node-critical");
      assert.deepEqual(podSpec.tolerations, [{ operator: "Exists" }]);
      const quota = byKind(objects, "ResourceQuota");
      assert.deepEqual((quota.spec as { scopeSelector: unknown }).scopeSelector, {
        matchExpressions: [{ scopeName: "PriorityClass", operator: "In", values: ["system-node-critical"] }],
      });
    });

    it("annotates the ServiceAccount with the IRSA role and labels the namespace privileged", () => {
      assert.deepEqual(byKind(objects, "ServiceAccount").metadata.annotations, {
        "eks.amazonaws.com/role-arn": ARN,
      });
      assert.equal(
        byKind(objects, "Namespace").metadata.labels?.["pod-security.kubernetes.io/enforce"],
        "privileged",
      );
    });

    it("admits only the monitoring namespace to the metrics port and ships a PodMonitor for it", () => {
      const policy = byKind(objects, "NetworkPolicy").spec as {
        podSelector: { matchLabels: Record<string, string> };
        policyTypes: string[];
        ingress: { from: unknown[]; ports: unknown[] }[];
      };
      for (const [k, v] of Object.entries(policy.podSelector.matchLabels))
        assert.equal(ds.spec.template.metadata.labels[k], v);
      assert.deepEqual(policy.policyTypes, ["Ingress"]);
      assert.deepEqual(policy.ingress, [
        {
          from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } } }],
          ports: [{ protocol: "TCP", port: 2021 }],
        },
      ]);
      const monitor = byKind(objects, "PodMonitor") as Obj & { apiVersion: string };
      assert.equal(monitor.apiVersion, "monitoring.coreos.com/v1");
      const endpoints = (monitor.spec as { podMetricsEndpoints: { port: string }[] }).podMetricsEndpoints;
      assert.deepEqual(
        endpoints.map((e) => e.port),
        ["http-metrics"],
      );
    });
  });

  it("refuses an object with a field it would not deploy", () => {
    const ds = { apiVersion: "apps/v1", kind: "DaemonSet", metadata: { name: "x" }, spec: {}, status: {} };
    assert.throws(
      () => objectFor([ds], { apiVersion: "apps/v1", kind: "DaemonSet", name: "x" }),
      /fields it does not deploy: status/,
    );
    assert.doesNotThrow(() =>
      objectFor(
        [{ ...ds, status: undefined }].map(({ status, ...o }) => o),
        {
          apiVersion: "apps/v1",
          kind: "DaemonSet",
          name: "x",
        },
      ),
    );
  });
});
