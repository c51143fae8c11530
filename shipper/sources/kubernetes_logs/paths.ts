// Pod metadata from container log file names, the two layouts kubelet writes.
//
// /var/log/pods/<namespace>_<pod>_<uid>/<container>/<n>.log is the file the runtime
// writes; kubelet renames it to <n>.log.<YYYYMMDD-hhmmss> on rotation and gzips older
// ones to <n>.log.<ts>.gz (via <n>.log.<ts>.tmp, which may be incomplete). Only the last
// three path segments are read, because kubelet's podLogsDir is configurable.
//
// Under Docker (dockershim, cri-dockerd) both names are symlinks to dockerd's
// /var/lib/docker/containers/<id>/<id>-json.log, which dockerd rotates itself to
// <id>-json.log.<N>; the shipper tracks those under the link's name plus `.<N>`
// (`0.log.<N>`, `<pod>_<namespace>_<container>-<id>.log.<N>`), which parse as rotated.
//
// /var/log/containers/<pod>_<namespace>_<container>-<id>.log is kubelet's symlink to the
// current <n>.log. kubelet cuts that name to 251 characters before `.log` (ext4 allows
// 255), so a long pod name loses the tail of the 64-hex container ID. A cut ID is
// reported as the hex prefix that remains. If the cut falls inside the container name,
// a name like `web-ab` cannot be told from container `web` with ID `ab`; only the
// /var/log/pods layout is unambiguous, which is why the shipper reads that one.

export interface LogFileMeta {
  readonly namespace: string;
  readonly pod: string;
  /** Present for /var/log/pods (a UUID, or the config hash for static pods). */
  readonly podUid?: string;
  readonly container: string;
  /** Present for /var/log/containers; shorter than 64 hex digits when kubelet cut the name. */
  readonly containerId?: string;
  /** The `<n>` of `<n>.log`, present for /var/log/pods. */
  readonly restartCount?: number;
  /** A renamed `<n>.log.<YYYYMMDD-hhmmss>` (or its .gz): the runtime no longer writes to it. */
  readonly rotated: boolean;
  /** Gzip-compressed, `<n>.log.<ts>.gz`. */
  readonly compressed: boolean;
}

/**
 * Why a path is not a container log. `temporary` is kubelet's half-written `.tmp`
 * during compression (or conmon's during reopen): skip it quietly, its content
 * reappears under the final name. `unrecognised` is anything else.
 */
export interface LogPathError {
  readonly kind: "temporary" | "unrecognised";
  readonly message: string;
}

export type LogPathResult = { ok: true; meta: LogFileMeta } | { ok: false; error: LogPathError };

export const ACCEPTED_LAYOUTS: readonly string[] = [
  "<pods-dir>/<namespace>_<pod>_<pod-uid>/<container>/<restart-count>.log",
  "<pods-dir>/<namespace>_<pod>_<pod-uid>/<container>/<restart-count>.log.<YYYYMMDD-hhmmss>[.gz]",
  "/var/log/containers/<pod>_<namespace>_<container>-<container-id>.log",
];

/** kubelet's limit for the /var/log/containers name without `.log` (ext4's 255 minus the suffix). */
export const CONTAINERS_NAME_MAX = 251;

const DNS_LABEL = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN_LABEL = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?$/;
const POD_UID = /^[A-Za-z0-9][A-Za-z0-9-]*$/;
const HEX = /^[0-9a-f]+$/;
const POD_LOG_FILE = /^(0|[1-9][0-9]{0,9})\.log(?:\.(\d{8}-\d{6})(\.gz)?|\.([1-9][0-9]{0,5}))?$/;
/** A name plus dockerd's rotation number, `.<N>`. */
const DOCKER_ROTATED = /^(.+\.log)\.[1-9][0-9]{0,5}$/;
const POD_LOG_TEMP = /^\d+\.log(?:\.\d{8}-\d{6})?\.tmp$/;

function isDnsLabel(s: string): boolean {
  return DNS_LABEL.test(s);
}

function isDnsSubdomain(s: string): boolean {
  return s.length > 0 && s.length <= 253 && s.split(".").every((label) => DNS_SUBDOMAIN_LABEL.test(label));
}

function fail(kind: LogPathError["kind"], path: string, why: string): LogPathResult {
  return { ok: false, error: { kind, message: `${path}: ${why}` } };
}

/** Reads namespace, pod, container and file state from a log file's path. */
export function parseLogPath(path: string): LogPathResult {
  const segments = path.split("/");
  const file = segments.at(-1) ?? "";
  if (POD_LOG_TEMP.test(file)) return fail("temporary", path, "temporary file of a rotation, not a log");
  const podFile = POD_LOG_FILE.exec(file);
  if (podFile !== null) return parsePodsLayout(path, segments, podFile);
  const name = DOCKER_ROTATED.exec(file)?.[1] ?? file;
  if (name.endsWith(".log") && (name.includes("_") || name.length >= CONTAINERS_NAME_MAX + 4)) {
    return parseContainersLayout(path, name, name !== file);
  }
  return fail("unrecognised", path, "not a kubelet container log file name");
}

function parsePodsLayout(path: string, segments: string[], m: RegExpExecArray): LogPathResult {
  const container = segments.at(-2) ?? "";
  const podDir = segments.at(-3) ?? "";
  const parts = podDir.split("_");
  if (parts.length !== 3) {
    return fail(
      "unrecognised",
      path,
      `directory ${JSON.stringify(podDir)} is not <namespace>_<pod>_<pod-uid>`,
    );
  }
  const [namespace, pod, podUid] = parts as [string, string, string];
  const problem =
    checkNames(namespace, pod, container) ??
    (POD_UID.test(podUid) ? null : `pod UID ${JSON.stringify(podUid)} is not a UID`);
  if (problem !== null) return fail("unrecognised", path, problem);
  const restartCount = Number(m[1]);
  if (!Number.isSafeInteger(restartCount)) return fail("unrecognised", path, "restart count out of range");
  return {
    ok: true,
    meta: {
      namespace,
      pod,
      podUid,
      container,
      restartCount,
      rotated: m[2] !== undefined || m[4] !== undefined,
      compressed: m[3] !== undefined,
    },
  };
}

function parseContainersLayout(path: string, file: string, rotated: boolean): LogPathResult {
  const name = file.slice(0, -".log".length);
  const cut = name.length >= CONTAINERS_NAME_MAX;
  const lostId = "name cut by kubelet before the container ID; read /var/log/pods instead";
  const parts = name.split("_");
  if (parts.length !== 3) {
    return fail(
      "unrecognised",
      path,
      cut ? lostId : "expected <pod>_<namespace>_<container>-<container-id>.log",
    );
  }
  const [pod, namespace, tail] = parts as [string, string, string];
  const dash = tail.lastIndexOf("-");
  const container = dash < 0 ? tail : tail.slice(0, dash);
  const containerId = dash < 0 ? "" : tail.slice(dash + 1);
  if (!HEX.test(containerId) || containerId.length > 64 || (!cut && containerId.length !== 64)) {
    return fail("unrecognised", path, cut ? lostId : "container ID is not 64 hex digits");
  }
  const problem = checkNames(namespace, pod, container);
  if (problem !== null) return fail("unrecognised", path, problem);
  return { ok: true, meta: { namespace, pod, container, containerId, rotated, compressed: false } };
}

function checkNames(namespace: string, pod: string, container: string): string | null {
  if (!isDnsLabel(namespace)) return `namespace ${JSON.stringify(namespace)} is not a DNS label`;
  if (!isDnsSubdomain(pod)) return `pod ${JSON.stringify(pod)} is not a DNS subdomain`;
  if (!isDnsLabel(container)) return `container ${JSON.stringify(container)} is not a DNS label`;
  return null;
}
