// Stream delivery's second copy, byte for byte: `ship --once` with analytics.delivery: stream
// over lines of every size, including lines longer than a staging buffer (which the shipper
// encodes a second time instead of copying, because the first encoding was handed to gzip in
// pieces). Every analytics record in a stream object must be its archive record with only
// batch_id and seq changed, and each line must be in each kind of object exactly once.

import assert from "node:assert/strict";
import { appendFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { gunzipSync } from "node:zlib";
import { GetObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { parseAnyObjectKey } from "../lib/keys/layout.ts";
import type { LocalS3 } from "../local/s3.ts";
import {
  assertExactlyOnce,
  assertStreamExactlyOnce,
  readArchive,
  s3Client,
} from "../shipper/test_support/archive.ts";
import { SUITE_GUARD_MS, shipArgs, shipOnce, startTestS3 } from "../shipper/test_support/harness.ts";
import { namespaceWriters } from "../shipper/test_support/workload.ts";

const POLICY = `
analytics:
  include: ["web", "auth"]
  delivery: stream
`;

describe("ship in stream delivery", { timeout: SUITE_GUARD_MS }, () => {
  let dir: string;
  let s3: LocalS3;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logarchive-stream-e2e-"));
    s3 = await startTestS3(join(dir, "s3"), ["stream"]);
  });
  after(async () => {
    await s3?.stop();
    if (!process.env.LOGARCHIVE_DEBUG) await rm(dir, { recursive: true, force: true });
  });

  it("writes each analytics record to its stream object as in its archive object, even lines longer than a staging buffer", async () => {
    const root = join(dir, "pods");
    const writers = namespaceWriters(root, ["web", "auth", "batch-jobs"], {
      seed: 900,
      startMs: Date.UTC(2026, 10, 21, 9, 58),
    });
    // Long lines of escaped text between ordinary ones: 400 KB to 1 MB of JSON-escaped bytes,
    // more than a staging buffer (320 KiB) holds, at varying staging fill.
    const longLids: string[] = [];
    for (let round = 0; round < 6; round++) {
      for (const w of writers) w.writeLines(400);
      const w = writers[round % 2]!;
      const lid = `9999:${round}`;
      longLids.push(lid);
      const body = `lid=${lid} ${'"quoted" \\ tab\t'.repeat(20_000 + round * 9_000)}`;
      appendFileSync(
        w.path,
        `2026-11-21T09:59:${String(10 + round).padStart(2, "0")}.000000000Z stdout F ${body}\n`,
      );
    }
    for (const w of writers) w.close();
    const policy = join(dir, "policy.yaml");
    await writeFile(policy, POLICY);
    await shipOnce(
      shipArgs(
        { logs: `${root}/*/*/*.log*`, stateDir: join(dir, "state"), bucket: "stream", node: "node-s" },
        { policy },
      ),
      s3.endpoint,
    );

    const archive = await readArchive(s3.endpoint, "stream");
    const all = [...writers.flatMap((w) => w.lids), ...longLids];
    assertExactlyOnce(all, archive);
    const analytics = [
      ...writers.filter((w) => w.namespace !== "batch-jobs").flatMap((w) => w.lids),
      ...longLids,
    ];
    assertStreamExactlyOnce(analytics, archive, { "logarchive.container_logs": ["auth", "web"] });

    // Record by record: the stream's copy is the archive's record but for batch_id and seq.
    const client = s3Client(s3.endpoint);
    const byKind = { namespace: new Map<string, string>(), stream: new Map<string, string>() };
    try {
      const page = await client.send(new ListObjectsV2Command({ Bucket: "stream" }));
      assert.equal(page.IsTruncated, false);
      for (const o of page.Contents ?? []) {
        const kind = parseAnyObjectKey(o.Key!).kind;
        const got = await client.send(new GetObjectCommand({ Bucket: "stream", Key: o.Key }));
        const text = gunzipSync(Buffer.from(await got.Body!.transformToByteArray())).toString("utf8");
        for (const line of text.split("\n")) {
          if (line === "") continue;
          const lid = /lid=(\S+?)[\s",\\]/.exec(line)?.[1] ?? line;
          byKind[kind].set(lid, line.replace(/,"batch_id":"[^"]*","seq":\d+\}$/, "}"));
        }
      }
    } finally {
      client.destroy();
    }
    assert.equal(byKind.stream.size, analytics.length);
    let long = 0;
    for (const [lid, record] of byKind.stream) {
      assert.equal(record, byKind.namespace.get(lid), `record of ${lid}`);
      if (record.length > 320 * 1024) long++;
    }
    assert.equal(long, longLids.length, "every long line went through the stream as a whole record");
  });
});
