// Malformed and hostile requests to the local GCS server get 4xx in the GCS error format, never a 500 or a
// stalled server. Raw sockets, because the client library never sends such requests.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { type LocalGcs, startLocalGcs } from "./server.ts";

interface RawResponse {
  status: number;
  body: string;
}

/** Sends bytes as one HTTP/1.1 request on a fresh connection and reads the response until the server closes. */
function rawRequest(gcs: LocalGcs, head: string, body: Buffer | string = ""): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(gcs.port, "127.0.0.1");
    const chunks: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", reject);
    socket.on("close", () => {
      const text = Buffer.concat(chunks).toString("latin1");
      const status = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (status === null) {
        reject(
          new Error(`no HTTP response to ${JSON.stringify(head.slice(0, 80))}: ${JSON.stringify(text)}`),
        );
        return;
      }
      resolve({ status: Number(status[1]), body: text.slice(text.indexOf("\r\n\r\n") + 4) });
    });
    const payload = typeof body === "string" ? Buffer.from(body, "latin1") : body;
    // Not end(): a half-closed connection may be dropped before the answer; Connection: close ends it.
    socket.write(
      Buffer.concat([
        Buffer.from(
          `${head}\r\nHost: local\r\nConnection: close\r\nContent-Length: ${payload.length}\r\n\r\n`,
          "latin1",
        ),
        payload,
      ]),
    );
  });
}

function get(gcs: LocalGcs, target: string): Promise<RawResponse> {
  return rawRequest(gcs, `GET ${target} HTTP/1.1`);
}

/** A 4xx whose body is the GCS JSON API error shape, with the status repeated as `code`. */
function assertGcsError(response: RawResponse, status: number, what: string): void {
  assert.equal(response.status, status, `${what}: ${response.body.slice(0, 300)}`);
  const json = JSON.parse(response.body) as { error: { code: number; message: string; errors: unknown[] } };
  assert.equal(json.error.code, status, what);
  assert.equal(typeof json.error.message, "string", what);
  assert.ok(Array.isArray(json.error.errors) && json.error.errors.length > 0, what);
}

describe("local GCS server on hostile requests", () => {
  let dataDir: string;
  let gcs: LocalGcs;
  const logged: string[] = [];

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "local-gcs-hostile-"));
    gcs = await startLocalGcs({
      dataDir,
      log: (message, error) => logged.push(`${message} ${String(error)}`),
    });
    const created = await rawRequest(gcs, "POST /storage/v1/b HTTP/1.1", JSON.stringify({ name: "hostile" }));
    assert.equal(created.status, 200);
    const upload = await rawRequest(
      gcs,
      "POST /upload/storage/v1/b/hostile/o?uploadType=media&name=plain.txt HTTP/1.1\r\nContent-Type: text/plain",
      "hello",
    );
    assert.equal(upload.status, 200);
  });

  after(async () => {
    await gcs.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("answers 400 to a request target that is not a valid URL", async () => {
    for (const target of ["//[", "http://[::1/storage/v1/b", "//a:b:c/storage/v1/b"]) {
      assertGcsError(await get(gcs, target), 400, target);
    }
    assert.deepEqual(logged, []);
  });

  it("answers 400 to malformed percent-escapes in the query", async () => {
    for (const target of [
      "/storage/v1/b/hostile/o?prefix=%ZZ",
      "/storage/v1/b/hostile/o?prefix=a%",
      "/storage/v1/b/hostile/o?matchGlob=%E0%A4%A",
      "/storage/v1/b/hostile/o?%ZZ=1",
    ]) {
      assertGcsError(await get(gcs, target), 400, target);
    }
    assert.equal((await get(gcs, "/storage/v1/b/hostile/o?prefix=a%2Fb+c")).status, 200);
  });

  it("answers 400 to malformed percent-escapes in the path", async () => {
    for (const target of [
      "/storage/v1/b/%ZZ",
      "/storage/v1/b/hostile/o/%",
      "/storage/v1/b/hostile/o/%E0%A4%A",
      "/download/storage/v1/b/hostile/o/%C0%80?alt=media",
      "/storage/v1/b/hostile/o/%ED%A0%80",
    ]) {
      assertGcsError(await get(gcs, target), 400, target);
    }
  });

  it("refuses header fields that could never be sent back as headers, so downloads cannot fail", async () => {
    const patch = (field: string, value: string) =>
      rawRequest(
        gcs,
        "PATCH /storage/v1/b/hostile/o/plain.txt HTTP/1.1\r\nContent-Type: application/json",
        Buffer.from(JSON.stringify({ [field]: value })),
      );
    for (const field of [
      "contentType",
      "contentDisposition",
      "contentEncoding",
      "cacheControl",
      "contentLanguage",
    ]) {
      for (const value of ["a\u0001b", "line\nbreak", "nul\u0000", "snow\u2603man"]) {
        assertGcsError(await patch(field, value), 400, `${field}=${JSON.stringify(value)}`);
      }
    }
    assertGcsError(
      await rawRequest(
        gcs,
        "POST /upload/storage/v1/b/hostile/o?uploadType=media&name=e.txt&contentEncoding=gz%0Aip HTTP/1.1",
        "x",
      ),
      400,
      "contentEncoding query",
    );
    const boundary = "b0undary";
    const multipart = (meta: object, mediaType: string) =>
      rawRequest(
        gcs,
        `POST /upload/storage/v1/b/hostile/o?uploadType=multipart HTTP/1.1\r\nContent-Type: multipart/related; boundary=${boundary}`,
        `--${boundary}\r\nContent-Type: application/json\r\n\r\n${JSON.stringify(meta)}\r\n` +
          `--${boundary}\r\nContent-Type: ${mediaType}\r\n\r\nbody\r\n--${boundary}--\r\n`,
      );
    assertGcsError(
      await multipart({ name: "m1", contentType: "text/\u0007plain" }, "text/plain"),
      400,
      "metadata",
    );
    assertGcsError(await multipart({ name: "m2" }, "text/\u0001plain"), 400, "media part type");
    assert.equal((await multipart({ name: "m3" }, "text/plain")).status, 200);
    const download = await get(gcs, "/download/storage/v1/b/hostile/o/plain.txt?alt=media");
    assert.equal(download.status, 200);
    assert.equal(download.body, "hello");
    assert.deepEqual(logged, []);
  });

  it("answers 400 to a malformed matchGlob, and stays responsive on a crafted one", {
    timeout: 60_000,
  }, async () => {
    for (const glob of ["[z-a]", "[", "{a,b", "[!]"]) {
      assertGcsError(
        await get(gcs, `/storage/v1/b/hostile/o?matchGlob=${encodeURIComponent(glob)}`),
        400,
        glob,
      );
    }
    const name = "a".repeat(1000);
    const put = await rawRequest(
      gcs,
      `POST /upload/storage/v1/b/hostile/o?uploadType=media&name=${name} HTTP/1.1`,
      "x",
    );
    assert.equal(put.status, 200);
    // A backtracking matcher would take years on this; the server must answer (the timeout is only a guard).
    const crafted = `${"**a".repeat(30)}b`;
    const listed = await get(gcs, `/storage/v1/b/hostile/o?matchGlob=${encodeURIComponent(crafted)}`);
    assert.equal(listed.status, 200);
    assert.deepEqual(JSON.parse(listed.body), { kind: "storage#objects" });
    const found = await get(gcs, `/storage/v1/b/hostile/o?matchGlob=${encodeURIComponent("{x,a*}")}`);
    assert.deepEqual(
      (JSON.parse(found.body) as { items: { name: string }[] }).items.map((i) => i.name),
      [name],
    );
  });

  it("never answers 5xx to arbitrary request targets and header values (property)", {
    timeout: 120_000,
  }, async () => {
    const piece = fc.constantFrom(
      "/",
      "storage",
      "v1",
      "b",
      "hostile",
      "o",
      "plain.txt",
      "download",
      "upload",
      "?",
      "&",
      "=",
      "%",
      "%2F",
      "%ZZ",
      "%E0%A4",
      "%00",
      "[",
      "]",
      "@",
      ":",
      "#",
      "alt=media",
      "matchGlob=",
      "%5Bz-a%5D",
      "uploadType=",
      "resumable",
      "multipart",
      "media",
      "name=",
      "upload_id=",
      "generation=",
      "ifGenerationMatch=",
      "maxResults=",
      "pageToken=",
      "9999999999999999999999",
      "-1",
      "{",
      "}",
      "*",
    );
    const target = fc.array(piece, { minLength: 1, maxLength: 14 }).map((p) => p.join(""));
    const headerValue = fc
      .array(
        fc.constantFrom("a", " ", "\t", "\u0080", "\u00ff", "bytes=0-", "*/*", "gzip", "1", "-", ";", ","),
        {
          maxLength: 8,
        },
      )
      .map((p) => p.join(""));
    const header = fc.constantFrom(
      "Range",
      "Accept-Encoding",
      "Content-Type",
      "Content-Range",
      "X-Upload-Content-Length",
      "X-Upload-Content-Type",
      "X-Goog-Hash",
    );
    const method = fc.constantFrom("GET", "POST", "PUT", "PATCH", "DELETE");
    await fc.assert(
      fc.asyncProperty(
        method,
        target,
        fc.array(fc.tuple(header, headerValue), { maxLength: 3 }),
        async (m, t, headers) => {
          const head = [
            `${m} ${t.startsWith("/") ? t : `/${t}`} HTTP/1.1`,
            ...headers.map(([k, v]) => `${k}: ${v}`),
          ].join("\r\n");
          const response = await rawRequest(gcs, head, m === "GET" || m === "DELETE" ? "" : "{}");
          assert.ok(
            response.status < 500,
            `${JSON.stringify(head)} -> ${response.status} ${response.body.slice(0, 300)}`,
          );
        },
      ),
      { numRuns: 400 },
    );
    assert.deepEqual(logged, []);
  });
});
