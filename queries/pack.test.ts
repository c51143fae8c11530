// The pack's shape: the same questions and parameters in every engine, a header that says
// what each answers and costs, partition filters in every Athena and BigQuery query, and
// parameters bound, never pasted.

import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { UserError } from "../lib/config/errors.ts";
import { ENGINES, type Engine } from "./definitions.ts";
import {
  athenaRequest,
  bigQueryRequest,
  duckDbBindings,
  loadPack,
  normaliseTimestamp,
  PackFormatError,
  type PackQuery,
  parseParamArgs,
  parseQuery,
  resolveParams,
} from "./pack.ts";

let pack: Map<Engine, Map<string, PackQuery>>;
before(async () => {
  pack = await loadPack();
});

const REQUIRED_QUESTIONS = [
  "log_volume",
  "error_rate",
  "top_error_signatures",
  "incident_timeline",
  "search",
  "trace_lookup",
  "compliance_export",
  "pipeline_health",
];

describe("the pack", () => {
  it("answers the issue's questions in every engine, with the same names", () => {
    const names = (engine: Engine) => [...pack.get(engine)!.keys()].sort();
    for (const name of REQUIRED_QUESTIONS) assert.ok(names("duckdb").includes(name), name);
    assert.deepEqual(names("athena"), names("duckdb"));
    assert.deepEqual(names("bigquery"), names("duckdb"));
  });

  it("takes the same parameters, with the same types and defaults, in every engine", () => {
    for (const [name, duckdb] of pack.get("duckdb")!) {
      const shape = (q: PackQuery) => q.params.map((p) => [p.name, p.type, p.default]);
      for (const engine of ENGINES) {
        assert.deepEqual(shape(pack.get(engine)!.get(name)!), shape(duckdb), `${engine}/${name}`);
        assert.equal(pack.get(engine)!.get(name)!.lookbackHours, duckdb.lookbackHours, `${engine}/${name}`);
      }
    }
  });

  it("every header has a title, an answer, cost notes and an example per parameter that resolves", () => {
    for (const queries of pack.values()) {
      for (const query of queries.values()) {
        assert.ok(query.title.length > 10 && query.answers.length > 20 && query.cost.length > 20, query.path);
        const examples = Object.fromEntries(query.params.map((p) => [p.name, p.example]));
        assert.doesNotThrow(() => resolveParams(query, examples), query.path);
      }
    }
  });

  it("every BigQuery query filters on the timestamp partitions", () => {
    const filtered =
      /FROM container_logs\s+WHERE `timestamp` >= (@from|TIMESTAMP_SUB\(@from, INTERVAL 1 DAY\)) AND `timestamp` < @to\b/g;
    for (const query of pack.get("bigquery")!.values()) {
      const code = query.body.replace(/--.*$/gm, "");
      const reads = code.match(/FROM container_logs\b/g)?.length ?? 0;
      assert.ok(reads > 0, query.path);
      assert.equal(code.match(filtered)?.length, reads, query.path);
    }
  });

  it("every Athena query filters on the namespace and dt partitions", () => {
    for (const query of pack.get("athena")!.values()) {
      const code = query.body.replace(/--.*$/gm, "");
      const reads = code.match(/FROM container_logs(_v)?\b/g)?.length ?? 0;
      assert.ok(reads > 0, query.path);
      const filtered =
        /WHERE namespace (IN \(\?\)|= \?)\s+AND dt BETWEEN (substr\(\?, 1, 10\)|date_format\(date_add\('day', -1, CAST\(\? AS timestamp\)\), '%Y-%m-%d'\)) AND substr\(\?, 1, 10\)/g;
      assert.equal(code.match(filtered)?.length, reads, query.path);
    }
  });
});

describe("headers", () => {
  const header = [
    "-- title: A test query",
    "-- answers: What the test asks,",
    "--   over two lines.",
    "-- param: namespace NAMESPACE the namespace; example: payments",
    "-- param: limit INT64 how many; example: 5; default: 10",
    "-- cost: Cheap, it reads nothing at all.",
  ];

  it("reads continuation lines, examples and defaults", () => {
    const q = parseQuery(
      [...header, "SELECT * FROM t WHERE namespace = $namespace LIMIT $limit;"].join("\n"),
      "x.sql",
      "duckdb",
    );
    assert.equal(q.answers, "What the test asks, over two lines.");
    assert.deepEqual(q.params[1], {
      name: "limit",
      type: "INT64",
      description: "how many",
      example: "5",
      default: "10",
    });
    assert.equal(q.body, "SELECT * FROM t WHERE namespace = $namespace LIMIT $limit;");
  });

  it("refuses a parameter the SQL uses but the header does not declare, and the reverse", () => {
    assert.throws(
      () => parseQuery([...header, "SELECT $namespace, $limit, $other"].join("\n"), "x.sql", "duckdb"),
      (e: Error) => e instanceof PackFormatError && /x\.sql: .*parameter other/.test(e.message),
    );
    assert.throws(
      () => parseQuery([...header, "SELECT $namespace"].join("\n"), "x.sql", "duckdb"),
      /limit is declared/,
    );
    // '$.level' in a string is a JSON path, not a parameter.
    assert.doesNotThrow(() =>
      parseQuery(
        [...header, "SELECT json_field(m, '$.level'), $namespace, $limit"].join("\n"),
        "x.sql",
        "duckdb",
      ),
    );
  });

  it("checks Athena's positional list against the ? markers", () => {
    const athena = [
      ...header,
      "-- positional: namespace, limit",
      "SELECT * FROM t WHERE namespace = ? LIMIT ?",
    ];
    assert.deepEqual(parseQuery(athena.join("\n"), "a.sql", "athena").positional, ["namespace", "limit"]);
    athena[athena.length - 1] = "SELECT * FROM t WHERE namespace = ?";
    assert.throws(() => parseQuery(athena.join("\n"), "a.sql", "athena"), /1 \? markers but .* lists 2/);
  });
});

describe("parameters", () => {
  const query = () => pack.get("duckdb")!.get("search")!;

  it("a missing, unknown or malformed parameter is a UserError that names it", () => {
    const base = { namespace: "checkout", from: "2026-11-21", to: "2026-11-22" };
    assert.throws(
      () => resolveParams(query(), { from: base.from, to: base.to }),
      (e: Error) => e instanceof UserError && /needs --param namespace=/.test(e.message),
    );
    assert.throws(
      () => resolveParams(query(), { ...base, text: "x", colour: "red" }),
      /--param colour: query search has no parameter colour/,
    );
    assert.throws(
      () => resolveParams(query(), { ...base, text: "x", from: "yesterday" }),
      /--param from=yesterday: expected a UTC time/,
    );
    assert.throws(
      () => resolveParams(query(), { ...base, text: "x", limit: "10; DROP" }),
      /--param limit=10; DROP: expected an integer/,
    );
    assert.throws(
      () => resolveParams(query(), { ...base, text: "x", namespace: "Bad_NS" }),
      /--param namespace=Bad_NS/,
    );
    assert.throws(() => parseParamArgs(["from"]), /--param from: expected name=value/);
    assert.throws(() => parseParamArgs(["a=1", "a=2"]), /--param a is given twice/);
    assert.deepEqual(parseParamArgs(["text=a=b"]), { text: "a=b" });
  });

  it("search's text and pattern are optional (empty: any); a pattern the engines would not all run is refused", () => {
    const base = { namespace: "checkout", from: "2026-11-21", to: "2026-11-22" };
    const values = resolveParams(query(), base);
    assert.equal(values.get("text"), "");
    assert.equal(values.get("pattern"), "");
    assert.equal(
      resolveParams(query(), { ...base, pattern: "(?i)sku-[0-9]+" }).get("pattern"),
      "(?i)sku-[0-9]+",
    );
    assert.equal(resolveParams(query(), { ...base, text: "" }).get("text"), "");
    const refused = (pattern: string, why: RegExp) =>
      assert.throws(
        () => resolveParams(query(), { ...base, pattern }),
        (e: Error) =>
          e instanceof UserError &&
          e.message.startsWith(`--param pattern=${pattern}: expected a regular expression in RE2 syntax`) &&
          why.test(e.message),
      );
    refused("SKU-[0-9", /Unterminated character class/);
    refused("a(?=b)", /lookaround/);
    refused("(a)\\1", /backreferences/);
    // A required STRING stays non-empty.
    assert.throws(
      () =>
        resolveParams(pack.get("duckdb")!.get("incident_timeline")!, {
          from: base.from,
          to: base.to,
          namespaces: "a",
          signature: "",
        }),
      /--param signature=: expected a non-empty text/,
    );
  });

  it("times are UTC, normalised, and impossible dates are refused", () => {
    assert.equal(normaliseTimestamp("2026-11-21"), "2026-11-21 00:00:00");
    assert.equal(normaliseTimestamp("2026-11-21T10:30Z"), "2026-11-21 10:30:00");
    assert.equal(normaliseTimestamp("2026-11-21 10:30:05.25"), "2026-11-21 10:30:05.25");
    assert.equal(normaliseTimestamp("2026-02-30"), undefined);
    assert.equal(normaliseTimestamp("2026-11-21T10:30+02:00"), undefined);
  });

  it("binds per engine: DuckDB by name, BigQuery typed, Athena as quoted literals with lists expanded", () => {
    const given = {
      namespaces: "payments,checkout",
      from: "2026-11-21",
      to: "2026-11-22",
      signature: "it's <n>",
    };
    const duck = pack.get("duckdb")!.get("incident_timeline")!;
    assert.deepEqual(duckDbBindings(resolveParams(duck, given)), {
      namespaces: "payments,checkout",
      from: "2026-11-21 00:00:00",
      to: "2026-11-22 00:00:00",
      signature: "it's <n>",
    });
    const bq = bigQueryRequest(pack.get("bigquery")!.get("incident_timeline")!, resolveParams(duck, given));
    assert.deepEqual(bq.params.namespaces, ["payments", "checkout"]);
    assert.deepEqual(bq.types, {
      namespaces: ["STRING"],
      from: "TIMESTAMP",
      to: "TIMESTAMP",
      signature: "STRING",
    });
    assert.match(bq.query, /^-- Generated[\s\S]*CREATE TEMP FUNCTION severity[\s\S]*WITH hits AS/);
    assert.ok(!bq.query.includes("it's"), "values travel as parameters, not in the SQL");
    const athena = athenaRequest(pack.get("athena")!.get("incident_timeline")!, resolveParams(duck, given));
    assert.deepEqual(athena.executionParameters, [
      "'payments'",
      "'checkout'",
      "'2026-11-21 00:00:00'",
      "'2026-11-22 00:00:00'",
      // The hour predicates: from twice, to twice.
      "'2026-11-21 00:00:00'",
      "'2026-11-21 00:00:00'",
      "'2026-11-22 00:00:00'",
      "'2026-11-22 00:00:00'",
      "'2026-11-21 00:00:00'",
      "'2026-11-22 00:00:00'",
      "'it''s <n>'",
    ]);
    assert.match(athena.queryString, /namespace IN \(\?, \?\)/);
    assert.equal(athena.queryString.match(/\?/g)?.length, athena.executionParameters.length);
    const limited = athenaRequest(
      pack.get("athena")!.get("top_error_signatures")!,
      resolveParams(pack.get("athena")!.get("top_error_signatures")!, {
        namespaces: given.namespaces,
        from: given.from,
        to: given.to,
        limit: "7",
      }),
    );
    assert.equal(limited.executionParameters.at(-1), "7");
  });
});
