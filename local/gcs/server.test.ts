// Drives the local GCS server through the real @google-cloud/storage client (raw HTTP only where the client
// has no call for what we check), so these tests pin down compatibility with the client, not our own reading
// of the API.

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { after, before, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import {
  ApiError,
  type Bucket,
  CRC32C,
  type File,
  type GetFilesOptions,
  Storage,
} from "@google-cloud/storage";
import { type GcsObjectResource, type LocalGcs, startLocalGcs } from "./server.ts";

const PRECONDITION_MESSAGE = "At least one of the pre-conditions you specified did not hold.";

function client(gcs: LocalGcs): Storage {
  return new Storage({ apiEndpoint: gcs.url, projectId: "local" });
}

function crc32cOf(data: Buffer): string {
  const crc = new CRC32C();
  crc.update(data);
  return crc.toString();
}

const md5Of = (data: Buffer): string => createHash("md5").update(data).digest("base64");

async function rejectsWithCode(promise: Promise<unknown>, code: number): Promise<unknown> {
  let caught: unknown;
  await assert.rejects(promise, (error: unknown) => {
    caught = error;
    assert.equal((error as { code?: unknown }).code, code);
    return true;
  });
  return caught;
}

/** GET without Accept-Encoding, which fetch() always adds. */
function rawGet(url: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }>(
    (resolve, reject) => {
      httpRequest(url, { headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on("error", reject);
      })
        .on("error", reject)
        .end();
    },
  );
}

function objectUrl(gcs: LocalGcs, bucket: string, name: string, query = ""): string {
  return `${gcs.url}/storage/v1/b/${bucket}/o/${encodeURIComponent(name)}${query}`;
}

describe("local GCS server", () => {
  let dataDir: string;
  let gcs: LocalGcs;
  let storage: Storage;
  let bucket: Bucket;
  const finalized: GcsObjectResource[] = [];
  const eventsFor = (name: string) => finalized.filter((event) => event.name === name);

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "local-gcs-test-"));
    gcs = await startLocalGcs({ dataDir, onFinalize: (object) => void finalized.push(object) });
    storage = client(gcs);
    [bucket] = await storage.createBucket("test-bucket");
  });

  after(async () => {
    await gcs.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  describe("buckets", () => {
    it("creates, gets, lists and deletes buckets", async () => {
      const [created] = await storage.createBucket("scratch-bucket", { location: "eu" });
      assert.equal(created.metadata.name, "scratch-bucket");
      assert.equal(created.metadata.location, "EU");
      const [meta] = await storage.bucket("scratch-bucket").getMetadata();
      assert.equal(meta.kind, "storage#bucket");
      assert.equal(meta.storageClass, "STANDARD");
      const [buckets] = await storage.getBuckets();
      assert.deepEqual(
        buckets.map((b) => b.name),
        ["scratch-bucket", "test-bucket"],
      );
      const [prefixed] = await storage.getBuckets({ prefix: "scr" });
      assert.deepEqual(
        prefixed.map((b) => b.name),
        ["scratch-bucket"],
      );
      await rejectsWithCode(storage.createBucket("scratch-bucket"), 409);
      await storage.bucket("scratch-bucket").file("x").save("x");
      await rejectsWithCode(storage.bucket("scratch-bucket").delete(), 409);
      await storage.bucket("scratch-bucket").file("x").delete();
      await storage.bucket("scratch-bucket").delete();
      assert.deepEqual(await storage.bucket("scratch-bucket").exists(), [false]);
    });

    it("answers 404 in the GCS error format for a missing bucket", async () => {
      const error = await rejectsWithCode(storage.bucket("no-such-bucket").getMetadata(), 404);
      assert.ok(error instanceof ApiError);
      await rejectsWithCode(storage.bucket("no-such-bucket").file("x").save("x", { resumable: false }), 404);
      const res = await fetch(`${gcs.url}/storage/v1/b/no-such-bucket/o`);
      assert.equal(res.status, 404);
      assert.deepEqual(await res.json(), {
        error: {
          code: 404,
          message: "The specified bucket does not exist.",
          errors: [{ message: "The specified bucket does not exist.", domain: "global", reason: "notFound" }],
        },
      });
    });

    it("rejects invalid bucket names", async () => {
      await rejectsWithCode(storage.createBucket("Bad_Name!"), 400);
    });
  });

  describe("uploads", () => {
    it("file.save() uses a resumable upload and returns the object resource", async () => {
      const data = Buffer.from("hello resumable\n");
      const file = bucket.file("uploads/resumable.txt");
      await file.save(data, { metadata: { metadata: { origin: "test" } } });
      const meta = file.metadata;
      assert.equal(meta.kind, "storage#object");
      assert.equal(meta.name, "uploads/resumable.txt");
      assert.equal(meta.bucket, "test-bucket");
      assert.equal(meta.size, data.length);
      assert.equal(meta.contentType, "text/plain", "the client derives the type from the name");
      assert.equal(meta.md5Hash, md5Of(data));
      assert.equal(meta.crc32c, crc32cOf(data));
      assert.equal(meta.metageneration, "1");
      assert.deepEqual(meta.metadata, { origin: "test" });
      assert.equal(meta.id, `test-bucket/uploads/resumable.txt/${meta.generation}`);
      assert.deepEqual((await file.download())[0], data);
    });

    it("file.save({ resumable: false }) uses a multipart upload", async () => {
      const data = randomBytes(70_000);
      const file = bucket.file("uploads/multipart.bin");
      await file.save(data, {
        resumable: false,
        contentType: "application/x-test",
        metadata: { cacheControl: "no-cache", metadata: { a: "1", b: "two" } },
      });
      const [meta] = await file.getMetadata();
      assert.equal(meta.contentType, "application/x-test");
      assert.equal(meta.cacheControl, "no-cache");
      assert.deepEqual(meta.metadata, { a: "1", b: "two" });
      assert.equal(meta.size, String(data.length));
      assert.equal(meta.crc32c, crc32cOf(data));
      assert.deepEqual((await file.download())[0], data);
    });

    it("accepts uploadType=media and reads the content type from the request", async () => {
      const data = Buffer.from('{"media":true}');
      const res = await fetch(
        `${gcs.url}/upload/storage/v1/b/test-bucket/o?uploadType=media&name=uploads%2Fmedia.json`,
        {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: data,
        },
      );
      assert.equal(res.status, 200);
      const resource = (await res.json()) as GcsObjectResource;
      assert.equal(resource.name, "uploads/media.json");
      assert.equal(resource.contentType, "application/json");
      assert.equal(resource.md5Hash, md5Of(data));
      const [downloaded] = await bucket.file("uploads/media.json").download();
      assert.deepEqual(downloaded, data);
    });

    it("bucket.upload(path) stores a local file under its base name", async () => {
      const path = join(dataDir, "..", `upload-source-${process.pid}.csv`);
      const data = Buffer.from("a,b\n1,2\n");
      await writeFile(path, data);
      try {
        const [file] = await bucket.upload(path);
        assert.equal(file.name, `upload-source-${process.pid}.csv`);
        assert.equal(file.metadata.contentType, "text/csv");
        assert.deepEqual((await file.download())[0], data);
        await file.delete();
      } finally {
        await rm(path, { force: true });
      }
    });

    it("file.createWriteStream() streams an upload", async () => {
      const parts = Array.from({ length: 20 }, () => randomBytes(10_000));
      const file = bucket.file("uploads/stream.bin");
      await pipeline(
        Readable.from(parts),
        file.createWriteStream({ metadata: { contentType: "application/x-parts" } }),
      );
      assert.equal(file.metadata.contentType, "application/x-parts");
      assert.deepEqual((await file.download())[0], Buffer.concat(parts));
    });

    it("uploads more than 8 MiB in resumable chunks", async () => {
      const chunkSize = 1024 * 1024;
      const data = randomBytes(9 * chunkSize + 12_345);
      const file = bucket.file("uploads/large.bin");
      const statuses: number[] = [];
      const stream = file.createWriteStream({ chunkSize, resumable: true });
      stream.on("response", (response: { status: number }) => statuses.push(response.status));
      await pipeline(Readable.from([data.subarray(0, 5_000_000), data.subarray(5_000_000)]), stream);
      assert.deepEqual(
        statuses,
        [...Array<number>(9).fill(308), 200],
        "one request per chunk, 308 until the last",
      );
      assert.equal(file.metadata.size, data.length);
      assert.equal(file.metadata.md5Hash, md5Of(data));
      const [downloaded] = await file.download();
      assert.ok(downloaded.equals(data));
    });

    it("stores empty objects with every upload mode", async () => {
      await bucket.file("uploads/empty-resumable").save("");
      await bucket.file("uploads/empty-chunked").save("", { chunkSize: 256 * 1024 });
      await bucket.file("uploads/empty-multipart").save("", { resumable: false });
      for (const name of ["uploads/empty-resumable", "uploads/empty-chunked", "uploads/empty-multipart"]) {
        const [meta] = await bucket.file(name).getMetadata();
        assert.equal(meta.size, "0", name);
        assert.equal(meta.crc32c, "AAAAAA==", name);
        assert.equal((await bucket.file(name).download())[0].length, 0, name);
      }
    });

    it("implements the resumable protocol: 308 with Range, status queries, resends, finalization", async () => {
      const data = Buffer.from("0123456789");
      const created = await fetch(
        `${gcs.url}/upload/storage/v1/b/test-bucket/o?uploadType=resumable&name=raw-resumable`,
        {
          method: "POST",
          headers: { "content-type": "application/json", "x-upload-content-type": "text/x-raw" },
          body: JSON.stringify({ metadata: { step: "raw" } }),
        },
      );
      assert.equal(created.status, 200);
      const session = created.headers.get("location") ?? "";
      assert.ok(session.startsWith(`${gcs.url}/upload/storage/v1/b/test-bucket/o?`), session);

      const put = (body: Buffer, range: string, headers: Record<string, string> = {}) =>
        fetch(session, { method: "PUT", headers: { "content-range": range, ...headers }, body });

      const first = await put(data.subarray(0, 5), "bytes 0-4/*");
      assert.equal(first.status, 308);
      assert.equal(first.headers.get("range"), "bytes=0-4");
      const status = await put(Buffer.alloc(0), "bytes */*");
      assert.equal(status.status, 308);
      assert.equal(status.headers.get("range"), "bytes=0-4");
      const gap = await put(data.subarray(7), "bytes 7-9/10");
      assert.equal(gap.status, 400, "an offset past the persisted bytes is rejected");
      // A client that lost the 308 resends overlapping bytes; the overlap is ignored.
      const last = await put(data.subarray(3), "bytes 3-9/10", { "x-goog-hash": `crc32c=${crc32cOf(data)}` });
      assert.equal(last.status, 200);
      const resource = (await last.json()) as GcsObjectResource;
      assert.equal(resource.size, "10");
      assert.equal(resource.contentType, "text/x-raw");
      assert.deepEqual(resource.metadata, { step: "raw" });
      const again = await put(Buffer.alloc(0), "bytes */10");
      assert.equal(again.status, 200, "a finished session keeps answering with the object");
      assert.equal(((await again.json()) as GcsObjectResource).generation, resource.generation);
      assert.deepEqual((await bucket.file("raw-resumable").download())[0], data);
      assert.equal(eventsFor("raw-resumable").length, 1);
    });

    it("rejects an upload whose client checksum does not match, without creating the object", async () => {
      const created = await fetch(
        `${gcs.url}/upload/storage/v1/b/test-bucket/o?uploadType=resumable&name=bad-hash`,
        {
          method: "POST",
        },
      );
      const session = created.headers.get("location") ?? "";
      const res = await fetch(session, {
        method: "PUT",
        headers: { "content-range": "bytes 0-2/3", "x-goog-hash": `crc32c=${crc32cOf(Buffer.from("xyz"))}` },
        body: "abc",
      });
      assert.equal(res.status, 400);
      assert.match(((await res.json()) as { error: { message: string } }).error.message, /CRC32C/);
      assert.deepEqual(await bucket.file("bad-hash").exists(), [false]);
      assert.equal(eventsFor("bad-hash").length, 0);
    });
  });

  describe("downloads", () => {
    const data = randomBytes(300_000);
    let file: File;

    before(async () => {
      file = bucket.file("downloads/random.bin");
      await file.save(data, { resumable: false });
    });

    it("returns the exact bytes, validated by the client against x-goog-hash", async () => {
      const [downloaded] = await file.download({ validation: "crc32c" });
      assert.ok(downloaded.equals(data));
      const res = await fetch(objectUrl(gcs, "test-bucket", "downloads/random.bin", "?alt=media"));
      assert.equal(res.headers.get("x-goog-hash"), `crc32c=${crc32cOf(data)},md5=${md5Of(data)}`);
      assert.equal(res.headers.get("x-goog-generation"), file.metadata.generation);
      assert.equal(res.headers.get("x-goog-stored-content-encoding"), "identity");
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(data));
    });

    it("serves byte ranges", async () => {
      assert.deepEqual((await file.download({ start: 1000, end: 1999 }))[0], data.subarray(1000, 2000));
      assert.deepEqual((await file.download({ start: 299_990 }))[0], data.subarray(299_990));
      const tail = await fetch(objectUrl(gcs, "test-bucket", "downloads/random.bin", "?alt=media"), {
        headers: { range: "bytes=-10" },
      });
      assert.equal(tail.status, 206);
      assert.equal(tail.headers.get("content-range"), `bytes 299990-299999/300000`);
      assert.deepEqual(Buffer.from(await tail.arrayBuffer()), data.subarray(-10));
      const past = await fetch(objectUrl(gcs, "test-bucket", "downloads/random.bin", "?alt=media"), {
        headers: { range: "bytes=300000-" },
      });
      assert.equal(past.status, 416);
      assert.equal(past.headers.get("content-range"), "bytes */300000");
    });

    it("serves gzip-encoded objects as stored, and decompresses only for clients that do not accept gzip", async () => {
      const text = Buffer.from("line one\nline two\n".repeat(500));
      const gzipped = gzipSync(text);
      const gz = bucket.file("downloads/log.txt.gz");
      await gz.save(gzipped, { metadata: { contentType: "text/plain", contentEncoding: "gzip" } });
      assert.equal(gz.metadata.contentEncoding, "gzip");
      assert.equal(gz.metadata.size, gzipped.length);

      const [raw] = await gz.download({ decompress: false });
      assert.ok(raw.equals(gzipped), "decompress: false returns the stored bytes");
      const [inflated] = await gz.download();
      assert.ok(inflated.equals(text), "the client gunzips by default, after validating the stored bytes");
      assert.deepEqual(
        (await gz.download({ start: 0, end: 9, decompress: false }))[0],
        gzipped.subarray(0, 10),
      );

      const accepted = await rawGet(objectUrl(gcs, "test-bucket", "downloads/log.txt.gz", "?alt=media"), {
        "accept-encoding": "gzip",
      });
      assert.equal(accepted.headers["content-encoding"], "gzip");
      assert.ok(accepted.body.equals(gzipped));
      const transcoded = await rawGet(objectUrl(gcs, "test-bucket", "downloads/log.txt.gz", "?alt=media"));
      assert.equal(transcoded.status, 200);
      assert.equal(transcoded.headers["content-encoding"], undefined);
      assert.equal(transcoded.headers["x-goog-stored-content-encoding"], "gzip");
      assert.ok(transcoded.body.equals(text));
    });

    it("answers 404 for a missing object, and for a generation that is not live", async () => {
      await rejectsWithCode(bucket.file("downloads/missing").download(), 404);
      await rejectsWithCode(bucket.file("downloads/random.bin", { generation: 1 }).download(), 404);
      assert.deepEqual(await bucket.file("downloads/missing").exists(), [false]);
      const res = await fetch(objectUrl(gcs, "test-bucket", "downloads/missing"));
      assert.deepEqual(await res.json(), {
        error: {
          code: 404,
          message: "No such object: test-bucket/downloads/missing",
          errors: [
            {
              message: "No such object: test-bucket/downloads/missing",
              domain: "global",
              reason: "notFound",
            },
          ],
        },
      });
    });
  });

  describe("metadata", () => {
    it("patches metadata and content type, merging keys and bumping metageneration", async () => {
      const file = bucket.file("meta/patched.json");
      await file.save("{}", {
        metadata: { contentType: "application/json", metadata: { keep: "1", drop: "2" } },
      });
      const { generation, etag } = file.metadata;
      const [patched] = await file.setMetadata({
        contentType: "application/x-ndjson",
        metadata: { drop: null, added: "3" },
      });
      assert.equal(patched.contentType, "application/x-ndjson");
      assert.deepEqual(patched.metadata, { keep: "1", added: "3" });
      assert.equal(patched.metageneration, "2");
      assert.equal(patched.generation, generation, "a patch does not create a new generation");
      assert.notEqual(patched.etag, etag);
      const [fetched] = await bucket.file("meta/patched.json").getMetadata();
      assert.deepEqual(fetched, patched);
      assert.equal(eventsFor("meta/patched.json").length, 1, "a patch is not a finalize");

      await rejectsWithCode(file.setMetadata({ metadata: { x: "y" } }, { ifMetagenerationMatch: 1 }), 412);
      const [again] = await file.setMetadata({ metadata: { x: "y" } }, { ifMetagenerationMatch: 2 });
      assert.equal(again.metageneration, "3");
    });

    it("returns each object's custom metadata in a listing, as GCS's default projection (noAcl) does", async () => {
      await bucket
        .file("meta/listed/a")
        .save("a", { resumable: false, metadata: { metadata: { k: "v-a" } } });
      await bucket.file("meta/listed/b").save("b", { resumable: false });
      const [files] = await bucket.getFiles({ prefix: "meta/listed/" });
      assert.deepEqual(
        files.map((f) => [f.name, f.metadata.metadata]),
        [
          ["meta/listed/a", { k: "v-a" }],
          ["meta/listed/b", undefined],
        ],
      );
    });

    it("refuses custom metadata over GCS's limits (4 KiB a value, 8 KiB in all) with a 400, storing nothing", async () => {
      const file = bucket.file("meta/too-large");
      const value = "x".repeat(4096);
      await file.save("ok", { resumable: false, metadata: { metadata: { k: value } } });
      await rejectsWithCode(
        bucket.file("meta/too-large-value").save("v", {
          resumable: false,
          metadata: { metadata: { k: `${value}x` } },
        }),
        400,
      );
      await rejectsWithCode(
        bucket.file("meta/too-large-total").save("t", {
          resumable: false,
          metadata: { metadata: { a: value, b: value } },
        }),
        400,
      );
      // A patch that would take the object over the total is refused too, and changes nothing.
      await rejectsWithCode(file.setMetadata({ metadata: { more: value } }), 400);
      const [meta] = await file.getMetadata();
      assert.deepEqual(meta.metadata, { k: value });
      assert.equal((await bucket.file("meta/too-large-value").exists())[0], false);
    });
  });

  describe("listing", () => {
    const names = [
      "list/a.txt",
      "list/b/1.txt",
      "list/b/2.txt",
      "list/b/deep/3.txt",
      "list/c.log",
      "list/d/4.txt",
      ...Array.from({ length: 15 }, (_, i) => `list/e/${String(i).padStart(2, "0")}.txt`),
    ];

    before(async () => {
      await Promise.all(names.map((name) => bucket.file(name).save(name, { resumable: false })));
    });

    it("lists by prefix in name order", async () => {
      const [files] = await bucket.getFiles({ prefix: "list/" });
      assert.deepEqual(
        files.map((f) => f.name),
        [...names].sort(),
      );
      const [b] = await bucket.getFiles({ prefix: "list/b/" });
      assert.deepEqual(
        b.map((f) => f.name),
        ["list/b/1.txt", "list/b/2.txt", "list/b/deep/3.txt"],
      );
    });

    it("groups by delimiter into prefixes", async () => {
      const [files, , response] = await bucket.getFiles({
        prefix: "list/",
        delimiter: "/",
        autoPaginate: false,
      });
      assert.deepEqual(
        files.map((f) => f.name),
        ["list/a.txt", "list/c.log"],
      );
      assert.deepEqual((response as { prefixes: string[] }).prefixes, ["list/b/", "list/d/", "list/e/"]);
    });

    it("pages with maxResults and pageToken, counting prefixes and items together", async () => {
      const seen: string[] = [];
      let query: GetFilesOptions | null = { prefix: "list/", maxResults: 4, autoPaginate: false };
      let pages = 0;
      while (query !== null) {
        const [files, next] = await bucket.getFiles(query);
        assert.ok(files.length <= 4);
        seen.push(...files.map((f) => f.name));
        query = next as GetFilesOptions | null;
        pages++;
      }
      assert.equal(pages, Math.ceil(names.length / 4));
      assert.deepEqual(seen, [...names].sort());

      const first = (
        await bucket.getFiles({ prefix: "list/", delimiter: "/", maxResults: 3, autoPaginate: false })
      )[2];
      const firstPage = first as { items?: unknown[]; prefixes?: string[]; nextPageToken?: string };
      assert.equal((firstPage.items?.length ?? 0) + (firstPage.prefixes?.length ?? 0), 3);
      assert.deepEqual(firstPage.prefixes, ["list/b/"]);
      assert.deepEqual(
        (firstPage.items as { name: string }[]).map((i) => i.name),
        ["list/a.txt", "list/c.log"],
      );
      const second = (
        await bucket.getFiles({
          prefix: "list/",
          delimiter: "/",
          maxResults: 3,
          autoPaginate: false,
          pageToken: firstPage.nextPageToken,
        })
      )[2] as { items?: { name: string }[]; prefixes?: string[]; nextPageToken?: string };
      assert.deepEqual(second.prefixes, ["list/d/", "list/e/"]);
      assert.equal(second.items, undefined, "GCS omits an empty items array");
      assert.equal(second.nextPageToken, undefined);
    });

    it("filters by startOffset, endOffset and matchGlob", async () => {
      const [range] = await bucket.getFiles({
        prefix: "list/",
        startOffset: "list/b/2",
        endOffset: "list/d",
      });
      assert.deepEqual(
        range.map((f) => f.name),
        ["list/b/2.txt", "list/b/deep/3.txt", "list/c.log"],
      );
      const [glob] = await bucket.getFiles({ matchGlob: "list/*/*.txt" });
      assert.deepEqual(
        glob.map((f) => f.name),
        ["list/b/1.txt", "list/b/2.txt", "list/d/4.txt", ...names.filter((n) => n.startsWith("list/e/"))],
      );
      const [deep] = await bucket.getFiles({ matchGlob: "list/**/{3,4}.txt" });
      assert.deepEqual(
        deep.map((f) => f.name),
        ["list/b/deep/3.txt", "list/d/4.txt"],
      );
    });
  });

  describe("preconditions", () => {
    it("ifGenerationMatch: 0 creates once; the loser gets 412 as ApiError", async () => {
      const file = bucket.file("pre/create-once.txt");
      await file.save("first", { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } });
      const error = await rejectsWithCode(
        file.save("second", { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } }),
        412,
      );
      assert.ok(error instanceof ApiError);
      assert.equal(error.message, PRECONDITION_MESSAGE);
      // Resumable uploads check the precondition when the upload completes, like GCS.
      await rejectsWithCode(file.save("third", { preconditionOpts: { ifGenerationMatch: 0 } }), 412);
      assert.equal((await file.download())[0].toString(), "first");
      assert.equal(eventsFor("pre/create-once.txt").length, 1, "failed writes are not finalized");
    });

    it("returns the GCS 412 error body", async () => {
      const res = await fetch(
        `${gcs.url}/upload/storage/v1/b/test-bucket/o?uploadType=media&name=pre%2Fcreate-once.txt&ifGenerationMatch=0`,
        { method: "POST", body: "x" },
      );
      assert.equal(res.status, 412);
      assert.deepEqual(await res.json(), {
        error: {
          code: 412,
          message: PRECONDITION_MESSAGE,
          errors: [
            {
              message: PRECONDITION_MESSAGE,
              domain: "global",
              reason: "conditionNotMet",
              locationType: "header",
              location: "If-Match",
            },
          ],
        },
      });
    });

    it("lets exactly one of ten concurrent ifGenerationMatch: 0 creates win", async () => {
      const file = bucket.file("pre/race.txt");
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) =>
          file.save(`writer ${i}`, { resumable: i % 2 === 0, preconditionOpts: { ifGenerationMatch: 0 } }),
        ),
      );
      const winners = results.flatMap((r, i) => (r.status === "fulfilled" ? [i] : []));
      assert.equal(winners.length, 1);
      for (const r of results) {
        if (r.status === "rejected") assert.equal((r.reason as { code?: unknown }).code, 412);
      }
      assert.equal((await file.download())[0].toString(), `writer ${winners[0]}`);
      assert.equal(eventsFor("pre/race.txt").length, 1);
    });

    it("checks generation and metageneration conditions on overwrite and delete", async () => {
      const file = bucket.file("pre/versions.txt");
      await file.save("v1", { resumable: false });
      const [{ generation: g1 }] = await file.getMetadata();
      await file.save("v2", { resumable: false, preconditionOpts: { ifGenerationMatch: Number(g1) } });
      const [{ generation: g2 }] = await file.getMetadata();
      assert.ok(BigInt(g2 as string) > BigInt(g1 as string), "generations increase");
      await rejectsWithCode(
        file.save("v3", { resumable: false, preconditionOpts: { ifGenerationMatch: Number(g1) } }),
        412,
      );
      await rejectsWithCode(
        file.save("v3", { resumable: false, preconditionOpts: { ifGenerationNotMatch: Number(g2) } }),
        412,
      );
      await rejectsWithCode(
        file.save("v3", { resumable: false, preconditionOpts: { ifMetagenerationMatch: 7 } }),
        412,
      );
      await rejectsWithCode(
        bucket
          .file("pre/absent")
          .save("x", { resumable: false, preconditionOpts: { ifGenerationNotMatch: 5 } }),
        412,
      );
      await rejectsWithCode(file.delete({ ifGenerationMatch: Number(g1) }), 412);
      await rejectsWithCode(file.delete({ ifMetagenerationNotMatch: 1 }), 412);
      await file.delete({ ifGenerationMatch: Number(g2) });
      assert.deepEqual(await file.exists(), [false]);
    });
  });

  describe("delete", () => {
    it("deletes objects and reports 404 for missing ones", async () => {
      const file = bucket.file("delete/me.txt");
      await file.save("bye");
      await file.delete();
      assert.deepEqual(await file.exists(), [false]);
      await rejectsWithCode(file.delete(), 404);
      await file.delete({ ignoreNotFound: true });
      const [files] = await bucket.getFiles({ prefix: "delete/" });
      assert.equal(files.length, 0);
    });
  });

  describe("copy and rewrite", () => {
    it("copies (via rewriteTo) with bytes and metadata, as a new generation", async () => {
      const data = randomBytes(50_000);
      const source = bucket.file("copy/source.bin");
      await source.save(data, {
        metadata: { contentType: "application/x-src", metadata: { from: "source" } },
      });
      const [copied] = await source.copy(bucket.file("copy/dest.bin"));
      const [meta] = await copied.getMetadata();
      assert.equal(meta.contentType, "application/x-src");
      assert.deepEqual(meta.metadata, { from: "source" });
      assert.equal(meta.md5Hash, md5Of(data));
      assert.notEqual(meta.generation, source.metadata.generation);
      assert.deepEqual((await copied.download())[0], data);

      await storage.createBucket("copy-target");
      const [other] = await source.copy(storage.bucket("copy-target").file("elsewhere.bin"), {
        contentType: "application/x-dest",
        metadata: { to: "dest" },
      });
      const [otherMeta] = await other.getMetadata();
      assert.equal(otherMeta.bucket, "copy-target");
      assert.equal(otherMeta.contentType, "application/x-dest");
      assert.deepEqual(otherMeta.metadata, { to: "dest" });
      assert.deepEqual((await other.download())[0], data);
      assert.equal(finalized.filter((e) => e.bucket === "copy-target").length, 1);

      await rejectsWithCode(
        source.copy(bucket.file("copy/dest.bin"), { preconditionOpts: { ifGenerationMatch: 0 } }),
        412,
      );
      await rejectsWithCode(bucket.file("copy/missing").copy(bucket.file("copy/x")), 404);
    });

    it("moves a file (copy, then delete)", async () => {
      const file = bucket.file("copy/move-me.txt");
      await file.save("moving");
      await file.move("copy/moved.txt");
      assert.deepEqual(await file.exists(), [false]);
      assert.equal((await bucket.file("copy/moved.txt").download())[0].toString(), "moving");
    });

    it("answers copyTo and rewriteTo on the wire", async () => {
      await bucket.file("copy/wire.txt").save("wire", { resumable: false });
      const copyTo = await fetch(
        `${objectUrl(gcs, "test-bucket", "copy/wire.txt")}/copyTo/b/test-bucket/o/${encodeURIComponent("copy/wire 2.txt")}`,
        { method: "POST", headers: { "content-type": "application/json" }, body: "{}" },
      );
      assert.equal(copyTo.status, 200);
      assert.equal(((await copyTo.json()) as GcsObjectResource).name, "copy/wire 2.txt");
      const rewrite = await fetch(
        `${objectUrl(gcs, "test-bucket", "copy/wire.txt")}/rewriteTo/b/test-bucket/o/${encodeURIComponent("copy/wire 3.txt")}`,
        { method: "POST" },
      );
      const body = (await rewrite.json()) as {
        kind: string;
        done: boolean;
        objectSize: string;
        resource: GcsObjectResource;
      };
      assert.equal(body.kind, "storage#rewriteResponse");
      assert.equal(body.done, true);
      assert.equal(body.objectSize, "4");
      assert.equal(body.resource.name, "copy/wire 3.txt");
      assert.equal((await bucket.file("copy/wire 3.txt").download())[0].toString(), "wire");
    });
  });

  describe("object names", () => {
    const names = [
      "with space.txt",
      "key=value/part=1.json",
      "plus+sign",
      "percent%20literal%",
      "ünïcödé/日本語.txt",
      "emoji 🎉.log",
      "question?hash#amp&",
      "trailing/",
    ];

    it("round-trips names that need URL encoding", async () => {
      for (const [i, name] of names.entries()) {
        await bucket.file(`names/${name}`).save(`content ${i}`, { resumable: i % 2 === 0 });
      }
      for (const [i, name] of names.entries()) {
        const file = bucket.file(`names/${name}`);
        const [meta] = await file.getMetadata();
        assert.equal(meta.name, `names/${name}`);
        assert.equal((await file.download())[0].toString(), `content ${i}`);
      }
      const [files] = await bucket.getFiles({ prefix: "names/" });
      assert.deepEqual(files.map((f) => f.name).sort(), names.map((n) => `names/${n}`).sort());
      for (const name of names) await bucket.file(`names/${name}`).delete();
      assert.equal((await bucket.getFiles({ prefix: "names/" }))[0].length, 0);
    });

    it("accepts object paths whose slashes were left unencoded", async () => {
      await bucket.file("names/plain/path.txt").save("plain", { resumable: false });
      const res = await fetch(`${gcs.url}/storage/v1/b/test-bucket/o/names/plain/path.txt`);
      assert.equal(((await res.json()) as GcsObjectResource).name, "names/plain/path.txt");
    });
  });

  describe("onFinalize", () => {
    it("is called once per created object with its resource", async () => {
      const data = Buffer.from("finalize me");
      const file = bucket.file("finalize/one.txt");
      await file.save(data);
      const events = eventsFor("finalize/one.txt");
      assert.equal(events.length, 1);
      const [event] = events as [GcsObjectResource];
      assert.equal(event.kind, "storage#object");
      assert.equal(event.bucket, "test-bucket");
      assert.equal(event.generation, file.metadata.generation);
      assert.equal(event.metageneration, "1");
      assert.equal(event.size, String(data.length));
      assert.equal(event.md5Hash, md5Of(data));
      assert.equal(event.crc32c, crc32cOf(data));
      assert.equal(event.contentType, "text/plain");
      assert.equal(event.selfLink, `${gcs.url}/storage/v1/b/test-bucket/o/finalize%2Fone.txt`);
      await file.save(data, { resumable: false });
      assert.equal(eventsFor("finalize/one.txt").length, 2, "an overwrite is a new finalize");
      await file.copy(bucket.file("finalize/two.txt"));
      assert.equal(eventsFor("finalize/two.txt").length, 1);
      await file.delete();
      assert.equal(eventsFor("finalize/one.txt").length, 2, "deletes are not finalizes");
    });

    it("logs a failing callback without failing the upload", async () => {
      const dir = await mkdtemp(join(tmpdir(), "local-gcs-finalize-"));
      const logged: string[] = [];
      const failing = await startLocalGcs({
        dataDir: dir,
        onFinalize: (object) => {
          if (object.name === "sync") throw new Error("sync boom");
          return Promise.reject(new Error("async boom"));
        },
        log: (message, error) => void logged.push(`${message}: ${(error as Error).message}`),
      });
      try {
        const b = client(failing).bucket("finalize-bucket");
        await b.create();
        await b.file("sync").save("x");
        await b.file("async").save("y", { resumable: false });
        assert.equal((await b.file("sync").download())[0].toString(), "x");
        assert.equal((await b.file("async").download())[0].toString(), "y");
      } finally {
        await failing.stop();
        await rm(dir, { recursive: true, force: true });
      }
      assert.deepEqual(logged.sort(), [
        "local GCS: onFinalize failed for finalize-bucket/async: async boom",
        "local GCS: onFinalize failed for finalize-bucket/sync: sync boom",
      ]);
    });
  });
});

describe("local GCS durability", () => {
  it("keeps acknowledged objects across a restart, and never shows half-written uploads", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "local-gcs-restart-"));
    try {
      let gcs = await startLocalGcs({ dataDir });
      let storage = client(gcs);
      await storage.createBucket("durable");
      const data = randomBytes(100_000);
      await storage
        .bucket("durable")
        .file("kept/object.bin")
        .save(data, { metadata: { metadata: { k: "v" } } });
      const [before] = await storage.bucket("durable").file("kept/object.bin").getMetadata();
      await storage.bucket("durable").file("kept/replaced.txt").save("old", { resumable: false });
      await storage.bucket("durable").file("kept/replaced.txt").save("new", { resumable: false });
      await storage.bucket("durable").file("kept/deleted.txt").save("gone", { resumable: false });
      await storage.bucket("durable").file("kept/deleted.txt").delete();
      const session = await fetch(
        `${gcs.url}/upload/storage/v1/b/durable/o?uploadType=resumable&name=partial`,
        {
          method: "POST",
        },
      );
      const partial = await fetch(session.headers.get("location") ?? "", {
        method: "PUT",
        headers: { "content-range": "bytes 0-4/10" },
        body: "01234",
      });
      assert.equal(partial.status, 308);
      await gcs.stop();

      gcs = await startLocalGcs({ dataDir });
      storage = client(gcs);
      const file = storage.bucket("durable").file("kept/object.bin");
      const [after] = await file.getMetadata();
      assert.equal(after.generation, before.generation);
      assert.equal(after.etag, before.etag);
      assert.deepEqual(after.metadata, { k: "v" });
      assert.ok((await file.download())[0].equals(data));
      assert.equal(
        (await storage.bucket("durable").file("kept/replaced.txt").download())[0].toString(),
        "new",
      );
      const [files] = await storage.bucket("durable").getFiles();
      assert.deepEqual(
        files.map((f) => f.name),
        ["kept/object.bin", "kept/replaced.txt"],
      );
      const [buckets] = await storage.getBuckets();
      assert.deepEqual(
        buckets.map((b) => b.name),
        ["durable"],
      );
      // Replaced and deleted bodies are gone from disk, and nothing is left in the upload area.
      const [bucketDir] = await readdir(join(dataDir, "buckets"));
      assert.equal(bucketDir, "durable");
      assert.equal((await readdir(join(dataDir, "buckets", "durable", "objects"))).length, 4);
      assert.deepEqual(await readdir(join(dataDir, "tmp")), []);

      await file.save(data, { resumable: false });
      assert.ok(BigInt(file.metadata.generation as string) > BigInt(before.generation as string));
      await gcs.stop();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it("stop() closes keep-alive connections promptly", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "local-gcs-stop-"));
    try {
      const gcs = await startLocalGcs({ dataDir });
      const storage = client(gcs);
      await storage.createBucket("stop-bucket");
      await storage.bucket("stop-bucket").file("x").save("x");
      await storage.bucket("stop-bucket").file("x").download();
      const started = performance.now();
      await gcs.stop();
      assert.ok(performance.now() - started < 1000, "stop() should not wait for idle sockets to time out");
      await assert.rejects(fetch(`${gcs.url}/storage/v1/b`));
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
