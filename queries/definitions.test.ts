// The shared definitions: the DuckDB macros compute what the TypeScript reference computes,
// on a mixed table where half the messages are not JSON; the BigQuery and Athena SQL is
// generated from the same rules, in the same order; the checked-in files are current.

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { type DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import fc from "fast-check";
import {
  DEFINITIONS,
  ENGINES,
  LEVEL_KEYS,
  LEVEL_NAMES,
  LEVEL_NUMBERS,
  SEVERITIES,
  type Severity,
  SIGNATURE_RULES,
  severityOf,
  signatureOf,
  TEXT_RULES,
} from "./definitions.ts";
import { installDuckDbDefinitions } from "./duckdb-runner.ts";
import { definitionsPath } from "./generate.ts";

/** Messages as the sample workload writes them, and what their severity is. Half are not JSON. */
const MIXED: readonly (readonly [string, Severity | null])[] = [
  ['{"@timestamp":"2026-11-21T10:00:00Z","level":"ERROR","message":"Charge failed"}', "ERROR"],
  ['{"level":"WARN","message":"Retrying charge after gateway timeout"}', "WARN"],
  ['{"level":"info","ts":1763719200.5,"msg":"posted journal entry"}', "INFO"],
  ['{"level":"error","msg":"commit offset failed"}', "ERROR"],
  ['{"level":50,"msg":"redis connection reset"}', "ERROR"],
  ['{"level":30,"msg":"item added"}', "INFO"],
  ['{"level":20,"msg":"cart loaded"}', "DEBUG"],
  ['{"level":60,"msg":"down"}', "FATAL"],
  ['{"timestamp":"2026-11-21T10:00:00Z","level":"warning","event":"bulk indexed"}', "WARN"],
  ['{"severity":"CRITICAL","message":"disk full"}', "FATAL"],
  ['{"lvl":"dbug","msg":"unknown name"}', null],
  ['{"lvl":"eror"}', null],
  ['{"lvl":" Error "}', "ERROR"],
  ['{"msg":"no level at all","error":"ERROR in text"}', null],
  ['{"level":5}', null],
  ['{"level":"50"}', "ERROR"],
  ["[1,2,3]", null],
  ["INFO 2026-11-21 10:00:00,000 views 12 140245 Order 100200 created", "INFO"],
  ["ERROR 2026-11-21 10:00:00,000 log 14 140245 Internal Server Error: /api/v1/checkout", "ERROR"],
  [
    "2026-11-21 10:00:00.123 ERROR 1 --- [nio-8080-exec-3] c.a.search.QueryController : query failed",
    "ERROR",
  ],
  ["2026-11-21 10:00:00.123  INFO 1 --- [nio-8080-exec-3] c.a.search.QueryController : hits=3", "INFO"],
  ["com.acme.payments.GatewayException: upstream declined: card_declined", "ERROR"],
  ["ConnectionError: S3 upload failed after 5 attempts", "ERROR"],
  ["\tat com.acme.payments.gateway.StripeClient.charge(StripeClient.java:214)", null],
  ["Caused by: java.net.SocketTimeoutException: Read timed out", null],
  ["Traceback (most recent call last):", null],
  ["panic: runtime error: invalid memory address or nil pointer dereference", "FATAL"],
  ['I1121 10:00:00.123456       1 proxier.go:812] "SyncProxyRules complete"', "INFO"],
  ["E1121 10:00:00.123456       1 reflector.go:1] failed to list", "ERROR"],
  [
    '10.0.0.1 - - [21/Nov/2026:10:00:00 +0000] "GET /api/v1/cart HTTP/1.1" 503 12 "-" "curl/8.5.0" 300 0.1',
    "ERROR",
  ],
  ['10.0.0.1 - - [21/Nov/2026:10:00:00 +0000] "GET /favicon.ico HTTP/1.1" 404 0 "-" "curl/8.5.0"', "WARN"],
  ['10.0.0.1 - - [21/Nov/2026:10:00:00 +0000] "GET /healthz HTTP/1.1" 200 2 "-" "kube-probe/1.31"', "INFO"],
  ["2026/11/21 10:00:00 [error] 31#31: *1234 upstream timed out (110: Operation timed out)", "ERROR"],
  ['[INFO] 10.0.0.1:40000 - 1 "A IN api.stripe.com. udp 40 false 512" NOERROR qr,aa,rd 90 0.000100s', "INFO"],
  ["plain text with nothing to say", null],
  [`${"x".repeat(90)} ERROR far from the start is content`, null],
  ["not json {broken", null],
  ["", null],
];

const JSON_SHARE = MIXED.filter(([m]) => {
  try {
    JSON.parse(m);
    return true;
  } catch {
    return false;
  }
}).length;

let instance: DuckDBInstance;
let connection: DuckDBConnection;

before(async () => {
  instance = await DuckDBInstance.create(":memory:");
  connection = await instance.connect();
  await installDuckDbDefinitions(connection);
});
after(() => {
  connection?.closeSync();
  instance?.closeSync();
});

async function duckDbOver(messages: readonly string[], expression: string): Promise<unknown[]> {
  await connection.run("CREATE OR REPLACE TEMP TABLE m (i INTEGER, message VARCHAR)");
  const insert = await connection.prepare("INSERT INTO m VALUES ($i, $message)");
  for (const [i, message] of messages.entries()) {
    insert.bind({ i, message });
    await insert.run();
  }
  insert.destroySync();
  const reader = await connection.runAndReadAll(`SELECT ${expression} AS v FROM m ORDER BY i`);
  return reader.getRowObjectsJson().map((r) => r.v);
}

describe("severity on the mixed table", () => {
  it("is half JSON, half text", () => {
    assert.ok(
      JSON_SHARE >= MIXED.length * 0.4 && JSON_SHARE <= MIXED.length * 0.6,
      `${JSON_SHARE}/${MIXED.length}`,
    );
  });

  it("the TypeScript reference gives the expected severity for each convention", () => {
    for (const [message, expected] of MIXED) assert.equal(severityOf(message), expected, message);
  });

  it("the DuckDB macro agrees with the reference on every message", async () => {
    const got = await duckDbOver(
      MIXED.map(([m]) => m),
      "severity(message)",
    );
    assert.deepEqual(
      got,
      MIXED.map(([, s]) => s),
    );
  });

  it("json_field is NULL for text, and a filter on it runs over the whole mixed table", async () => {
    const got = await duckDbOver(
      MIXED.map(([m]) => m),
      "json_field(message, '$.level')",
    );
    assert.equal(got[0], "ERROR");
    assert.equal(got[4], "50");
    assert.equal(got[17], null);
    // The README's failing form: a JSON operator on text throws; the macro filters instead.
    await connection.run("CREATE OR REPLACE TEMP TABLE t AS SELECT message, 'payments' AS namespace FROM m");
    await assert.rejects(
      connection.run("SELECT count(*) FROM t WHERE message->>'$.level' = 'ERROR'"),
      /JSON/,
    );
    const reader = await connection.runAndReadAll(
      "SELECT count(*)::INTEGER AS n FROM t WHERE json_field(message, '$.level') = 'ERROR' AND namespace = 'payments'",
    );
    assert.equal(reader.getRowObjectsJson()[0]!.n, 1);
  });

  it("the DuckDB macro agrees with the reference on generated messages", async () => {
    const names = SEVERITIES.flatMap((s) => LEVEL_NAMES[s]);
    const level = fc.oneof(
      fc.constantFrom(...names).map((n) => n.toUpperCase()),
      fc.constantFrom(...names, "nope", "", "  warn "),
      fc.integer({ min: 0, max: 99 }),
      fc.integer({ min: 0, max: 99 }).map(String),
    );
    const json = fc
      .record({ key: fc.constantFrom(...LEVEL_KEYS, "lvl_not"), level, msg: fc.string({ maxLength: 20 }) })
      .map(({ key, level, msg }) => JSON.stringify({ [key]: level, msg }));
    const word = fc.constantFrom(
      "ERROR",
      "WARN",
      "WARNING",
      "INFO",
      "DEBUG",
      "FATAL",
      "[error]",
      "panic:",
      "E1121 10:00:00",
      "x",
    );
    const text = fc
      .tuple(fc.string({ maxLength: 30 }), word, fc.string({ maxLength: 30 }))
      .map(([a, w, b]) => `${a.replace(/[{[]/g, "")}${w} ${b}`);
    const messages = fc.sample(fc.oneof(json, text), { numRuns: 400, seed: 12 });
    const got = await duckDbOver(messages, "severity(message)");
    for (const [i, message] of messages.entries()) assert.equal(got[i], severityOf(message), message);
  });
});

describe("error signatures", () => {
  const cases: readonly (readonly [string, string])[] = [
    ['{"level":"ERROR","message":"Charge failed for order 123"}', "Charge failed for order <n>"],
    [
      '{"level":50,"msg":"cart 3f2a1b4c-1d2e-4f3a-8b9c-0d1e2f3a4b5c gone at 0x1f4"}',
      "cart <uuid> gone at <hex>",
    ],
    ["request 9f86d081884c7d65 failed", "request <hex> failed"],
    ["upstream declined: card_declined", "upstream declined: card_declined"],
    ["cafe babe deadbeef", "cafe babe deadbeef"],
  ];

  it("replaces numbers, UUIDs and hex, in the reference and in DuckDB alike", async () => {
    for (const [message, expected] of cases) assert.equal(signatureOf(message), expected, message);
    const got = await duckDbOver(
      cases.map(([m]) => m),
      "error_signature(message)",
    );
    assert.deepEqual(
      got,
      cases.map(([, s]) => s),
    );
  });

  it("DuckDB agrees with the reference on every mixed message", async () => {
    const messages = MIXED.map(([m]) => m);
    const got = await duckDbOver(messages, "error_signature(message)");
    assert.deepEqual(got, messages.map(signatureOf));
  });
});

describe("the three engines' definitions", () => {
  it("the checked-in _definitions.sql files are the generated ones (run `node queries/generate.ts`)", async () => {
    for (const engine of ENGINES) {
      assert.equal(await readFile(definitionsPath(engine), "utf8"), DEFINITIONS[engine](), engine);
    }
  });

  // BigQuery and Athena cannot run here: what makes them agree with DuckDB is that all three
  // are generated from the same tables, so every rule appears in each, in the same order.
  it("carry every level key, name, number, text rule and signature rule, in the same order", () => {
    const regexFor = {
      duckdb: (p: string) => `'${p.replaceAll("'", "''")}'`,
      athena: (p: string) => `'${p.replaceAll("'", "''")}'`,
      bigquery: (p: string) => `r'${p}'`,
    } as const;
    for (const engine of ENGINES) {
      const sql = DEFINITIONS[engine]();
      const inOrder = (needles: readonly string[], what: string) => {
        let from = 0;
        for (const needle of needles) {
          const at = sql.indexOf(needle, from);
          assert.ok(at >= 0, `${engine}: ${what} ${needle} missing or out of order`);
          from = at + needle.length;
        }
      };
      inOrder(
        LEVEL_KEYS.map((k) => `'$.${k}'`),
        "level key",
      );
      inOrder(
        LEVEL_NUMBERS.map(([n, s]) => `>= ${n} THEN '${s}'`),
        "level number",
      );
      inOrder(
        SEVERITIES.flatMap((s) => LEVEL_NAMES[s].map((n) => `'${n}'`)),
        "level name",
      );
      inOrder(
        TEXT_RULES.map((r) => `${regexFor[engine](r.pattern)}) THEN '${r.severity}'`),
        "text rule",
      );
      // regexp_replace calls nest with the first rule innermost; each pattern follows its subject.
      inOrder(
        SIGNATURE_RULES.map(([p]) => regexFor[engine](p)),
        "signature rule",
      );
    }
  });
});
