// Every DuckDB query of the pack on a small dataset whose answers are worked out by hand:
// the rows are inserted into the table created from lib's DuckDB DDL, and the tests
// assert the results, not only that the queries ran.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import { formatObjectKey } from "../lib/keys/layout.ts";
import { duckDbDdl } from "../lib/record/ddl.ts";
import { installDuckDbDefinitions, runDuckDbQuery } from "./duckdb-runner.ts";
import { loadPack, type PackQuery, resolveParams } from "./pack.ts";

const TRACE = "aaaa1111bbbb2222cccc3333dddd4444";
const batch = (seq: number) => `node-a_00000001_${String(seq).padStart(12, "0")}`;

interface Row {
  timestamp: string;
  namespace: string;
  pod: string;
  container: string;
  stream?: "stdout" | "stderr";
  message: string;
  batch: number;
}

const payments = (timestamp: string, message: string, b: number, stream: Row["stream"] = "stdout"): Row => ({
  timestamp,
  namespace: "payments",
  pod: "payments-api-1",
  container: "api",
  stream,
  message,
  batch: b,
});
const checkout = (container: "web" | "cart", timestamp: string, message: string): Row => ({
  timestamp,
  namespace: "checkout",
  pod: `checkout-${container}-1`,
  container,
  message,
  batch: container === "web" ? 3 : 4,
});

const ingress = (timestamp: string, request: string, status: number, seconds: string): Row => ({
  timestamp,
  namespace: "ingress-nginx",
  pod: "ingress-1",
  container: "controller",
  message: `10.0.0.9 - - [21/Nov/2026:10:00:00 +0000] "${request} HTTP/1.1" ${status} 12 "-" "curl/8.5.0" 300 ${seconds} [x] [] 10.0.1.2:8080 12 ${seconds} ${status} ffff0000ffff0000ffff0000ffff0000`,
  batch: 5,
});

const ROWS: Row[] = [
  payments(
    "2026-11-21 10:00:00.000001",
    JSON.stringify({ level: "INFO", message: "Charge authorized", trace_id: TRACE, latency_ms: 40 }),
    1,
  ),
  payments("2026-11-21 10:00:05", '{"level":"ERROR","message":"Charge failed for order 123"}', 1),
  payments(
    "2026-11-21 10:00:05.5",
    "com.acme.payments.GatewayException: upstream declined: card_declined",
    1,
    "stderr",
  ),
  payments(
    "2026-11-21 10:00:06",
    "\tat com.acme.payments.gateway.StripeClient.charge(StripeClient.java:214)",
    1,
    "stderr",
  ),
  payments("2026-11-21 10:01:10", '{"level":"ERROR","message":"Charge failed for order 456"}', 1),
  payments("2026-11-21 10:01:30", '{"level":"WARN","message":"Retrying charge","latency_ms":80}', 1),
  payments("2026-11-21 11:30:00", '{"level":"ERROR","message":"Charge failed for order 789"}', 2),
  payments("2026-11-21 11:30:01", '{"level":"DEBUG","message":"Request body"}', 2),
  checkout("web", "2026-11-21 10:00:02", "INFO 2026-11-21 10:00:02,000 views 12 140245 Order 100200 created"),
  checkout(
    "web",
    "2026-11-21 10:00:03",
    "ERROR 2026-11-21 10:00:03,000 log 14 140245 Internal Server Error: /api/v1/checkout",
  ),
  checkout("web", "2026-11-21 10:00:03.1", "Traceback (most recent call last):"),
  checkout("cart", "2026-11-21 10:00:04", '{"level":30,"msg":"item added","reqId":"req-x"}'),
  checkout(
    "cart",
    "2026-11-21 10:02:00",
    '{"level":50,"msg":"redis connection reset","cartId":"3f2a1b4c-1d2e-4f3a-8b9c-0d1e2f3a4b5c"}',
  ),
  checkout("cart", "2026-11-21 10:02:30", '{"level":50,"msg":"redis connection reset"}'),
  checkout(
    "cart",
    "2026-11-21 10:03:00",
    'I1121 10:03:00.123456       1 proxier.go:812] "SyncProxyRules complete"',
  ),
  checkout("cart", "2026-11-21 10:04:00", "not json {broken"),
  {
    timestamp: "2026-11-21 10:00:00.5",
    namespace: "ingress-nginx",
    pod: "ingress-1",
    container: "controller",
    message: `10.0.0.1 - - [21/Nov/2026:10:00:00 +0000] "POST /api/v1/payments/charge HTTP/1.1" 502 12 "-" "curl/8.5.0" 300 0.120 [payments-payments-api-8080] [] 10.0.1.2:8080 12 0.120 502 ${TRACE}`,
    batch: 5,
  },
  ingress("2026-11-21 10:05:00", "POST /api/v1/payments/charge?retry=1", 200, "0.200"),
  ingress("2026-11-21 10:06:00", "POST /api/v1/payments/charge", 201, "0.400"),
  ingress("2026-11-21 10:07:00", "GET /healthz", 200, "0.001"),
  // Outside every namespace list below: no query may return it.
  {
    timestamp: "2026-11-21 10:00:00",
    namespace: "search",
    pod: "search-1",
    container: "api",
    message: JSON.stringify({ level: "error", msg: "query failed", trace_id: TRACE }),
    batch: 6,
  },
  payments("2026-11-22 00:10:00", '{"level":"fatal","message":"out of memory"}', 7),
];

const ALL = { namespaces: "payments,checkout,ingress-nginx", from: "2026-11-21", to: "2026-11-23" };

let instance: DuckDBInstance;
let connection: DuckDBConnection;
let pack: Map<string, PackQuery>;

async function run(name: string, given: Record<string, string>) {
  const query = pack.get(name);
  assert.ok(query, `query ${name}`);
  return (await runDuckDbQuery(connection, query, resolveParams(query, given))).rows;
}

before(async () => {
  instance = await DuckDBInstance.create(":memory:");
  connection = await instance.connect();
  await connection.run(duckDbDdl());
  const seqs = new Map<number, number>();
  const insert = await connection.prepare(
    `INSERT INTO container_logs (timestamp, timestamp_nanos, namespace, pod, container, node, stream, message, batch_id, seq)
     VALUES ($timestamp::TIMESTAMP, 0, $namespace, $pod, $container, 'node-a', $stream, $message, $batch_id, $seq)`,
  );
  for (const row of ROWS) {
    const seq = seqs.get(row.batch) ?? 0;
    seqs.set(row.batch, seq + 1);
    insert.bind({
      timestamp: row.timestamp,
      namespace: row.namespace,
      pod: row.pod,
      container: row.container,
      stream: row.stream ?? "stdout",
      message: row.message,
      batch_id: batch(row.batch),
      seq: BigInt(seq),
    });
    await insert.run();
  }
  insert.destroySync();
  await installDuckDbDefinitions(connection);
  pack = (await loadPack()).get("duckdb")!;
});

after(() => {
  connection?.closeSync();
  instance?.closeSync();
});

const bytesOf = (rows: Row[]) => rows.reduce((n, r) => n + Buffer.byteLength(r.message), 0);

describe("duckdb pack on a dataset with known answers", () => {
  it("log_volume counts lines and message bytes per namespace per day", async () => {
    const rows = await run("log_volume", ALL);
    const of = (ns: string, day: string) =>
      ROWS.filter((r) => r.namespace === ns && r.timestamp.startsWith(day));
    assert.deepEqual(rows, [
      {
        namespace: "checkout",
        day: "2026-11-21",
        lines: "8",
        message_bytes: String(bytesOf(of("checkout", "2026-11-21"))),
      },
      {
        namespace: "ingress-nginx",
        day: "2026-11-21",
        lines: "4",
        message_bytes: String(bytesOf(of("ingress-nginx", "2026-11-21"))),
      },
      {
        namespace: "payments",
        day: "2026-11-21",
        lines: "8",
        message_bytes: String(bytesOf(of("payments", "2026-11-21"))),
      },
      {
        namespace: "payments",
        day: "2026-11-22",
        lines: "1",
        message_bytes: String(bytesOf(of("payments", "2026-11-22"))),
      },
    ]);
  });

  it("error_rate counts ERROR and FATAL lines of every level convention per container and hour", async () => {
    const rows = await run("error_rate", ALL);
    assert.deepEqual(
      rows.map((r) => [r.namespace, r.container, r.hour, r.lines, r.errors, r.error_rate]),
      [
        ["checkout", "cart", "2026-11-21 10:00:00", "5", "2", 0.4],
        ["checkout", "web", "2026-11-21 10:00:00", "3", "1", 0.3333],
        ["ingress-nginx", "controller", "2026-11-21 10:00:00", "4", "1", 0.25],
        ["payments", "api", "2026-11-21 10:00:00", "6", "3", 0.5],
        ["payments", "api", "2026-11-21 11:00:00", "2", "1", 0.5],
        ["payments", "api", "2026-11-22 00:00:00", "1", "1", 1],
      ],
    );
  });

  it("top_error_signatures groups occurrences whose numbers and ids differ, and honours the limit", async () => {
    const rows = await run("top_error_signatures", { ...ALL, limit: "3" });
    assert.deepEqual(rows.slice(0, 2), [
      {
        signature: "Charge failed for order <n>",
        occurrences: "3",
        containers: "1",
        first_seen: "2026-11-21 10:00:05",
        last_seen: "2026-11-21 11:30:00",
      },
      {
        signature: "redis connection reset",
        occurrences: "2",
        containers: "1",
        first_seen: "2026-11-21 10:02:00",
        last_seen: "2026-11-21 10:02:30",
      },
    ]);
    assert.equal(rows.length, 3);
    const every = await run("top_error_signatures", ALL);
    // 3 + 2 + the four single errors (exception line, Django ERROR, ingress 502, fatal); no frame lines.
    assert.deepEqual(
      every.map((r) => r.occurrences),
      ["3", "2", "1", "1", "1", "1"],
    );
    assert.ok(
      every.some(
        (r) => r.signature === "com.acme.payments.GatewayException: upstream declined: card_declined",
      ),
    );
    assert.ok(
      every.some(
        (r) =>
          r.signature ===
          "ERROR <n>-<n>-<n> <n>:<n>:<n>,<n> log <n> <n> Internal Server Error: /api/v<n>/checkout",
      ),
    );
    assert.ok(
      !every.some((r) => String(r.signature).includes("query failed")),
      "search is not in the namespaces",
    );
  });

  it("incident_timeline gives first and last seen and the count per minute", async () => {
    const rows = await run("incident_timeline", { ...ALL, signature: "Charge failed for order <n>" });
    assert.deepEqual(rows, [
      {
        minute: "2026-11-21 10:00:00",
        occurrences: "1",
        first_seen: "2026-11-21 10:00:05",
        last_seen: "2026-11-21 11:30:00",
      },
      {
        minute: "2026-11-21 10:01:00",
        occurrences: "1",
        first_seen: "2026-11-21 10:00:05",
        last_seen: "2026-11-21 11:30:00",
      },
      {
        minute: "2026-11-21 11:30:00",
        occurrences: "1",
        first_seen: "2026-11-21 10:00:05",
        last_seen: "2026-11-21 11:30:00",
      },
    ]);
  });

  it("search finds text ignoring case in one namespace, and a quote in the text is only text", async () => {
    const rows = await run("search", {
      namespace: "checkout",
      from: "2026-11-21",
      to: "2026-11-22",
      text: "internal SERVER",
    });
    assert.deepEqual(
      rows.map((r) => r.message),
      [ROWS.find((r) => r.message.includes("Internal Server Error"))!.message],
    );
    const quoted = await run("search", {
      namespace: "checkout",
      from: "2026-11-21",
      to: "2026-11-22",
      text: "x' OR '1'='1",
    });
    assert.deepEqual(quoted, []);
    const limited = await run("search", {
      namespace: "payments",
      from: "2026-11-21",
      to: "2026-11-23",
      text: "charge",
      limit: "2",
    });
    assert.deepEqual(
      limited.map((r) => r.timestamp),
      ["2026-11-21 10:00:00.000001", "2026-11-21 10:00:05"],
    );
  });

  it("search by pattern: a regular expression, case-sensitive unless (?i), alone or with the text", async () => {
    const day = { from: "2026-11-21", to: "2026-11-23" };
    const messages = async (given: Record<string, string>) =>
      (await run("search", { ...day, ...given })).map((r) => r.message as string);
    assert.deepEqual(await messages({ namespace: "checkout", pattern: "Order [0-9]+ created$" }), [
      ROWS.find((r) => r.message.includes("Order 100200 created"))!.message,
    ]);
    assert.deepEqual(await messages({ namespace: "checkout", pattern: "internal server" }), []);
    assert.deepEqual(await messages({ namespace: "checkout", pattern: "(?i)internal server" }), [
      ROWS.find((r) => r.message.includes("Internal Server Error"))!.message,
    ]);
    // Both: contains "charge" (any case) and names order 456 or 789.
    assert.deepEqual(await messages({ namespace: "payments", text: "CHARGE", pattern: "order (456|789)" }), [
      '{"level":"ERROR","message":"Charge failed for order 456"}',
      '{"level":"ERROR","message":"Charge failed for order 789"}',
    ]);
    // A pattern is data, not SQL, and its metacharacters are the regex's own.
    assert.deepEqual(await messages({ namespace: "checkout", pattern: "' OR '1'='1" }), []);
    assert.equal((await messages({ namespace: "checkout", pattern: "\\{broken$" })).length, 1);
    // Neither: every line of the namespace and range.
    const all = ROWS.filter((r) => r.namespace === "checkout").length;
    assert.equal((await messages({ namespace: "checkout" })).length, all);
  });

  it("trace_lookup follows a trace id across the namespaces given, in time order", async () => {
    const rows = await run("trace_lookup", { ...ALL, trace_id: TRACE });
    assert.deepEqual(
      rows.map((r) => [r.timestamp, r.namespace]),
      [
        ["2026-11-21 10:00:00.000001", "payments"],
        ["2026-11-21 10:00:00.5", "ingress-nginx"],
      ],
    );
  });

  it("compliance_export returns every line of the namespace in order with its archive object", async () => {
    const rows = await run("compliance_export", {
      namespace: "payments",
      from: "2026-11-21",
      to: "2026-11-22",
    });
    const expected = ROWS.filter((r) => r.namespace === "payments" && r.timestamp.startsWith("2026-11-21"));
    assert.deepEqual(
      rows.map((r) => r.message),
      expected.map((r) => r.message),
    );
    const key = formatObjectKey({
      prefix: "logs",
      tier: "analytics",
      namespace: "payments",
      dt: "2026-11-21",
      hour: "11",
      node: "node-a",
      epoch: "00000001",
      seq: 2,
    });
    assert.equal(rows[6]!.batch_id, batch(2));
    assert.equal(`logs/analytics/${rows[6]!.archive_object}`, key);
    assert.equal(Object.keys(rows[0]!).length, 17, "every record column plus archive_object");
  });

  it("pipeline_health lists every hour, zeros for the gaps, and the newest line per namespace", async () => {
    const rows = await run("pipeline_health", {
      namespaces: "payments,checkout",
      from: "2026-11-21 09:00",
      to: "2026-11-21 13:00",
    });
    assert.deepEqual(
      rows.map((r) => [r.namespace, r.hour, r.objects, r.lines, r.newest_in_namespace]),
      [
        ["checkout", "2026-11-21 09:00:00", "0", "0", "2026-11-21 10:04:00"],
        ["checkout", "2026-11-21 10:00:00", "2", "8", "2026-11-21 10:04:00"],
        ["checkout", "2026-11-21 11:00:00", "0", "0", "2026-11-21 10:04:00"],
        ["checkout", "2026-11-21 12:00:00", "0", "0", "2026-11-21 10:04:00"],
        ["payments", "2026-11-21 09:00:00", "0", "0", "2026-11-21 11:30:01"],
        ["payments", "2026-11-21 10:00:00", "1", "6", "2026-11-21 11:30:01"],
        ["payments", "2026-11-21 11:00:00", "1", "2", "2026-11-21 11:30:01"],
        ["payments", "2026-11-21 12:00:00", "0", "0", "2026-11-21 11:30:01"],
      ],
    );
  });
  it("latency_percentiles reads JSON latency fields and access-log request times", async () => {
    const rows = await run("latency_percentiles", ALL);
    assert.deepEqual(
      rows.map((r) => [r.namespace, r.container, r.source, r.path, r.requests, r.p50_ms, r.p95_ms, r.p99_ms]),
      [
        // 120, 200 and 400 ms: the query string is not part of the path.
        ["ingress-nginx", "controller", "access", "/api/v1/payments/charge", "3", 200, 380, 396],
        // latency_ms 40 and 80, the lines name no path.
        ["payments", "api", "json", "-", "2", 60, 78, 79.6],
        ["ingress-nginx", "controller", "access", "/healthz", "1", 1, 1, 1],
      ],
    );
  });

  it("noisiest_pods ranks containers by lines and marks the ones new in the range", async () => {
    const rows = await run("noisiest_pods", { ...ALL, limit: "2" });
    assert.deepEqual(
      rows.map((r) => [r.namespace, r.pod, r.container, r.lines, r.first_seen, r.last_seen, r.new_in_range]),
      [
        ["payments", "payments-api-1", "api", "9", "2026-11-21 10:00:00.000001", "2026-11-22 00:10:00", true],
        ["checkout", "checkout-cart-1", "cart", "5", "2026-11-21 10:00:04", "2026-11-21 10:04:00", true],
      ],
    );
    const nextDay = await run("noisiest_pods", { ...ALL, from: "2026-11-22" });
    assert.deepEqual(
      nextDay.map((r) => [r.namespace, r.container, r.lines, r.message_bytes, r.new_in_range]),
      [["payments", "api", "1", String(Buffer.byteLength(ROWS.at(-1)!.message)), false]],
    );
  });
});
