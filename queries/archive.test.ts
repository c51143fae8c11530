// The archive engine answers like the duckdb engine: the sample workload's records, loaded
// into a warehouse file and also written as archive objects (one per namespace and hour,
// under lib's key layout) to the local S3 of local/stack.ts, give the same rows for every
// query of the pack, read through the S3 API or from a downloaded folder; and only the
// objects of the selected namespaces and hours are read.

import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { DuckDBInstance } from "@duckdb/node-api";
import { Command } from "commander";
import { queryCommand } from "../cli/commands/query.ts";
import { UserError } from "../lib/config/errors.ts";
import { formatObjectKey, parseBatchId } from "../lib/keys/layout.ts";
import { classifyNamespace, parsePolicy } from "../lib/policy/policy.ts";
import { encodeRecord } from "../lib/record/codec.ts";
import { RECORD_FIELDS } from "../lib/record/schema.ts";
import { type LocalCloud, startLocalCloud } from "../local/stack.ts";
import { type ArchiveSource, archiveHours, runArchiveQuery } from "./archive-runner.ts";
import { installDuckDbDefinitions, runDuckDbQuery } from "./duckdb-runner.ts";
import { loadPack, type PackQuery, resolveParams } from "./pack.ts";
import { buildSampleWarehouse } from "./sample-warehouse.ts";

const policy = parsePolicy(`
archive: { prefix: logs }
analytics: { include: ["*"], exclude: ["kube-system"] }
`);
const BUCKET = "logarchive-archive";

let dir: string;
let warehouse: string;
let cloud: LocalCloud;
let s3: S3Client;
let s3Source: ArchiveSource;
let dirSource: ArchiveSource;
let pack: Map<string, PackQuery>;
let namespaces: string[];
/** Archive keys by namespace, in key order. */
const keysByNamespace = new Map<string, string[]>();

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "logarchive-archive-test-"));
  warehouse = join(dir, "warehouse.duckdb");
  const counts = await buildSampleWarehouse(warehouse, 3000, 12);
  namespaces = Object.keys(counts.linesByNamespace).sort();
  cloud = await startLocalCloud({ dataDir: join(dir, "cloud"), policy, bucket: BUCKET });
  const e = cloud.endpoints;
  s3 = new S3Client({
    endpoint: e.s3.endpoint,
    region: e.region,
    forcePathStyle: true,
    credentials: { accessKeyId: e.s3.accessKeyId, secretAccessKey: e.s3.secretAccessKey },
  });
  s3Source = { kind: "s3", client: s3, bucket: BUCKET, prefix: "logs" };
  dirSource = { kind: "dir", root: join(dir, "slice") };

  // The warehouse's rows as the shipper encodes them, one object per batch (namespace and hour).
  const instance = await DuckDBInstance.create(warehouse, { access_mode: "READ_ONLY" });
  const connection = await instance.connect();
  const reader = await connection.runAndReadAll(
    `SELECT * REPLACE (strftime("timestamp", '%Y-%m-%d %H:%M:%S.%f') AS "timestamp") FROM container_logs ORDER BY batch_id, seq`,
  );
  const objects = new Map<string, string[]>();
  for (const row of reader.getRowObjectsJson() as Record<string, unknown>[]) {
    const record: Record<string, unknown> = {};
    for (const field of RECORD_FIELDS) {
      const value = row[field.name];
      record[field.name] = field.type === "INT64" && value !== null ? Number(value) : value;
    }
    const batch = parseBatchId(row.batch_id as string);
    const ts = row.timestamp as string;
    const tier = classifyNamespace(policy, row.namespace as string);
    assert.ok(tier.archived);
    const key = formatObjectKey({
      prefix: "logs",
      tier: tier.tier,
      namespace: row.namespace as string,
      dt: ts.slice(0, 10),
      hour: ts.slice(11, 13),
      ...batch,
    });
    objects.set(key, [...(objects.get(key) ?? []), encodeRecord(record as never)]);
  }
  connection.closeSync();
  instance.closeSync();
  for (const [key, lines] of objects) {
    const body = gzipSync(`${lines.join("\n")}\n`);
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
    const local = join(dir, "slice", key.slice("logs/".length));
    await mkdir(dirname(local), { recursive: true });
    await writeFile(local, body);
    const namespace = /namespace=([^/]+)/.exec(key)![1]!;
    keysByNamespace.set(namespace, [...(keysByNamespace.get(namespace) ?? []), key].sort());
  }
  pack = (await loadPack()).get("duckdb")!;
});

after(async () => {
  s3?.destroy();
  await cloud?.stop();
  await rm(dir, { recursive: true, force: true });
});

const RANGE = { from: "2026-11-21T10:00", to: "2026-11-21T12:00" };

/** Parameters for each query over the whole sample, chosen so that every query returns rows. */
function paramsFor(query: PackQuery): Record<string, string> {
  const given: Record<string, string> = { ...RANGE };
  for (const p of query.params) {
    if (p.name === "namespaces") given.namespaces = namespaces.join(",");
    else if (p.name === "namespace") given.namespace = "checkout";
    else if (p.name === "text") given.text = "InventoryUnavailable";
    else if (p.name === "signature") given.signature = "redis connection reset";
    else if (!(p.name in given) && p.default === undefined) given[p.name] = p.example;
  }
  return given;
}

async function onWarehouse(query: PackQuery, given: Record<string, string>) {
  const instance = await DuckDBInstance.create(warehouse, { access_mode: "READ_ONLY" });
  const connection = await instance.connect();
  try {
    await installDuckDbDefinitions(connection);
    return await runDuckDbQuery(connection, query, resolveParams(query, given));
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

describe("--engine archive", () => {
  it("answers every query of the pack as the duckdb engine does on the same rows, through S3 and from a folder", async () => {
    let nonEmpty = 0;
    for (const query of pack.values()) {
      const given = paramsFor(query);
      const expected = await onWarehouse(query, given);
      const values = resolveParams(query, given);
      const viaS3 = await runArchiveQuery(query, values, s3Source);
      assert.deepEqual(viaS3.columns, expected.columns, query.name);
      assert.deepEqual(viaS3.rows, expected.rows, query.name);
      const viaDir = await runArchiveQuery(query, values, dirSource);
      assert.deepEqual(viaDir.rows, expected.rows, `${query.name} from a folder`);
      assert.equal(viaDir.bytes, viaS3.bytes, query.name);
      if (expected.rows.length > 0) nonEmpty++;
    }
    // trace_lookup's example id is not in the sample; every other query has rows to compare.
    assert.ok(nonEmpty >= pack.size - 1, `${nonEmpty} of ${pack.size} queries returned rows`);
  });

  it("reads only the objects of the selected namespaces and hours", async () => {
    const search = pack.get("search")!;
    const given = {
      namespace: "checkout",
      from: "2026-11-21T11:15",
      to: "2026-11-21T11:45",
      text: "Inventory",
    };
    const result = await runArchiveQuery(search, resolveParams(search, given), s3Source);
    const inHour = keysByNamespace.get("checkout")!.filter((k) => k.includes("/dt=2026-11-21/hour=11/"));
    assert.equal(inHour.length, 1);
    assert.equal(result.objects, 1, "one namespace, one hour: one object");
    assert.ok(result.rows.length > 0 && result.rows.every((r) => String(r.timestamp) >= "2026-11-21 11:15"));
    // noisiest_pods also reads the day before `from` (its lookback_hours header).
    const noisiest = pack.get("noisiest_pods")!;
    assert.equal(noisiest.lookbackHours, 24);
    assert.deepEqual(
      archiveHours({
        namespaces: [],
        from: "2026-11-21 10:30:00",
        to: "2026-11-21 12:00:00",
        lookbackHours: 1,
      }),
      [
        { dt: "2026-11-21", hour: "09" },
        { dt: "2026-11-21", hour: "10" },
        { dt: "2026-11-21", hour: "11" },
      ],
    );
    const empty = await runArchiveQuery(
      search,
      resolveParams(search, { ...given, from: "2026-11-20", to: "2026-11-21" }),
      s3Source,
    );
    assert.deepEqual([empty.objects, empty.rows], [0, []]);
  });

  it("takes the local S3's credentials and region by itself when --s3-endpoint is a loopback address", async () => {
    let out = "";
    let notes = "";
    const program = new Command("logarchive").exitOverride();
    program.addCommand(
      // No s3 factory: the client the command makes itself, as a user's run gets it.
      queryCommand({
        write: (t) => {
          out += t;
        },
        note: (t) => {
          notes += t;
        },
        now: () => 0,
      }).exitOverride(),
    );
    const unset = [
      "AWS_ACCESS_KEY_ID",
      "AWS_SECRET_ACCESS_KEY",
      "AWS_PROFILE",
      "AWS_REGION",
      "AWS_DEFAULT_REGION",
    ];
    const saved = new Map(unset.map((name) => [name, process.env[name]]));
    for (const name of unset) delete process.env[name];
    try {
      await program.parseAsync([
        "node",
        "logarchive",
        "query",
        "log_volume",
        "--param",
        "namespaces=checkout",
        "--param",
        `from=${RANGE.from}`,
        "--param",
        `to=${RANGE.to}`,
        "--engine",
        "archive",
        "--archive",
        `s3://${BUCKET}/logs`,
        "--s3-endpoint",
        cloud.endpoints.s3.endpoint,
        "--format",
        "json",
      ]);
    } finally {
      for (const [name, value] of saved) if (value !== undefined) process.env[name] = value;
    }
    assert.match(notes, /^Read 2 archive objects/);
    assert.equal(out.trim().split("\n").length, 1);
  });

  it("runs from the command line, and names an object that is in Glacier and not restored", async () => {
    let out = "";
    let notes = "";
    const run = (args: string[]) => {
      const program = new Command("logarchive").exitOverride();
      program.addCommand(
        queryCommand({
          write: (t) => {
            out += t;
          },
          note: (t) => {
            notes += t;
          },
          now: () => 0,
          s3: () => s3,
        }).exitOverride(),
      );
      return program.parseAsync(["node", "logarchive", "query", ...args]);
    };
    const args = ["log_volume", "--param", "namespaces=payments,checkout", "--param", `from=${RANGE.from}`];
    await run([
      ...args,
      "--param",
      `to=${RANGE.to}`,
      "--engine",
      "archive",
      "--archive",
      `s3://${BUCKET}/logs`,
      "--format",
      "json",
    ]);
    const viaArchive = out;
    assert.match(notes, /^Read 4 archive objects \(\d+ bytes gzip\)\.\n/);
    out = "";
    await run([...args, "--param", `to=${RANGE.to}`, "--db", warehouse, "--format", "json"]);
    assert.equal(viaArchive, out);
    assert.equal(viaArchive.trim().split("\n").length, 2);

    const frozen = keysByNamespace.get("payments")![0]!;
    await cloud.s3Archive.setStorageClass(BUCKET, frozen, "GLACIER");
    await assert.rejects(
      run([...args, "--param", `to=${RANGE.to}`, "--engine", "archive", "--archive", `s3://${BUCKET}/logs`]),
      (e: Error) =>
        e instanceof UserError &&
        e.message.includes("1 object(s) of the range are in an archive storage class") &&
        e.message.includes(`s3://${BUCKET}/${frozen}`),
    );
    await assert.rejects(
      run([...args, "--param", `to=${RANGE.to}`, "--engine", "archive"]),
      /--engine archive needs --archive/,
    );

    // A headerless --sql file: its $namespaces, $from and $to are text, and still choose the objects.
    const file = join(dir, "count.sql");
    await writeFile(
      file,
      'SELECT count(*) AS n FROM container_logs WHERE list_contains(string_split($namespaces, \',\'), namespace) AND "timestamp" >= $from::TIMESTAMP AND "timestamp" < $to::TIMESTAMP',
    );
    out = "";
    notes = "";
    const sqlArgs = [
      "--sql",
      file,
      "--param",
      "namespaces=checkout,search",
      "--param",
      "from=2026-11-21 11:00",
      "--param",
      "to=2026-11-21 12:00",
    ];
    await run([...sqlArgs, "--engine", "archive", "--archive", join(dir, "slice"), "--format", "json"]);
    assert.match(notes, /^Read 2 archive objects/);
    const viaArchiveSql = out;
    out = "";
    await run([...sqlArgs, "--db", warehouse, "--format", "json"]);
    assert.equal(viaArchiveSql, out);
    assert.ok(Number(JSON.parse(out).n) > 0);
  });
});
