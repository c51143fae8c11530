// `logarchive query` on a warehouse file made with lib's DuckDB DDL: results in each format,
// usage errors that name the parameter, and reading while another process holds the file.

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DuckDBInstance } from "@duckdb/node-api";
import { Command } from "commander";
import { UserError } from "../../lib/config/errors.ts";
import { duckDbDdl } from "../../lib/record/ddl.ts";
import { queryCommand, render } from "./query.ts";

let dir: string;
let db: string;

const ROWS = [
  ["2026-11-21 10:00:01", "payments", '{"level":"ERROR","message":"Charge failed for order 12"}'],
  ["2026-11-21 10:00:02", "payments", '{"level":"INFO","message":"Charge authorized"}'],
  ["2026-11-21 10:30:00", "payments", 'com.acme.GatewayException: declined, "hard"'],
  ["2026-11-21 10:40:00", "checkout", "INFO 2026-11-21 10:40:00,000 views 12 Order 1 created"],
] as const;

const INSERT = `INSERT INTO container_logs (timestamp, timestamp_nanos, namespace, pod, container, node, stream, message, batch_id, seq)
  VALUES ($timestamp::TIMESTAMP, 0, $namespace, 'pod-1', 'app', 'node-a', 'stdout', $message, 'node-a_00000001_000000000001', $seq)`;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "logarchive-query-test-"));
  db = join(dir, "warehouse.duckdb");
  const instance = await DuckDBInstance.create(db);
  const connection = await instance.connect();
  await connection.run(duckDbDdl());
  const insert = await connection.prepare(INSERT);
  for (const [seq, [timestamp, namespace, message]] of ROWS.entries()) {
    insert.bind({ timestamp, namespace, message, seq: BigInt(seq) });
    await insert.run();
  }
  insert.destroySync();
  connection.closeSync();
  instance.closeSync();
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function query(args: string[]): Promise<{ out: string; notes: string }> {
  let out = "";
  let notes = "";
  const program = new Command("logarchive").exitOverride();
  program.addCommand(
    queryCommand({
      write: (t) => {
        out += t;
      },
      note: (t) => {
        notes += t;
      },
      now: () => Date.parse("2026-11-21T11:00:02Z"),
    }).exitOverride(),
  );
  await program.parseAsync(["node", "logarchive", "query", ...args]);
  return { out, notes };
}

const RANGE = [
  "--param",
  "namespaces=payments,checkout",
  "--param",
  "from=2026-11-21",
  "--param",
  "to=2026-11-22",
];

describe("logarchive query", () => {
  it("runs a pack query with its parameters and prints json lines", async () => {
    const { out, notes } = await query(["error_rate", "--db", db, ...RANGE, "--format", "json"]);
    assert.deepEqual(
      out
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l)),
      [
        {
          namespace: "checkout",
          container: "app",
          hour: "2026-11-21 10:00:00",
          lines: "1",
          errors: "0",
          error_rate: 0,
        },
        {
          namespace: "payments",
          container: "app",
          hour: "2026-11-21 10:00:00",
          lines: "3",
          errors: "2",
          error_rate: 0.6667,
        },
      ],
    );
    assert.match(notes, /^2 rows in \d+ ms\n$/);
  });

  it("prints a table with the row count, and csv quoted per RFC 4180", async () => {
    const table = await query(["top_error_signatures", "--db", db, ...RANGE]);
    const lines = table.out.split("\n");
    assert.match(lines[0]!, /^signature\s+occurrences\s+containers\s+first_seen\s+last_seen$/);
    assert.match(lines[1]!, /^-+ {2}-+/);
    assert.match(table.out, /Charge failed for order <n> +1 /);
    assert.match(table.out, /\n2 rows in \d+ ms\n$/);
    const csv = await query(["top_error_signatures", "--db", db, ...RANGE, "--format", "csv"]);
    assert.ok(csv.out.includes('"com.acme.GatewayException: declined, ""hard"""'), csv.out);
    assert.ok(csv.out.startsWith("signature,occurrences,containers,first_seen,last_seen\r\n"));
  });

  it("--list names every query with its engines and parameters", async () => {
    const { out } = await query(["--list"]);
    assert.match(out, /^error_rate {2}\(athena, bigquery, duckdb\)$/m);
    assert.match(out, /--param namespaces=payments,checkout {2}STRING_LIST/);
    assert.match(out, /^pipeline_health /m);
  });

  it("--sql runs a file: a header declares parameters, without one each $name is text", async () => {
    const plain = join(dir, "plain.sql");
    await writeFile(
      plain,
      "SELECT count(*) AS n FROM container_logs WHERE namespace = $ns AND is_error(message);\n",
    );
    const { out } = await query(["--sql", plain, "--db", db, "--param", "ns=payments", "--format", "json"]);
    assert.deepEqual(JSON.parse(out), { n: "2" });
  });

  it("usage errors name the parameter, query, engine or file", async () => {
    const fails = async (args: string[], pattern: RegExp) =>
      assert.rejects(query(args), (e: Error) => e instanceof UserError && pattern.test(e.message));
    await fails(["error_rate", "--db", db, "--param", "from=2026-11-21"], /needs --param namespaces=/);
    await fails(["error_rate", "--db", db, ...RANGE, "--param", "to=tomorrow"], /--param to is given twice/);
    await fails(
      ["error_rate", "--db", db, ...RANGE.slice(0, 4), "--param", "to=tomorrow"],
      /--param to=tomorrow: expected a UTC time/,
    );
    await fails(["error_rat", "--db", db], /no query "error_rat" for duckdb/);
    await fails(["error_rate", "--engine", "athena", ...RANGE], /--engine athena: not in this version/);
    await fails(
      ["error_rate", "--db", join(dir, "none.duckdb"), ...RANGE],
      /--db .*none\.duckdb: no warehouse there/,
    );
    await fails([], /give a query name/);
  });
});

describe("logarchive query while another process holds the warehouse", () => {
  let holder: ChildProcess | undefined;
  after(() => {
    holder?.kill();
  });

  it("reads a copy, including the holder's commits since the last checkpoint, and says how old it is", async () => {
    // The holder opens the file read-write (as `logarchive local` does), commits a line and waits.
    const script = `
      import { DuckDBInstance } from "@duckdb/node-api";
      const instance = await DuckDBInstance.create(${JSON.stringify(db)});
      const connection = await instance.connect();
      const insert = await connection.prepare(${JSON.stringify(INSERT)});
      insert.bind({ timestamp: "2026-11-21 10:50:00", namespace: "payments", message: '{"level":50,"msg":"late error"}', seq: 99n });
      await insert.run();
      process.stdout.write("ready\\n");
      process.stdin.resume();
      process.stdin.on("end", () => process.exit(0));
    `;
    holder = spawn(process.execPath, ["--input-type=module", "-e", script], {
      cwd: new URL("../..", import.meta.url),
      stdio: ["pipe", "pipe", "inherit"],
    });
    let ready = "";
    holder.stdout!.setEncoding("utf8");
    holder.stdout!.on("data", (chunk: string) => {
      ready += chunk;
      if (ready.includes("ready")) holder!.stdout!.emit("ready");
    });
    await Promise.race([
      once(holder.stdout!, "ready"),
      once(holder, "exit").then(() => assert.fail("holder exited")),
    ]);

    // Without the copy, DuckDB refuses the file outright.
    await assert.rejects(DuckDBInstance.create(db, { access_mode: "READ_ONLY" }), /lock/i);

    const { out, notes } = await query(["error_rate", "--db", db, ...RANGE, "--format", "json"]);
    assert.match(
      notes,
      /is in use \(by a running `logarchive local`\?\): reading a copy taken \d{4}-\d\d-\d\dT/,
    );
    assert.match(notes, /The newest line in the copy is from 2026-11-21T10:50:00\.000000Z \(10 min ago\)/);
    const payments = out
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l))
      .find((r) => r.namespace === "payments");
    assert.equal(payments.errors, "3", "the holder's uncheckpointed commit is in the copy");

    holder.stdin!.end();
    await once(holder, "exit");
    holder = undefined;
  });
});

describe("render", () => {
  it("keeps a log line on one table row and cuts long cells", () => {
    const text = render(["m"], [{ m: `a\tb\nc${"x".repeat(200)}` }, { m: null }], "table");
    const lines = text.trimEnd().split("\n");
    assert.equal(lines.length, 4);
    assert.ok(lines[2]!.startsWith("a\\tb\\nc"));
    assert.equal([...lines[2]!].length, 120);
    assert.equal(lines[3], "NULL");
  });
});
