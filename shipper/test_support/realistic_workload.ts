// A node's container logs as they look in production, for benchmarks that measure CPU, memory
// or compression per byte: every line is generated, none is copied from a small set. Request
// ids, trace ids, latencies, sizes, client and pod IPs, user agents, paths, SQL, user and order
// ids vary from line to line, so gzip sees what it sees on a real node (gzip -6 of the files
// ≈ 0.19, where a workload of a few hundred repeated lines compresses to 0.09 and flatters the
// CPU per byte; docs/benchmarks.md).
//
// Each pod logs in the shape of one kind of workload:
// - go-json:  zap-style JSON request, database and upstream logs of a Go service;
// - node-json: pino-style JSON of a Node.js service, with some non-ASCII user data;
// - ingress:  ingress-nginx access lines, and the controller's klog lines;
// - klog:     Kubernetes components (kube-proxy, CSI, controllers) in klog format, and CoreDNS;
// - java:     Spring Boot logback lines, with multi-line Java stack traces (one CRI line per frame);
// - python:   Python logging from batch jobs, with tracebacks;
// - ml:       a training job's progress lines.
// A few lines are longer than the runtime's 16 KiB and are split into P chunks and a final F,
// and a very few are malformed (no CRI header).
//
// Every logical line carries a unique token `lid=<writer>:<n>` (the LID of workload.ts), as a
// JSON field or at the end of a text line, so a benchmark can check that the archive holds
// each line exactly once. Files are laid out as kubelet does
// (/var/log/pods/<ns>_<pod>_<uid>/<container>/0.log). The same seed gives the same bytes.
//
// Timestamps follow a node's log rate (default 5 GB a day, the reference scenario of
// docs/scale.md): each pod's clock moves on by the bytes it wrote over its share of that rate,
// so a 1 GiB workload spans about five hours of logs, and batches are cut by the hour as they
// would be on that node.

import { closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import { random } from "./workload.ts";

export const APP_PROFILES = ["go-json", "node-json", "ingress", "klog", "java", "python", "ml"] as const;
export type AppProfile = (typeof APP_PROFILES)[number];

/** The runtime splits a line longer than this into P chunks (containerd's and CRI-O's 16 KiB). */
const CRI_CHUNK = 16 * 1024;
const WRITE_CHUNK = 1 << 20;
interface Client {
  ip: string;
  ua: string;
  /** Its requests' header size: a client sends much the same headers each time. */
  requestBytes: number;
}
/** Pods of the cluster a container hears about. */
const CLUSTER_PODS = 300;
interface ClusterPod {
  name: string;
  uid: string;
  ip: string;
  containerId: string;
}
/** Clients a container sees at one time. */
const SESSIONS = 2000;

// ---------------------------------------------------------------- random helpers

class Rand {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = random(seed);
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  range(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!;
  }
  /** An index skewed towards the start (Zipf-like), as a few paths or users get most requests. */
  skewed<T>(xs: readonly T[]): T {
    const u = this.next();
    return xs[Math.floor(u * u * u * xs.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  hex(n: number): string {
    let s = "";
    while (s.length < n) s += ((this.next() * 0x100000000) >>> 0).toString(16).padStart(8, "0");
    return s.slice(0, n);
  }
  uuid(): string {
    const h = this.hex(32);
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${"89ab"[this.int(4)]}${h.slice(17, 20)}-${h.slice(20)}`;
  }
  alnum(n: number): string {
    const abc = "abcdefghijklmnopqrstuvwxyz0123456789";
    let s = "";
    for (let i = 0; i < n; i++) s += abc[this.int(abc.length)];
    return s;
  }
  /** Log-normal-ish latency in ms: most requests fast, a long tail. */
  latencyMs(medianMs: number): number {
    const z = (this.next() + this.next() + this.next() - 1.5) * 2;
    return medianMs * Math.exp(z * 0.9) * (this.chance(0.01) ? 20 : 1);
  }
  #pods: ClusterPod[] = [];
  /**
   * One of the pods this container hears about (its upstreams, its DNS clients, the pods a
   * node agent manages): a cluster has a few hundred, not a new one per line.
   */
  pod(): ClusterPod {
    if (this.#pods.length < CLUSTER_PODS) {
      const ns = this.pick(["checkout", "auth", "search", "payments", "web", "batch-jobs"]);
      const p: ClusterPod = {
        name: `${ns}/${this.skewed(WORDS)}-${this.hex(9)}-${this.alnum(5)}`,
        uid: this.uuid(),
        ip: this.podIp(),
        containerId: this.hex(64),
      };
      this.#pods.push(p);
      return p;
    }
    return this.skewed(this.#pods);
  }
  podIp(): string {
    return `10.244.${this.int(64)}.${this.range(2, 254)}`;
  }
  #sessions: Client[] = [];
  /**
   * A client (its IP and user agent) from this container's current visitors: most of a
   * service's requests come from clients that made others, as a user's session does. Clients
   * come and go, so the pool drifts.
   */
  session(): Client {
    // A page load is a burst: the same client's next request often follows within lines.
    if (this.#recent.length > 0 && this.chance(0.6)) return this.pick(this.#recent);
    let s: Client;
    if (this.#sessions.length < SESSIONS || this.chance(0.01)) {
      s = { ip: this.clientIp(), ua: userAgent(this), requestBytes: this.range(200, 1500) };
      if (this.#sessions.length < SESSIONS) this.#sessions.push(s);
      else this.#sessions[this.int(SESSIONS)] = s;
    } else s = this.skewed(this.#sessions);
    if (this.#recent.length < 8) this.#recent.push(s);
    else this.#recent[this.int(8)] = s;
    return s;
  }
  #recent: Client[] = [];
  #trace = "";
  /**
   * The trace id of the request being logged: a request writes a few lines (its queries, its
   * upstream calls, its summary) with the same id before the next one starts.
   */
  trace(): string {
    if (this.#trace === "" || this.chance(0.3)) {
      this.#trace = this.hex(32);
      this.#span = this.hex(16);
      this.#subject = this.uuid();
    }
    return this.#trace;
  }
  #subject = "";
  /** What the current request is about (a payment, an order): its lines name the same one. */
  subject(): string {
    if (this.#subject === "") this.trace();
    return this.#subject;
  }
  #span = "";
  /** The span within the current trace: a request's lines share some. */
  span(): string {
    if (this.#span === "" || this.chance(0.3)) this.#span = this.hex(16);
    return this.#span;
  }
  clientIp(): string {
    if (this.chance(0.15)) return `10.${this.int(256)}.${this.int(256)}.${this.range(1, 254)}`;
    return `${this.range(11, 223)}.${this.int(256)}.${this.int(256)}.${this.range(1, 254)}`;
  }
}

// ---------------------------------------------------------------- vocabularies

const WORDS = (
  "account address alert alpha amount analytics archive audit backend balance basket batch billing " +
  "blue bravo bucket budget cache campaign card cart catalog charlie checkout city claim client cluster " +
  "coupon credit customer dashboard delivery delta device discount dispatch document domain draft echo " +
  "email event export feature feed file filter fleet foxtrot gateway gift golf green group history hotel " +
  "image import index inventory invoice item job kilo label ledger lima limit list locale login mail " +
  "manifest market member merchant message metric mike model monitor notice offer order origin owner " +
  "package page partner payment payout plan policy price product profile promo quota rate receipt " +
  "refund region report request reserve review role route rule sale schedule search seller session " +
  "settlement shipment sierra sku slot source stock store subscription supplier tango task tax team " +
  "tenant ticket token topic transfer trip upload user vendor victor voucher wallet warehouse webhook zone"
).split(" ");
const NAMES = [
  "José",
  "Zoë",
  "Łukasz",
  "Søren",
  "Amélie",
  "Chloé",
  "Jürgen",
  "Françoise",
  "Mia",
  "Noah",
  "Olivia",
  "Liam",
  "Emma",
  "Ava",
  "Lucas",
  "Sofia",
  "Mateo",
  "Hana",
  "Yuki",
  "Wei",
  "Aarav",
  "Fatima",
  "Omar",
  "Ingrid",
  "Björn",
  "Dvořák",
  "Nguyễn",
  "Müller",
  "O'Brien",
  "Smith",
];
const TLDS = ["com", "net", "org", "io", "de", "fr", "co.uk", "nl", "es", "it"];
const OS = [
  "Windows NT 10.0; Win64; x64",
  "Macintosh; Intel Mac OS X 10_15_7",
  "X11; Linux x86_64",
  "iPhone; CPU iPhone OS 17_5 like Mac OS X",
  "Linux; Android 14; Pixel 8",
  "Linux; Android 13; SM-S918B",
  "iPad; CPU OS 16_6 like Mac OS X",
];

/** A released Chrome version: each major has its build and a few patch releases, as in the wild. */
function chromeVersion(r: Rand): string {
  const major = 131 - Math.floor(r.next() * r.next() * 14);
  return `${major}.0.${5993 + (major - 118) * 61}.${[58, 70, 89, 117, 136][r.int(5)]}`;
}

function userAgent(r: Rand): string {
  const k = r.next();
  if (k < 0.45) {
    return `Mozilla/5.0 (${r.pick(OS)}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${chromeVersion(r)} ${r.chance(0.3) ? "Mobile " : ""}Safari/537.36`;
  }
  if (k < 0.6) {
    const v = r.range(15, 17);
    return `Mozilla/5.0 (${r.pick(OS)}) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/${v}.${r.int(6)} Mobile/15E148 Safari/604.1`;
  }
  if (k < 0.7)
    return `Mozilla/5.0 (${r.pick(OS)}; rv:${r.range(115, 133)}.0) Gecko/20100101 Firefox/${r.range(115, 133)}.0`;
  if (k < 0.78) return `okhttp/4.${r.range(9, 12)}.${r.int(4)}`;
  if (k < 0.84) return `Go-http-client/${r.chance(0.5) ? "1.1" : "2.0"}`;
  if (k < 0.89) return `python-requests/2.${r.range(28, 32)}.${r.int(4)}`;
  if (k < 0.93) return `curl/8.${r.range(0, 11)}.${r.int(2)}`;
  if (k < 0.96) return `kube-probe/1.${r.range(28, 31)}`;
  if (k < 0.98)
    return `Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html) Chrome/${chromeVersion(r)}`;
  return `ShopApp/${r.range(3, 5)}.${r.int(30)}.${r.int(10)} (${r.chance(0.5) ? "iOS" : "Android"} ${r.range(13, 17)}.${r.int(6)}; build ${r.range(1000, 9999)})`;
}

function searchTerm(r: Rand): string {
  const n = r.range(1, 3);
  const words: string[] = [];
  for (let i = 0; i < n; i++) words.push(r.skewed(WORDS));
  return words.join("+");
}

/** A request path as an API or a web front end sees it. */
function requestPath(r: Rand): string {
  const k = r.next();
  if (k < 0.2) return `/api/v1/orders/${r.range(1_000_000, 9_999_999)}`;
  if (k < 0.32) return `/api/v1/users/${r.uuid()}/cart`;
  if (k < 0.42)
    return `/api/v2/products/${r.alnum(3).toUpperCase()}-${r.range(10000, 99999)}?ref=${r.pick(["home", "search", "reco", "email", "ad"])}`;
  if (k < 0.5) return `/search?q=${searchTerm(r)}&page=${r.range(1, 20)}`;
  if (k < 0.58) return `/static/js/${r.pick(BUNDLES)}.js`;
  if (k < 0.62)
    return `/static/img/${r.skewed(WORDS)}-${r.range(100, 999)}.${r.pick(["webp", "png", "jpg"])}`;
  if (k < 0.68) return "/graphql";
  if (k < 0.74) return r.pick(["/healthz", "/readyz", "/livez", "/metrics"]);
  if (k < 0.8) return `/api/v1/${r.skewed(WORDS)}s/${r.range(1, 500_000)}/${r.skewed(WORDS)}s`;
  if (k < 0.86) return `/api/v1/sessions/${r.hex(24)}`;
  if (k < 0.92) return `/api/v1/payments/${r.uuid()}/capture`;
  return `/api/v1/${r.skewed(WORDS)}?limit=${r.pick([10, 20, 50, 100])}&offset=${r.int(50) * 20}&sort=${r.pick(["created_at", "-updated_at", "name", "price"])}`;
}

/** The front end's current build: its bundles' hashed names change with a deploy, not a request. */
const BUNDLES = ["main", "vendor", "runtime", "checkout", "chunk-217", "chunk-904", "polyfills"].map(
  (name, i) => `${name}.${((0x9e3779b1 * (i + 7)) >>> 0).toString(16).padStart(8, "0")}`,
);
/** The node's own address, from which kubelet probes its pods. */
const NODE_IP = "10.0.37.112";
const PROBES = [
  { path: "/healthz", ua: "kube-probe/1.30" },
  { path: "/readyz", ua: "kube-probe/1.30" },
  { path: "/metrics", ua: "Prometheus/2.53.1" },
];
const PAGES = ["/", "/cart", "/checkout", "/account", "/search", "/deals", "/products", "/orders"];

/** A response's size: a static file or a probe's answer has one size; an API answer varies. */
function responseBytes(r: Rand, path: string, status: number): number {
  if (status === 204 || status === 304) return 0;
  if (status >= 300) return r.range(150, 600);
  if (path.startsWith("/static/") || path.endsWith("z") || path === "/metrics") {
    let h = 0;
    for (let i = 0; i < path.length; i++) h = (Math.imul(h, 31) + path.charCodeAt(i)) >>> 0;
    return path.startsWith("/static/") ? 2_000 + (h % 400_000) : 2 + (h % 30);
  }
  return Math.round(r.latencyMs(1500));
}

function method(r: Rand): string {
  const k = r.next();
  return k < 0.68
    ? "GET"
    : k < 0.88
      ? "POST"
      : k < 0.94
        ? "PUT"
        : k < 0.97
          ? "DELETE"
          : k < 0.99
            ? "PATCH"
            : "OPTIONS";
}

function status(r: Rand): number {
  const k = r.next();
  return k < 0.86
    ? 200
    : k < 0.9
      ? 201
      : k < 0.92
        ? 204
        : k < 0.935
          ? 301
          : k < 0.95
            ? 304
            : k < 0.97
              ? 404
              : k < 0.98
                ? 400
                : k < 0.985
                  ? 401
                  : k < 0.99
                    ? 429
                    : k < 0.995
                      ? 500
                      : k < 0.998
                        ? 502
                        : 503;
}

const GO_FILES = [
  "handler/orders.go",
  "handler/cart.go",
  "handler/checkout.go",
  "handler/health.go",
  "store/postgres.go",
  "store/redis.go",
  "client/payments.go",
  "client/inventory.go",
  "middleware/auth.go",
  "middleware/logging.go",
  "worker/outbox.go",
  "worker/reconcile.go",
  "grpc/server.go",
  "kafka/consumer.go",
];
const TABLES = [
  "orders",
  "order_items",
  "carts",
  "users",
  "payments",
  "inventory",
  "shipments",
  "outbox",
  "sessions",
];
const UPSTREAMS = [
  "payments.payments.svc.cluster.local:8080",
  "inventory.search.svc.cluster.local:9090",
  "auth.auth.svc.cluster.local:8443",
  "api.stripe.com:443",
  "pricing.checkout.svc.cluster.local:8080",
  "redis-master.checkout.svc.cluster.local:6379",
  "kafka-0.kafka-headless.data.svc.cluster.local:9092",
];
const GO_ERRORS = [
  "context deadline exceeded",
  "dial tcp 10.96.14.3:5432: connect: connection refused",
  'pq: duplicate key value violates unique constraint "orders_pkey"',
  'rpc error: code = Unavailable desc = connection error: desc = "transport: Error while dialing: dial tcp: lookup payments on 10.96.0.10:53: no such host"',
  "read tcp 10.244.3.17:43122->10.244.1.9:6379: i/o timeout",
  "http2: server sent GOAWAY and closed the connection; LastStreamID=1999, ErrCode=NO_ERROR",
  "EOF",
  "redis: connection pool timeout",
  "json: cannot unmarshal string into Go struct field Order.items.quantity of type int",
];

// ---------------------------------------------------------------- per-writer generators

interface Clock {
  /** Milliseconds since the epoch of the line being written. */
  ms: number;
}

function isoMs(ms: number): string {
  return new Date(ms).toISOString();
}
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
function nginxTime(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${p(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}
function klogTime(ms: number, r: Rand): string {
  const iso = isoMs(ms);
  return `${iso.slice(5, 7)}${iso.slice(8, 10)} ${iso.slice(11, 23)}${String(r.int(1000)).padStart(3, "0")}`;
}
function logbackTime(ms: number): string {
  const iso = isoMs(ms);
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)}`;
}
function pythonTime(ms: number): string {
  const iso = isoMs(ms);
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)},${iso.slice(20, 23)}`;
}

/** One logical line: its message, stream, and where the lid goes (a JSON field or text at the end). */
interface Line {
  stream: "stdout" | "stderr";
  text: string;
  json: boolean;
}
const out = (text: string, json = false): Line => ({ stream: "stdout", text, json });
const err = (text: string, json = false): Line => ({ stream: "stderr", text, json });

/** Lines of one kind of workload; most calls give one line, traces give many. */
type Generator = (r: Rand, clock: Clock, emit: (l: Line) => void) => void;

function goJson(service: string): Generator {
  // Not every team has adopted tracing: these services log a request id only.
  const traced = !["cart", "pricing", "search-gateway"].includes(service);
  return (r, clock, emit) => {
    const ts = (clock.ms / 1000).toFixed(6);
    if (r.chance(0.12)) {
      // kubelet's probes and Prometheus's scrapes: every few seconds, the same few paths.
      const probe = r.pick(PROBES);
      emit(
        out(
          `{"level":"info","ts":${ts},"caller":"middleware/logging.go:${r.range(40, 90)}","msg":"request completed","service":"${service}",` +
            `"method":"GET","path":"${probe.path}","status":200,"latency_ms":${r.latencyMs(0.3).toFixed(3)},"bytes_in":0,"bytes_out":${responseBytes(r, probe.path, 200)},` +
            `"remote_ip":"${NODE_IP}","user_agent":"${probe.ua}","request_id":"${r.uuid()}"}`,
          true,
        ),
      );
      return;
    }
    const tracing = traced ? `,"trace_id":"${r.trace()}"` : "";
    const k = r.next();
    if (k < 0.55) {
      const st = status(r);
      const level = st >= 500 ? "error" : st >= 400 ? "warn" : "info";
      const client = r.session();
      const path = requestPath(r);
      emit(
        out(
          `{"level":"${level}","ts":${ts},"caller":"middleware/logging.go:${r.range(40, 90)}","msg":"request completed","service":"${service}",` +
            `"method":"${method(r)}","path":"${path}","status":${st},"latency_ms":${r.latencyMs(18).toFixed(3)},` +
            `"bytes_in":${r.chance(0.6) ? 0 : r.range(40, 9000)},"bytes_out":${responseBytes(r, path, st)},"remote_ip":"${client.ip}",` +
            `"user_agent":"${client.ua}","request_id":"${r.uuid()}"${tracing}${traced ? `,"span_id":"${r.span()}"` : ""}}`,
          true,
        ),
      );
    } else if (k < 0.72) {
      const table = r.pick(TABLES);
      const rows = r.chance(0.7) ? r.int(5) : r.int(5000);
      emit(
        out(
          `{"level":"debug","ts":${ts},"caller":"store/postgres.go:${r.range(100, 400)}","msg":"query","service":"${service}",` +
            `"sql":"SELECT id, status, total_cents, updated_at FROM ${table} WHERE ${r.pick(["id", "user_id", "order_id", "tenant_id"])} = $1 AND created_at > $2 ORDER BY created_at DESC LIMIT ${r.pick([1, 10, 50, 100])}",` +
            `"args":[${r.range(1, 99_999_999)},"${isoMs(clock.ms - r.int(86_400_000 * 30))}"],"rows":${rows},"duration_ms":${r.latencyMs(2.5).toFixed(3)}${tracing}}`,
          true,
        ),
      );
    } else if (k < 0.84) {
      const up = r.pick(UPSTREAMS);
      const failed = r.chance(0.06);
      emit(
        out(
          `{"level":"${failed ? "warn" : "info"}","ts":${ts},"caller":"client/${up.split(".")[0]}.go:${r.range(50, 250)}","msg":"${failed ? "upstream call failed, retrying" : "upstream call"}",` +
            `"service":"${service}","upstream":"${up}","rpc":"/${r.pick(["payments", "inventory", "pricing", "auth"])}.v1.${r.pick(["Reserve", "Capture", "Quote", "Check", "Get", "List"])}${r.pick(["Stock", "Payment", "Token", "Price", "Order"])}",` +
            `"attempt":${failed ? r.range(1, 3) : 1},"duration_ms":${r.latencyMs(9).toFixed(3)}${failed ? `,"error":${JSON.stringify(r.pick(GO_ERRORS))}` : ""}${tracing}}`,
          true,
        ),
      );
    } else if (k < 0.92) {
      emit(
        out(
          `{"level":"info","ts":${ts},"caller":"worker/outbox.go:${r.range(60, 180)}","msg":"published events","service":"${service}",` +
            `"topic":"${r.pick(["orders", "payments", "shipments", "carts"])}.v${r.range(1, 3)}","partition":${r.int(24)},"offset":${r.range(1_000_000, 90_000_000)},` +
            `"events":${r.range(1, 200)},"oldest_age_ms":${r.int(5000)},"batch_id":"${r.alnum(20)}"}`,
          true,
        ),
      );
    } else if (k < 0.98) {
      emit(
        out(
          `{"level":"warn","ts":${ts},"caller":"${r.pick(GO_FILES)}:${r.range(20, 600)}","msg":"${r.pick(["slow request", "cache miss storm", "retry budget low", "rate limited", "stale read"])}",` +
            `"service":"${service}","user_id":${r.range(1, 4_000_000)},"tenant":"${r.skewed(WORDS)}-${r.range(1, 400)}","elapsed_ms":${r.latencyMs(400).toFixed(1)},` +
            `"error":${JSON.stringify(r.pick(GO_ERRORS))}${tracing}}`,
          true,
        ),
      );
    } else {
      // A panic: a JSON line, then the Go runtime's trace on stderr.
      emit(
        out(
          `{"level":"error","ts":${ts},"caller":"grpc/server.go:${r.range(100, 300)}","msg":"recovered from panic","service":"${service}","panic":"runtime error: invalid memory address or nil pointer dereference"${tracing}}`,
          true,
        ),
      );
      emit(err(`goroutine ${r.range(100, 90000)} [running]:`));
      const frames = r.range(4, 12);
      for (let i = 0; i < frames; i++) {
        const file = r.pick(GO_FILES);
        const pkg = file.split("/")[0];
        emit(
          err(
            `github.com/acme/${service}/internal/${pkg}.(*${r.pick(["Server", "Handler", "Store", "Client"])}).${r.pick(["Place", "Get", "List", "Reserve", "Serve", "Do"])}(0xc000${r.hex(6)}, {0x${r.hex(7)}, 0xc00${r.hex(7)}})`,
          ),
        );
        emit(err(`\t/src/internal/${file}:${r.range(20, 600)} +0x${r.hex(3)}`));
      }
    }
  };
}

function nodeJson(service: string): Generator {
  let hostname = "";
  return (r, clock, emit) => {
    if (hostname === "") hostname = `${service}-${r.hex(9)}-${r.alnum(5)}`;
    const k = r.next();
    const base = `{"level":${k < 0.9 ? 30 : k < 0.97 ? 40 : 50},"time":${clock.ms},"pid":1,"hostname":"${hostname}"`;
    if (r.chance(0.12)) {
      const probe = r.pick(PROBES);
      emit(
        out(
          `{"level":30,"time":${clock.ms},"pid":1,"hostname":"${hostname}","req":{"id":"${r.uuid()}","method":"GET","url":"${probe.path}","remoteAddress":"::ffff:${NODE_IP}","userAgent":"${probe.ua}"},` +
            `"res":{"statusCode":200},"responseTime":${r.latencyMs(0.4).toFixed(0)},"msg":"request completed"}`,
          true,
        ),
      );
      return;
    }
    if (k < 0.6) {
      const st = status(r);
      const client = r.session();
      emit(
        out(
          `${base},"req":{"id":"${r.uuid()}","method":"${method(r)}","url":"${requestPath(r)}","remoteAddress":"::ffff:${client.ip}","userAgent":"${client.ua}"},` +
            `"res":{"statusCode":${st}},"responseTime":${r.latencyMs(25).toFixed(0)},"msg":"request completed"}`,
          true,
        ),
      );
    } else if (k < 0.8) {
      const name = `${r.pick(NAMES)} ${r.pick(NAMES)}`;
      emit(
        out(
          `${base},"userId":"${r.uuid()}","email":"${name
            .split(" ")[0]!
            .toLowerCase()
            .normalize("NFD")
            .replace(/[^a-z]/g, "")}.${r.alnum(4)}@${r.skewed(WORDS)}.${r.pick(TLDS)}",` +
            `"displayName":${JSON.stringify(name)},"locale":"${r.pick(["en-US", "de-DE", "fr-FR", "es-ES", "ja-JP", "pl-PL", "vi-VN", "sv-SE"])}","mfa":${r.chance(0.4)},"msg":"${r.pick(["login succeeded", "token refreshed", "profile updated", "session created", "password reset requested"])}"}`,
          true,
        ),
      );
    } else if (k < 0.95) {
      emit(
        out(
          `${base},"job":"${r.pick(["send-email", "refresh-jwks", "sync-directory", "expire-sessions"])}","jobId":"${r.range(100000, 999999)}","attempt":${r.range(1, 3)},"durationMs":${r.latencyMs(120).toFixed(0)},"msg":"job finished"}`,
          true,
        ),
      );
    } else {
      emit(
        out(
          `${base},"err":{"type":"${r.pick(["FetchError", "TimeoutError", "ValidationError", "JsonWebTokenError"])}","message":${JSON.stringify(`${r.pick(["request to https://", "invalid signature for ", "timeout after 5000ms calling "])}${r.pick(UPSTREAMS)} ${r.pick(["failed", "rejected", "aborted"])}`)},` +
            `"stack":"Error: ${r.pick(["socket hang up", "invalid token", "aborted"])}\\n    at ${r.pick(["ClientRequest", "Verifier", "Timeout"])}.<anonymous> (/app/dist/${r.pick(["client", "auth", "jobs"])}.js:${r.range(10, 900)}:${r.range(5, 60)})\\n    at process.processTicksAndRejections (node:internal/process/task_queues:105:5)"},"msg":"request failed"}`,
          true,
        ),
      );
    }
  };
}

function ingress(): Generator {
  return (r, clock, emit) => {
    if (r.chance(0.96)) {
      const st = status(r);
      const path = requestPath(r);
      const bytes = responseBytes(r, path, st);
      const t = r.latencyMs(0.02);
      const ns = r.pick(["checkout", "auth", "search", "payments", "web"]);
      const svc = `${ns}-${r.pick(["api", "frontend", "gateway"])}`;
      const port = [8080, 8443, 3000, 9000][svc.length % 4]!;
      const upstream = `${r.pod().ip}:${port}`;
      const client = r.session();
      const referer = r.chance(0.4)
        ? `"https://${r.pick(["shop", "www", "m", "app"])}.example.${r.pick(["com", "de", "fr"])}${r.skewed(PAGES)}"`
        : `"-"`;
      emit(
        out(
          `${client.ip} - - [${nginxTime(clock.ms)}] "${method(r)} ${path} HTTP/${r.chance(0.6) ? "2.0" : "1.1"}" ${st} ${bytes} ${referer} "${client.ua}" ` +
            `${client.requestBytes + r.int(40)} ${t.toFixed(3)} [${ns}-${svc}-${port}] [] ${upstream} ${bytes} ${(t * 0.97).toFixed(3)} ${st} ${r.hex(32)}`,
        ),
      );
    } else {
      emit(
        err(
          `${r.chance(0.8) ? "I" : "W"}${klogTime(clock.ms, r)}       ${r.range(7, 12)} ${r.pick(['controller.go:190] "Configuration changes detected, backend reload required"', 'backend_ssl.go:67] "Adding secret to local store"', 'store.go:440] "Found valid IngressClass"', 'event.go:377] "Event occurred" object="ingress-nginx/ingress-nginx-controller" reason="RELOAD" message="NGINX reload triggered due to a change in configuration"', 'controller.go:210] "Backend successfully reloaded"'])} ingress="${r.pick(["checkout", "auth", "search", "web"])}/${r.skewed(WORDS)}-${r.range(1, 40)}" generation=${r.range(1, 9000)}`,
        ),
      );
    }
  };
}

function klog(component: string): Generator {
  return (r, clock, emit) => {
    const k = r.next();
    const sev = k < 0.85 ? "I" : k < 0.97 ? "W" : "E";
    const head = `${sev}${klogTime(clock.ms, r)}       1 `;
    const pod = r.pod();
    if (component === "coredns") {
      const name = `${r.skewed(WORDS)}.${r.pick(["checkout", "auth", "search", "payments", "data"])}.svc.cluster.local.`;
      emit(
        out(
          `[INFO] ${pod.ip}:${r.range(1024, 65535)} - ${r.range(1, 65535)} "${r.pick(["A", "AAAA", "A", "SRV"])} IN ${name} ${r.chance(0.9) ? "udp" : "tcp"} ${r.range(40, 90)} false ${r.pick([512, 1232, 4096])}" ${r.chance(0.85) ? "NOERROR" : "NXDOMAIN"} qr,aa,rd ${r.range(60, 300)} ${(r.latencyMs(0.2) / 1000).toFixed(6)}s`,
        ),
      );
      return;
    }
    const choice = r.int(6);
    if (choice === 0)
      emit(
        err(
          `${head}reflector.go:${r.range(300, 600)}] "Watch close" reflector="k8s.io/client-go/informers/factory.go:160" type="*v1.${r.pick(["Pod", "Endpoints", "Node", "Service", "EndpointSlice"])}" totalItems=${r.range(1, 5000)}`,
        ),
      );
    else if (choice === 1)
      emit(
        err(
          `${head}event.go:${r.range(290, 400)}] "Event occurred" object="${pod.name}" fieldPath="" kind="Pod" apiVersion="v1" type="${sev === "I" ? "Normal" : "Warning"}" reason="${r.pick(["Scheduled", "Pulled", "Created", "Started", "Killing", "BackOff", "Unhealthy"])}" message="${r.pick(["Successfully assigned", "Container image already present on machine for", "Readiness probe failed for", "Stopping container in"])} ${pod.name} ${r.chance(0.5) ? `to node-${r.range(1, 400)}` : `after ${r.range(1, 600)}s`}"`,
        ),
      );
    else if (choice === 2)
      emit(
        err(
          `${head}proxier.go:${r.range(700, 1600)}] "SyncProxyRules complete" ipFamily="IPv4" elapsed="${r.latencyMs(40).toFixed(6)}ms" numServices=${r.range(200, 900)} numEndpoints=${r.range(900, 6000)} numFilterChains=${r.range(4, 8)} numFilterRules=${r.range(3, 40)} numNATChains=${r.range(400, 1500)} numNATRules=${r.range(1500, 9000)}`,
        ),
      );
    else if (choice === 3)
      emit(
        err(
          `${head}csi_attacher.go:${r.range(100, 900)}] kubernetes.io/csi: attacher.MountDevice STAGE_UNSTAGE_VOLUME capability is set; volume=pvc-${pod.uid} node=node-${r.range(1, 400)} target=/var/lib/kubelet/plugins/kubernetes.io/csi/ebs.csi.aws.com/${pod.containerId}/globalmount`,
        ),
      );
    else if (choice === 4)
      emit(
        err(
          `${head}leaderelection.go:${r.range(250, 360)}] ${sev === "E" ? `error retrieving resource lock kube-system/${component}: Get "https://10.96.0.1:443/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/${component}?timeout=5s": context deadline exceeded` : `successfully renewed lease kube-system/${component}`}`,
        ),
      );
    else
      emit(
        err(
          `${head}${r.pick(["kubelet.go", "status_manager.go", "prober.go", "kuberuntime_manager.go"])}:${r.range(100, 2500)}] "${r.pick(["SyncLoop (PLEG): event for pod", "Probe failed", "Status for pod updated", "Killing unwanted pod"])}" pod="${pod.name}" podUID="${pod.uid}" containerID="containerd://${pod.containerId}"`,
        ),
      );
  };
}

const JAVA_PKGS = ["payments", "orders", "ledger", "search", "catalog", "fraud", "settlement", "pricing"];
const JAVA_KINDS = [
  "Controller",
  "Service",
  "Repository",
  "Client",
  "Handler",
  "Mapper",
  "Validator",
  "Listener",
];
const JAVA_METHODS = [
  "process",
  "authorize",
  "capture",
  "find",
  "save",
  "handle",
  "apply",
  "validate",
  "lookup",
  "index",
  "query",
  "map",
];
const FRAMEWORK_FRAMES = [
  "org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:885)",
  "org.springframework.web.servlet.DispatcherServlet.doDispatch(DispatcherServlet.java:1089)",
  "org.springframework.web.servlet.mvc.method.annotation.RequestMappingHandlerAdapter.handleInternal(RequestMappingHandlerAdapter.java:793)",
  "org.springframework.transaction.interceptor.TransactionInterceptor.invoke(TransactionInterceptor.java:119)",
  "org.springframework.aop.framework.CglibAopProxy$DynamicAdvisedInterceptor.intercept(CglibAopProxy.java:713)",
  "org.springframework.data.jpa.repository.support.SimpleJpaRepository.save(SimpleJpaRepository.java:618)",
  "org.hibernate.engine.jdbc.spi.SqlExceptionHelper.convert(SqlExceptionHelper.java:56)",
  "com.zaxxer.hikari.pool.HikariPool.getConnection(HikariPool.java:181)",
  "jakarta.servlet.http.HttpServlet.service(HttpServlet.java:658)",
  "org.apache.catalina.core.ApplicationFilterChain.doFilter(ApplicationFilterChain.java:140)",
  "org.apache.coyote.http11.Http11Processor.service(Http11Processor.java:391)",
  "org.apache.tomcat.util.net.NioEndpoint$SocketProcessor.doRun(NioEndpoint.java:1740)",
  "java.base/java.util.concurrent.ThreadPoolExecutor.runWorker(ThreadPoolExecutor.java:1144)",
  "java.base/java.util.concurrent.ThreadPoolExecutor$Worker.run(ThreadPoolExecutor.java:642)",
  "java.base/java.lang.Thread.run(Thread.java:1583)",
  "io.netty.channel.AbstractChannelHandlerContext.invokeChannelRead(AbstractChannelHandlerContext.java:444)",
  "reactor.core.publisher.FluxMap$MapSubscriber.onNext(FluxMap.java:122)",
];
const JAVA_EXCEPTIONS = [
  "java.lang.IllegalStateException: Payment already captured",
  "org.springframework.dao.DataIntegrityViolationException: could not execute statement; SQL [n/a]; constraint [uk_payment_idempotency_key]",
  "java.net.SocketTimeoutException: Read timed out",
  'java.lang.NullPointerException: Cannot invoke "com.acme.payments.model.Card.getToken()" because "card" is null',
  "org.springframework.web.client.HttpServerErrorException$ServiceUnavailable: 503 Service Unavailable",
  "java.util.concurrent.TimeoutException: Did not observe any item or terminal signal within 5000ms",
  'com.fasterxml.jackson.databind.exc.InvalidFormatException: Cannot deserialize value of type `java.math.BigDecimal` from String "12,50"',
];

function java(service: string): Generator {
  return (r, clock, emit) => {
    const thread = r.chance(0.8)
      ? `nio-8080-exec-${r.range(1, 200)}`
      : `${r.pick(["scheduling", "kafka-consumer", "task"])}-${r.range(1, 16)}`;
    const pkg = r.pick(JAVA_PKGS);
    const kind = r.pick(JAVA_KINDS);
    const logger = `c.a.${pkg}.${kind.toLowerCase()}.${pkg[0]!.toUpperCase()}${pkg.slice(1)}${kind}`;
    const head = (level: string) =>
      `${logbackTime(clock.ms)} ${level.padStart(5)} 1 --- [${service}] [${thread.padStart(15).slice(-15)}] [${r.trace()}-${r.span()}] ${logger.padEnd(40).slice(0, 40)} :`;
    const k = r.next();
    if (k < 0.5) {
      emit(
        out(
          `${head("INFO")} ${r.pick(["Payment", "Order", "Refund", "Settlement"])} ${r.subject()} ${r.pick(["authorized", "captured", "created", "settled", "queued"])} for merchant ${r.range(10000, 99999)} amount=${(r.next() * 900 + 1).toFixed(2)} ${r.pick(["EUR", "USD", "GBP", "PLN", "SEK"])} in ${r.latencyMs(40).toFixed(0)} ms`,
        ),
      );
    } else if (k < 0.75) {
      emit(
        out(
          `${head("DEBUG")} Executing ${r.pick(["SELECT", "UPDATE", "INSERT INTO"])} ${r.pick(TABLES)} [id=${r.range(1, 99_999_999)}, version=${r.range(1, 40)}, tenant=${r.skewed(WORDS)}-${r.range(1, 400)}] took ${r.latencyMs(3).toFixed(2)} ms, ${r.int(20)} row(s)`,
        ),
      );
    } else if (k < 0.9) {
      const client = r.session();
      emit(
        out(
          `${head("INFO")} HTTP ${method(r)} ${requestPath(r)} -> ${status(r)} (${r.latencyMs(30).toFixed(0)} ms, client=${client.ip}, ua="${client.ua}")`,
        ),
      );
    } else if (k < 0.985) {
      emit(
        out(
          `${head("WARN")} ${r.pick(["Retrying", "Slow call to", "Circuit half-open for", "Falling back for"])} ${r.pick(UPSTREAMS)} after ${r.latencyMs(800).toFixed(0)} ms (attempt ${r.range(1, 5)}/5, requestId=${r.uuid()})`,
        ),
      );
    } else {
      // A stack trace: logback prints the exception and every frame on its own line.
      emit(out(`${head("ERROR")} Request processing failed for ${requestPath(r)} [requestId=${r.uuid()}]`));
      emit(out(r.pick(JAVA_EXCEPTIONS)));
      const appFrames = r.range(3, 10);
      for (let i = 0; i < appFrames; i++) {
        const p = r.pick(JAVA_PKGS);
        const kd = r.pick(JAVA_KINDS);
        const cls = `${p[0]!.toUpperCase()}${p.slice(1)}${kd}`;
        emit(
          out(
            `\tat com.acme.${p}.${kd.toLowerCase()}.${cls}.${r.pick(JAVA_METHODS)}(${cls}.java:${r.range(20, 900)})`,
          ),
        );
      }
      const fw = r.range(8, 30);
      for (let i = 0; i < fw; i++) emit(out(`\tat ${r.pick(FRAMEWORK_FRAMES)}`));
      if (r.chance(0.5)) {
        emit(out(`Caused by: ${r.pick(JAVA_EXCEPTIONS)}`));
        const n = r.range(2, 6);
        for (let i = 0; i < n; i++) emit(out(`\tat ${r.pick(FRAMEWORK_FRAMES)}`));
        emit(out(`\t... ${r.range(20, 90)} common frames omitted`));
      }
    }
  };
}

function python(job: string): Generator {
  return (r, clock, emit) => {
    const head = (level: string) =>
      `${pythonTime(clock.ms)} ${level} [${job}-worker-${r.range(0, 15)}] ${r.pick(["etl.load", "etl.extract", "etl.transform", "jobs.export", "jobs.reconcile"])}:`;
    const k = r.next();
    if (k < 0.5) {
      const rows = r.range(100, 500000);
      const secs = r.latencyMs(3000) / 1000;
      emit(
        out(
          `${head("INFO")} loaded ${rows} rows into staging.${r.pick(TABLES)}_${isoMs(clock.ms).slice(0, 10).replaceAll("-", "")} in ${secs.toFixed(2)}s (${(rows / secs).toFixed(0)} rows/s), partition=${r.int(64)}${r.chance(0.3) ? ` checksum=${r.hex(16)}` : ""}`,
        ),
      );
    } else if (k < 0.75) {
      emit(
        out(
          `${head("INFO")} fetched s3://acme-exports-${r.pick(["eu", "us"])}/${r.skewed(WORDS)}/${isoMs(
            clock.ms - r.int(86_400_000),
          )
            .slice(0, 13)
            .replace(
              "T",
              "/",
            )}/part-${String(r.int(10000)).padStart(5, "0")}-${r.subject()}.snappy.parquet (${(r.next() * 200).toFixed(1)} MiB)`,
        ),
      );
    } else if (k < 0.9) {
      emit(
        err(
          `${head("WARNING")} skipped ${r.range(1, 400)} malformed record(s) in batch ${r.range(1, 90000)}: ${r.pick(["missing field 'customer_id'", "invalid date '2026-02-30'", "amount out of range", "duplicate key"])} (first offset ${r.range(0, 10_000_000)})`,
        ),
      );
    } else if (k < 0.99) {
      emit(
        out(
          `${head("DEBUG")} ${r.pick(["commit", "checkpoint", "heartbeat"])} job_id=${r.trace()} lag=${r.int(5000)} memory_rss_mb=${r.range(200, 4000)} open_files=${r.range(20, 900)}`,
        ),
      );
    } else {
      emit(err("Traceback (most recent call last):"));
      const n = r.range(3, 8);
      for (let i = 0; i < n; i++) {
        emit(
          err(
            `  File "/app/${r.pick(["etl", "jobs", "lib"])}/${r.skewed(WORDS)}.py", line ${r.range(10, 900)}, in ${r.pick(["run", "load", "_transform", "flush", "__call__"])}`,
          ),
        );
        emit(
          err(
            `    ${r.pick(["rows = self._read(batch)", "return conn.execute(stmt, params)", "raise RetryError(last_exc)", "value = Decimal(record[key])", "for chunk in reader:"])}`,
          ),
        );
      }
      emit(
        err(
          `${r.pick(["psycopg2.errors.SerializationFailure: could not serialize access due to concurrent update", "decimal.InvalidOperation: [<class 'decimal.ConversionSyntax'>]", "botocore.exceptions.ReadTimeoutError: Read timeout on endpoint URL", "KeyError: 'customer_id'"])}`,
        ),
      );
    }
  };
}

function ml(): Generator {
  let step = 0;
  let epoch = 1;
  return (r, _clock, emit) => {
    step += r.range(1, 20);
    if (step > 5000) {
      step = 0;
      epoch++;
    }
    if (r.chance(0.9)) {
      emit(
        out(
          `Epoch ${epoch}/50 step ${step}/5000 loss=${(2 / (epoch + step / 5000) + r.next() * 0.1).toFixed(4)} acc=${(0.5 + 0.45 * (1 - 1 / (epoch + 1)) + r.next() * 0.02).toFixed(4)} lr=${(3e-4 * 0.97 ** epoch).toExponential(3)} grad_norm=${(r.next() * 3).toFixed(3)} throughput=${(700 + r.next() * 200).toFixed(1)} samples/s gpu_mem=${(12 + r.next() * 4).toFixed(2)}GiB`,
        ),
      );
    } else {
      emit(
        out(
          `[rank ${r.int(8)}] saved checkpoint s3://acme-models/${r.pick(["ranker", "fraud", "reco"])}-v${r.range(10, 40)}/epoch-${epoch}/step-${step}/shard-${r.int(8)}.pt sha256=${r.hex(64)} (${(r.next() * 2000).toFixed(0)} MiB in ${(r.next() * 30).toFixed(1)}s)`,
        ),
      );
    }
  };
}

function generatorFor(profile: AppProfile, app: string): Generator {
  switch (profile) {
    case "go-json":
      return goJson(app);
    case "node-json":
      return nodeJson(app);
    case "ingress":
      return ingress();
    case "klog":
      return klog(app);
    case "java":
      return java(app);
    case "python":
      return python(app);
    case "ml":
      return ml();
  }
}

/** A JSON document far longer than 16 KiB on one line, as a service dumping a response or its config does. */
function longJsonLine(r: Rand, clock: Clock, minBytes: number): string {
  let s = `{"level":"debug","ts":"${isoMs(clock.ms)}","msg":"response body","items":[`;
  let first = true;
  while (s.length < minBytes) {
    s += `${first ? "" : ","}{"sku":"${r.alnum(3).toUpperCase()}-${r.range(10000, 99999)}","name":${JSON.stringify(`${r.skewed(WORDS)} ${r.skewed(WORDS)} ${r.pick(NAMES)}`)},"price_cents":${r.range(99, 99999)},"stock":${r.int(500)},"warehouse":"${r.skewed(WORDS)}-${r.range(1, 40)}","updated_at":"${isoMs(clock.ms - r.int(1e9))}"}`;
    first = false;
  }
  return `${s}]}`;
}

// ---------------------------------------------------------------- writers

export interface RealisticWriterOptions {
  root: string;
  namespace: string;
  pod: string;
  container: string;
  profile: AppProfile;
  /** The application's name as it logs it (service, component or job). */
  app: string;
  /** Unique small integer; part of every lid. */
  id: number;
  seed: number;
  /** Timestamp of the first line, ms since the epoch. */
  startMs: number;
  /** This container's log rate: its clock moves on by each line's bytes over this rate. */
  bytesPerSecond: number;
  /** The pod's UID (its directory name's last part); containers of one pod share it. */
  podUid: string;
}

/** Appends one container's CRI log (0.log), as its runtime would. */
export class RealisticLogWriter {
  readonly path: string;
  readonly id: number;
  readonly profile: AppProfile;
  /** Logical lines written; their lids are `<id>:0` … `<id>:<count-1>`. */
  count = 0;
  bytes = 0;
  #fd: number;
  #r: Rand;
  #clock: Clock;
  #nanos = 0;
  #bytesPerMs: number;
  #generate: Generator;
  #pending: string[] = [];
  #pendingBytes = 0;

  constructor(o: RealisticWriterOptions) {
    this.#r = new Rand(o.seed);
    const dir = join(o.root, `${o.namespace}_${o.pod}_${o.podUid}`, o.container);
    mkdirSync(dir, { recursive: true });
    this.path = join(dir, "0.log");
    this.id = o.id;
    this.profile = o.profile;
    this.#clock = { ms: o.startMs };
    this.#bytesPerMs = o.bytesPerSecond / 1000;
    this.#generate = generatorFor(o.profile, o.app);
    this.#fd = openSync(this.path, "a");
  }

  /** Every lid written, in order. */
  lids(): string[] {
    return Array.from({ length: this.count }, (_, n) => `${this.id}:${n}`);
  }

  /** containerd's RFC 3339 timestamp with nanoseconds, trailing zeros trimmed. */
  #criTime(): string {
    const iso = isoMs(this.#clock.ms);
    const frac = `${iso.slice(20, 23)}${String(this.#nanos).padStart(6, "0")}`.replace(/0+$/, "");
    return frac === "" ? `${iso.slice(0, 19)}Z` : `${iso.slice(0, 19)}.${frac}Z`;
  }

  #append(s: string): void {
    this.#pending.push(s);
    const n = Buffer.byteLength(s);
    this.#pendingBytes += n;
    this.bytes += n;
    // The clock follows the bytes: this container logs at its rate.
    this.#clock.ms += Math.round((n / this.#bytesPerMs) * (0.5 + this.#r.next()));
    this.#nanos = this.#r.int(1_000_000);
    if (this.#pendingBytes >= WRITE_CHUNK) this.flush();
  }

  #emit = (l: Line): void => {
    const lid = `lid=${this.id}:${this.count++}`;
    const text = l.json ? `${l.text.slice(0, -1)},"lid":"${lid}"}` : `${l.text} ${lid}`;
    this.#append(`${this.#criTime()} ${l.stream} F ${text}\n`);
  };

  /** Writes logical lines until at least `bytes` more are written. */
  writeBytes(bytes: number): void {
    const until = this.bytes + bytes;
    const r = this.#r;
    while (this.bytes < until) {
      const k = r.next();
      if (k < 0.0004) {
        // A line the runtime splits: P chunks, then the rest in F.
        const lid = `lid=${this.id}:${this.count++}`;
        const body = `${longJsonLine(r, this.#clock, r.range(CRI_CHUNK + 1000, 4 * CRI_CHUNK)).slice(0, -1)},"lid":"${lid}"}`;
        let at = 0;
        while (Buffer.byteLength(body.slice(at)) > CRI_CHUNK) {
          // The generated JSON is ASCII, so characters are bytes.
          this.#append(`${this.#criTime()} stdout P ${body.slice(at, at + CRI_CHUNK)}\n`);
          at += CRI_CHUNK;
        }
        this.#append(`${this.#criTime()} stdout F ${body.slice(at)}\n`);
      } else if (k < 0.0005) {
        this.#append(`panic: ${r.pick(GO_ERRORS)} (no runtime header) lid=${this.id}:${this.count++}\n`);
      } else {
        this.#generate(r, this.#clock, this.#emit);
      }
    }
  }

  flush(): void {
    if (this.#pending.length === 0) return;
    writeSync(this.#fd, Buffer.from(this.#pending.join(""), "utf8"));
    this.#pending = [];
    this.#pendingBytes = 0;
  }

  close(): void {
    this.flush();
    closeSync(this.#fd);
  }
}

/** One namespace's pods: what they run and how they log. */
export interface NamespaceSpec {
  namespace: string;
  pods: {
    pod: string;
    container: string;
    profile: AppProfile;
    app: string /** Share of the node's log bytes. */;
    weight: number;
  }[];
}

/**
 * The default node: eight namespaces, 32 containers, by byte share about 40% JSON (Go and
 * Node.js services), 22% ingress access lines, 18% Java (logback and stack traces), 10%
 * Python batch jobs and ML training, 10% Kubernetes components (klog, CoreDNS).
 */
export const DEFAULT_NODE: readonly NamespaceSpec[] = [
  {
    namespace: "checkout",
    pods: [
      {
        pod: "checkout-api-7c9f5d8b6-x2k4q",
        container: "api",
        profile: "go-json",
        app: "checkout-api",
        weight: 8,
      },
      {
        pod: "checkout-api-7c9f5d8b6-p9m2z",
        container: "api",
        profile: "go-json",
        app: "checkout-api",
        weight: 8,
      },
      { pod: "cart-6d8f7b9c5-l4n8w", container: "cart", profile: "go-json", app: "cart", weight: 5 },
      { pod: "pricing-5b7c9d6f8-q2w3e", container: "pricing", profile: "go-json", app: "pricing", weight: 4 },
    ],
  },
  {
    namespace: "auth",
    pods: [
      { pod: "auth-api-85f6c7d9b-r5t6y", container: "api", profile: "node-json", app: "auth-api", weight: 6 },
      { pod: "auth-api-85f6c7d9b-u7i8o", container: "api", profile: "node-json", app: "auth-api", weight: 6 },
      {
        pod: "sessions-7f8e9d6c5-a1s2d",
        container: "sessions",
        profile: "node-json",
        app: "sessions",
        weight: 2,
      },
      {
        pod: "jwks-refresher-28934712-f3g4h",
        container: "job",
        profile: "node-json",
        app: "jwks",
        weight: 1,
      },
    ],
  },
  {
    namespace: "ingress-nginx",
    pods: [
      {
        pod: "ingress-nginx-controller-6b9f8d7c5-j5k6l",
        container: "controller",
        profile: "ingress",
        app: "ingress",
        weight: 12,
      },
      {
        pod: "ingress-nginx-controller-6b9f8d7c5-z7x8c",
        container: "controller",
        profile: "ingress",
        app: "ingress",
        weight: 8,
      },
      {
        pod: "ingress-nginx-internal-5c6d7e8f9-v9b0n",
        container: "controller",
        profile: "ingress",
        app: "ingress",
        weight: 2,
      },
      {
        pod: "ingress-nginx-admission-patch-m1q2w",
        container: "patch",
        profile: "klog",
        app: "ingress-admission",
        weight: 0.2,
      },
    ],
  },
  {
    namespace: "payments",
    pods: [
      {
        pod: "payments-api-6f7d8c9b5-e3r4t",
        container: "api",
        profile: "java",
        app: "payments-api",
        weight: 6,
      },
      {
        pod: "payments-api-6f7d8c9b5-y5u6i",
        container: "api",
        profile: "java",
        app: "payments-api",
        weight: 6,
      },
      { pod: "ledger-7d8e9f0a1-o7p8a", container: "ledger", profile: "java", app: "ledger", weight: 3 },
      {
        pod: "payments-api-6f7d8c9b5-e3r4t",
        container: "istio-proxy",
        profile: "ingress",
        app: "envoy",
        weight: 1,
      },
    ],
  },
  {
    namespace: "search",
    pods: [
      { pod: "search-api-5d6e7f8a9-s9d0f", container: "api", profile: "java", app: "search-api", weight: 2 },
      { pod: "search-indexer-0", container: "indexer", profile: "java", app: "indexer", weight: 1 },
      {
        pod: "search-gateway-6e7f8a9b0-g1h2j",
        container: "gateway",
        profile: "go-json",
        app: "search-gateway",
        weight: 2,
      },
      {
        pod: "search-gateway-6e7f8a9b0-k3l4z",
        container: "gateway",
        profile: "go-json",
        app: "search-gateway",
        weight: 2,
      },
    ],
  },
  {
    namespace: "batch-jobs",
    pods: [
      {
        pod: "nightly-export-28934760-x5c6v",
        container: "export",
        profile: "python",
        app: "export",
        weight: 2,
      },
      {
        pod: "reconcile-ledger-28934700-b7n8m",
        container: "reconcile",
        profile: "python",
        app: "reconcile",
        weight: 2,
      },
      { pod: "etl-orders-28934755-q9w0e", container: "etl", profile: "python", app: "etl", weight: 2 },
      { pod: "etl-customers-28934755-r1t2y", container: "etl", profile: "python", app: "etl", weight: 1 },
    ],
  },
  {
    namespace: "ml-training",
    pods: [
      { pod: "ranker-train-worker-0", container: "trainer", profile: "ml", app: "ranker", weight: 1.5 },
      { pod: "ranker-train-worker-1", container: "trainer", profile: "ml", app: "ranker", weight: 1.5 },
      { pod: "fraud-train-worker-0", container: "trainer", profile: "ml", app: "fraud", weight: 1 },
      {
        pod: "fraud-train-worker-0",
        container: "data-loader",
        profile: "python",
        app: "loader",
        weight: 0.5,
      },
    ],
  },
  {
    namespace: "kube-system",
    pods: [
      { pod: "coredns-5d78c9869d-u3i4o", container: "coredns", profile: "klog", app: "coredns", weight: 4 },
      { pod: "kube-proxy-p5a6s", container: "kube-proxy", profile: "klog", app: "kube-proxy", weight: 2 },
      { pod: "ebs-csi-node-d7f8g", container: "ebs-plugin", profile: "klog", app: "ebs-csi", weight: 2 },
      {
        pod: "aws-node-h9j0k",
        container: "aws-node",
        profile: "klog",
        app: "kube-controller-manager",
        weight: 1.5,
      },
    ],
  },
];

export interface RealisticWorkload {
  writers: RealisticLogWriter[];
  namespaces: string[];
  /** Every lid written so far. */
  lids(): string[];
  bytes(): number;
  /** Writes about `bytes` more in all, shared between the containers by their weights. */
  writeBytes(bytes: number): void;
  close(): void;
}

/** Containers of `node` (default DEFAULT_NODE) under `root`, logging `nodeBytesPerDay` in all. */
export function createRealisticWorkload(o: {
  root: string;
  seed: number;
  startMs: number;
  node?: readonly NamespaceSpec[];
  /** The node's log rate, which sets how far timestamps move on; default 5 GB a day. */
  nodeBytesPerDay?: number;
}): RealisticWorkload {
  const node = o.node ?? DEFAULT_NODE;
  const perSecond = (o.nodeBytesPerDay ?? 5e9) / 86_400;
  const total = node.reduce((n, ns) => n + ns.pods.reduce((m, p) => m + p.weight, 0), 0);
  const writers: RealisticLogWriter[] = [];
  const shares: number[] = [];
  const uids = new Rand(o.seed);
  const podUids = new Map<string, string>();
  for (const ns of node) {
    for (const p of ns.pods) {
      const id = writers.length;
      const pod = `${ns.namespace}/${p.pod}`;
      if (!podUids.has(pod)) podUids.set(pod, uids.uuid());
      shares.push(p.weight / total);
      writers.push(
        new RealisticLogWriter({
          root: o.root,
          namespace: ns.namespace,
          pod: p.pod,
          container: p.container,
          profile: p.profile,
          app: p.app,
          id,
          seed: o.seed * 1000 + id + 1,
          startMs: o.startMs,
          bytesPerSecond: (perSecond * p.weight) / total,
          podUid: podUids.get(pod)!,
        }),
      );
    }
  }
  return {
    writers,
    namespaces: node.map((ns) => ns.namespace),
    lids: () => writers.flatMap((w) => w.lids()),
    bytes: () => writers.reduce((s, w) => s + w.bytes, 0),
    writeBytes: (bytes) => {
      writers.forEach((w, i) => {
        w.writeBytes(bytes * shares[i]!);
      });
    },
    close: () => {
      for (const w of writers) w.close();
    },
  };
}
