// A self-contained sample workload for `logarchive local`: container log files laid out as
// kubelet and containerd write them, so a fresh clone has logs to ship without any input.
//
//   <root>/<namespace>_<pod>_<pod-uid>/<container>/<restart-count>.log
//
// Six namespaces with a few pods each write what such pods write: JSON app logs (Java,
// Go, Node.js, Python), ingress-nginx access lines, plain text, Java/Python/Go stack traces
// (one CRI line per line of the trace, as runtimes write them), stdout and stderr. Lines
// are in CRI format with containerd's timestamps (RFC 3339, nanoseconds, trailing zeros
// trimmed, UTC); lines over 16 KiB are split into 16384-byte `P` chunks and some others at
// arbitrary points (as a writer flushing mid-line produces), sometimes with the other
// stream's line in between. A few lines carry invalid UTF-8 and one line is not CRI at all.
// kube-system is there because the default policy archives it but keeps it out of analytics.
//
// Counts are of logical lines: what the shipper archives as records (a P…F chain is one
// record; the malformed line is one record with parse_error), with multi-line merging off,
// its default. A P…F chain never spans two files, so reading each file on its own (as
// `logarchive parse` does) gives the same counts as the shipper following rotations.
//
// Everything derives from the seed (and, for the backlog, `now`), so a run can be replayed.

import { appendFile, mkdir, rename, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";

export interface SampleBacklogOptions {
  root: string;
  /** Logical lines to write, across all containers. */
  lines: number;
  seed: number;
  /** End of the backlog's time range, epoch ms. Default: now. */
  now?: number;
  /** Length of the time range the lines are spread over. Default 10 minutes. */
  spanMs?: number;
}

export interface SampleCounts {
  /** Logical lines written: the records the shipper archives from them. */
  lines: number;
  linesByNamespace: Record<string, number>;
  /** Of those, lines that are not CRI and become records with parse_error. */
  malformedByNamespace: Record<string, number>;
  /** Every file written, under its current name (rotated files included). */
  files: string[];
}

export interface LiveSampleOptions {
  root: string;
  linesPerSecond: number;
  seed: number;
  /** A container's `<n>.log` is renamed to `<n>.log.<YYYYMMDD-HHMMSS>` once it reaches this size. Default 1 MiB. */
  rotateBytes?: number;
  /** How often lines are appended. Default 100 ms. */
  tickMs?: number;
  /**
   * Seed of the pods' names and uids; default `seed`. A workload started again on the same
   * root with the same layoutSeed appends to the same files, as a node's pods go on writing
   * while the shipper restarts, so nothing written before falls out of the shipper's globs.
   */
  layoutSeed?: number;
}

export interface LiveSampleWorkload {
  /** What has been written so far. */
  counts(): SampleCounts;
  /** Stops after the current write; resolves with the final counts. */
  stop(): Promise<SampleCounts>;
}

/** The namespaces the sample writes to; kube-system is archived but not loaded by the default policy. */
export const SAMPLE_NAMESPACES = [
  "payments",
  "checkout",
  "search",
  "ingress-nginx",
  "kube-system",
  "batch-jobs",
] as const;

/** containerd's `max_container_log_line_size`: longer output is split into `P` chunks of this size. */
export const CRI_SPLIT_BYTES = 16_384;

const FLUSH_BYTES = 1024 * 1024;

// ------------------------------------------------------------------ randomness

type Random = () => number;

/** mulberry32: small, fast and deterministic for a seed. */
function seeded(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const int = (r: Random, min: number, max: number) => min + Math.floor(r() * (max - min + 1));
const pick = <T>(r: Random, items: readonly T[]): T => items[Math.floor(r() * items.length)]!;
const chance = (r: Random, p: number) => r() < p;
const hex = (r: Random, n: number) =>
  Array.from({ length: n }, () => "0123456789abcdef"[int(r, 0, 15)]).join("");
const alnum = (r: Random, n: number) =>
  Array.from({ length: n }, () => "bcdfghjklmnpqrstvwxz2456789"[int(r, 0, 26)]).join("");
const uuid = (r: Random) =>
  `${hex(r, 8)}-${hex(r, 4)}-4${hex(r, 3)}-${pick(r, ["8", "9", "a", "b"])}${hex(r, 3)}-${hex(r, 12)}`;
const ip = (r: Random) => `10.${int(r, 0, 3)}.${int(r, 0, 15)}.${int(r, 2, 250)}`;

function weighted<T>(r: Random, items: readonly (readonly [T, number])[]): T {
  const total = items.reduce((n, [, w]) => n + w, 0);
  let x = r() * total;
  for (const [item, w] of items) {
    x -= w;
    if (x < 0) return item;
  }
  return items.at(-1)![0];
}

// ------------------------------------------------------------------ what containers write

type Stream = "stdout" | "stderr";

/** One logical line as the container wrote it (without the newline). */
interface OutputLine {
  stream: Stream;
  text: string | Buffer;
}

/** Writes one event: a line, or the several lines of a stack trace. */
type Style = (r: Random, t: number) => OutputLine[];

const out = (text: string | Buffer): OutputLine => ({ stream: "stdout", text });
const err = (text: string | Buffer): OutputLine => ({ stream: "stderr", text });

const iso = (t: number) => new Date(t).toISOString();
const CUSTOMERS = [
  "Ana Lima",
  "Jürgen Groß",
  "Zoë Martin",
  "Søren Ås",
  "Chloé Dubois",
  "Mateo Núñez",
  "李雷",
];
const SKUS = ["SKU-1001", "SKU-2040", "SKU-3300", "SKU-4521", "SKU-7788"];
const PATHS = [
  "/api/v1/cart",
  "/api/v1/cart/items",
  "/api/v1/checkout",
  "/api/v1/payments/charge",
  "/api/v1/search?q=running+shoes",
  "/api/v1/search?q=t%C3%A9l%C3%A9phone",
  "/healthz",
  "/static/app.4f2a9c.js",
  "/favicon.ico",
];
const AGENTS = [
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
  "kube-probe/1.31",
  "curl/8.5.0",
  "Go-http-client/2.0",
];

function javaTrace(r: Random, exception: string, message: string): string[] {
  const frames = [
    "com.acme.payments.gateway.StripeClient.charge(StripeClient.java:214)",
    "com.acme.payments.service.ChargeService.authorize(ChargeService.java:87)",
    "com.acme.payments.web.ChargeController.create(ChargeController.java:52)",
    "java.base/jdk.internal.reflect.DirectMethodHandleAccessor.invoke(DirectMethodHandleAccessor.java:103)",
    "org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:885)",
    "org.apache.catalina.core.ApplicationFilterChain.doFilter(ApplicationFilterChain.java:138)",
    "org.apache.tomcat.util.threads.ThreadPoolExecutor$Worker.run(ThreadPoolExecutor.java:659)",
    "java.base/java.lang.Thread.run(Thread.java:1583)",
  ];
  const lines = [`${exception}: ${message}`];
  for (const f of frames.slice(0, int(r, 3, frames.length))) lines.push(`\tat ${f}`);
  if (chance(r, 0.5)) {
    lines.push("Caused by: java.net.SocketTimeoutException: Read timed out");
    lines.push("\tat java.base/sun.nio.ch.NioSocketImpl.timedRead(NioSocketImpl.java:278)");
    lines.push(`\t... ${int(r, 8, 40)} more`);
  }
  return lines;
}

const paymentsApi: Style = (r, t) => {
  const level = weighted(r, [
    ["INFO", 80],
    ["DEBUG", 8],
    ["WARN", 8],
    ["ERROR", 4],
  ] as const);
  const base = {
    "@timestamp": iso(t),
    level,
    logger_name: pick(r, [
      "com.acme.payments.web.ChargeController",
      "com.acme.payments.service.ChargeService",
    ]),
    thread_name: `http-nio-8080-exec-${int(r, 1, 24)}`,
    trace_id: hex(r, 32),
    span_id: hex(r, 16),
  };
  if (level === "ERROR") {
    const record = { ...base, message: "Charge failed", customer_id: `cus_${alnum(r, 14)}` };
    // logback prints the exception after the JSON when the encoder is misconfigured;
    // the plain multi-line trace is what most clusters actually see.
    return [
      out(JSON.stringify(record)),
      ...javaTrace(r, "com.acme.payments.GatewayException", "upstream declined: card_declined").map(err),
    ];
  }
  const amount = int(r, 199, 250_000);
  const fields =
    level === "WARN"
      ? { message: "Retrying charge after gateway timeout", attempt: int(r, 1, 3), gateway: "stripe" }
      : {
          message: pick(r, ["Charge authorized", "Refund issued", "Payment intent created"]),
          customer: pick(r, CUSTOMERS),
          amount_cents: amount,
          currency: pick(r, ["EUR", "USD", "GBP", "BRL"]),
          latency_ms: int(r, 12, 900),
        };
  // Now and then a request dump large enough that containerd splits it into P chunks.
  if (level === "DEBUG" && chance(r, 0.15)) {
    const items = Array.from({ length: int(r, 120, 400) }, (_, i) => ({
      line: i,
      sku: pick(r, SKUS),
      qty: int(r, 1, 5),
      note: "gift wrap requested; deliver to the side entrance ".repeat(int(r, 0, 2)),
    }));
    return [out(JSON.stringify({ ...base, message: "Request body", body: { items } }))];
  }
  return [out(JSON.stringify({ ...base, ...fields }))];
};

const ledgerWorker: Style = (r, t) => {
  if (chance(r, 0.004)) {
    return [
      "panic: runtime error: invalid memory address or nil pointer dereference",
      "[signal SIGSEGV: segmentation violation code=0x1 addr=0x18 pc=0x9c6b3a]",
      "",
      `goroutine ${int(r, 20, 900)} [running]:`,
      "github.com/acme/ledger/internal/consumer.(*Consumer).post(0xc0001a2000, {0xc000a4e000, 0x1f4})",
      "\t/src/internal/consumer/consumer.go:131 +0x1ba",
      "github.com/acme/ledger/internal/consumer.(*Consumer).Run(0xc0001a2000, {0x1d4f6a0, 0xc0000b4000})",
      "\t/src/internal/consumer/consumer.go:88 +0x2f4",
      "created by main.main in goroutine 1",
      "\t/src/cmd/ledger/main.go:54 +0x4c5",
    ].map(err);
  }
  const level = weighted(r, [
    ["info", 85],
    ["debug", 10],
    ["warn", 4],
    ["error", 1],
  ] as const);
  return [
    out(
      JSON.stringify({
        level,
        ts: Number((t / 1000).toFixed(6)),
        caller: pick(r, ["consumer/consumer.go:88", "ledger/post.go:42", "kafka/reader.go:311"]),
        msg:
          level === "error" ? "commit offset failed" : pick(r, ["posted journal entry", "batch committed"]),
        entry_id: uuid(r),
        partition: int(r, 0, 11),
        offset: int(r, 10_000, 9_999_999),
      }),
    ),
  ];
};

const checkoutWeb: Style = (r, t) => {
  const stamp = iso(t).replace("T", " ").replace("Z", "").replace(".", ",");
  if (chance(r, 0.01)) {
    return [
      `ERROR ${stamp} log 14 140245 Internal Server Error: /api/v1/checkout`,
      "Traceback (most recent call last):",
      '  File "/usr/local/lib/python3.12/site-packages/django/core/handlers/exception.py", line 55, in inner',
      "    response = get_response(request)",
      '  File "/app/checkout/views.py", line 118, in create_order',
      "    reservation = inventory.reserve(cart.items, timeout=2.0)",
      '  File "/app/checkout/inventory.py", line 64, in reserve',
      "    raise InventoryUnavailable(sku)",
      `checkout.inventory.InventoryUnavailable: ${pick(r, SKUS)}`,
    ].map(err);
  }
  if (chance(r, 0.1)) {
    return [
      out(
        `[${stamp.slice(0, 19)} +0000] [${int(r, 7, 12)}] [INFO] Booting worker with pid: ${int(r, 7, 99)}`,
      ),
    ];
  }
  const order = int(r, 100_000, 999_999);
  return [
    out(
      `INFO ${stamp} views ${int(r, 10, 14)} 140245 Order ${order} created for ${pick(r, CUSTOMERS)}: ` +
        `${int(r, 1, 6)} items, total ${int(r, 5, 900)}.${int(r, 10, 99)} EUR`,
    ),
  ];
};

const cart: Style = (r, t) => {
  const level = weighted(r, [
    [30, 85],
    [20, 8],
    [40, 5],
    [50, 2],
  ] as const);
  return [
    (level >= 50 ? err : out)(
      JSON.stringify({
        level,
        time: t,
        pid: 1,
        hostname: "cart-5c7d9b8f6-q8w2n",
        reqId: `req-${alnum(r, 6)}`,
        msg: level >= 50 ? "redis connection reset" : pick(r, ["item added", "item removed", "cart loaded"]),
        cartId: uuid(r),
        sku: pick(r, SKUS),
        responseTime: Number((r() * 50).toFixed(3)),
      }),
    ),
  ];
};

const searchApi: Style = (r, t) => {
  const stamp = iso(t).replace("T", " ").slice(0, 23);
  if (chance(r, 0.015)) {
    return [
      err(`${stamp} ERROR 1 --- [nio-8080-exec-${int(r, 1, 9)}] c.a.search.QueryController : query failed`),
      ...javaTrace(r, "org.opensearch.OpenSearchStatusException", "search_phase_execution_exception").map(
        err,
      ),
    ];
  }
  const query = pick(r, ["running shoes", "téléphone", "usb-c cable", "winter jacket", "日本茶"]);
  return [
    out(
      `${stamp}  INFO 1 --- [nio-8080-exec-${int(r, 1, 9)}] c.a.search.QueryController : ` +
        `query="${query}" hits=${int(r, 0, 5000)} took=${int(r, 2, 400)}ms`,
    ),
  ];
};

const indexer: Style = (r, t) => [
  out(
    JSON.stringify({
      timestamp: iso(t),
      level: pick(r, ["info", "info", "info", "warning"]),
      event: pick(r, ["bulk indexed", "refresh scheduled", "mapping unchanged"]),
      index: `products-${iso(t).slice(0, 10)}`,
      docs: int(r, 1, 2000),
      duration_ms: int(r, 5, 3000),
    }),
  ),
];

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

const ingressController: Style = (r, t) => {
  const d = new Date(t);
  const month = MONTHS[d.getUTCMonth()];
  const stamp = `${String(d.getUTCDate()).padStart(2, "0")}/${month}/${d.getUTCFullYear()}:${iso(t).slice(11, 19)} +0000`;
  if (chance(r, 0.01)) {
    return [
      err(
        `${iso(t).slice(0, 10).replaceAll("-", "/")} ${iso(t).slice(11, 19)} [error] 31#31: *${int(r, 1000, 99999)} ` +
          `upstream timed out (110: Operation timed out) while reading response header from upstream, ` +
          `client: ${ip(r)}, server: shop.example.com, request: "POST /api/v1/checkout HTTP/1.1", ` +
          `upstream: "http://${ip(r)}:8080/api/v1/checkout", host: "shop.example.com"`,
      ),
    ];
  }
  if (chance(r, 0.01)) {
    const micros = String(d.getUTCMilliseconds() * 1000 + int(r, 0, 999)).padStart(6, "0");
    return [
      err(
        `I${iso(t).slice(5, 7)}${iso(t).slice(8, 10)} ${iso(t).slice(11, 19)}.${micros}       7 controller.go:190] "Backend successfully reloaded"`,
      ),
    ];
  }
  const path = pick(r, PATHS);
  const status = weighted(r, [
    [200, 85],
    [304, 5],
    [404, 5],
    [499, 1],
    [502, 2],
    [503, 2],
  ] as const);
  const upstream = path.startsWith("/api/v1/search")
    ? "search-search-api-8080"
    : path.startsWith("/api/v1/pay")
      ? "payments-payments-api-8080"
      : "checkout-checkout-web-8000";
  const bytes = int(r, 0, 40_000);
  const took = (r() * 0.5).toFixed(3);
  return [
    out(
      `${ip(r)} - - [${stamp}] "${path.includes("checkout") ? "POST" : "GET"} ${path} HTTP/1.1" ${status} ${bytes} ` +
        `"https://shop.example.com/" "${pick(r, AGENTS)}" ${int(r, 200, 900)} ${took} [${upstream}] [] ` +
        `${ip(r)}:8080 ${bytes} ${took} ${status} ${hex(r, 32)}`,
    ),
  ];
};

const coredns: Style = (r) => {
  const name = pick(r, [
    "payments-api.payments.svc.cluster.local.",
    "search-api.search.svc.cluster.local.",
    "redis.checkout.svc.cluster.local.",
    "api.stripe.com.",
  ]);
  return [
    out(
      `[INFO] ${ip(r)}:${int(r, 30000, 60000)} - ${int(r, 1, 65535)} "${pick(r, ["A", "AAAA"])} IN ${name} udp ${int(r, 40, 90)} false 512" ` +
        `${pick(r, ["NOERROR", "NOERROR", "NOERROR", "NXDOMAIN"])} qr,aa,rd ${int(r, 90, 200)} ${(r() / 1000).toFixed(6)}s`,
    ),
  ];
};

const kubeProxy: Style = (r, t) => {
  const d = iso(t);
  const micros = String(new Date(t).getUTCMilliseconds() * 1000 + int(r, 0, 999)).padStart(6, "0");
  return [
    err(
      `I${d.slice(5, 7)}${d.slice(8, 10)} ${d.slice(11, 19)}.${micros}       1 proxier.go:${int(r, 800, 830)}] ` +
        `"SyncProxyRules complete" elapsed="${(r() * 40).toFixed(1)}ms"`,
    ),
  ];
};

const LATIN1 = (s: string) => Buffer.from(s, "latin1");

const reportJob: Style = (r, t) => {
  const stamp = iso(t).replace("T", " ").slice(0, 23).replace(".", ",");
  if (chance(r, 0.02)) {
    // A customer name from a latin-1 export: invalid UTF-8, archived byte for byte.
    return [
      out(
        Buffer.concat([
          Buffer.from(`${stamp} INFO report: customer `),
          LATIN1(pick(r, CUSTOMERS.slice(1, 5))),
        ]),
      ),
    ];
  }
  if (chance(r, 0.02)) {
    const rows = Array.from({ length: int(r, 150, 500) }, (_, i) => ({
      row: i,
      region: pick(r, ["eu-west-1", "us-east-1", "sa-east-1"]),
      revenue: Number((r() * 10_000).toFixed(2)),
      orders: int(r, 1, 400),
    }));
    return [out(`${stamp} DEBUG report: summary ${JSON.stringify(rows)}`)];
  }
  return [
    out(
      `${stamp} INFO report: ${pick(r, ["processed partition", "wrote shard", "fetched page"])} ` +
        `${int(r, 1, 500)}/${500} (${int(r, 100, 5000)} rows, ${(r() * 3).toFixed(2)}s)`,
    ),
  ];
};

const reportCrash = (): OutputLine[] =>
  [
    "Traceback (most recent call last):",
    '  File "/app/report.py", line 211, in <module>',
    "    main()",
    '  File "/app/report.py", line 198, in main',
    "    upload(shard)",
    '  File "/app/storage.py", line 77, in upload',
    '    raise ConnectionError(f"S3 upload failed after {attempts} attempts")',
    "ConnectionError: S3 upload failed after 5 attempts",
  ].map(err);

// ------------------------------------------------------------------ the cluster

interface ContainerSpec {
  namespace: (typeof SAMPLE_NAMESPACES)[number];
  /** Deployment or job name; the pod name adds the usual hashes. */
  owner: string;
  kind: "deployment" | "daemonset" | "job";
  container: string;
  style: Style;
  /** Share of the lines. */
  weight: number;
  /** Probability of splitting a short line into P chunks at arbitrary points. */
  splitRate: number;
}

const CONTAINERS: readonly ContainerSpec[] = [
  {
    namespace: "payments",
    owner: "payments-api",
    kind: "deployment",
    container: "api",
    style: paymentsApi,
    weight: 12,
    splitRate: 0.01,
  },
  {
    namespace: "payments",
    owner: "payments-api",
    kind: "deployment",
    container: "api",
    style: paymentsApi,
    weight: 6,
    splitRate: 0.01,
  },
  {
    namespace: "payments",
    owner: "ledger-worker",
    kind: "deployment",
    container: "worker",
    style: ledgerWorker,
    weight: 8,
    splitRate: 0,
  },
  {
    namespace: "checkout",
    owner: "checkout-web",
    kind: "deployment",
    container: "web",
    style: checkoutWeb,
    weight: 10,
    splitRate: 0.02,
  },
  {
    namespace: "checkout",
    owner: "cart",
    kind: "deployment",
    container: "cart",
    style: cart,
    weight: 8,
    splitRate: 0.01,
  },
  {
    namespace: "search",
    owner: "search-api",
    kind: "deployment",
    container: "api",
    style: searchApi,
    weight: 10,
    splitRate: 0.01,
  },
  {
    namespace: "search",
    owner: "search-indexer",
    kind: "deployment",
    container: "indexer",
    style: indexer,
    weight: 4,
    splitRate: 0,
  },
  {
    namespace: "ingress-nginx",
    owner: "ingress-nginx-controller",
    kind: "deployment",
    container: "controller",
    style: ingressController,
    weight: 28,
    splitRate: 0.005,
  },
  {
    namespace: "kube-system",
    owner: "coredns",
    kind: "deployment",
    container: "coredns",
    style: coredns,
    weight: 6,
    splitRate: 0,
  },
  {
    namespace: "kube-system",
    owner: "kube-proxy",
    kind: "daemonset",
    container: "kube-proxy",
    style: kubeProxy,
    weight: 3,
    splitRate: 0,
  },
  {
    namespace: "batch-jobs",
    owner: "nightly-report",
    kind: "job",
    container: "report",
    style: reportJob,
    weight: 5,
    splitRate: 0.03,
  },
];

/** Where the backlog's one container restart happens: the job crashes and runs again as 1.log. */
const RESTARTING_OWNER = "nightly-report";

interface Container {
  spec: ContainerSpec;
  dir: string;
  restartCount: number;
}

function podName(r: Random, spec: ContainerSpec): string {
  switch (spec.kind) {
    case "deployment":
      return `${spec.owner}-${alnum(r, 10)}-${alnum(r, 5)}`;
    case "daemonset":
      return `${spec.owner}-${alnum(r, 5)}`;
    case "job":
      return `${spec.owner}-${int(r, 29_000_000, 29_999_999)}-${alnum(r, 5)}`;
  }
}

function layoutContainers(root: string, r: Random): Container[] {
  return CONTAINERS.map((spec) => ({
    spec,
    dir: join(root, `${spec.namespace}_${podName(r, spec)}_${uuid(r)}`, spec.container),
    restartCount: 0,
  }));
}

// ------------------------------------------------------------------ CRI framing

/** containerd's timestamp: RFC 3339 with nanoseconds, trailing zeros trimmed, UTC. */
export function criTimestamp(ms: number, extraNanos = 0): string {
  const whole = Math.floor(ms);
  const nanos = (whole % 1000) * 1_000_000 + Math.min(999_999, Math.max(0, Math.floor(extraNanos)));
  const fraction = String(nanos).padStart(9, "0").replace(/0+$/, "");
  return `${new Date(whole).toISOString().slice(0, 19)}${fraction ? `.${fraction}` : ""}Z`;
}

function criLine(ms: number, nanos: number, stream: Stream, tag: "P" | "F", content: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${criTimestamp(ms, nanos)} ${stream} ${tag} `), content, NEWLINE]);
}

const NEWLINE = Buffer.from("\n");

/** The chunks a logical line is written as: 16 KiB `P` splits, plus arbitrary splits at `splitRate`. */
function chunksOf(r: Random, content: Buffer, splitRate: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0; at < content.length; at += CRI_SPLIT_BYTES) {
    chunks.push(content.subarray(at, Math.min(content.length, at + CRI_SPLIT_BYTES)));
  }
  if (chunks.length === 0) chunks.push(content);
  if (chunks.length === 1 && content.length >= 8 && chance(r, splitRate)) {
    const cuts = [...new Set(Array.from({ length: int(r, 1, 3) }, () => int(r, 1, content.length - 1)))].sort(
      (a, b) => a - b,
    );
    return [0, ...cuts].map((start, i) => content.subarray(start, cuts[i] ?? content.length));
  }
  return chunks;
}

/**
 * An event's lines as CRI bytes. When a split line is followed by a line on the other
 * stream, that line may land between its chunks, as two pipes read concurrently do.
 */
function frame(r: Random, lines: OutputLine[], ms: number, splitRate: number): Buffer {
  const parts: Buffer[] = [];
  let nanos = int(r, 0, 999_999);
  const stamp = () => {
    nanos = Math.min(999_999, nanos + int(r, 1, 40));
    return nanos;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const chunks = chunksOf(r, Buffer.isBuffer(line.text) ? line.text : Buffer.from(line.text), splitRate);
    const next = lines[i + 1];
    const interleave =
      chunks.length > 1 &&
      next !== undefined &&
      next.stream !== line.stream &&
      next.text.length < CRI_SPLIT_BYTES &&
      chance(r, 0.5)
        ? next
        : null;
    chunks.forEach((chunk, c) => {
      parts.push(criLine(ms, stamp(), line.stream, c === chunks.length - 1 ? "F" : "P", chunk));
      if (c === 0 && interleave !== null) {
        parts.push(criLine(ms, stamp(), interleave.stream, "F", Buffer.from(interleave.text)));
      }
    });
    if (interleave !== null) i++;
  }
  return Buffer.concat(parts);
}

/** A line a runtime never wrote: half of a line torn by a crashed writer, no CRI prefix. */
const MALFORMED_LINE = Buffer.from("ut of memory: Killed process 4242 (python3) total-vm:2048000kB\n");

// ------------------------------------------------------------------ writing

class Counter {
  readonly linesByNamespace: Record<string, number> = Object.fromEntries(
    SAMPLE_NAMESPACES.map((n) => [n, 0]),
  );
  readonly malformedByNamespace: Record<string, number> = Object.fromEntries(
    SAMPLE_NAMESPACES.map((n) => [n, 0]),
  );
  readonly files = new Set<string>();

  add(namespace: string, lines: number, malformed = 0): void {
    this.linesByNamespace[namespace] = (this.linesByNamespace[namespace] ?? 0) + lines;
    this.malformedByNamespace[namespace] = (this.malformedByNamespace[namespace] ?? 0) + malformed;
  }

  snapshot(): SampleCounts {
    return {
      lines: Object.values(this.linesByNamespace).reduce((a, b) => a + b, 0),
      linesByNamespace: { ...this.linesByNamespace },
      malformedByNamespace: { ...this.malformedByNamespace },
      files: [...this.files].sort(),
    };
  }
}

/** Picks the next container to write, by weight. */
function chooser(containers: readonly Container[]): (r: Random) => Container {
  const table = containers.map((c) => [c, c.spec.weight] as const);
  return (r) => weighted(r, table);
}

/**
 * Writes `lines` logical lines spread over the `spanMs` before `now`, in every sample
 * container, and returns what the shipper will count.
 */
export async function writeSampleBacklog(options: SampleBacklogOptions): Promise<SampleCounts> {
  const r = seeded(options.seed);
  const now = options.now ?? Date.now();
  const spanMs = options.spanMs ?? 10 * 60_000;
  const containers = layoutContainers(options.root, r);
  const next = chooser(containers);
  const counter = new Counter();
  // Buffered per file and flushed in large writes, so a big backlog needs little memory.
  const pending = new Map<string, { parts: Buffer[]; bytes: number }>();
  const flush = async (file: string) => {
    const p = pending.get(file);
    if (p === undefined || p.parts.length === 0) return;
    const bytes = Buffer.concat(p.parts);
    p.parts = [];
    p.bytes = 0;
    if (counter.files.has(file)) await appendFile(file, bytes);
    else {
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, bytes);
      counter.files.add(file);
    }
  };
  const write = async (container: Container, bytes: Buffer) => {
    const file = join(container.dir, `${container.restartCount}.log`);
    const p = pending.get(file) ?? { parts: [], bytes: 0 };
    p.parts.push(bytes);
    p.bytes += bytes.length;
    pending.set(file, p);
    if (p.bytes >= FLUSH_BYTES) await flush(file);
  };
  const malformedAt = Math.floor(options.lines / 2);
  const restarting = containers.find((c) => c.spec.owner === RESTARTING_OWNER)!;
  let restartDone = false;
  let malformedDone = false;
  let written = 0;
  while (written < options.lines) {
    const ms = now - spanMs + Math.floor(((written + r()) / Math.max(1, options.lines)) * spanMs);
    if (!malformedDone && written >= malformedAt) {
      const c = containers.find((x) => x.spec.namespace === "checkout")!;
      await write(c, MALFORMED_LINE);
      counter.add(c.spec.namespace, 1, 1);
      malformedDone = true;
      written++;
      continue;
    }
    const c = next(r);
    let lines = c.spec.style(r, ms);
    // The job crashes once, a third of the way in; kubelet starts it again as 1.log.
    const crash = c === restarting && !restartDone && written >= options.lines / 3;
    if (crash) lines = reportCrash();
    lines = lines.slice(0, options.lines - written);
    await write(c, frame(r, lines, ms, c.spec.splitRate));
    counter.add(c.spec.namespace, lines.length);
    written += lines.length;
    if (crash) {
      restartDone = true;
      c.restartCount++;
    }
  }
  for (const file of pending.keys()) await flush(file);
  return counter.snapshot();
}

async function sizeOf(path: string): Promise<number | null> {
  try {
    return (await stat(path)).size;
  } catch {
    return null;
  }
}

/** kubelet's rotated-file suffix: its local clock, YYYYMMDD-HHMMSS. */
export function rotationSuffix(date: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}${p(date.getMonth() + 1)}${p(date.getDate())}-` +
    `${p(date.getHours())}${p(date.getMinutes())}${p(date.getSeconds())}`
  );
}

/**
 * Appends lines with the current time to every sample container, `linesPerSecond` in all,
 * until stop(). A container's file is rotated the way kubelet does it: renamed to
 * `<n>.log.<YYYYMMDD-HHMMSS>`, after which the runtime writes a new `<n>.log`.
 */
export function startLiveSampleWorkload(options: LiveSampleOptions): LiveSampleWorkload {
  const r = seeded(options.seed);
  const rotateBytes = options.rotateBytes ?? 1024 * 1024;
  const tickMs = options.tickMs ?? 100;
  const containers = layoutContainers(
    options.root,
    options.layoutSeed === undefined ? r : seeded(options.layoutSeed),
  );
  const next = chooser(containers);
  const counter = new Counter();
  const sizes = new Map<string, number>();
  const started = Date.now();
  let written = 0;
  let malformedWritten = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  const rotateIfFull = async (file: string) => {
    // A file left by an earlier run under the same root keeps growing from its size.
    if (!sizes.has(file)) sizes.set(file, (await sizeOf(file)) ?? 0);
    if (sizes.get(file)! < rotateBytes) return;
    const rotated = `${file}.${rotationSuffix(new Date())}`;
    // Two rotations in one second would collide; kubelet checks every 10 s, so wait for the next tick.
    if ((await sizeOf(rotated)) !== null) return;
    await rename(file, rotated);
    counter.files.delete(file);
    counter.files.add(rotated);
    sizes.set(file, 0);
  };

  const tick = async () => {
    const due = Math.floor(((Date.now() - started) / 1000) * options.linesPerSecond) - written;
    const pending = new Map<
      string,
      { container: Container; parts: Buffer[]; lines: number; malformed: number }
    >();
    const fileOf = (c: Container) => join(c.dir, `${c.restartCount}.log`);
    const add = (c: Container, bytes: Buffer, lines: number, malformed = 0) => {
      const file = fileOf(c);
      const entry = pending.get(file) ?? { container: c, parts: [], lines: 0, malformed: 0 };
      entry.parts.push(bytes);
      entry.lines += lines;
      entry.malformed += malformed;
      pending.set(file, entry);
    };
    let lines = 0;
    while (lines < due) {
      const ms = Date.now();
      if (!malformedWritten && written + lines >= 50) {
        add(containers.find((x) => x.spec.namespace === "checkout")!, MALFORMED_LINE, 1, 1);
        malformedWritten = true;
        lines++;
        continue;
      }
      const c = next(r);
      const event = c.spec.style(r, ms);
      add(c, frame(r, event, ms, c.spec.splitRate), event.length);
      lines += event.length;
    }
    for (const [file, entry] of pending) {
      await rotateIfFull(file);
      await mkdir(entry.container.dir, { recursive: true });
      const bytes = Buffer.concat(entry.parts);
      await appendFile(file, bytes);
      sizes.set(file, (sizes.get(file) ?? 0) + bytes.length);
      counter.files.add(file);
      counter.add(entry.container.spec.namespace, entry.lines, entry.malformed);
    }
    written += lines;
  };

  let running: Promise<void> = Promise.resolve();
  let failure: unknown = null;
  const schedule = () => {
    timer = setTimeout(() => {
      running = tick().then(
        () => {
          if (!stopped) schedule();
        },
        (error: unknown) => {
          // Kept for stop(), so a full disk surfaces there instead of as an unhandled rejection.
          failure = error;
          stopped = true;
        },
      );
    }, tickMs);
  };
  schedule();

  return {
    counts: () => counter.snapshot(),
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
      if (failure !== null) throw failure;
      return counter.snapshot();
    },
  };
}
