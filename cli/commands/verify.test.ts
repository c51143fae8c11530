// `logarchive verify` over real bundles: written by retrieve from the local stack, then
// delivered as a directory, a tar.gz or a bare manifest, and tampered with in each way a
// recipient could meet: records edited, the manifest edited, the manifest edited with its
// .sha256 recomputed, a damaged tar.gz, a missing file. Exit 0 intact and complete, 1 a failed
// check or an incomplete retrieval, 2 a usage mistake.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { gunzipSync, gzipSync } from "node:zlib";
import type { S3Client } from "@aws-sdk/client-s3";
import { DEFAULT_PRICES } from "../../lib/economics/prices.ts";
import { parsePolicy } from "../../lib/policy/policy.ts";
import { parseRfc3339 } from "../../lib/record/timestamp.ts";
import { buildBundle, type Manifest, writeBundle } from "../../lib/retrieval/bundle.ts";
import { retrieve } from "../../lib/retrieval/retrieve.ts";
import { tarFiles, untarFiles } from "../../lib/retrieval/tar.ts";
import { putTestObject, testObject } from "../../lib/retrieval/test_support.ts";
import { verifyBundle } from "../../lib/retrieval/verify.ts";
import { localS3Client } from "../../local/s3.ts";
import { type LocalCloud, startLocalCloud } from "../../local/stack.ts";
import { runCli } from "../test_support.ts";

/** `logarchive verify ...args`. */
const run = (args: string[]) => runCli(["verify", ...args]);

const at = (text: string) => parseRfc3339(text) ?? assert.fail(text);
const E = "0d0d0d0d";
const first = testObject({
  namespace: "payments",
  node: "node-a",
  epoch: E,
  seq: 0,
  tier: "archive",
  lines: [
    { at: "2026-03-03T23:10:00Z", message: "one" },
    { at: "2026-03-03T23:20:00Z", message: "two" },
  ],
});
const second = testObject({
  namespace: "payments",
  node: "node-a",
  epoch: E,
  seq: 1,
  tier: "analytics",
  lines: [{ at: "2026-03-04T00:05:00Z", message: "three" }],
});

const sha256 = (data: Buffer | string) => createHash("sha256").update(data).digest("hex");
const failed = (report: Awaited<ReturnType<typeof verifyBundle>>) =>
  report.checks.filter((c) => !c.ok).map((c) => c.name);

describe("logarchive verify", () => {
  let dir: string;
  let cloud: LocalCloud;
  let s3: S3Client;
  let good: string;
  let goodTar: string;
  let incomplete: string;
  let manifestSha: string;

  async function bundle(out: string) {
    const query = {
      namespace: "payments",
      from: at("2026-03-03T23:00:00Z"),
      to: at("2026-03-04T01:00:00Z"),
      pods: [],
      containers: [],
    };
    const outcome = await retrieve({
      s3,
      bucket: cloud.endpoints.s3.bucket,
      prefix: "logs",
      query,
      restoreTier: "Bulk",
      restoreDays: 1,
      prices: DEFAULT_PRICES,
      pollIntervalMs: 1,
    });
    const now = new Date("2026-12-07T12:00:00Z");
    const built = buildBundle(outcome, {
      toolVersion: "test",
      bucket: cloud.endpoints.s3.bucket,
      prefix: "logs",
      tiers: ["analytics", "archive"],
      query,
      now,
    });
    await writeBundle(out, built.files, now);
    return built;
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "verify-"));
    cloud = await startLocalCloud({ dataDir: join(dir, "stack"), policy: parsePolicy("{}\n", "test") });
    s3 = localS3Client(cloud.endpoints.s3.endpoint, cloud.endpoints.region);
    await putTestObject(s3, cloud.endpoints.s3.bucket, first);
    await putTestObject(s3, cloud.endpoints.s3.bucket, second);
    good = join(dir, "good");
    const built = await bundle(good);
    assert.equal(built.manifest.verdict.complete, true, JSON.stringify(built.manifest.verdict.problems));
    manifestSha = sha256(await readFile(join(good, "manifest.json")));
    goodTar = join(dir, "good.tar.gz");
    await bundle(goodTar);
    // The archive object is overwritten with other lines under its old checksum: retrieve
    // writes an intact bundle whose manifest records an incomplete retrieval.
    const altered = testObject({
      namespace: "payments",
      node: "node-a",
      epoch: E,
      seq: 0,
      tier: "archive",
      lines: [{ at: "2026-03-03T23:10:00Z", message: "one, altered" }],
    });
    await putTestObject(s3, cloud.endpoints.s3.bucket, { ...altered, metadata: first.metadata });
    incomplete = join(dir, "incomplete");
    await bundle(incomplete);
  });

  after(async () => {
    s3?.destroy();
    await cloud?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("accepts an untouched bundle as a directory, a tar.gz and a bare manifest (exit 0)", async () => {
    for (const path of [good, goodTar, join(good, "manifest.json")]) {
      const r = await run([path, "--expect-sha256", manifestSha]);
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /is intact and records a COMPLETE retrieval/);
      assert.doesNotMatch(r.stdout, /FAIL/);
    }
    const report = await verifyBundle(good);
    assert.deepEqual(
      report.checks.map((c) => c.name),
      [
        "manifest checksum",
        "manifest format",
        "manifest consistency",
        "records checksum",
        "records readable",
        "records match the query",
      ],
    );
    assert.match(report.checks.at(-1)?.detail ?? "", /^3 line\(s\)/);
  });

  it("rejects records edited after delivery (exit 1), naming the records file", async () => {
    const copy = join(dir, "records-edited");
    await cp(good, copy, { recursive: true });
    const path = join(copy, "records.ndjson.gz");
    const text = gunzipSync(await readFile(path))
      .toString("utf8")
      .replace('"message":"two"', '"message":"2"');
    await writeFile(path, gzipSync(text));
    const r = await run([copy]);
    assert.equal(r.status, 1);
    assert.match(
      r.stdout,
      /^FAIL records checksum: records\.ndjson\.gz has SHA-256 [0-9a-f]{64}, the manifest says/m,
    );
    assert.match(r.stdout, /does NOT match its manifest/);
  });

  it("rejects an edited manifest (exit 1): its hash no longer matches manifest.json.sha256 or the delivered hash", async () => {
    const copy = join(dir, "manifest-edited");
    await cp(good, copy, { recursive: true });
    const path = join(copy, "manifest.json");
    const manifest = JSON.parse(await readFile(path, "utf8")) as Manifest;
    manifest.query.to = "2026-03-05T00:00:00.000000000Z";
    await writeFile(path, `${JSON.stringify(manifest, null, 2)}\n`);
    const r = await run([copy, "--expect-sha256", manifestSha]);
    assert.equal(r.status, 1);
    assert.match(
      r.stdout,
      /^FAIL manifest checksum: manifest\.json has SHA-256 [0-9a-f]{64}, manifest\.json\.sha256 says [0-9a-f]{64}: the manifest was changed$/m,
    );
    assert.match(r.stdout, /^FAIL expected manifest hash: /m);

    // Recomputing manifest.json.sha256 hides the edit from that check only: the hash recorded at
    // delivery still catches it.
    await writeFile(join(copy, "manifest.json.sha256"), `${sha256(await readFile(path))}  manifest.json\n`);
    const rehashed = await verifyBundle(copy, { expectSha256: manifestSha });
    assert.deepEqual(failed(rehashed), ["expected manifest hash"]);
  });

  it("rejects a bundle with a line removed and the manifest's records figures and hashes redone, because the totals disagree", async () => {
    const copy = join(dir, "line-removed");
    await cp(good, copy, { recursive: true });
    const records = join(copy, "records.ndjson.gz");
    const lines = gunzipSync(await readFile(records))
      .toString("utf8")
      .split("\n")
      .filter(Boolean);
    const shorter = gzipSync(`${lines.slice(1).join("\n")}\n`);
    await writeFile(records, shorter);
    const path = join(copy, "manifest.json");
    const manifest = JSON.parse(await readFile(path, "utf8")) as Manifest;
    manifest.records.sha256 = sha256(shorter);
    manifest.records.lines = lines.length - 1;
    await writeFile(path, `${JSON.stringify(manifest, null, 2)}\n`);
    await writeFile(join(copy, "manifest.json.sha256"), `${sha256(await readFile(path))}  manifest.json\n`);
    const report = await verifyBundle(copy);
    assert.deepEqual(failed(report), ["manifest consistency", "records match the query"]);
    assert.match(
      report.checks.find((c) => c.name === "manifest consistency")?.detail ?? "",
      /records\.lines is 2 but totals\.recordsKept is 3/,
    );
    assert.match(
      report.checks.find((c) => c.name === "records match the query")?.detail ?? "",
      /the manifest says 2 line\(s\) kept, the records file has 1/,
    );
  });

  it("rejects a complete verdict over a node the continuity check found tampered, even with every hash redone", async () => {
    const copy = join(dir, "continuity-edited");
    await cp(good, copy, { recursive: true });
    const path = join(copy, "manifest.json");
    const manifest = JSON.parse(await readFile(path, "utf8")) as Manifest;
    const node = manifest.continuity?.nodes[0];
    assert.ok(node !== undefined);
    node.verdict = "tampered";
    await writeFile(path, `${JSON.stringify(manifest, null, 2)}\n`);
    await writeFile(join(copy, "manifest.json.sha256"), `${sha256(await readFile(path))}  manifest.json\n`);
    const report = await verifyBundle(copy);
    assert.deepEqual(failed(report), ["manifest consistency"]);
    assert.match(
      report.checks.find((c) => c.name === "manifest consistency")?.detail ?? "",
      /continuity says node node-a \(epoch [0-9a-f]+\) is tampered but verdict\.complete is true/,
    );
  });

  it("rejects a record from outside the query even with every hash redone", async () => {
    const copy = join(dir, "foreign-line");
    await cp(good, copy, { recursive: true });
    const records = join(copy, "records.ndjson.gz");
    const lines = gunzipSync(await readFile(records))
      .toString("utf8")
      .split("\n")
      .filter(Boolean);
    lines[0] = (lines[0] as string).replace('"namespace":"payments"', '"namespace":"web"');
    const changed = gzipSync(`${lines.join("\n")}\n`);
    await writeFile(records, changed);
    const path = join(copy, "manifest.json");
    const manifest = JSON.parse(await readFile(path, "utf8")) as Manifest;
    manifest.records.sha256 = sha256(changed);
    await writeFile(path, `${JSON.stringify(manifest, null, 2)}\n`);
    await writeFile(join(copy, "manifest.json.sha256"), `${sha256(await readFile(path))}  manifest.json\n`);
    const report = await verifyBundle(copy);
    assert.deepEqual(failed(report), ["records match the query"]);
    assert.match(report.checks.at(-1)?.detail ?? "", /line 1 is outside the manifest's query/);
  });

  it("rejects a tar.gz that was edited or damaged, and one missing a file (exit 1)", async () => {
    const bytes = await readFile(goodTar);
    const damaged = join(dir, "damaged.tar.gz");
    await writeFile(damaged, Buffer.concat([bytes.subarray(0, 40), Buffer.from("xx"), bytes.subarray(42)]));
    const r = await run([damaged]);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /^FAIL archive: damaged\.tar\.gz cannot be read/m);

    const files = untarFiles(gunzipSync(bytes));
    const noSha = join(dir, "no-sha.tar.gz");
    await writeFile(
      noSha,
      gzipSync(
        tarFiles(
          files.filter((f) => f.name !== "manifest.json.sha256"),
          new Date(),
        ),
      ),
    );
    const missing = await run([noSha]);
    assert.equal(missing.status, 1);
    assert.match(missing.stdout, /^FAIL manifest checksum: manifest\.json\.sha256 is missing$/m);
  });

  it("an intact bundle of an incomplete retrieval exits 1 and says which it is", async () => {
    const r = await run([incomplete]);
    assert.equal(r.status, 1);
    assert.doesNotMatch(r.stdout, /FAIL/);
    assert.match(r.stdout, /is intact, but the retrieval it records is INCOMPLETE \(1 problem\(s\)/);
  });

  it("usage mistakes are one line and exit 2", async () => {
    const none = await run([join(dir, "nothing-here")]);
    assert.equal(none.status, 2);
    assert.match(none.stderr, /^logarchive: .*nothing-here: no such file or directory\n$/);
    const badHash = await run([good, "--expect-sha256", "abc"]);
    assert.equal(badHash.status, 2);
    assert.match(badHash.stderr, /--expect-sha256.*64 hex digits/);
    assert.doesNotMatch(none.stderr + badHash.stderr, /\n\s+at /);
  });
});
