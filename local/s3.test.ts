// The local S3 keeps idle connections open past a pause of the shared event loop: an upload
// due during the pause (a streaming body, which the SDK cannot retry, as the shipper sends)
// reuses its connection and succeeds instead of failing with ECONNRESET ("socket hang up").

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { describe, it } from "node:test";
import { PutObjectCommand } from "@aws-sdk/client-s3";
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
