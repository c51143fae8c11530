// `logarchive compact` as a user runs it, against a local S3 the test serves: what it prints
// and its exit codes (0 committed or nothing to do, 1 an original refused, 2 a usage mistake
// or an hour not yet settled, each in one line without a stack trace).

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import { compactNamespaceHour } from "../../lib/compaction/compact.ts";
import { compactedHourPrefix, compactionManifestsPrefix } from "../../lib/keys/layout.ts";
import { listObjectPages } from "../../lib/retrieval/find.ts";
import {
  putTestObject,
  type TestObject,
  testHourIndex,
  testObject,
} from "../../lib/retrieval/test_support.ts";
import { type LocalS3, localS3Client, startLocalS3 } from "../../local/s3.ts";
import { type S3ArchiveFront, startS3ArchiveFront } from "../../local/s3-archive/server.ts";
import { localCliEnv, runCli } from "../test_support.ts";

const env = localCliEnv();
const E = "0d0d0d0d";

function batch(node: string, seq: number, n: number): TestObject {
  return testObject({
    namespace: "payments",
    node,
    epoch: E,
    seq,
    tier: "archive",
    lines: Array.from({ length: n }, (_, i) => ({ at: `2026-03-03T10:${String(i).padStart(2, "0")}:00Z` })),
  });
}

const noStack = (stderr: string) => assert.doesNotMatch(stderr, /\n\s+at /, stderr);

describe("logarchive compact", () => {
  let dir: string;
  let local: LocalS3;
  // In front of s3rver: the "pending" bucket is versioned like the archive bucket (the sweep
  // lists versions and deletes conditionally); the others pass through to s3rver.
  let front: S3ArchiveFront;
  let frontDir: string;
  let s3: S3Client;
  const originals = [batch("node-b", 2, 30), batch("node-a", 1, 20)];

  const location = (bucket: string) => [
    "--s3-endpoint",
    front.endpoint,
    "--bucket",
    bucket,
    "--prefix",
    "logs",
  ];
  const compact = (bucket: string, ...args: string[]) =>
    runCli(["compact", ...location(bucket), "--namespace", "payments", "--hour", "2026-03-03T10", ...args], {
      env,
    });

  async function keysUnder(bucket: string, prefix: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const page of listObjectPages(s3, bucket, prefix)) for (const o of page) keys.push(o.Key!);
    return keys;
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "compact-cli-"));
    local = await startLocalS3({
      host: "127.0.0.1",
      port: 0,
      dataDir: dir,
      buckets: ["good", "dry", "bad", "waiting", "pending", "interrupted"],
    });
    frontDir = await mkdtemp(join(tmpdir(), "compact-cli-front-"));
    front = await startS3ArchiveFront({
      host: "127.0.0.1",
      port: 0,
      upstream: local.endpoint,
      region: "us-east-1",
      dataDir: frontDir,
      buckets: [{ name: "pending", versioning: true }],
    });
    s3 = localS3Client(front.endpoint, "us-east-1");
    for (const bucket of ["good", "dry", "interrupted"])
      for (const o of originals) await putTestObject(s3, bucket, o);
    await putTestObject(s3, "bad", originals[0]!);
    await putTestObject(s3, "bad", { ...originals[1]!, body: originals[0]!.body });
  });

  after(async () => {
    s3?.destroy();
    await front?.stop();
    await local?.stop();
    await rm(dir, { recursive: true, force: true });
    await rm(frontDir, { recursive: true, force: true });
  });

  it("commits the hour, printing its parts, its batches and the manifest (exit 0); a re-run has nothing new (exit 0)", async () => {
    const r = await compact("good");
    assert.equal(r.status, 0, r.stderr);
    const manifests = await keysUnder(
      "good",
      compactionManifestsPrefix("logs", "payments", "2026-03-03", "10"),
    );
    assert.equal(manifests.length, 1);
    assert.match(
      r.stdout,
      /^compact: payments 2026-03-03T10 generation 0: committed 2 batch\(es\), 50 record\(s\), .* in 1 part\(s\)$/m,
    );
    assert.match(
      r.stdout,
      /^ {2}part 0 logs\/compacted\/namespace=payments\/dt=2026-03-03\/hour=10\/part-0000-0000-[0-9a-f]{16}\.ndjson\.gz: \d+ bytes, 2 batch\(es\), sha256 [0-9a-f]{64} \(written\)$/m,
    );
    for (const o of originals)
      assert.ok(
        r.stdout.includes(`  batch ${o.key}: ${o.body.length} bytes, ${o.lines.length} record(s) -> part 0`),
        r.stdout,
      );
    assert.ok(r.stdout.includes(`compact: manifest ${manifests[0]} written`), r.stdout);
    // Key order: node-a's batch before node-b's, whatever order they were written in.
    assert.ok(r.stdout.indexOf(originals[1]!.key) < r.stdout.indexOf(originals[0]!.key));

    const again = await compact("good");
    assert.equal(again.status, 0, again.stderr);
    assert.match(
      again.stdout,
      /generation 1: nothing new; 2 batch\(es\) already in generation\(s\) 0-0; nothing written/,
    );
  });

  it("completes the plan a run killed before its manifest wrote, says so, and leaves every part named by the manifest (exit 0)", async () => {
    const dying = localS3Client(local.endpoint, "us-east-1");
    let dead = false;
    dying.middlewareStack.add(
      (next, context) => async (args) => {
        const command = (context as { commandName?: string }).commandName;
        if (command === "PutObjectCommand" && (args.input as { Key?: string }).Key?.includes("/manifest-"))
          dead = true;
        if (dead) throw new Error("injected crash: the process stopped");
        return next(args);
      },
      { step: "initialize", name: "crash" },
    );
    await assert.rejects(
      compactNamespaceHour({
        s3: dying,
        bucket: "interrupted",
        prefix: "logs",
        namespace: "payments",
        dt: "2026-03-03",
        hour: "10",
        now: () => new Date("2026-03-03T13:00:00Z"),
      }),
      /injected crash/,
    );
    dying.destroy();
    const hourPrefix = compactedHourPrefix("logs", "payments", "2026-03-03", "10");
    const stored = await keysUnder("interrupted", hourPrefix);
    assert.deepEqual(
      stored.map((k) => k.slice(hourPrefix.length).replace(/-[0-9a-f]{16}\./, "-<plan>.")),
      ["part-0000-0000-<plan>.ndjson.gz", "plan-0000.json"],
    );
    const r = await compact("interrupted");
    assert.equal(r.status, 0, r.stderr);
    assert.ok(
      r.stdout.includes(
        `compact: completed the plan ${hourPrefix}plan-0000.json an interrupted run wrote; batches that arrived after it go into generation 1 at the next run`,
      ),
      r.stdout,
    );
    assert.match(r.stdout, /\(kept\)$/m);
    const manifests = await keysUnder(
      "interrupted",
      compactionManifestsPrefix("logs", "payments", "2026-03-03", "10"),
    );
    assert.equal(manifests.length, 1);
    const parts = (await keysUnder("interrupted", hourPrefix)).filter((k) => k.endsWith(".ndjson.gz"));
    assert.deepEqual(parts, [stored[0]]);
  });

  it("--dry-run prints the plan and writes nothing (exit 0)", async () => {
    const r = await compact("dry", "--dry-run", "--part-max-bytes", "1");
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /would compact 2 batch\(es\), 50 record\(s\), .* in 2 part\(s\)/);
    assert.match(r.stdout, /\(planned\)/);
    assert.match(
      r.stdout,
      /compact: dry run; would write manifest logs\/compacted\/namespace=payments\/dt=2026-03-03\/hour=10\/manifest-0000\.json/,
    );
    assert.deepEqual(await keysUnder("dry", compactedHourPrefix("logs", "payments", "2026-03-03", "10")), []);
  });

  it("refuses an original whose bytes do not match its metadata's sha256, naming it, and commits nothing (exit 1)", async () => {
    const r = await compact("bad");
    assert.equal(r.status, 1, r.stderr);
    assert.ok(
      r.stdout.includes(`REFUSED ${originals[1]!.key}: sha256 mismatch: the stored bytes hash to`),
      r.stdout,
    );
    assert.match(r.stdout, /1 archive object\(s\) refused; the hour is not committed/);
    assert.deepEqual(await keysUnder("bad", compactedHourPrefix("logs", "payments", "2026-03-03", "10")), []);
  });

  it("waits when an hour index names a batch that is not in S3 (exit 1), and --no-index-check compacts what is there", async () => {
    const missing = batch("node-c", 0, 5);
    await putTestObject(s3, "waiting", originals[0]!);
    await putTestObject(
      s3,
      "waiting",
      testHourIndex({ node: "node-c", epoch: E, hour: "2026-03-03T10", batches: [missing], previous: null }),
      {
        ContentType: "application/json",
      },
    );
    const r = await compact("waiting");
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stdout, /not ready by the shippers' hour indexes; nothing written/);
    assert.ok(r.stdout.includes(`NOT READY batch ${missing.key} is named by hour index`), r.stdout);
    assert.deepEqual(
      await keysUnder("waiting", compactedHourPrefix("logs", "payments", "2026-03-03", "10")),
      [],
    );
    const forced = await compact("waiting", "--no-index-check");
    assert.equal(forced.status, 0, forced.stderr);
    assert.match(forced.stdout, /committed 1 batch\(es\)/);
  });

  for (const [what, args, message] of [
    [
      "an hour that is not one",
      ["--hour", "2026-02-30T10"],
      /--hour.*2026-02-30T10 is not a date: February 2026 has 28 days/,
    ],
    ["hour 24", ["--hour", "2026-03-03T24"], /--hour.*hours are 00-23/],
    ["a date without an hour", ["--hour", "2026-03-03"], /--hour.*expected a UTC hour, YYYY-MM-DDTHH/],
    ["a part size of 0", ["--part-max-bytes", "0"], /--part-max-bytes.*expected a size from 1 byte to 5TiB/],
    ["a part size that is not a size", ["--part-max-bytes", "lots"], /--part-max-bytes.*expected a size/],
    ["a settle delay that is not a duration", ["--settle", "soon"], /--settle.*expected a duration/],
    [
      "an hour not yet settled",
      ["--hour", "2999-01-01T00"],
      /^logarchive: --hour hour 2999-01-01T00 is not closed plus the settle delay \(75 min\) until 2999-01-01T02:15:00\.000Z/,
    ],
  ] as const) {
    it(`exit 2 for ${what}, in one line`, async () => {
      const r = await runCli(
        ["compact", ...location("good"), "--namespace", "payments", "--hour", "2026-03-03T10", ...args],
        { env },
      );
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, message);
      noStack(r.stderr);
    });
  }

  it("exit 2 for a missing --namespace and for a bucket that does not exist, in one line", async () => {
    const missing = await runCli(["compact", ...location("good"), "--hour", "2026-03-03T10"], { env });
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /required option '--namespace <ns>'/);
    const nobucket = await compact("nosuch");
    assert.equal(nobucket.status, 2, nobucket.stderr);
    assert.match(nobucket.stderr, /^logarchive: --bucket nosuch: no such bucket at --s3-endpoint http/);
    noStack(nobucket.stderr);
  });

  describe("--pending (the scheduled job)", () => {
    // Hours relative to the real clock, as the CronJob sees them: a run of this test stays far
    // inside the margins (settled = 3 h ago, unsettled = this hour, settling 2 h 15 min after it starts).
    const HOUR = 3_600_000;
    const thisHour = Math.floor(Date.now() / HOUR) * HOUR;
    const hourText = (ms: number) => new Date(ms).toISOString().slice(0, 13);
    const settled = hourText(thisHour - 3 * HOUR);
    const unsettled = hourText(thisHour);
    const supplemented = hourText(thisHour - 6 * HOUR);
    const done = hourText(thisHour - 8 * HOUR);
    const at = (namespace: string, node: string, seq: number, hour: string) =>
      testObject({
        namespace,
        node,
        epoch: E,
        seq,
        tier: "archive",
        lines: [{ at: `${hour}:10:00Z` }, { at: `${hour}:40:00Z` }],
      });
    const payments = [at("payments", "node-a", 1, settled), at("payments", "node-b", 2, settled)];
    const web = at("web", "node-a", 3, settled);
    const audit = at("audit", "node-a", 4, settled);
    const notYet = at("payments", "node-a", 5, unsettled);
    const earlier = at("web", "node-a", 6, supplemented);
    const late = at("web", "node-c", 0, supplemented);
    const whole = at("payments", "node-b", 7, done);
    const pending = (...args: string[]) =>
      runCli(["compact", "--pending", ...location("pending"), ...args], { env });
    const summaryOf = (stdout: string) => JSON.parse(stdout.trimEnd().split("\n").at(-1)!);

    before(async () => {
      for (const o of [...payments, web, notYet, earlier, whole]) await putTestObject(s3, "pending", o);
      await putTestObject(s3, "pending", { ...audit, body: web.body });
      for (const [namespace, hour] of [
        ["web", supplemented],
        ["payments", done],
      ] as const) {
        const outcome = await compactNamespaceHour({
          s3,
          bucket: "pending",
          prefix: "logs",
          namespace,
          dt: hour.slice(0, 10),
          hour: hour.slice(11),
        });
        assert.equal(outcome.status, "committed");
      }
      await putTestObject(s3, "pending", late);
    });

    it("compacts every settled pending namespace-hour, reports a refused one and goes on (exit 1); after a repair the next run commits it (exit 0); then nothing is pending (exit 0)", async () => {
      // --delete-after 7h: the hour compacted 8 h ago (ended 7 h and part of this hour ago) is
      // swept, the supplemented one (ended 5 h ago) is not, even across an hour boundary.
      const first = await pending("--delete-after", "7h");
      assert.equal(first.status, 1, first.stderr);
      const out = first.stdout;
      assert.match(
        out,
        new RegExp(
          `^compact: payments ${settled} generation 0: committed 2 batch\\(es\\), 4 record\\(s\\), .* in 1 part\\(s\\) \\(1 part\\(s\\) written, 0 kept\\)$`,
          "m",
        ),
      );
      assert.match(out, new RegExp(`^compact: web ${settled} generation 0: committed 1 batch\\(es\\)`, "m"));
      assert.match(
        out,
        new RegExp(
          `^compact: web ${supplemented} generation 1: committed 1 batch\\(es\\).*; 1 batch\\(es\\) already in earlier generation\\(s\\)$`,
          "m",
        ),
      );
      assert.match(
        out,
        new RegExp(`^compact: audit ${settled} generation 0: FAILED: 1 archive object\\(s\\) refused`, "m"),
      );
      // (the bucket is versioned, so the line names the version refused)
      assert.ok(out.includes(`  REFUSED ${audit.key} (version `), out);
      assert.match(out, /^ {2}REFUSED .*\): sha256 mismatch/m);
      assert.ok(!out.includes(unsettled), "the unsettled hour is not looked at");
      assert.ok(!out.includes(`payments ${done}`), "the compacted hour is not pending");
      assert.match(
        out,
        /^compact --pending: hours .* \(lookback 48h, settle 75m\), 3 namespace\(s\): 4 namespace-hour\(s\) pending, 3 committed, 1 failed; 4 batch\(es\), 8 record\(s\), .* in 3 part\(s\)$/m,
      );
      const summary = summaryOf(out);
      assert.equal(summary.event, "compact-pending");
      assert.deepEqual(
        [
          summary.namespaces,
          summary.pending,
          summary.committed,
          summary.failed,
          summary.members,
          summary.records,
          summary.parts,
        ],
        [3, 4, 3, 1, 4, 8, 3],
      );
      assert.equal(
        summary.bytes,
        [...payments, web, late].reduce((n, o) => n + o.body.length, 0),
      );
      assert.deepEqual(
        summary.failures.map((f: { namespace: string; hour: string }) => `${f.namespace} ${f.hour}`),
        [`audit ${settled}`],
      );
      assert.match(summary.failures[0].reason, new RegExp(`refused: ${audit.key}`));
      // The sweep: the compacted hour's original gets a delete marker (a plain delete on this
      // unversioned local S3); nothing is near the end of its landing retention.
      assert.match(
        out,
        /^compact --pending: 1 compacted original\(s\) given a delete marker \(hours ended 7h ago or more\), 0 original\(s\) kept whole$/m,
      );
      assert.equal(summary.deleted, 1);
      assert.deepEqual(summary.kept_whole, []);
      assert.deepEqual(summary.conflicts, []);
      assert.equal(summary.requests.deletes, 1);
      const remaining = await s3.send(
        new ListObjectsV2Command({
          Bucket: "pending",
          Prefix: whole.key.slice(0, whole.key.lastIndexOf("/") + 1),
        }),
      );
      assert.deepEqual(remaining.Contents ?? [], []);

      await putTestObject(s3, "pending", audit);
      const second = await pending("--concurrency", "1");
      assert.equal(second.status, 0, second.stderr);
      assert.match(
        second.stdout,
        new RegExp(`^compact: audit ${settled} generation 0: committed 1 batch\\(es\\)`, "m"),
      );
      assert.match(second.stdout, /1 namespace-hour\(s\) pending, 1 committed, 0 failed/);

      const third = await pending();
      assert.equal(third.status, 0, third.stderr);
      assert.doesNotMatch(third.stdout, /^compact: /m);
      assert.match(third.stdout, /0 namespace-hour\(s\) pending, 0 committed, 0 failed; 0 batch\(es\)/);
      const quiet = summaryOf(third.stdout);
      assert.deepEqual(
        [quiet.pending, quiet.committed, quiet.failed, quiet.requests.indexGets],
        [0, 0, 0, 0],
      );

      // The swept original's key written again with other bytes (a shipper sharing its state
      // epoch): its current version is not the one the manifest names, so it is not deleted but
      // reported as a conflict and kept whole (exit 1).
      await putTestObject(s3, "pending", { ...whole, body: web.body });
      const conflicted = await pending();
      assert.equal(conflicted.status, 1, conflicted.stderr);
      assert.match(
        conflicted.stdout,
        new RegExp(
          `^compact: CONFLICT ${whole.key} \\(hour .*\\): its current version .* is not the version`,
          "m",
        ),
      );
      assert.match(conflicted.stdout, /, 1 conflict\(s\) \(written again after compaction, not deleted\)/);
      const conflicts = summaryOf(conflicted.stdout);
      assert.deepEqual(
        conflicts.conflicts.map((c: { key: string }) => c.key),
        [whole.key],
      );
      assert.equal(conflicts.deleted, 0);
      assert.deepEqual(
        conflicts.kept_whole.map((k: { key: string }) => k.key),
        [whole.key],
      );
      const still = await s3.send(new ListObjectsV2Command({ Bucket: "pending", Prefix: whole.key }));
      assert.deepEqual(
        (still.Contents ?? []).map((o) => o.Key),
        [whole.key],
      );
    });

    for (const [what, args, message] of [
      [
        "--namespace with --pending",
        ["--namespace", "payments"],
        /^logarchive: --namespace is for one namespace-hour; --pending/,
      ],
      ["--hour with --pending", ["--hour", "2026-03-03T10"], /^logarchive: --hour is for one namespace-hour/],
      [
        "a lookback not longer than an hour plus the settle delay",
        ["--lookback", "2h"],
        /^logarchive: --lookback 2h must be longer than an hour plus --settle \(135m\)/,
      ],
      ["a lookback that is not a duration", ["--lookback", "two days"], /--lookback.*expected a duration/],
      ["a concurrency of 0", ["--concurrency", "0"], /--concurrency.*expected a whole number from 1 to 64/],
      [
        "a shard that is not <index>/<count>",
        ["--shard", "2"],
        /--shard <index>\/<count>.*expected <index>\/<count>/,
      ],
      [
        "a shard index not below its count",
        ["--shard", "3/3"],
        /--shard.*the index 3 must be below the count 3/,
      ],
      ["a shard count of 0", ["--shard", "0/0"], /--shard.*the count 0 must be from 1 to 1024/],
      ["a negative shard index", ["--shard", "-1/3"], /--shard.*expected <index>\/<count>/],
      ["landing days of 0", ["--landing-days", "0"], /--landing-days.*expected a whole number of days/],
      [
        "lock days that are not a number",
        ["--lock-days", "a year"],
        /--lock-days.*expected a whole number of days/,
      ],
      [
        "a delete-after that is not a duration",
        ["--delete-after", "soon"],
        /--delete-after.*expected a duration/,
      ],
      ["a delete-after of 0s", ["--delete-after", "0s"], /--delete-after.*expected at least 1h/],
      ["a delete-after under an hour", ["--delete-after", "59m"], /--delete-after.*expected at least 1h/],
    ] as const) {
      it(`exit 2 for ${what}, in one line`, async () => {
        const r = await pending(...args);
        assert.equal(r.status, 2, r.stderr);
        assert.match(r.stderr, message);
        noStack(r.stderr);
      });
    }

    it("exit 2 for --lookback or --shard without --pending", async () => {
      const r = await compact("good", "--lookback", "24h");
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /^logarchive: --lookback is for --pending only/);
      const sharded = await compact("good", "--shard", "0/2");
      assert.equal(sharded.status, 2, sharded.stderr);
      assert.match(sharded.stderr, /^logarchive: --shard is for --pending only/);
      const landing = await compact("good", "--landing-days", "3");
      assert.equal(landing.status, 2, landing.stderr);
      assert.match(landing.stderr, /^logarchive: --landing-days is for --pending only/);
    });
  });
});
