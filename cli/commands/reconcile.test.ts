import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { archiveObject } from "../../functions/loader/test_support/objects.ts";
import { compactNamespaceHour } from "../../lib/compaction/compact.ts";
import { createLogger } from "../../lib/log.ts";
import { parsePolicy } from "../../lib/policy/policy.ts";
import { putTestObject, type TestObject, testObject } from "../../lib/retrieval/test_support.ts";
import { LocalPipeline } from "../../local/pipeline.ts";
import { localS3Client } from "../../local/s3.ts";
import { parseNamespaceArg } from "../options.ts";
import { parseTimeArg } from "./reconcile.ts";

const cli = new URL("../logarchive.ts", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "reconcile-cli-"));
const env: NodeJS.ProcessEnv = { ...process.env, LOGARCHIVE_LOG_LEVEL: "error" };
for (const name of [
  "GOOGLE_CLOUD_PROJECT",
  "LOGARCHIVE_BUCKET",
  "LOGARCHIVE_LANDING_BUCKET",
  "LOGARCHIVE_DATA_DIR",
]) {
  delete env[name];
}
const run = (...args: string[]) =>
  spawnSync(process.execPath, [cli, ...args], {
    encoding: "utf8",
    env,
  });

after(() => rmSync(dir, { recursive: true, force: true }));

describe("logarchive reconcile (mistakes)", () => {
  it("refuses a data directory with no local pipeline, and creates nothing there", () => {
    const missing = join(dir, "typo");
    const r = run("reconcile", "--data-dir", missing, "--from", "2026-11-21", "--to", "2026-11-22");
    assert.equal(r.status, 2);
    assert.match(r.stderr, /holds no local pipeline \(no warehouse\.duckdb\): run `logarchive local`/);
    assert.equal(existsSync(missing), false);
  });

  it("says what is wrong with a range in one line, without a stack trace", () => {
    const r = run("reconcile", "--data-dir", dir, "--from", "2026-11-22", "--to", "2026-11-21");
    assert.equal(r.status, 2);
    assert.equal(r.stderr.trim(), "logarchive: --to must be after --from.");
    const partial = run(
      "reconcile",
      "--data-dir",
      dir,
      "--from",
      "2026-11-21T10:30:00Z",
      "--to",
      "2026-11-22",
    );
    assert.match(partial.stderr, /partitions are whole hours/);
    assert.doesNotMatch(partial.stderr, /\n\s+at /);
  });

  it("names the flags the cloud mode needs", () => {
    const r = run("reconcile", "--from", "2026-11-21", "--to", "2026-11-22");
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--s3-bucket, --landing-bucket, --bigquery-project required \(or --data-dir/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });
});

describe("logarchive reconcile (flag values)", () => {
  it("rejects an impossible date as a usage error naming the flag, instead of rolling it over", () => {
    const r = run("reconcile", "--data-dir", dir, "--from", "2026-02-30", "--to", "2026-03-05");
    assert.equal(r.status, 2);
    assert.match(
      r.stderr,
      /option '--from <time>' argument '2026-02-30' is invalid\. 2026-02-30 is not a date: February 2026 has 28 days\./,
    );
    const hour = run("reconcile", "--data-dir", dir, "--from", "2026-11-21", "--to", "2026-11-21T24");
    assert.equal(hour.status, 2);
    assert.match(hour.stderr, /option '--to <time>' argument '2026-11-21T24' is invalid/);
  });

  it("rejects a name that cannot be a Kubernetes namespace, naming the flag", () => {
    const r = run(
      "reconcile",
      "--data-dir",
      dir,
      "--namespace",
      "Payments",
      "--from",
      "2026-11-21",
      "--to",
      "2026-11-22",
    );
    assert.equal(r.status, 2);
    assert.match(
      r.stderr,
      /option '--namespace <ns>' argument 'Payments' is invalid\. expected a Kubernetes namespace name/,
    );
    for (const bad of ["pay_ments", "-payments", "payments-", "a".repeat(64), ""]) {
      assert.throws(() => parseNamespaceArg(bad), { code: "commander.invalidArgument" }, bad);
    }
    for (const good of ["payments", "kube-system", "a", "0", "a".repeat(63)])
      assert.equal(parseNamespaceArg(good), good);
  });

  it("rejects a skew or a gap margin that is not a duration, or a margin that is not whole hours", () => {
    const range = ["--from", "2026-11-21", "--to", "2026-11-22"];
    const skew = run("reconcile", "--data-dir", dir, ...range, "--timestamp-skew", "soon");
    assert.equal(skew.status, 2);
    assert.match(
      skew.stderr,
      /option '--timestamp-skew <duration>' argument 'soon' is invalid\. expected a duration/,
    );
    const long = run("reconcile", "--data-dir", dir, ...range, "--timestamp-skew", "25h");
    assert.equal(long.status, 2);
    assert.match(long.stderr, /--timestamp-skew <duration>' argument '25h' is invalid\. must be at most 24h/);
    const margin = run("reconcile", "--data-dir", dir, ...range, "--gap-margin", "90m");
    assert.equal(margin.status, 2);
    assert.match(margin.stderr, /--gap-margin <duration>' argument '90m' is invalid\. expected whole hours/);
    assert.doesNotMatch(skew.stderr + long.stderr + margin.stderr, /\n\s+at /);
  });

  it("accepts a date, an hour and an RFC 3339 time, and checks every part of each", () => {
    assert.equal(parseTimeArg("2026-11-21").toISOString(), "2026-11-21T00:00:00.000Z");
    assert.equal(parseTimeArg("2024-02-29T23").toISOString(), "2024-02-29T23:00:00.000Z");
    assert.equal(parseTimeArg("2026-11-21T10:00:00+02:00").toISOString(), "2026-11-21T08:00:00.000Z");
    for (const bad of [
      "2026-02-29",
      "2026-13-01",
      "2026-04-31",
      "2026-11-21T25",
      "2026-11-21T10:61:00Z",
      "yesterday",
    ]) {
      assert.throws(() => parseTimeArg(bad), { code: "commander.invalidArgument" }, bad);
    }
  });
});

describe("logarchive reconcile (what it checked)", { timeout: 240_000 }, () => {
  const dataDir = join(dir, "data");
  const policyFile = join(dir, "namespaces.yaml");
  const policyText = "analytics:\n  exclude: ['kube-system', 'audit', 'ledger', 'vault', 'journal']\n";
  // Archive-only namespaces whose hour 05 is compacted: ledger's originals then expire, one of
  // vault's members is altered in its part.
  const compactedBatch = (namespace: string, epoch: string, seq: number, lines: number): TestObject =>
    testObject({
      namespace,
      node: `node-${namespace}`,
      epoch,
      seq,
      tier: "archive",
      lines: Array.from({ length: lines }, (_, i) => ({ at: `2026-11-21T05:${10 + i}:00Z` })),
    });
  const ledger = [compactedBatch("ledger", "1e1e1e1e", 0, 3), compactedBatch("ledger", "1e1e1e1e", 1, 4)];
  const vault = [compactedBatch("vault", "2e2e2e2e", 0, 2), compactedBatch("vault", "2e2e2e2e", 1, 2)];
  // journal's hour 05 is compacted, its originals then hidden by the compactor's delete markers,
  // and a batch of the hour arrives after the commit: no manifest names it yet.
  const journal = [compactedBatch("journal", "3e3e3e3e", 0, 2), compactedBatch("journal", "3e3e3e3e", 1, 3)];
  const journalLate = compactedBatch("journal", "3e3e3e3e", 2, 4);
  const reconcileLocal = (...args: string[]) =>
    run("reconcile", "--data-dir", dataDir, "--policy", policyFile, ...args);

  before(async () => {
    writeFileSync(policyFile, policyText);
    const pipeline = await LocalPipeline.start({
      dataDir,
      policy: parsePolicy(policyText),
      logs: [],
      once: true,
      externalTransfer: true,
      logger: createLogger("test", "fatal"),
      version: "test",
    });
    try {
      const e = pipeline.parts.cloud.endpoints;
      const s3 = localS3Client(e.s3.endpoint, e.region);
      const put = (o: ReturnType<typeof archiveObject>, body = o.body) =>
        s3.send(new PutObjectCommand({ Bucket: e.s3.bucket, Key: o.name, Body: body, Metadata: o.metadata }));
      try {
        await put(archiveObject({ namespace: "kube-system", tier: "archive", seq: 0, records: 3 }));
        await put(archiveObject({ namespace: "kube-system", tier: "archive", seq: 1, records: 2 }));
        const audit = archiveObject({ namespace: "audit", tier: "archive", seq: 2, records: 2 });
        await put(audit, archiveObject({ namespace: "audit", tier: "archive", seq: 2, records: 5 }).body);
        // Analytics tier, though the policy loads nothing: reconcile checks it has no rows.
        await put(archiveObject({ namespace: "web", seq: 3, records: 2 }));
        for (const o of [...ledger, ...vault, ...journal]) await putTestObject(s3, e.s3.bucket, o);
        const compact = async (namespace: string) => {
          const outcome = await compactNamespaceHour({
            s3,
            bucket: e.s3.bucket,
            prefix: "logs",
            namespace,
            dt: "2026-11-21",
            hour: "05",
            indexCheck: false,
            now: () => new Date("2026-11-21T08:00:00Z"),
          });
          assert.equal(outcome.status, "committed");
          return outcome.manifest!;
        };
        await compact("ledger");
        const vaultManifest = await compact("vault");
        await compact("journal");
        for (const o of journal) await s3.send(new DeleteObjectCommand({ Bucket: e.s3.bucket, Key: o.key }));
        await putTestObject(s3, e.s3.bucket, journalLate);
        // ledger's originals expire (the landing days); vault's second member is altered in its part.
        for (const o of ledger) await s3.send(new DeleteObjectCommand({ Bucket: e.s3.bucket, Key: o.key }));
        const part = vaultManifest.parts[0]!;
        const victim = vaultManifest.members[1]!;
        const got = await s3.send(new GetObjectCommand({ Bucket: e.s3.bucket, Key: part.key }));
        const bytes = Buffer.from(await got.Body!.transformToByteArray());
        bytes[victim.offset + Math.floor(victim.length / 2)]! ^= 0xff;
        await s3.send(new PutObjectCommand({ Bucket: e.s3.bucket, Key: part.key, Body: bytes }));
      } finally {
        s3.destroy();
      }
    } finally {
      await pipeline.stop();
    }
  });

  it("checks an archive-only namespace against the archive itself, and says OK with what it checked", () => {
    const r = reconcileLocal("--namespace", "kube-system", "--from", "2026-11-21", "--to", "2026-11-22");
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /: 0 analytics object\(s\), 2 archive-tier object\(s\)\n/);
    assert.match(r.stdout, /kube-system\s+objects\s+2\s+records\s+5\s+\(archive only\)\s+OK\n/);
    assert.match(r.stdout, /verdicts: verified 2\n/);
  });

  it("checks a compacted archive-only hour from its manifest's members after the originals expired, with no gap", () => {
    const r = reconcileLocal("--namespace", "ledger", "--from", "2026-11-21", "--to", "2026-11-22", "--json");
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const report = JSON.parse(r.stdout) as {
      archiveObjects: { key: string; records: number; verdict: string; detail?: string }[];
      sequence: unknown[];
      namespaces: Record<string, { objects: number; records: number; ok: boolean }>;
    };
    assert.deepEqual(
      report.archiveObjects.map((o) => [o.key, o.records, o.verdict]),
      ledger.map((o) => [o.key, o.lines.length, "verified"]),
    );
    assert.ok(
      report.archiveObjects.every((o) =>
        /^compacted: bytes \d+-\d+ of .*part-0000-0000-/.test(o.detail ?? ""),
      ),
    );
    assert.deepEqual(report.sequence, []);
    assert.deepEqual(report.namespaces.ledger, {
      tier: "archive",
      objects: 2,
      records: 7,
      ok: true,
      archiveRole: "archive-only",
    });
  });

  it("checks a compacted hour per batch: named batches from their members, a late original no manifest names as an original, said as information", () => {
    const r = reconcileLocal(
      "--namespace",
      "journal",
      "--from",
      "2026-11-21",
      "--to",
      "2026-11-22",
      "--json",
    );
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const report = JSON.parse(r.stdout) as {
      archiveObjects: { key: string; records: number; verdict: string; detail?: string }[];
      sequence: unknown[];
      notes: string[];
      namespaces: Record<string, { objects: number; records: number; ok: boolean }>;
    };
    assert.deepEqual(
      report.archiveObjects.map((o) => [o.key, o.records, o.verdict, /^compacted: /.test(o.detail ?? "")]),
      [
        ...journal.map((o) => [o.key, o.lines.length, "verified", true]),
        [journalLate.key, journalLate.lines.length, "verified", false],
      ],
    );
    assert.deepEqual(report.sequence, []);
    assert.deepEqual(report.notes, [
      "journal 2026-11-21T05: 1 batch(es) not yet compacted (named by no committed manifest), checked as originals",
    ]);
    assert.equal(report.namespaces.journal?.objects, 3);
    assert.equal(report.namespaces.journal?.records, 9);
    assert.equal(report.namespaces.journal?.ok, true);
  });

  it("exits 1 naming a compacted member whose bytes in its part are not its manifest's", () => {
    const r = reconcileLocal("--namespace", "vault", "--from", "2026-11-21", "--to", "2026-11-22");
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /vault\s+objects\s+2 .*\(archive only\)\s+NOT OK\n/);
    assert.match(
      r.stdout,
      new RegExp(
        `CORRUPT\\s+${vault[1]!.key.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}.*its SHA-256 is [0-9a-f]{64}, the manifest says`,
      ),
    );
    assert.doesNotMatch(
      r.stdout,
      new RegExp(`CORRUPT\\s+${vault[0]!.key.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`),
    );
  });

  it("lists the hours of the range and the gap margin it is given", () => {
    const r = reconcileLocal(
      "--namespace",
      "kube-system",
      "--from",
      "2026-11-21",
      "--to",
      "2026-11-22",
      "--gap-margin",
      "2h",
      "--timestamp-skew",
      "10m",
      "--json",
    );
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const report = JSON.parse(r.stdout) as { listed: { from: string; to: string } };
    assert.deepEqual(report.listed, { from: "2026-11-20T22:00:00.000Z", to: "2026-11-22T02:00:00.000Z" });
  });

  it("says what it will count in the warehouse before it counts", () => {
    const r = reconcileLocal("--namespace", "web", "--from", "2026-11-21", "--to", "2026-11-22");
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.equal(r.stderr, "reconcile: counting rows of 1 batch(es) in logarchive.container_logs\n");
    assert.match(r.stdout, /verdicts: excluded 1\n/);
    assert.match(
      r.stdout,
      /warehouse logarchive\.container_logs: 1 batch\(es\), rows with timestamp in 2026-11-21T00:00:00\.000Z → 2026-11-22T00:00:00\.000Z\n/,
    );
  });

  it("exits 1 on an archive-only object whose body is not what its metadata says", () => {
    const r = reconcileLocal("--namespace", "audit", "--from", "2026-11-21", "--to", "2026-11-22");
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /audit\s+objects\s+1 .*\(archive only\)\s+NOT OK\n/);
    assert.match(r.stdout, /CORRUPT .*audit.*it holds 5 records, the metadata says 2/);
  });

  it("exits 1 and says so when it checked nothing: a namespace or a range with no objects", () => {
    const nosuch = reconcileLocal("--namespace", "nosuch", "--from", "2026-11-21", "--to", "2026-11-22");
    assert.equal(nosuch.status, 1, nosuch.stdout + nosuch.stderr);
    assert.match(nosuch.stdout, /NOTHING CHECKED: no archived object in .* namespace nosuch in either tier/);
    assert.doesNotMatch(nosuch.stdout, /\bOK:/);
    const emptyRange = reconcileLocal("--from", "2026-11-23", "--to", "2026-11-24");
    assert.equal(emptyRange.status, 1, emptyRange.stdout + emptyRange.stderr);
    assert.match(emptyRange.stdout, /NOTHING CHECKED/);
  });
});
