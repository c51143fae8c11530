// `logarchive retrieve` as a user runs it: flags, progress on stderr, the bundle, and the exit
// codes (0 complete, 1 incomplete or a failed check, 2 usage), against the local stack.

import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { S3Client } from "@aws-sdk/client-s3";
import { parsePolicy } from "../../lib/policy/policy.ts";
import type { Manifest } from "../../lib/retrieval/bundle.ts";
import { putTestObject, testObject } from "../../lib/retrieval/test_support.ts";
import { localS3Client } from "../../local/s3.ts";
import { type LocalCloud, startLocalCloud } from "../../local/stack.ts";
import { type CliRun, localCliEnv, runCli } from "../test_support.ts";

const env = localCliEnv();
type Run = CliRun;

/** `logarchive retrieve ...args` against the local S3 (the test process serves it). */
const run = (args: string[], onStderr?: (text: string) => void): Promise<Run> =>
  runCli(["retrieve", ...args], { env, ...(onStderr === undefined ? {} : { onStderr }) });

const E = "0c0c0c0c";
const hot = testObject({
  namespace: "payments",
  node: "node-a",
  epoch: E,
  seq: 0,
  tier: "archive",
  lines: [{ at: "2026-03-03T23:59:59.999999999Z", message: "before midnight" }],
});
const cold = testObject({
  namespace: "payments",
  node: "node-a",
  epoch: E,
  seq: 1,
  tier: "archive",
  lines: [{ at: "2026-03-04T00:00:00Z", message: "midnight" }],
});

describe("logarchive retrieve (CLI)", () => {
  let dir: string;
  let cloud: LocalCloud;
  let s3: S3Client;
  let location: string[];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "retrieve-cli-"));
    cloud = await startLocalCloud({ dataDir: join(dir, "stack"), policy: parsePolicy("{}\n", "test") });
    s3 = localS3Client(cloud.endpoints.s3.endpoint, cloud.endpoints.region);
    await putTestObject(s3, cloud.endpoints.s3.bucket, hot);
    await putTestObject(s3, cloud.endpoints.s3.bucket, cold);
    await cloud.s3Archive.setStorageClass(cloud.endpoints.s3.bucket, cold.key, "DEEP_ARCHIVE");
    location = [
      "--s3-endpoint",
      cloud.endpoints.s3.endpoint,
      "--bucket",
      cloud.endpoints.s3.bucket,
      "--prefix",
      "logs",
      "--namespace",
      "payments",
      "--from",
      "2026-03-03T23",
      "--to",
      "2026-03-04T01",
    ];
  });

  after(async () => {
    s3?.destroy();
    await cloud?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("says what is wrong with a flag in one line and exits 2", async () => {
    const noBucket = await run([
      "--namespace",
      "payments",
      "--from",
      "2026-03-03",
      "--to",
      "2026-03-04",
      "--out",
      dir,
    ]);
    assert.equal(noBucket.status, 2);
    assert.match(noBucket.stderr, /^logarchive: --bucket is required/);
    const backwards = await run([...location, "--to", "2026-03-03T22", "--out", dir]);
    assert.equal(backwards.status, 2);
    assert.equal(backwards.stderr.trim(), "logarchive: --to must be after --from.");
    const badGrep = await run([...location, "--grep", "(", "--out", dir]);
    assert.equal(badGrep.status, 2);
    assert.match(badGrep.stderr, /--grep.*not a regular expression/);
    const badTime = await run([...location, "--from", "2026-02-30", "--out", dir]);
    assert.equal(badTime.status, 2);
    assert.match(badTime.stderr, /February 2026 has 28 days/);
    for (const r of [noBucket, backwards, badGrep, badTime]) assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  it("--plan prints and writes the plan; Expedited on Deep Archive is a usage error", async () => {
    const out = join(dir, "planned");
    const plan = await run([...location, "--plan", "--restore-tier", "bulk", "--out", out]);
    assert.equal(plan.status, 0, plan.stderr);
    assert.match(
      plan.stdout,
      /DEEP_ARCHIVE +1 object\(s\), \d+ bytes, 1 to restore .*ready within 48 hours, cost \$/,
    );
    const written = JSON.parse(await readFile(join(out, "plan.json"), "utf8"));
    assert.equal(written.tier, "Bulk");
    assert.equal(written.query.namespace, "payments");
    assert.deepEqual(
      written.objects.map((o: { key: string; action: string }) => [o.key, o.action]),
      [
        [hot.key, "read"],
        [cold.key, "restore"],
      ],
    );
    const expedited = await run([...location, "--restore-tier", "expedited", "--out", out]);
    assert.equal(expedited.status, 2);
    assert.match(
      expedited.stderr,
      /^logarchive: --restore-tier: Expedited retrieval is not available for DEEP_ARCHIVE/m,
    );
  });

  it("takes the bucket, prefix and endpoint from the shipper's --config, and names a bad key in it", async () => {
    const { writeFile } = await import("node:fs/promises");
    const config = join(dir, "ship.yaml");
    await writeFile(
      config,
      `bucket: ${cloud.endpoints.s3.bucket}\nprefix: logs\ns3_endpoint: ${cloud.endpoints.s3.endpoint}\n`,
    );
    const range = ["--namespace", "payments", "--from", "2026-03-03T23", "--to", "2026-03-04T01"];
    const planned = await run(["--config", config, ...range, "--plan", "--out", join(dir, "from-config")]);
    assert.equal(planned.status, 0, planned.stderr);
    assert.match(planned.stdout, /DEEP_ARCHIVE +1 object\(s\)/);
    const bad = join(dir, "bad.yaml");
    await writeFile(bad, "bucket: b\nprefix: a//b\n");
    const refused = await run(["--config", bad, ...range, "--out", join(dir, "bad")]);
    assert.equal(refused.status, 2);
    assert.match(refused.stderr, /bad\.yaml is invalid:\n {2}- prefix: the key prefix has an empty segment/);
  });

  it("--no-wait starts the restore and exits 1; the next run waits with progress, then writes a complete tar.gz (exit 0)", async () => {
    const out = join(dir, "bundle.tar.gz");
    const started = await run([...location, "--no-wait", "--out", out]);
    assert.equal(started.status, 1);
    assert.match(started.stderr, /1 restore\(s\) started/);
    assert.match(started.stderr, /restores are still running; run the same command again later/);
    await assert.rejects(stat(out));

    let completed = false;
    const resumed = await run([...location, "--poll-interval", "50ms", "--out", out], (stderr) => {
      if (!completed && /waiting for restores \[.*\] 1\/2 readable/.test(stderr)) {
        completed = true;
        cloud.s3Archive.completeRestores();
      }
    });
    assert.equal(resumed.status, 0, resumed.stderr + resumed.stdout);
    assert.doesNotMatch(
      resumed.stderr,
      /restore\(s\) started/,
      "the running restore was not requested again",
    );
    assert.match(resumed.stderr, /2\/2 readable/);
    assert.match(resumed.stdout, /2 line\(s\) kept of 2 in 2 object\(s\)/);
    assert.match(resumed.stdout, /COMPLETE/);
    assert.ok((await stat(out)).size > 0);
  });

  it("a range ending within the archive's arrival delay is COMPLETE with a WARNING that its tail may still be arriving, in the manifest too", async () => {
    // Stream delivery: archive batches are cut at archive.batch_max_age (1h by default).
    const { writeFile } = await import("node:fs/promises");
    const policy = join(dir, "stream.yaml");
    await writeFile(policy, "analytics:\n  delivery: stream\n");
    const now = Date.now();
    const written = new Date(now - 60_000).toISOString();
    const recent = testObject({
      namespace: "recent",
      node: "node-a",
      epoch: E,
      seq: 0,
      tier: "archive",
      lines: [{ at: written, message: "a minute ago" }],
    });
    await putTestObject(s3, cloud.endpoints.s3.bucket, recent);
    const hour = (ms: number) => new Date(ms).toISOString().slice(0, 13);
    const range = (from: string, to: number) => [
      "--s3-endpoint",
      cloud.endpoints.s3.endpoint,
      "--bucket",
      cloud.endpoints.s3.bucket,
      "--prefix",
      "logs",
      "--policy",
      policy,
      "--namespace",
      "recent",
      "--from",
      from,
      "--to",
      new Date(to).toISOString(),
    ];
    const out = join(dir, "recent");
    const r = await run([...range(hour(now - 60_000), now), "--out", out]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stdout,
      /^WARNING the range ends at .*, less than 61m before this run .*archive batches are cut every 1h \(the policy's archive\.batch_max_age in stream delivery\).*may still be in open batches on the nodes/m,
    );
    assert.match(r.stdout, /^retrieve: COMPLETE, .*the tail of the range may still be arriving/m);
    const manifest = JSON.parse(await readFile(join(out, "manifest.json"), "utf8")) as Manifest;
    assert.equal(manifest.verdict.complete, true);
    assert.equal(manifest.verdict.warnings.filter((w) => /may still be in open batches/.test(w)).length, 1);

    // A range that ended more than 1h1m ago (the delay) has no such warning.
    const earlier = now - 61 * 60_000 - 1000;
    const settled = await run([...range(hour(earlier - 3_600_000), earlier), "--out", join(dir, "settled")]);
    assert.doesNotMatch(settled.stdout, /may still be in open batches|may still be arriving/, settled.stdout);
  });

  it("a tampered object exits 1, and the manifest names it", async () => {
    const altered = testObject({
      namespace: "payments",
      node: "node-a",
      epoch: E,
      seq: 0,
      tier: "archive",
      lines: [{ at: "2026-03-03T23:59:59.999999999Z", message: "before midnight, altered" }],
    });
    await putTestObject(s3, cloud.endpoints.s3.bucket, { ...altered, metadata: hot.metadata });
    const out = join(dir, "tampered");
    const r = await run([...location, "--out", out]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(
      r.stdout,
      new RegExp(`PROBLEM ${hot.key.replaceAll(".", "\\.")} \\(version null\\): SHA-256 mismatch`),
    );
    assert.match(r.stdout, /INCOMPLETE/);
    const manifest = JSON.parse(await readFile(join(out, "manifest.json"), "utf8")) as Manifest;
    assert.equal(manifest.verdict.complete, false);
    const entry = manifest.objects.find((o) => o.key === hot.key);
    assert.equal(entry?.checksum, "mismatch");
    assert.equal(entry?.recordsKept, 0);
    assert.equal(manifest.records.lines, 1, "only the verified object's line");
  });
});
