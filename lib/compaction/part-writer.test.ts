// The upload chunk against S3's multipart limits
// (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html: upload parts 5 MiB to
// 5 GiB except the last, at most 10,000), and the UploadPart requests a part costs, counted on
// the wire against a local S3.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { type LocalS3, localS3Client, startLocalS3 } from "../../local/s3.ts";
import { DEFAULT_PART_MAX_BYTES, DEFAULT_UPLOAD_CHUNK_BYTES } from "./defaults.ts";
import { MAX_UPLOAD_PARTS, MIN_UPLOAD_PART_BYTES, PartWriter } from "./part-writer.ts";

const MiB = 2 ** 20;
const MAX_UPLOAD_PART_BYTES = 5 * 2 ** 30;

describe("PartWriter upload chunks", () => {
  it("the default chunk is 32 MiB, within S3's upload part limits, and a default 1 GiB part needs 32 of the 10,000", () => {
    assert.equal(DEFAULT_UPLOAD_CHUNK_BYTES, 32 * MiB);
    assert.ok(DEFAULT_UPLOAD_CHUNK_BYTES >= MIN_UPLOAD_PART_BYTES);
    assert.ok(DEFAULT_UPLOAD_CHUNK_BYTES <= MAX_UPLOAD_PART_BYTES);
    assert.equal(DEFAULT_PART_MAX_BYTES, 2 ** 30);
    assert.equal(Math.ceil(DEFAULT_PART_MAX_BYTES / DEFAULT_UPLOAD_CHUNK_BYTES), 32);
    assert.ok(Math.ceil(DEFAULT_PART_MAX_BYTES / DEFAULT_UPLOAD_CHUNK_BYTES) <= MAX_UPLOAD_PARTS);
    // The largest part the CLI takes (5 TiB): the writer's raised chunk is still under 5 GiB.
    assert.ok(Math.ceil((5 * 2 ** 40) / MAX_UPLOAD_PARTS) <= MAX_UPLOAD_PART_BYTES);
  });

  describe("against a local S3", () => {
    let dir: string;
    let local: LocalS3;
    let s3: S3Client;
    const uploadParts: number[] = [];

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "part-writer-"));
      local = await startLocalS3({ host: "127.0.0.1", port: 0, dataDir: dir, buckets: ["parts"] });
      s3 = localS3Client(local.endpoint, "us-east-1");
      s3.middlewareStack.add(
        (next, context) => async (args) => {
          if ((context as { commandName?: string }).commandName === "UploadPartCommand")
            uploadParts.push((args.input as { Body: Buffer }).Body.length);
          return next(args);
        },
        { step: "initialize", name: "countUploadParts" },
      );
    });

    after(async () => {
      s3?.destroy();
      await local?.stop();
      await rm(dir, { recursive: true, force: true });
    });

    it("a part of 2 chunks and a byte is 3 UploadParts of 32 MiB, 32 MiB and 1 byte, stored byte for byte", async () => {
      const bytes = 2 * DEFAULT_UPLOAD_CHUNK_BYTES + 1;
      const body = Buffer.alloc(bytes);
      for (let i = 0; i < bytes; i += 4096) body[i] = i % 251;
      const writer = new PartWriter({
        s3,
        bucket: "parts",
        key: "part.ndjson.gz",
        plannedBytes: bytes,
        chunkBytes: DEFAULT_UPLOAD_CHUNK_BYTES,
        metadata: {},
      });
      // Written in pieces of 3 MiB, as members arrive.
      for (let at = 0; at < bytes; at += 3 * MiB) await writer.write(body.subarray(at, at + 3 * MiB));
      const written = await writer.finish();
      assert.deepEqual(uploadParts, [DEFAULT_UPLOAD_CHUNK_BYTES, DEFAULT_UPLOAD_CHUNK_BYTES, 1]);
      assert.equal(written.sha256, createHash("sha256").update(body).digest("hex"));
      const stored = await s3.send(new GetObjectCommand({ Bucket: "parts", Key: "part.ndjson.gz" }));
      assert.ok(Buffer.from(await stored.Body!.transformToByteArray()).equals(body));
    });
  });
});
