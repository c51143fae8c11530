// The whole pipeline in one test: generated container logs → shipper → local S3 → SQS →
// transfer → local GCS → Eventarc delivery → loader function (functions-framework server)
// → DuckDB, in stream delivery (analytics.delivery: stream: every namespace archived per
// namespace and hour, the loaded namespaces' lines also in per-table stream objects, which
// are what gets loaded). Every generated line of the namespaces the policy loads must be
// in the warehouse exactly once, none from the others, and `reconcile` must agree. Then the same
// under faults: the transfer worker SIGKILLed mid-copy, every event delivered twice, and
// one corrupt object.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { batchId, formatStreamKey } from "../lib/keys/layout.ts";
import { createLogger } from "../lib/log.ts";
import { toUserMetadata } from "../lib/object/metadata.ts";
import { parsePolicy } from "../lib/policy/policy.ts";
import { LocalPipeline } from "../local/pipeline.ts";
import { LOCAL_S3_CREDENTIALS } from "../local/s3.ts";
import { type LoggedProcess, pace, SUITE_GUARD_MS, startCli } from "../shipper/test_support/harness.ts";
import { createWorkload, type Workload } from "../shipper/test_support/workload.ts";

const REPO = fileURLToPath(new URL("..", import.meta.url));
const NODE = process.execPath;
const CLI = join(REPO, "cli", "logarchive.ts");

const POLICY_YAML = `
archive:
  prefix: logs
  include: ["*"]
  exclude: ["scratch"]
analytics:
  include: ["*"]
  exclude: ["kube-system"]
  delivery: stream
warehouse:
  dataset: logarchive
  table: container_logs
  routes:
    - namespaces: ["team-a-*"]
      table: team_a
`;
const POLICY = parsePolicy(POLICY_YAML);
const NAMESPACES = ["payments", "checkout", "team-a-api", "kube-system", "scratch"];
const LOADED = new Set(["payments", "checkout", "team-a-api"]);
const TABLE_OF = (ns: string) => (ns.startsWith("team-a-") ? "team_a" : "container_logs");

/** <root>/<ns>_<pod>_<uid>/<container> → ns */
function namespaceOf(writerDir: string): string {
  return basename(dirname(writerDir)).split("_")[0] as string;
}

function writeLogs(root: string, seed: number): Workload {
  const w = createWorkload({
    root,
    namespaces: NAMESPACES,
    podsPerNamespace: 2,
    seed,
    startMs: Date.now() - 120_000,
  });
  for (let round = 0; round < 3; round++) {
    for (const writer of w.writers) {
      writer.writeLines(250);
      if (round === 1) writer.rotateRename();
    }
  }
  w.close();
  return w;
}

/** lid → count, per table, from the warehouse. */
async function warehouseLids(
  pipeline: LocalPipeline,
): Promise<Map<string, { table: string; namespace: string; n: number }[]>> {
  const out = new Map<string, { table: string; namespace: string; n: number }[]>();
  const connection = await pipeline.parts.cloud.warehouse.connect();
  try {
    for (const table of ["container_logs", "team_a"]) {
      const reader = await connection.runAndReadAll(
        `SELECT regexp_extract(message, 'lid=(\\d+:\\d+)', 1) AS lid, namespace, count(*)::INTEGER FROM main.${table} GROUP BY ALL`,
      );
      for (const [lid, namespace, n] of reader.getRows() as [string, string, number][]) {
        const list = out.get(lid) ?? [];
        list.push({ table, namespace, n });
        out.set(lid, list);
      }
    }
  } finally {
    connection.closeSync();
  }
  return out;
}

function checkExactlyOnce(workload: Workload, found: Awaited<ReturnType<typeof warehouseLids>>): void {
  const problems: string[] = [];
  let expected = 0;
  for (const writer of workload.writers) {
    const ns = namespaceOf(writer.dir);
    for (const lid of writer.lids) {
      const hits = found.get(lid) ?? [];
      if (!LOADED.has(ns)) {
        if (hits.length > 0) problems.push(`${lid} of ${ns} is in the warehouse, but ${ns} is not loaded`);
        continue;
      }
      expected++;
      const total = hits.reduce((n, h) => n + h.n, 0);
      if (total !== 1) problems.push(`${lid} of ${ns}: ${total} rows`);
      else if (hits[0]?.table !== TABLE_OF(ns)) problems.push(`${lid} of ${ns} in ${hits[0]?.table}`);
    }
  }
  const rows = [...found.values()].flat().reduce((n, h) => n + h.n, 0);
  assert.deepEqual(problems.slice(0, 20), [], `${problems.length} problems`);
  assert.equal(rows, expected, "no rows other than the generated lines");
  assert.ok(expected > 3000, `a real workload (${expected} lines)`);
}

function runReconcileCli(dataDir: string, policyFile: string): { status: number | null; stdout: string } {
  const now = new Date();
  const result = spawnSync(
    NODE,
    [
      CLI,
      "reconcile",
      "--data-dir",
      dataDir,
      "--policy",
      policyFile,
      "--from",
      "2020-01-01",
      "--to",
      new Date(now.getTime() + 7_200_000).toISOString().slice(0, 13),
    ],
    { encoding: "utf8", env: { ...process.env, LOGARCHIVE_LOG_LEVEL: "error" }, timeout: 120_000 },
  );
  return { status: result.status, stdout: `${result.stdout}\n${result.stderr}` };
}

describe("pipeline end to end", { timeout: SUITE_GUARD_MS }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logarchive-pipeline-e2e-"));
    await writeFile(join(dir, "namespaces.yaml"), POLICY_YAML);
  });
  after(async () => {
    if (!process.env.LOGARCHIVE_DEBUG) await rm(dir, { recursive: true, force: true });
  });

  it("loads every line of the loaded namespaces exactly once, none of the others, and reconcile agrees", async () => {
    const root = join(dir, "clean-logs");
    const workload = writeLogs(root, 11);
    const dataDir = join(dir, "clean-data");
    const pipeline = await LocalPipeline.start({
      dataDir,
      policy: POLICY,
      logs: [`${root}/*/*/*.log*`],
      once: true,
      logger: createLogger("e2e", process.env.LOGARCHIVE_LOG_LEVEL ?? "fatal"),
      version: "e2e",
    });
    try {
      const shipper = await pipeline.openShipper();
      await shipper.run();
      await shipper.close();
      const report = await pipeline.settle(600_000);
      assert.equal(report.ok, true, JSON.stringify(report.counts));
      assert.ok(report.counts.loaded > 0);
      // Only stream objects are loaded: one set per table; every namespace's own objects
      // are archive objects, checked against their metadata, and kube-system is in none of
      // the stream's (the warehouse check below).
      assert.deepEqual(Object.keys(report.perNamespace).sort(), [
        "stream:logarchive.container_logs",
        "stream:logarchive.team_a",
      ]);
      assert.deepEqual(
        Object.keys(report.namespaces)
          .filter((ns) => report.namespaces[ns]?.tier === "archive")
          .sort(),
        ["checkout", "kube-system", "payments", "team-a-api"],
        "every archived namespace has archive objects; scratch is not even archived",
      );
      assert.ok(report.archiveObjects.every((o) => o.verdict === "verified"));
      checkExactlyOnce(workload, await warehouseLids(pipeline));
      const freshness = await pipeline.freshness();
      assert.ok(freshness !== null && freshness.rows > 0);
    } finally {
      await pipeline.stop();
    }
    const cli = runReconcileCli(dataDir, join(dir, "namespaces.yaml"));
    assert.equal(cli.status, 0, cli.stdout);
    assert.match(cli.stdout, /OK: every object is loaded exactly once or excluded/);
  });

  it("stays exactly once with the transfer worker killed mid-copy, every event delivered twice, and one corrupt object", async () => {
    const root = join(dir, "fault-logs");
    const workload = writeLogs(root, 12);
    const dataDir = join(dir, "fault-data");
    const pipeline = await LocalPipeline.start({
      dataDir,
      policy: POLICY,
      logs: [`${root}/*/*/*.log*`],
      once: true,
      duplicateEvents: true,
      externalTransfer: true,
      // Small batches: more objects, more copies to interrupt.
      batchMaxAge: "1s",
      logger: createLogger("e2e", process.env.LOGARCHIVE_LOG_LEVEL ?? "fatal"),
      version: "e2e",
    });
    const e = pipeline.parts.cloud.endpoints;
    let child: LoggedProcess | null = null;
    const startTransfer = (rate: string) => {
      child = startCli(
        [
          "transfer",
          "--sqs-endpoint",
          e.sqs.endpoint,
          "--queue-url",
          e.sqs.queueUrl,
          "--s3-endpoint",
          e.s3.endpoint,
          "--region",
          e.region,
          "--gcs-endpoint",
          e.gcs.apiEndpoint,
          "--gcs-bucket",
          e.gcs.bucket,
          "--gcs-project",
          e.gcs.projectId,
          "--visibility-timeout",
          "3",
          "--wait-seconds",
          "1",
          "--max-bytes-per-second",
          rate,
        ],
        {
          env: {
            ...process.env,
            // fauxqs takes any credentials; s3rver wants its own, so both get those.
            AWS_ACCESS_KEY_ID: LOCAL_S3_CREDENTIALS.accessKeyId,
            AWS_SECRET_ACCESS_KEY: LOCAL_S3_CREDENTIALS.secretAccessKey,
            // Debug, for transfer_copy_started: the kills below wait for it.
            LOGARCHIVE_LOG_LEVEL: "debug",
          },
        },
      );
      return child;
    };
    try {
      // A corrupt stream object where the shipper would put one: right key, metadata, bad body.
      const corruptKey = formatStreamKey({
        prefix: "logs",
        dataset: "logarchive",
        table: "container_logs",
        dt: new Date().toISOString().slice(0, 10),
        hour: new Date().toISOString().slice(11, 13),
        node: "evil-node",
        epoch: "0badc0de",
        seq: 1,
      });
      const body = Buffer.from("\x1f\x8b\x08\x00 this is not a gzip stream");
      const s3 = new S3Client({
        endpoint: e.s3.endpoint,
        region: e.region,
        forcePathStyle: true,
        credentials: LOCAL_S3_CREDENTIALS,
      });
      await s3.send(
        new PutObjectCommand({
          Bucket: e.s3.bucket,
          Key: corruptKey,
          Body: body,
          ContentType: "application/gzip",
          Metadata: toUserMetadata({
            schemaVersion: 1,
            records: 3,
            firstTimestamp: new Date().toISOString(),
            lastTimestamp: new Date().toISOString(),
            sha256: createHash("sha256").update(body).digest("hex"),
            rawBytes: 100,
            batchId: batchId({ node: "evil-node", epoch: "0badc0de", seq: 1 }),
            shipperVersion: "evil",
          }),
        }),
      );
      s3.destroy();

      const shipper = await pipeline.openShipper();
      const shipping = shipper.run();
      // Kill the transfer worker again and again while objects flow, at a copy rate slow
      // enough (8 KiB/s) that most kills land mid-copy: each a moment after it started one.
      let killsMidCopy = 0;
      for (let i = 0; i < 8; i++) {
        const c = startTransfer("8KiB");
        await c.waitForEvent("transfer_copy_started");
        await pace((i * 379) % 900);
        await c.kill("SIGKILL");
        // Its own log says whether it died mid-copy: a copy started and never finished.
        const copied = new Set(c.events("transfer_object_copied").map((ev) => ev.key));
        if (c.events("transfer_copy_started").some((ev) => !copied.has(ev.key))) killsMidCopy++;
      }
      await shipping;
      await shipper.close();
      startTransfer("100MiB");
      const report = await pipeline.settle(600_000);
      assert.ok(killsMidCopy >= 3, `${killsMidCopy} of 8 kills landed mid-copy`);
      const off = report.objects.filter((o) => o.verdict !== "loaded" && o.verdict !== "excluded");
      assert.deepEqual(
        off.map((o) => [o.verdict, o.key]),
        [["quarantined", corruptKey]],
        "only the corrupt object is off",
      );
      assert.match(off[0]?.detail ?? "", /gzip|SHA-256/);
      const events = pipeline.parts.eventarc.stats();
      assert.ok(
        events.delivered >= 2 * report.counts.loaded,
        `every event delivered twice (${JSON.stringify(events)})`,
      );
      assert.ok(pipeline.parts.loader.stats().events.duplicate >= report.counts.loaded);
      checkExactlyOnce(workload, await warehouseLids(pipeline));
    } finally {
      await (child as LoggedProcess | null)?.kill("SIGKILL");
      await pipeline.stop();
    }
    const cli = runReconcileCli(dataDir, join(dir, "namespaces.yaml"));
    assert.equal(cli.status, 1, cli.stdout);
    assert.match(cli.stdout, /QUARANTINED\s+logs\/stream\/table=logarchive\.container_logs\/.*evil-node/);
  });
});
