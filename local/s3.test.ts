// The local S3 keeps idle connections open past a pause of the shared event loop: an upload
// due during the pause (a streaming body, which the SDK cannot retry, as the shipper sends)
// reuses its connection and succeeds instead of failing with ECONNRESET ("socket hang up").

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { describe, it } from "node:test";
import { ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import { localS3Client, startLocalS3 } from "./s3.ts";

describe("local S3", () => {
  it("keeps an idle connection open through a 7 s pause of the event loop", async () => {
    const dir = await mkdtemp(join(tmpdir(), "logarchive-local-s3-"));
    const s3 = await startLocalS3({ host: "127.0.0.1", port: 0, dataDir: dir, buckets: ["b"] });
    const client = localS3Client(s3.endpoint, "us-east-1");
    const put = (key: string) =>
      client.send(
        new PutObjectCommand({
          Bucket: "b",
          Key: key,
          Body: Readable.from([Buffer.alloc(100)]),
          ContentLength: 100,
        }),
      );
    try {
      await put("first");
      const idleFrom = Date.now();
      // Due at 5.5 s of idle, but the loop is busy from 4 s to 7 s: when it runs again, this
      // request and Node's default keep-alive timer (5 s + 1 s) would fire in the same turn.
      const second = new Promise<unknown>((resolve) => {
        setTimeout(() => put("second").then(() => resolve(null), resolve), 5500);
      });
      setTimeout(() => {
        while (Date.now() - idleFrom < 7000) {
          // the pause
        }
      }, 4000);
      assert.equal(await second, null);
    } finally {
      client.destroy();
      await s3.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("local S3 listing", () => {
  it("pages through more than 1,000 keys and groups nested keys into common prefixes", async () => {
    const dir = await mkdtemp(join(tmpdir(), "logarchive-local-s3-list-"));
    const s3 = await startLocalS3({ host: "127.0.0.1", port: 0, dataDir: dir, buckets: ["b"] });
    const client = localS3Client(s3.endpoint, "us-east-1");
    try {
      const keys: string[] = [];
      for (let i = 0; i < 1005; i++) {
        keys.push(
          `logs/analytics/namespace=ns${i % 3}/dt=2026-11-21/hour=${String(i % 24).padStart(2, "0")}/n_${i}.ndjson.gz`,
        );
      }
      for (let i = 0; i < keys.length; i += 50) {
        await Promise.all(
          keys
            .slice(i, i + 50)
            .map((Key) => client.send(new PutObjectCommand({ Bucket: "b", Key, Body: "x" }))),
        );
      }
      const listed: string[] = [];
      let token: string | undefined;
      let pages = 0;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: "b", ContinuationToken: token }));
        for (const o of page.Contents ?? []) listed.push(o.Key!);
        token = page.NextContinuationToken;
        pages++;
      } while (token !== undefined);
      assert.equal(pages, 2);
      assert.deepEqual(listed, [...keys].sort());

      const namespaces = await client.send(
        new ListObjectsV2Command({ Bucket: "b", Prefix: "logs/analytics/", Delimiter: "/" }),
      );
      assert.deepEqual(
        namespaces.CommonPrefixes?.map((p) => p.Prefix),
        ["logs/analytics/namespace=ns0/", "logs/analytics/namespace=ns1/", "logs/analytics/namespace=ns2/"],
      );
      assert.equal(namespaces.Contents, undefined);
      const days = await client.send(
        new ListObjectsV2Command({ Bucket: "b", Prefix: "logs/analytics/namespace=ns1/", Delimiter: "/" }),
      );
      assert.deepEqual(
        days.CommonPrefixes?.map((p) => p.Prefix),
        ["logs/analytics/namespace=ns1/dt=2026-11-21/"],
      );
    } finally {
      client.destroy();
      await s3.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
