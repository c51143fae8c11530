// `logarchive query` on a warehouse file made with lib's DuckDB DDL: results in each format,
// usage errors that name the parameter, and reading while another process holds the file.

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { AthenaClient } from "@aws-sdk/client-athena";
import { DuckDBInstance } from "@duckdb/node-api";
import { Command } from "commander";
import { type DryRunFront, startDryRunFront } from "../../functions/warehouse/test_support/dry-run.ts";
import {
  type FakeBigQuery,
  fakeBigQueryClient,
  startFakeBigQuery,
} from "../../functions/warehouse/test_support/fake-bigquery.ts";
import { UserError } from "../../lib/config/errors.ts";
import { duckDbDdl } from "../../lib/record/ddl.ts";
import { type FakeAthena, startFakeAthena } from "../../queries/test_support/fake-athena.ts";
import { parseByteCount, type QueryIo, queryCommand, render } from "./query.ts";

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

async function query(
  args: string[],
  clients: Omit<QueryIo, "write" | "note" | "now"> = {},
): Promise<{ out: string; notes: string }> {
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
      ...clients,
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
    // The examples' dates are the sample warehouse's; a local run's lines are today's.
    assert.match(
      out,
      /^Examples are for the sample warehouse .*2026-11-21 10:00-12:00 UTC.*\$\(date -u \+%F\)/m,
    );
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

  /**
   * A process that opens `db` read-write (as `logarchive local` does), commits a line that no
   * checkpoint has written to the file yet, and holds the file until its stdin ends.
   *
   * DuckDB's node bindings close a database whose instance is garbage collected, and closing
   * drops the lock; so the holder keeps its instance and connection reachable (its stdin's end
   * closes them). Before it says "ready" it collects garbage and lets the finalizers run:
   * a holder that let go of its instance has then lost the lock before the test looks, every
   * time, instead of only when a collection happens to fall inside the test (issue #8).
   */
  async function startHolder(): Promise<ChildProcess> {
    const script = `
      import { DuckDBInstance } from "@duckdb/node-api";
      const instance = await DuckDBInstance.create(${JSON.stringify(db)});
      const connection = await instance.connect();
      const insert = await connection.prepare(${JSON.stringify(INSERT)});
      insert.bind({ timestamp: "2026-11-21 10:50:00", namespace: "payments", message: '{"level":50,"msg":"late error"}', seq: 99n });
      await insert.run();
      insert.destroySync();
      process.stdin.on("end", () => {
        connection.closeSync();
        instance.closeSync();
        process.exit(0);
      });
      process.stdin.resume();
      // After this module's body has returned, so only what is kept reachable survives.
      setImmediate(() => {
        globalThis.gc();
        setImmediate(() => process.stdout.write("ready\\n"));
      });
    `;
    const child = spawn(process.execPath, ["--expose-gc", "--input-type=module", "-e", script], {
      cwd: new URL("../..", import.meta.url),
      stdio: ["pipe", "pipe", "inherit"],
    });
    let said = "";
    child.stdout!.setEncoding("utf8");
    const ready = new Promise<void>((resolve) => {
      child.stdout!.on("data", (chunk: string) => {
        said += chunk;
        if (said.includes("ready\n")) resolve();
      });
    });
    const exited = once(child, "exit").then(([code, signal]) =>
      assert.fail(`the holder exited (${code ?? signal}) before it held the warehouse`),
    );
    await Promise.race([ready, exited]);
    return child;
  }

  const holderHasTheLock = () =>
    assert.rejects(
      DuckDBInstance.create(db, { access_mode: "READ_ONLY" }),
      /Could not set lock on file/,
      "the holder still holds the warehouse's lock",
    );

  it("reads a copy, including the holder's commits since the last checkpoint, and says how old it is", async () => {
    holder = await startHolder();
    // Without the copy, DuckDB refuses the file outright.
    await holderHasTheLock();

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
    // Reading the copy left the holder's lock alone.
    await holderHasTheLock();

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

describe("logarchive query --engine bigquery (the fake BigQuery behind its dry-run front)", () => {
  let fake: FakeBigQuery;
  let front: DryRunFront;
  let dryRunBytes = 0;
  before(async () => {
    fake = await startFakeBigQuery();
    front = await startDryRunFront(fake, () => dryRunBytes);
  });
  after(async () => {
    await front.stop();
    await fake.stop();
  });
  const clients = { bigquery: () => fakeBigQueryClient({ ...fake, url: front.url }, "proj") };
  const ARGS = ["error_rate", "--engine", "bigquery", "--project", "proj", "--location", "EU", ...RANGE];
  const FIELDS = [
    { name: "namespace", type: "STRING" },
    { name: "container", type: "STRING" },
    { name: "hour", type: "TIMESTAMP" },
    { name: "lines", type: "INTEGER" },
    { name: "errors", type: "INTEGER" },
    { name: "error_rate", type: "FLOAT" },
  ];

  it("dry-runs, says the bytes, runs capped at --max-bytes, waits and pages the results", async () => {
    dryRunBytes = 123_456_789;
    const before = fake.requests.length;
    fake.queueQueryResult({
      fields: FIELDS,
      rows: [
        ["checkout", "web", "1795255200000000", "1028", "7", "0.0068"],
        ["payments", "api", "1795255200000000", "2078", "102", "0.0491"],
        ["payments", "api", "1795258800500000", "2153", "118", "0.0548"],
      ],
      incompletePolls: 1,
      pageSize: 2,
    });
    const { out, notes } = await query([...ARGS, "--max-bytes", "1GB", "--format", "json"], clients);
    assert.deepEqual(
      out
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l)),
      [
        {
          namespace: "checkout",
          container: "web",
          hour: "2026-11-21 10:00:00",
          lines: "1028",
          errors: "7",
          error_rate: 0.0068,
        },
        {
          namespace: "payments",
          container: "api",
          hour: "2026-11-21 10:00:00",
          lines: "2078",
          errors: "102",
          error_rate: 0.0491,
        },
        {
          namespace: "payments",
          container: "api",
          hour: "2026-11-21 11:00:00.5",
          lines: "2153",
          errors: "118",
          error_rate: 0.0548,
        },
      ],
    );
    assert.match(
      notes,
      /^BigQuery dry run: this query will process 117\.7 MiB \(123456789 bytes; --max-bytes 1000000000\)\.\n/,
    );
    assert.match(notes, /\n3 rows in \d+ ms\n$/);

    // The dry run: the script with the temporary functions, typed parameters, the dataset.
    const dry = front.dryRuns.at(-1) as unknown as Record<string, unknown>;
    assert.match(dry.query as string, /CREATE TEMP FUNCTION[\s\S]*FROM container_logs/);
    assert.deepEqual(dry.defaultDataset, { projectId: "proj", datasetId: "logarchive" });
    assert.equal(dry.location, "EU");
    assert.deepEqual(dry.queryParameters, [
      {
        name: "namespaces",
        parameterType: { type: "ARRAY", arrayType: { type: "STRING" } },
        parameterValue: { arrayValues: [{ value: "payments" }, { value: "checkout" }] },
      },
      {
        name: "from",
        parameterType: { type: "TIMESTAMP" },
        parameterValue: { value: "2026-11-21T00:00:00Z" },
      },
      { name: "to", parameterType: { type: "TIMESTAMP" }, parameterValue: { value: "2026-11-22T00:00:00Z" } },
    ]);

    // Then the run, capped, and the polls and pages of its results, in that order.
    const sequence = fake.requests.slice(before);
    assert.deepEqual(
      sequence.map((r) =>
        `${r.method} ${r.path.replace(/job_[0-9a-f-]+/, "JOB")} ${r.query.pageToken ?? ""}`.trim(),
      ),
      [
        "POST /bigquery/v2/projects/proj/queries",
        "GET /bigquery/v2/projects/proj/queries/JOB",
        "GET /bigquery/v2/projects/proj/queries/JOB 2",
      ],
    );
    const run = sequence[0]!.body as Record<string, unknown>;
    assert.equal(run.maximumBytesBilled, "1000000000");
    assert.equal(run.dryRun, undefined);
    assert.equal(run.query, dry.query);
    assert.deepEqual(run.formatOptions, { useInt64Timestamp: true });
    assert.equal(sequence[1]!.query.location, "EU");
    assert.equal(sequence[2]!.query["formatOptions.useInt64Timestamp"], "true");
  });

  it("refuses, before anything runs, a query whose dry run is over --max-bytes", async () => {
    dryRunBytes = 2 * 2 ** 30 + 1;
    const before = fake.requests.length;
    await assert.rejects(
      query([...ARGS, "--max-bytes", "2GiB"], clients),
      (e: Error) =>
        e instanceof UserError &&
        /^--max-bytes 2147483648: BigQuery would bill 2\.00 GiB \(2147483649 bytes\) for this query; narrow/.test(
          e.message,
        ),
    );
    assert.equal(fake.requests.length, before, "no job was started");
    // The default cap is 10 GiB.
    dryRunBytes = 10 * 2 ** 30 + 1;
    await assert.rejects(query(ARGS, clients), /--max-bytes 10737418240: BigQuery would bill/);
  });

  it("a query BigQuery refuses, and a missing project, are one line naming them", async () => {
    dryRunBytes = 10;
    fake.queueQueryResult({
      fields: [],
      rows: [],
      notFound: "Table proj:logarchive.container_logs was not found in location EU",
    });
    await assert.rejects(
      query(ARGS, clients),
      (e: Error) =>
        e instanceof UserError &&
        /^BigQuery: Not found: Table proj:logarchive\.container_logs .*\(notFound\)$/.test(e.message),
    );
    const saved = process.env.GOOGLE_CLOUD_PROJECT;
    delete process.env.GOOGLE_CLOUD_PROJECT;
    try {
      await assert.rejects(
        query(["error_rate", "--engine", "bigquery", ...RANGE], clients),
        /--engine bigquery needs --project/,
      );
    } finally {
      if (saved !== undefined) process.env.GOOGLE_CLOUD_PROJECT = saved;
    }
  });
});

describe("parseByteCount", () => {
  it("reads digits with decimal and binary units, exactly", () => {
    assert.equal(parseByteCount("1000"), 1000n);
    assert.equal(parseByteCount("500MB"), 500_000_000n);
    assert.equal(parseByteCount("1.5GiB"), 1_610_612_736n);
    assert.equal(parseByteCount("2 tb"), 2_000_000_000_000n);
    assert.throws(() => parseByteCount("lots"), /--max-bytes lots: expected a byte count/);
  });
});

describe("logarchive query --engine athena (a local endpoint speaking Athena's JSON 1.1 protocol)", () => {
  let fake: FakeAthena;
  let client: AthenaClient;
  before(async () => {
    fake = await startFakeAthena();
    client = new AthenaClient({
      endpoint: fake.url,
      region: "us-east-1",
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
      maxAttempts: 1,
    });
  });
  after(async () => {
    client.destroy();
    await fake.stop();
  });
  const ARGS = [
    "error_rate",
    "--engine",
    "athena",
    "--workgroup",
    "logs-wg",
    "--database",
    "archive_db",
    ...RANGE,
  ];
  const COLUMNS = [
    { name: "namespace", type: "varchar" },
    { name: "container", type: "varchar" },
    { name: "hour", type: "timestamp" },
    { name: "lines", type: "bigint" },
    { name: "errors", type: "bigint" },
    { name: "error_rate", type: "double" },
  ];

  it("starts the query with its parameters, polls with a progress line, pages the results, reports the scan and its cost", async () => {
    const before = fake.requests.length;
    // 1500 rows: GetQueryResults gives at most 1000 rows a page, the first page's first row being the labels.
    const rows = Array.from({ length: 1500 }, (_, i) => [
      "payments",
      `c${String(i).padStart(4, "0")}`,
      "2026-11-21 10:00:00.000",
      String(i + 1),
      i === 0 ? null : "1",
      "0.5",
    ]);
    fake.queue({ queuedPolls: 1, runningPolls: 1, columns: COLUMNS, rows, dataScannedInBytes: 123_456_789 });
    const { out, notes } = await query([...ARGS, "--format", "json"], { athena: () => client, isTty: true });
    const lines = out
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.equal(lines.length, 1500);
    assert.deepEqual(lines[0], {
      namespace: "payments",
      container: "c0000",
      hour: "2026-11-21 10:00:00",
      lines: "1",
      errors: null,
      error_rate: 0.5,
    });
    assert.equal(lines[1499].container, "c1499");

    const sequence = fake.requests.slice(before);
    assert.deepEqual(
      sequence.map((r) => r.operation),
      [
        "StartQueryExecution",
        "GetQueryExecution",
        "GetQueryExecution",
        "GetQueryExecution",
        "GetQueryResults",
        "GetQueryResults",
      ],
    );
    const start = sequence[0]!.body;
    assert.equal(start.WorkGroup, "logs-wg");
    assert.deepEqual(start.QueryExecutionContext, { Database: "archive_db", Catalog: "AwsDataCatalog" });
    // The list fills its IN (?) with one ? per item; every value is a SQL literal.
    assert.deepEqual(start.ExecutionParameters, [
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
    ]);
    assert.match(start.QueryString as string, /namespace IN \(\?, \?\)/);
    assert.equal(
      (start.QueryString as string).match(/\?/g)!.length,
      (start.ExecutionParameters as string[]).length,
    );
    assert.equal(sequence[4]!.body.NextToken, undefined);
    assert.equal(sequence[5]!.body.NextToken, "1000");

    // Progress: one line per poll, redrawn in place, erased before the summary.
    const frames = notes.split("\r\u001b[2K");
    assert.equal(frames.length, 5, JSON.stringify(notes));
    assert.equal(frames[0], "");
    assert.match(frames[1]!, /^. Athena queued \d+\.\d s, 0 B scanned$/);
    assert.match(frames[2]!, /^. Athena running \d+\.\d s, 0 B scanned$/);
    assert.match(frames[3]!, /^. Athena succeeded \d+\.\d s, 117\.7 MiB scanned$/);
    assert.match(frames[4]!, /^1500 rows in \d+ ms\n/);
    assert.match(
      notes,
      /Athena scanned 117\.7 MiB \(123456789 bytes\): \$0\.000617 at \$5\/TB \(https:\/\/aws\.amazon\.com\/athena\/pricing\/, prices as of \d{4}-\d\d-\d\d\); query [0-9a-f-]{36}\.\n$/,
    );
  });

  it("off a terminal there is no progress line; a small scan is billed the 10 MB minimum", async () => {
    fake.queue({ columns: COLUMNS, rows: [], dataScannedInBytes: 1000 });
    const { out, notes } = await query(ARGS, { athena: () => client, isTty: false });
    assert.match(out, /^namespace +container +hour +lines +errors +error_rate\n/);
    assert.match(out, /\n0 rows in \d+ ms\n$/);
    assert.doesNotMatch(notes, /\r/);
    assert.match(notes, /^Athena scanned 1000 B \(1000 bytes, billed as the 10 MB minimum\): \$0\.000050 at/);
  });

  it("a failed query is one line with Athena's reason, and no results are fetched", async () => {
    const before = fake.requests.length;
    fake.queue({
      runningPolls: 1,
      failure: {
        reason: "Query cancelled! : Bytes scanned limit was exceeded",
        errorCategory: 2,
        errorType: 1205,
      },
    });
    await assert.rejects(
      query(ARGS, { athena: () => client }),
      (e: Error) =>
        e instanceof UserError &&
        /^Athena query [0-9a-f-]{36} failed: Query cancelled! : Bytes scanned limit was exceeded$/.test(
          e.message,
        ),
    );
    assert.deepEqual(
      fake.requests.slice(before).map((r) => r.operation),
      ["StartQueryExecution", "GetQueryExecution", "GetQueryExecution"],
    );
  });
});
