import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CONTAINERS_NAME_MAX, type LogFileMeta, parseLogPath } from "./paths.ts";

const UID = "8d3f0a6e-2b1c-4e2f-9a57-0c1d2e3f4a5b";
const ID = "4f3c2b1a09e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2";
const POD_253 = `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(61)}`;

describe("log file paths", () => {
  const accepted: [string, string, LogFileMeta][] = [
    [
      "the current file of a container",
      `/var/log/pods/payments_api-7c9f_${UID}/api/0.log`,
      {
        namespace: "payments",
        pod: "api-7c9f",
        podUid: UID,
        container: "api",
        restartCount: 0,
        rotated: false,
        compressed: false,
      },
    ],
    [
      "a rotated file, with the restart count",
      `/var/log/pods/payments_api-7c9f_${UID}/api/12.log.20261121-111737`,
      {
        namespace: "payments",
        pod: "api-7c9f",
        podUid: UID,
        container: "api",
        restartCount: 12,
        rotated: true,
        compressed: false,
      },
    ],
    [
      "a compressed rotated file",
      `/var/log/pods/payments_api-7c9f_${UID}/api/3.log.20261121-111737.gz`,
      {
        namespace: "payments",
        pod: "api-7c9f",
        podUid: UID,
        container: "api",
        restartCount: 3,
        rotated: true,
        compressed: true,
      },
    ],
    [
      "dots in the pod name and a static pod's config-hash UID, under a custom pods dir",
      "/data/pods/kube-system_etcd-node-1.example.com_0a1b2c3d4e5f60718293a4b5c6d7e8f9/etcd/1.log",
      {
        namespace: "kube-system",
        pod: "etcd-node-1.example.com",
        podUid: "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        container: "etcd",
        restartCount: 1,
        rotated: false,
        compressed: false,
      },
    ],
    [
      "a relative path",
      `payments_api_${UID}/api/0.log`,
      {
        namespace: "payments",
        pod: "api",
        podUid: UID,
        container: "api",
        restartCount: 0,
        rotated: false,
        compressed: false,
      },
    ],
    [
      "the /var/log/containers symlink with a full container ID",
      `/var/log/containers/api-7c9f.canary_payments_api-sidecar-${ID}.log`,
      {
        namespace: "payments",
        pod: "api-7c9f.canary",
        container: "api-sidecar",
        containerId: ID,
        rotated: false,
        compressed: false,
      },
    ],
  ];
  for (const [what, path, meta] of accepted) {
    it(`reads ${what}`, () => {
      assert.deepEqual(parseLogPath(path), { ok: true, meta });
    });
  }

  it("reports a container ID cut by kubelet's 251-character limit as the hex prefix left", () => {
    // pod (253) + "_ns_app-" leaves nothing of the ID; a 200-character pod leaves some.
    const pod = "p".repeat(200);
    const full = `${pod}_ns_app-${ID}`;
    const name = full.slice(0, CONTAINERS_NAME_MAX);
    const r = parseLogPath(`/var/log/containers/${name}.log`);
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.meta.container, "app");
    assert.equal(r.meta.containerId, ID.slice(0, CONTAINERS_NAME_MAX - `${pod}_ns_app-`.length));
    assert.equal(r.meta.pod, pod);
  });

  it("rejects a cut name that lost the whole container ID", () => {
    const name = `${POD_253}_ns_app-${ID}`.slice(0, CONTAINERS_NAME_MAX);
    const r = parseLogPath(`/var/log/containers/${name}.log`);
    assert.equal(r.ok, false);
    assert.match(r.ok ? "" : r.error.message, /cut by kubelet/);
  });

  it("accepts a 253-character pod name under /var/log/pods", () => {
    const r = parseLogPath(`/var/log/pods/ns_${POD_253}_${UID}/app/0.log`);
    assert.ok(r.ok);
    assert.equal(r.meta.pod, POD_253);
  });

  it("marks kubelet's compression temporaries as temporary, not as logs", () => {
    for (const file of ["0.log.20261121-111737.tmp", "0.log.tmp"]) {
      const r = parseLogPath(`/var/log/pods/ns_pod_${UID}/app/${file}`);
      assert.deepEqual(r.ok ? null : r.error.kind, "temporary", file);
    }
  });

  const rejected: [string, string, RegExp][] = [
    ["an uncut name whose ID is short", `/var/log/containers/pod_ns_app-${ID.slice(0, 12)}.log`, /64 hex/],
    ["an ID with non-hex characters", `/var/log/containers/pod_ns_app-${ID.slice(0, 63)}g.log`, /64 hex/],
    ["a pod directory without a UID", "/var/log/pods/ns_pod/app/0.log", /<namespace>_<pod>_<pod-uid>/],
    [
      "an underscore in the pod name",
      `/var/log/pods/ns_my_pod_${UID}/app/0.log`,
      /<namespace>_<pod>_<pod-uid>/,
    ],
    ["an upper-case namespace", `/var/log/pods/Payments_pod_${UID}/app/0.log`, /namespace "Payments"/],
    ["a pod name with an empty label", `/var/log/pods/ns_a..b_${UID}/app/0.log`, /pod "a..b"/],
    ["a container name with a dot", `/var/log/pods/ns_pod_${UID}/app.v2/0.log`, /container "app.v2"/],
    ["a 64-character container name", `/var/log/pods/ns_pod_${UID}/${"c".repeat(64)}/0.log`, /container/],
    ["a restart count with a leading zero", `/var/log/pods/ns_pod_${UID}/app/01.log`, /not a kubelet/],
    ["a malformed rotation suffix", `/var/log/pods/ns_pod_${UID}/app/0.log.2026-11-21`, /not a kubelet/],
    ["an unrelated file", "/var/log/syslog", /not a kubelet/],
    ["Docker's own json log", `/var/lib/docker/containers/${ID}/${ID}-json.log`, /not a kubelet/],
  ];
  for (const [what, path, reason] of rejected) {
    it(`rejects ${what}, naming the file`, () => {
      const r = parseLogPath(path);
      assert.equal(r.ok, false);
      if (r.ok) return;
      assert.equal(r.error.kind, "unrecognised");
      assert.ok(r.error.message.startsWith(`${path}: `), r.error.message);
      assert.match(r.error.message, reason);
    });
  }
});
