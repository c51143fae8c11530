// Archive compaction end to end, across real processes: "nothing lost, nothing doubled".
//
// Two nodes' realistic container logs over past UTC hours are shipped by the real
// `logarchive ship --once` (Object Lock GOVERNANCE, landing_days 3) into the local S3 archive
// front, a bucket with Object Lock and a default retention as deployed. The real
// `logarchive compact --pending` compacts them; then `retrieve`, `query --engine archive` and
// `reconcile` must give every written line exactly once. A second compaction run is killed
// (SIGKILL) at the moment its first manifest PUT of a new hour leaves it, with that hour's parts
// stored and no manifest naming them, and re-run; and last the originals expire the way S3
// lifecycle expiration does in a versioned bucket (a delete marker on each key), so every line
// must come from the compacted parts.
//
// The shipper files a record under its own UTC hour, and numbers batches in its clock's hour; the
// records here are 8 to 4 hours old, so the hour indexes the compactor reads for them (the
// records' hour - 1 to + 2, lib/compaction/readiness.ts) are older than any index these shippers
// write (of the hour the test runs in, or of the next one when the test crosses an hour's end):
// the nodes do not block compaction (they are named as unindexed), whatever hour the test runs in.
// A few lines have no CRI header (as a Go panic writes them); the shipper files those under the
// hour it reads them in, which is compacted only once it has ended.

import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { gunzipSync } from "node:zlib";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type S3Client,
} from "@aws-sdk/client-s3";
import { Storage } from "@google-cloud/storage";
import { type CliRun, localCliEnv, runCli } from "../cli/test_support.ts";
import { compactedPrefix, parseCompactedKey, parseObjectKey, tierPrefix } from "../lib/keys/layout.ts";
import { longLivedTiers } from "../lib/keys/tiers.ts";
import { parseCompactionManifest } from "../lib/object/compaction-manifest.ts";
import { type LocalGcs, startLocalGcs } from "../local/gcs/server.ts";
import type { S3ArchiveFront } from "../local/s3-archive/server.ts";
import { type LocalArchive, objectLockBucket, startLocalArchive } from "../local/s3-archive/test_support.ts";
import { s3Client } from "../shipper/test_support/archive.ts";
import { SUITE_GUARD_MS, shipArgs, shipOnce, startCli } from "../shipper/test_support/harness.ts";
import {
  createRealisticWorkload,
  DEFAULT_NODE,
  type NamespaceSpec,
  type RealisticWorkload,
} from "../shipper/test_support/realistic_workload.ts";
import { LID } from "../shipper/test_support/workload.ts";
import { startS3RequestGate } from "./s3-request-gate.ts";

const HOUR_MS = 3_600_000;
const BUCKET = "logarchive-archive";
const PREFIX = "logs";
/** The deployed bucket's default retention (infra objectLockDays), which parts and indexes take. */
const DEFAULT_RETENTION_DAYS = 365;
const LANDING_DAYS = 3;
const LANDING_BUCKET = "logarchive-landing";
/** Phase 1 spans about 2 h 20 min of the nodes' clocks, phase 2 about one more hour. */
const PHASE1_BYTES_PER_NODE = 1_200_000;
const PHASE1_SPAN_MS = 140 * 60_000;
const PHASE2_BYTES_PER_NODE = Math.round((PHASE1_BYTES_PER_NODE * HOUR_MS) / PHASE1_SPAN_MS);
const NODE_BYTES_PER_DAY = (PHASE1_BYTES_PER_NODE / PHASE1_SPAN_MS) * 86_400_000;

const POLICY = `archive:
  prefix: ${PREFIX}
analytics:
  include: []
`;

/** Node b runs a subset of node a's namespaces, so some namespace-hours have one node's batches only. */
const NODES: { name: string; spec: readonly NamespaceSpec[]; seed: number }[] = [
  { name: "node-a", spec: DEFAULT_NODE, seed: 71 },
  { name: "node-b", spec: DEFAULT_NODE.filter((_, i) => i % 4 !== 3), seed: 72 },
];

const hourText = (ms: number) => new Date(ms).toISOString().slice(0, 13);
const dtHour = (ms: number) => ({ dt: hourText(ms).slice(0, 10), hour: hourText(ms).slice(11, 13) });

/** The parts of retrieve's manifest.json (docs/retrieval.md) this test reads. */
interface RetrievalManifest {
  verdict: { complete: boolean };
  records: { lines: number };
  /** `hour` is YYYY-MM-DDTHH. */
  hours: { hour: string; source: string }[];
}

interface Node {
  name: string;
  root: string;
  stateDir: string;
  workload: RealisticWorkload;
  /** The namespace of each writer, by its index (the id in its lids). */
  namespaceOf: string[];
}

describe("compaction end to end: ship, compact, crash, expire; every line exactly once", {
  timeout: SUITE_GUARD_MS,
}, () => {
  let dir: string;
  let archive: LocalArchive;
  let gcs: LocalGcs;
  let front: S3ArchiveFront;
  let client: S3Client;
  let policyPath: string;
  let nodes: Node[];
  /** The first records' hour: eight hours before the test's hour. */
  let firstHour: number;
  const env = localCliEnv();

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logarchive-compaction-e2e-"));
    archive = await startLocalArchive(dir, [objectLockBucket(BUCKET, DEFAULT_RETENTION_DAYS)]);
    front = archive.front;
    client = s3Client(front.endpoint);
    gcs = await startLocalGcs({ dataDir: join(dir, "gcs") });
    await new Storage({ apiEndpoint: gcs.url, projectId: "logarchive-test" }).createBucket(LANDING_BUCKET);
    policyPath = join(dir, "policy.yaml");
    await writeFile(policyPath, POLICY);
    firstHour = Math.floor(Date.now() / HOUR_MS) * HOUR_MS - 8 * HOUR_MS;
    nodes = NODES.map(({ name, spec, seed }) => ({
      name,
      root: join(dir, name, "pods"),
      stateDir: join(dir, name, "state"),
      workload: createRealisticWorkload({
        root: join(dir, name, "pods"),
        seed,
        startMs: firstHour + 10 * 60_000,
        node: spec,
        nodeBytesPerDay: NODE_BYTES_PER_DAY,
      }),
      namespaceOf: spec.flatMap((ns) => ns.pods.map(() => ns.namespace)),
    }));
  });
  after(async () => {
    client?.destroy();
    await archive?.stop();
    await gcs?.stop();
    if (!process.env.LOGARCHIVE_DEBUG) await rm(dir, { recursive: true, force: true });
  });

  const namespaces = () => [...new Set(nodes.flatMap((n) => n.namespaceOf))].sort();
  /**
   * The range every retrieval, query and reconcile reads: from the records' first hour to the end
   * of the hour the test is in now. A line without a CRI header (the workload writes a few, as a
   * Go panic does) is filed under the hour it is read in: the hour the shipper ran.
   */
  const range = () => ({ from: firstHour, to: Math.floor(Date.now() / HOUR_MS) * HOUR_MS + HOUR_MS });
  const hourOf = (key: string) => {
    const p = parseObjectKey(key);
    return Date.parse(`${p.dt}T${p.hour}:00:00Z`);
  };
  /** The originals of hours that had ended (and so settled, at --settle 0s) by `ms`. */
  const settledBy = (keys: readonly string[], ms: number) => keys.filter((k) => hourOf(k) + HOUR_MS <= ms);

  /** `<node> <lid>` of every line written so far, per namespace. */
  function written(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const node of nodes) {
      node.workload.writers.forEach((w, i) => {
        const ns = node.namespaceOf[i]!;
        out.set(ns, [...(out.get(ns) ?? []), ...w.lids().map((lid) => `${node.name} ${lid}`)]);
      });
    }
    return out;
  }

  function writeAndFlush(bytesPerNode: number): void {
    for (const node of nodes) {
      node.workload.writeBytes(bytesPerNode);
      for (const w of node.workload.writers) w.flush();
    }
  }

  async function shipAll(): Promise<void> {
    for (const node of nodes) {
      await shipOnce(
        shipArgs(
          { logs: `${node.root}/*/*/*.log*`, stateDir: node.stateDir, bucket: BUCKET, node: node.name },
          {
            policy: policyPath,
            "object-lock-mode": "GOVERNANCE",
            "landing-days": String(LANDING_DAYS),
            "commit-interval": "100ms",
          },
        ),
        front.endpoint,
      );
    }
  }

  function compactArgs(endpoint: string): string[] {
    return [
      "compact",
      "--pending",
      "--settle",
      "0s",
      "--bucket",
      BUCKET,
      "--prefix",
      PREFIX,
      "--s3-endpoint",
      endpoint,
      "--policy",
      policyPath,
    ];
  }

  async function cli(args: readonly string[], expectStatus = 0): Promise<CliRun> {
    const run = await runCli(args, { env });
    assert.equal(
      run.status,
      expectStatus,
      `logarchive ${args.join(" ")}: exit ${run.status}\n${run.stdout.slice(-4000)}\n${run.stderr.slice(-4000)}`,
    );
    return run;
  }

  async function listKeys(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await client.send(
        new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix, ContinuationToken: token }),
      );
      for (const o of page.Contents ?? []) keys.push(o.Key!);
      token = page.NextContinuationToken;
    } while (token !== undefined);
    return keys;
  }

  /** The archive originals (both long-lived tiers) whose current version is not a delete marker. */
  async function originals(): Promise<string[]> {
    const keys: string[] = [];
    for (const tier of longLivedTiers()) keys.push(...(await listKeys(tierPrefix(PREFIX, tier))));
    return keys;
  }

  /** Every committed manifest's parts and members, and the part objects no manifest names. */
  async function compactedState(): Promise<{
    manifests: number;
    namedParts: Set<string>;
    members: Set<string>;
    unnamedParts: string[];
    /** The highest generation committed. */
    generation: number;
  }> {
    const keys = await listKeys(compactedPrefix(PREFIX));
    const namedParts = new Set<string>();
    const members = new Set<string>();
    let manifests = 0;
    let generation = 0;
    for (const key of keys) {
      const parsed = parseCompactedKey(key);
      if (parsed.kind !== "manifest") continue;
      generation = Math.max(generation, parsed.generation);
      const got = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
      const manifest = parseCompactionManifest(Buffer.from(await got.Body!.transformToByteArray()));
      manifests++;
      for (const p of manifest.parts) namedParts.add(p.key);
      for (const m of manifest.members) members.add(m.key);
    }
    const unnamedParts = keys.filter((k) => k.endsWith(".ndjson.gz") && !namedParts.has(k));
    return { manifests, namedParts, members, unnamedParts, generation };
  }

  /** Retrieves a namespace's range and returns `<node> <lid>` of every record, with the bundle's manifest. */
  async function retrieve(
    namespace: string,
    from: number,
    to: number,
  ): Promise<{
    lines: string[];
    records: { node: string; timestamp: string; lid: string }[];
    manifest: RetrievalManifest;
  }> {
    const out = await mkdtemp(join(dir, `retrieve-${namespace}-`));
    await cli([
      "retrieve",
      "--namespace",
      namespace,
      "--from",
      new Date(from).toISOString(),
      "--to",
      new Date(to).toISOString(),
      "--out",
      out,
      "--bucket",
      BUCKET,
      "--prefix",
      PREFIX,
      "--s3-endpoint",
      front.endpoint,
    ]);
    const manifest = JSON.parse(await readFile(join(out, "manifest.json"), "utf8")) as RetrievalManifest;
    const text = gunzipSync(await readFile(join(out, "records.ndjson.gz"))).toString("utf8");
    const records = text
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => {
        const r = JSON.parse(l) as { node: string; timestamp: string; message: string };
        const lid = LID.exec(r.message)?.[1];
        assert.ok(lid !== undefined, `a retrieved record without a lid: ${l.slice(0, 300)}`);
        return { node: r.node, timestamp: r.timestamp, lid };
      });
    await rm(out, { recursive: true, force: true });
    return { lines: records.map((r) => `${r.node} ${r.lid}`), records, manifest };
  }

  function assertExactlyOnce(what: string, got: readonly string[], expected: readonly string[]): void {
    const counts = new Map<string, number>();
    for (const line of got) counts.set(line, (counts.get(line) ?? 0) + 1);
    const doubled = [...counts].filter(([, n]) => n > 1).map(([l]) => l);
    const want = new Set(expected);
    const missing = expected.filter((l) => !counts.has(l));
    const unexpected = [...counts.keys()].filter((l) => !want.has(l));
    assert.deepEqual(doubled.slice(0, 10), [], `${what}: ${doubled.length} lines doubled`);
    assert.deepEqual(
      missing.slice(0, 10),
      [],
      `${what}: ${missing.length} of ${expected.length} lines missing`,
    );
    assert.deepEqual(unexpected.slice(0, 10), [], `${what}: ${unexpected.length} lines never written`);
    assert.equal(got.length, expected.length, what);
  }

  /**
   * retrieve (every namespace, the whole range), query --engine archive and reconcile: every
   * line written exactly once. `source` is what each retrieved hour must have been read from.
   */
  async function assertEveryLineOnce(source: "compacted" | "any", compactedBefore = 0): Promise<number> {
    const expected = written();
    const { from, to } = range();
    let total = 0;
    for (const namespace of namespaces()) {
      const got = await retrieve(namespace, from, to);
      const want = expected.get(namespace) ?? [];
      assertExactlyOnce(`retrieve ${namespace}`, got.lines, want);
      assert.equal(got.manifest.verdict.complete, true, JSON.stringify(got.manifest.verdict));
      assert.equal(got.manifest.records.lines, want.length);
      if (source === "compacted") {
        // Every hour of the written records is read from its parts; only the hours the shipper
        // ran in (header-less lines) may still be read from their originals.
        const hours = got.manifest.hours;
        const fromParts = hours.filter((h) => h.source === "compacted");
        assert.ok(fromParts.length >= 3, JSON.stringify(hours));
        assert.deepEqual(
          hours.filter(
            (h) =>
              h.source === "unusable" ||
              (h.source === "originals" && Date.parse(`${h.hour}:00:00Z`) < compactedBefore),
          ),
          [],
          `${namespace}: every hour compacted is read from its parts`,
        );
      }
      total += got.lines.length;
    }
    const counted = await queryCounts(from, to);
    for (const namespace of namespaces()) {
      assert.equal(counted.get(namespace) ?? 0, expected.get(namespace)?.length ?? 0, `query ${namespace}`);
    }
    const reconciled = await cli([
      "reconcile",
      "--from",
      hourText(from),
      "--to",
      hourText(to),
      "--s3-bucket",
      BUCKET,
      "--s3-endpoint",
      front.endpoint,
      "--policy",
      policyPath,
      // The policy loads no namespace, so reconcile checks archive objects and finds no loader
      // state in an empty local GCS; BigQuery is never asked (nothing to count), but required.
      "--landing-bucket",
      LANDING_BUCKET,
      "--gcs-endpoint",
      gcs.url,
      "--bigquery-project",
      "unused-project",
    ]);
    assert.match(reconciled.stdout, /^OK: /m, reconciled.stdout);
    const reconciledRecords = new Map(
      [...reconciled.stdout.matchAll(/^ {2}(\S+)\s+objects\s+\d+\s+records\s+(\d+)\s.*OK$/gm)].map((m) => [
        m[1]!,
        Number(m[2]),
      ]),
    );
    for (const namespace of namespaces()) {
      assert.equal(
        reconciledRecords.get(namespace),
        expected.get(namespace)?.length,
        `reconcile ${namespace}\n${reconciled.stdout}`,
      );
    }
    return total;
  }

  /** log_volume over the archive (query --engine archive): lines per namespace in [from, to). */
  async function queryCounts(from: number, to: number): Promise<Map<string, number>> {
    const run = await cli([
      "query",
      "log_volume",
      "--engine",
      "archive",
      "--archive",
      `s3://${BUCKET}/${PREFIX}`,
      "--s3-endpoint",
      front.endpoint,
      "--param",
      `namespaces=${namespaces().join(",")}`,
      "--param",
      `from=${new Date(from).toISOString().slice(0, 19).replace("T", " ")}`,
      "--param",
      `to=${new Date(to).toISOString().slice(0, 19).replace("T", " ")}`,
      "--format",
      "json",
    ]);
    // One JSON object a row.
    const rows = run.stdout
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const counts = new Map<string, number>();
    for (const row of rows) {
      const namespace = String(row.namespace);
      const lines = Number(row.lines ?? row.line_count ?? row.records ?? row.rows);
      assert.ok(Number.isFinite(lines), `a log_volume row without a count: ${JSON.stringify(row)}`);
      counts.set(namespace, (counts.get(namespace) ?? 0) + lines);
    }
    return counts;
  }

  it("ships two nodes' past hours with the landing retention, compacts them, and every line is read once", async () => {
    writeAndFlush(PHASE1_BYTES_PER_NODE);
    await shipAll();
    const shipped = await originals();
    const pastHours = new Set(shipped.map(hourOf).filter((h) => h < firstHour + 3 * HOUR_MS));
    assert.ok(
      pastHours.size >= 2,
      `the records span at least two past UTC hours: ${[...pastHours].map(hourText)}`,
    );

    // Originals carry their own short retention; the bucket default is for the rest.
    const original = shipped[0]!;
    const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: original }));
    const parsed = parseObjectKey(original);
    const hourEnd = Date.parse(`${parsed.dt}T${parsed.hour}:00:00Z`) + HOUR_MS;
    assert.equal(head.ObjectLockMode, "GOVERNANCE");
    assert.equal(head.ObjectLockRetainUntilDate?.getTime(), hourEnd + LANDING_DAYS * 86_400_000);

    const compactStarted = Date.now();
    const compacted = await cli(compactArgs(front.endpoint));
    assert.match(compacted.stdout, /committed/);
    const state = await compactedState();
    assert.deepEqual(state.unnamedParts, []);
    assert.deepEqual(
      settledBy(shipped, compactStarted).filter((k) => !state.members.has(k)),
      [],
      "every original is a member of a committed manifest",
    );
    // Parts take the bucket's default retention (the compliance lock), not the originals' landing one.
    const part = [...state.namedParts][0]!;
    const partHead = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: part }));
    assert.equal(partHead.ObjectLockMode, "GOVERNANCE");
    assert.ok(
      partHead.ObjectLockRetainUntilDate!.getTime() > Date.now() + (DEFAULT_RETENTION_DAYS - 1) * 86_400_000,
      `a part's retention is the bucket default: ${partHead.ObjectLockRetainUntilDate?.toISOString()}`,
    );

    const lines = await assertEveryLineOnce("compacted", firstHour + 3 * HOUR_MS);
    assert.ok(lines > 5000, `${lines} lines`);
    process.stdout.write(
      `# phase 1: ${lines} lines in ${namespaces().length} namespaces, ${shipped.length} originals, ${state.manifests} manifests, ${state.namedParts.size} parts\n`,
    );

    // A sub-range inside an hour: exactly the records of the whole retrieval that fall in it.
    const namespace = "checkout";
    const whole = await retrieve(namespace, range().from, range().to);
    const from = firstHour + HOUR_MS + 17 * 60_000;
    const to = firstHour + 2 * HOUR_MS + 3 * 60_000;
    const inside = whole.records
      .filter((r) => {
        const t = Date.parse(`${r.timestamp.replace(" ", "T")}Z`);
        return t >= from && t < to;
      })
      .map((r) => `${r.node} ${r.lid}`);
    assert.ok(inside.length > 100);
    const part1 = await retrieve(namespace, from, to);
    assertExactlyOnce(`retrieve ${namespace} sub-range`, part1.lines, inside);
  });

  it("a compact run killed with its first manifest of a new hour in flight, then re-run: still exactly once, no part left unnamed", async () => {
    // The nodes write on: into the last compacted hour (a late batch: a supplement generation)
    // and into a new hour.
    writeAndFlush(PHASE2_BYTES_PER_NODE);
    await shipAll();
    const newHour = dtHour(firstHour + 3 * HOUR_MS);
    const newHourOriginals = (await originals()).filter((k) => {
      const p = parseObjectKey(k);
      return p.dt === newHour.dt && p.hour === newHour.hour;
    });
    assert.ok(newHourOriginals.length > 0, "the second batch of writes reaches a new hour");

    const gate = await startS3RequestGate(front.endpoint);
    try {
      const isNewHourManifest = (r: { method: string; key: string }) => {
        if (r.method !== "PUT" || !r.key.startsWith(compactedPrefix(PREFIX))) return false;
        const k = parseCompactedKey(r.key);
        return k.kind === "manifest" && k.dt === newHour.dt && k.hour === newHour.hour;
      };
      const manifestPut = gate.holdFirst(isNewHourManifest);
      const run = startCli(compactArgs(gate.endpoint), { env });
      const held = await Promise.race([
        manifestPut,
        run.exited.then((code) => {
          throw new Error(`compact exited (${code}) before its first manifest of the new hour\n${run.log()}`);
        }),
      ]);
      await run.kill("SIGKILL");
      assert.equal(run.exitCode(), null, "killed, not exited");
      // The crash left the new hour's parts of that namespace stored and named by no manifest.
      const crashed = await compactedState();
      const heldHour = parseCompactedKey(held.key);
      assert.ok(
        crashed.unnamedParts.some((k) => {
          const p = parseCompactedKey(k);
          return p.namespace === heldHour.namespace && p.dt === newHour.dt && p.hour === newHour.hour;
        }),
        `the killed run stored parts of ${held.key} and no manifest names them: ${crashed.unnamedParts}`,
      );
      // Readers never read them: the namespace-hour without a manifest is read from its originals.
      const expected = written().get(heldHour.namespace) ?? [];
      const meanwhile = await retrieve(heldHour.namespace, range().from, range().to);
      assertExactlyOnce(`retrieve ${heldHour.namespace} after the crash`, meanwhile.lines, expected);
    } finally {
      await gate.stop();
    }

    const rerunStarted = Date.now();
    await cli(compactArgs(front.endpoint));
    const state = await compactedState();
    assert.deepEqual(
      state.unnamedParts,
      [],
      "every .ndjson.gz under compacted/ is named by a committed manifest",
    );
    const all = await originals();
    assert.deepEqual(
      settledBy(all, rerunStarted).filter((k) => !state.members.has(k)),
      [],
      "every original is a member of a committed manifest",
    );
    assert.ok(
      state.generation >= 1,
      "the late batches of a committed hour went into a supplement generation",
    );
    const lines = await assertEveryLineOnce("compacted", firstHour + 4 * HOUR_MS);
    process.stdout.write(
      `# after the crash and re-run: ${lines} lines, ${all.length} originals, ${state.manifests} manifests, ${state.namedParts.size} parts\n`,
    );
  });

  it("after the originals' landing expiry (a delete marker on each), every line still comes once from the parts", async () => {
    // Lifecycle expires originals landing_days after their hour, long after their hour is
    // compacted: here, every original a committed manifest names.
    const { members } = await compactedState();
    const expiring = (await originals()).filter((k) => members.has(k));
    assert.ok(expiring.length > 0);
    for (const key of expiring) {
      // What lifecycle expiration does to a current version in a versioned bucket: a delete
      // marker on top; the locked version stays (noncurrent) until its retention passes.
      const deleted = await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
      assert.equal(deleted.DeleteMarker, true);
    }
    assert.deepEqual(
      (await originals()).filter((k) => members.has(k)),
      [],
      "no compacted original is current any more",
    );
    const lines = await assertEveryLineOnce("compacted", firstHour + 4 * HOUR_MS);
    const written_ = [...written().values()].reduce((n, l) => n + l.length, 0);
    assert.equal(lines, written_);
    process.stdout.write(
      `# after the landing expiry of ${expiring.length} originals: ${lines} lines, each once\n`,
    );
  });
});
