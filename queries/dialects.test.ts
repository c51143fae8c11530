// Every Athena file parses as Trino SQL and every BigQuery file as GoogleSQL, with
// node-sql-parser's trino and bigquery grammars. Where that parser lacks a construct the
// engine documents, the exception is listed below, narrowly: the files it applies to, the
// exact text, the engine's documentation, and a stand-in of the same shape that the parser
// takes. The test fails when an exception no longer matches its file (the SQL changed) or is
// no longer needed (the parser learned the construct), so none outlives its reason.

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import { describe, it } from "node:test";
import { PACK_DIR } from "./pack.ts";

// node-sql-parser's per-dialect builds are CommonJS files without type declarations of their own path.
const require = createRequire(import.meta.url);
interface SqlParser {
  astify(sql: string, options: { database: string }): unknown;
}
const parserFor = (dialect: "trino" | "bigquery"): SqlParser => {
  const { Parser } = require(`node-sql-parser/build/${dialect}`) as { Parser: new () => SqlParser };
  return new Parser();
};

interface ParserException {
  /** Query files (without .sql) it applies to; nowhere else. */
  readonly files: readonly string[];
  /** The construct, exactly as the files have it. */
  readonly text: RegExp;
  /** A stand-in of the same shape the parser takes. */
  readonly standIn: string | ((match: string, ...groups: string[]) => string);
  /** Why the engine takes the original: its documentation. */
  readonly engineDoc: string;
}

const ATHENA_EXCEPTIONS: readonly ParserException[] = [
  {
    // Trino's grammar: `limitRowCount: ALL | rowCount; rowCount: INTEGER_VALUE | QUESTION_MARK`.
    // node-sql-parser 5.4's trino grammar takes only a number after LIMIT.
    files: ["noisiest_pods", "search", "top_error_signatures"],
    text: /\bLIMIT \?;\s*$/,
    standIn: "LIMIT 1;",
    engineDoc:
      "https://github.com/trinodb/trino/blob/master/core/trino-grammar/src/main/antlr4/io/trino/grammar/sql/SqlBase.g4 (rowCount), https://docs.aws.amazon.com/athena/latest/ug/querying-with-prepared-statements.html",
  },
];

const BIGQUERY_EXCEPTIONS: readonly ParserException[] = [
  {
    // Named arguments (`name => value`) of built-in functions; node-sql-parser 5.4 has no `=>`.
    files: ["_definitions", "latency_percentiles"],
    text: /SAFE\.PARSE_JSON\((\w+), wide_number_mode => 'round'\)/g,
    standIn: (_match, argument) => `SAFE.PARSE_JSON(${argument})`,
    engineDoc: "https://cloud.google.com/bigquery/docs/reference/standard-sql/json_functions#parse_json",
  },
  {
    // An array subscript inside a function's arguments, `ROUND(APPROX_QUANTILES(x, 100)[OFFSET(50)], 1)`:
    // node-sql-parser 5.4 takes `a[OFFSET(n)]` as a select item but not as an argument. The stand-in
    // keeps both operands, as a call: `ROUND(OFFSET_OF(APPROX_QUANTILES(x, 100), 50), 1)`.
    files: ["latency_percentiles"],
    text: /(APPROX_QUANTILES\(\w+, \d+\))\[OFFSET\((\d+)\)\]/g,
    standIn: (_match, array, offset) => `OFFSET_OF(${array}, ${offset})`,
    engineDoc:
      "https://cloud.google.com/bigquery/docs/reference/standard-sql/approximate_aggregate_functions#approx_quantiles",
  },
  {
    // MICROSECOND is a date part of TIMESTAMP_SUB's INTERVAL; node-sql-parser 5.4 stops at SECOND.
    files: ["pipeline_health"],
    text: /INTERVAL 1 MICROSECOND/g,
    standIn: "INTERVAL 1 SECOND",
    engineDoc:
      "https://cloud.google.com/bigquery/docs/reference/standard-sql/timestamp_functions#timestamp_sub",
  },
  {
    // CREATE TEMP FUNCTION is not in node-sql-parser 5.4's bigquery grammar: each SQL UDF's
    // body is parsed as an expression instead, `SELECT (<body>)`, with its arguments as columns.
    files: ["_definitions"],
    text: /^CREATE TEMP FUNCTION \w+\([^)]*\) AS (\(.*\));$/gm,
    standIn: (_match, body) => `SELECT ${body};`,
    engineDoc: "https://cloud.google.com/bigquery/docs/user-defined-functions#sql-udf-structure",
  },
];

async function sqlFiles(engine: "athena" | "bigquery"): Promise<Map<string, string>> {
  const { readdir } = await import("node:fs/promises");
  const files = (await readdir(join(PACK_DIR, engine))).filter((f) => f.endsWith(".sql")).sort();
  const out = new Map<string, string>();
  for (const file of files) out.set(file.slice(0, -4), await readFile(join(PACK_DIR, engine, file), "utf8"));
  return out;
}

function parses(parser: SqlParser, dialect: string, sql: string): string | undefined {
  try {
    parser.astify(sql, { database: dialect });
    return undefined;
  } catch (error) {
    const e = error as Error & { location?: { start?: { line: number; column: number } } };
    const at = e.location?.start;
    const line =
      at === undefined ? "" : ` at ${at.line}:${at.column}: ${sql.split("\n")[at.line - 1]?.trim()}`;
    return `${e.message.slice(0, 120)}${line}`;
  }
}

function checkDialect(
  engine: "athena" | "bigquery",
  dialect: "trino" | "bigquery",
  exceptions: readonly ParserException[],
) {
  return async () => {
    const parser = parserFor(dialect);
    const files = await sqlFiles(engine);
    assert.ok(files.size >= 11, `${engine}: ${files.size} files`);
    for (const exception of exceptions)
      for (const name of exception.files) assert.ok(files.has(name), `${name} of an exception is a file`);
    const apply = (sql: string, list: readonly ParserException[]) =>
      list.reduce(
        (text, e) => text.replace(new RegExp(e.text.source, e.text.flags), e.standIn as string),
        sql,
      );
    for (const [name, original] of files) {
      const applicable = exceptions.filter((e) => e.files.includes(name));
      for (const exception of exceptions) {
        const found = new RegExp(exception.text.source, exception.text.flags).test(original);
        const applies = applicable.includes(exception);
        assert.equal(
          found,
          applies,
          applies
            ? `${engine}/${name}.sql no longer has ${exception.text}: update the exception`
            : `${engine}/${name}.sql has ${exception.text}, which is excepted only in ${exception.files.join(", ")}`,
        );
      }
      const problem = parses(parser, dialect, apply(original, applicable));
      assert.equal(problem, undefined, `${engine}/${name}.sql does not parse as ${dialect}: ${problem}`);
      // Each exception is still needed: without it (the others applied), the file does not parse.
      for (const exception of applicable) {
        const without = apply(
          original,
          applicable.filter((e) => e !== exception),
        );
        assert.notEqual(
          parses(parser, dialect, without),
          undefined,
          `${engine}/${name}.sql parses without the exception for ${exception.text} now: remove it`,
        );
      }
    }
  };
}

describe("dialect parse checks (node-sql-parser)", () => {
  it("every Athena file parses as Trino", checkDialect("athena", "trino", ATHENA_EXCEPTIONS));
  it("every BigQuery file parses as BigQuery", checkDialect("bigquery", "bigquery", BIGQUERY_EXCEPTIONS));

  it("the parser rejects what the engines reject, so a pass means something", () => {
    const trino = parserFor("trino");
    assert.notEqual(parses(trino, "trino", "SELECT FROM WHERE ?"), undefined);
    assert.notEqual(parses(trino, "trino", "SELECT a FROM t WHERE (a = 1"), undefined);
    const bigquery = parserFor("bigquery");
    assert.notEqual(parses(bigquery, "bigquery", "SELECT a FROM t WHERE a = @from AND"), undefined);
    assert.equal(parses(bigquery, "bigquery", "SELECT a FROM t WHERE a IN UNNEST(@names)"), undefined);
  });
});
