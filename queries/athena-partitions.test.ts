// Which partitions each Athena query's partition predicates select: the statement is bound as
// Athena binds it (athenaRequest(), then each `?` replaced by its literal in order), its `dt`
// and `hour` predicates are taken out and evaluated over a table of (dt, hour) partitions in
// DuckDB, which reads these expressions alike (substr and string comparison; Athena's
// date_add/date_format are given as macros). Every query must select exactly the hours from
// the one `from` falls in (less its lookback) to the one `to` falls in: the hour predicates
// prune within a day, and nothing of the range is left out.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import { athenaRequest, loadPack, type PackQuery, resolveParams } from "./pack.ts";

const MARKERS = /'(?:[^']|'')*'|"(?:[^"]|"")*"|\?/g;
const PARTITION_LINE = /^\s*AND (dt BETWEEN |\(dt [<>] )/;
const HOUR_MS = 3_600_000;

let instance: DuckDBInstance;
let connection: DuckDBConnection;
let athena: Map<string, PackQuery>;

before(async () => {
  instance = await DuckDBInstance.create(":memory:");
  connection = await instance.connect();
  await connection.run(`
    CREATE TABLE partitions AS
      SELECT strftime(d, '%Y-%m-%d') AS dt, lpad(CAST(h AS VARCHAR), 2, '0') AS hour
      FROM range(DATE '2026-11-18', DATE '2026-11-26', INTERVAL 1 DAY) AS days(d), range(24) AS hours(h);
    CREATE MACRO date_format(t, f) AS strftime(t, f);
    CREATE MACRO athena_date_add(unit, n, t) AS t + n * INTERVAL 1 DAY;
  `);
  athena = (await loadPack()).get("athena")!;
});
after(() => {
  connection.closeSync();
  instance.closeSync();
});

/** The query as Athena runs it: every `?` replaced by its execution parameter, in order. */
function bound(query: PackQuery, given: Record<string, string>): string {
  const { queryString, executionParameters } = athenaRequest(query, resolveParams(query, given));
  let next = 0;
  const sql = queryString.replace(MARKERS, (token) => (token === "?" ? executionParameters[next++]! : token));
  assert.equal(next, executionParameters.length);
  return sql;
}

/** Each group of partition predicates (a dt BETWEEN and the lines after it), as one condition. */
function partitionConditions(sql: string): string[] {
  const groups: string[][] = [];
  let current: string[] | undefined;
  for (const line of sql.split("\n")) {
    if (PARTITION_LINE.test(line)) {
      if (line.includes("dt BETWEEN")) {
        current = [];
        groups.push(current);
      }
      current!.push(line.trim().replace(/^AND /, ""));
    } else {
      current = undefined;
    }
  }
  return groups.map((g) => g.join(" AND ").replaceAll("date_add('day'", "athena_date_add('day'"));
}

function expectedHours(from: string, to: string, lookbackHours: number): string[] {
  const millis = (t: string) => Date.parse(`${t.replace(" ", "T")}Z`);
  const start = Math.floor(millis(from) / HOUR_MS) * HOUR_MS - lookbackHours * HOUR_MS;
  const last = Math.floor(millis(to) / HOUR_MS) * HOUR_MS;
  const out: string[] = [];
  for (let t = start; t <= last; t += HOUR_MS)
    out.push(new Date(t).toISOString().slice(0, 13).replace("T", " "));
  return out;
}

const RANGES = [
  ["2026-11-21 10:15:00", "2026-11-21 10:45:00"],
  ["2026-11-21 10:00:00", "2026-11-21 12:00:00"],
  ["2026-11-21 22:30:00", "2026-11-22 01:10:00"],
  ["2026-11-20 05:00:00", "2026-11-23 03:00:00"],
  ["2026-11-21 00:00:00", "2026-11-22 00:00:00"],
] as const;

describe("Athena partition predicates", () => {
  it("every query selects exactly the dt/hour partitions of its range, with its lookback", async () => {
    for (const query of athena.values()) {
      for (const [from, to] of RANGES) {
        const given: Record<string, string> = { from, to };
        for (const p of query.params)
          if (!(p.name in given) && p.default === undefined) given[p.name] = p.example;
        const conditions = partitionConditions(bound(query, given));
        assert.ok(conditions.length > 0, `${query.name} has partition predicates`);
        for (const condition of conditions) {
          assert.match(condition, /hour >= .* hour <= /, `${query.name}: ${condition}`);
          const reader = await connection.runAndReadAll(
            `SELECT dt || ' ' || hour AS h FROM partitions WHERE ${condition} ORDER BY h`,
          );
          const selected = reader.getRowObjectsJson().map((r) => r.h as string);
          assert.deepEqual(
            selected,
            expectedHours(from, to, query.lookbackHours),
            `${query.name} ${from} → ${to}`,
          );
        }
      }
    }
  });

  it("within a day, the hour predicates prune 24 hours to the range's", async () => {
    const sql = bound(athena.get("search")!, {
      namespace: "checkout",
      from: "2026-11-21 10:15",
      to: "2026-11-21 10:45",
    });
    const [condition] = partitionConditions(sql);
    const count = async (where: string) =>
      (
        await connection.runAndReadAll(`SELECT count(*) AS n FROM partitions WHERE ${where}`)
      ).getRowObjectsJson()[0]!.n;
    assert.equal(await count(condition!.split(" AND (")[0]!), "24");
    assert.equal(await count(condition!), "1");
  });
});
