// A full retrieve over what the shipper really archived: a sample backlog across midnight,
// shipped by `logarchive ship --once` into the local stack under the repository's policy
// (payments loaded for analytics, kube-system archive only; in stream delivery, as shipped, both in the archive tier). Every shipped line of the
// namespace in range must come back exactly once, in time order, and nothing outside it; the
// expectation is read straight from the archive's objects, not through lib/retrieval.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { gunzipSync } from "node:zlib";
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import { LocalPipeline } from "../../local/pipeline.ts";
import { localS3Client } from "../../local/s3.ts";
import { writeSampleBacklog } from "../../local/sample-workload.ts";
import { DEFAULT_PRICES } from "../economics/prices.ts";
import { isStreamKey, parseObjectKey } from "../keys/layout.ts";
import { createLogger } from "../log.ts";
import { classifyNamespace, loadPolicy } from "../policy/policy.ts";
import { compareInstants, instantFromRecord, parseRfc3339 } from "../record/timestamp.ts";
import { retrieve } from "./retrieve.ts";

const FROM = "2026-03-03T23:50:00Z";
const TO = "2026-03-04T00:05:00Z";

describe("retrieve over shipped data", { timeout: 300_000 }, () => {
  let dir: string;
  let pipeline: LocalPipeline;
  let s3: S3Client;
  let bucket: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "retrieve-shipped-"));
    const root = join(dir, "pods");
    // 30 minutes of lines ending at 00:10: the range [23:50, 00:05) has lines on both sides.
    await writeSampleBacklog({
      root,
      lines: 1500,
      seed: 13,
      now: Date.UTC(2026, 2, 4, 0, 10),
      spanMs: 30 * 60_000,
    });
    pipeline = await LocalPipeline.start({
      dataDir: join(dir, "data"),
      policy: await loadPolicy(new URL("../../namespaces.yaml", import.meta.url).pathname),
      logs: [`${root}/*/*/*.log*`],
      once: true,
      logger: createLogger("retrieve-shipped", "error"),
      version: "test",
    });
    const shipper = await pipeline.openShipper();
    await shipper.run();
    await shipper.close();
    // Let the loader finish with the analytics objects, so stopping the stack cuts no load short.
    await pipeline.settle(120_000);
    const e = pipeline.parts.cloud.endpoints;
    s3 = localS3Client(e.s3.endpoint, e.region);
    bucket = e.s3.bucket;
  });

  after(async () => {
    s3?.destroy();
    await pipeline?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** Every line of `namespace` in the archive, read object by object with no help from lib/retrieval. */
  async function archivedLines(namespace: string): Promise<{ line: string; tier: string }[]> {
    const out: { line: string; tier: string }[] = [];
    let token: string | undefined;
    do {
      const page = await s3.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: "logs/", ContinuationToken: token }),
      );
      for (const o of page.Contents ?? []) {
        // Stream delivery's per-table objects are copies that expire, not the archive.
        if (isStreamKey(o.Key as string)) continue;
        const key = parseObjectKey(o.Key as string);
        if (key.namespace !== namespace) continue;
        const body = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: o.Key }));
        const text = gunzipSync(
          Buffer.from(await (body.Body?.transformToByteArray() ?? new Uint8Array())),
        ).toString();
        for (const line of text.split("\n")) if (line !== "") out.push({ line, tier: key.tier });
      }
      token = page.NextContinuationToken;
    } while (token !== undefined);
    return out;
  }

  // The tier each namespace's objects are in under the repository's policy: both `archive` in
  // stream delivery (as shipped), payments under `analytics` in per-namespace delivery.
  const repositoryPolicy = loadPolicy(new URL("../../namespaces.yaml", import.meta.url).pathname);
  for (const namespace of ["payments", "kube-system"]) {
    it(`returns every shipped line of ${namespace} in [${FROM}, ${TO}) exactly once, in time order, and nothing else`, async () => {
      const from = parseRfc3339(FROM) ?? assert.fail();
      const to = parseRfc3339(TO) ?? assert.fail();
      const all = await archivedLines(namespace);
      const classified = classifyNamespace(await repositoryPolicy, namespace);
      assert.ok(classified.archived);
      assert.deepEqual([...new Set(all.map((a) => a.tier))], [classified.tier]);
      const inRange = all
        .map(({ line }) => {
          const r = JSON.parse(line);
          return { line, at: instantFromRecord(r.timestamp, r.timestamp_nanos) };
        })
        .filter(({ at }) => compareInstants(at, from) >= 0 && compareInstants(at, to) < 0);
      assert.ok(inRange.length > 50, `the sample has ${namespace} lines in range (${inRange.length})`);
      assert.ok(inRange.length < all.length, "and lines outside it");

      const outcome = await retrieve({
        s3,
        bucket,
        prefix: "logs",
        query: { namespace, from, to, pods: [], containers: [] },
        restoreTier: "Standard",
        restoreDays: 1,
        prices: DEFAULT_PRICES,
        pollIntervalMs: 1,
      });
      assert.deepEqual(outcome.problems, []);
      assert.equal(outcome.status, "done");
      const got = outcome.records.map((r) => r.line);
      assert.equal(new Set(got).size, got.length, "no line twice");
      assert.deepEqual([...got].sort(), inRange.map((r) => r.line).sort());
      for (let i = 1; i < outcome.records.length; i++) {
        assert.ok(compareInstants(outcome.records[i - 1]!.at, outcome.records[i]!.at) <= 0, "time order");
      }
      assert.ok(outcome.objects.every((o) => o.checksum === "verified"));
      assert.deepEqual(
        outcome.continuity?.nodes.map((n) => [n.node, n.verdict]),
        [["local-node", "continuous"]],
      );
    });
  }
});
