// The archive front driven only through @aws-sdk/client-s3, as retrieval will drive AWS: every
// answer must parse into the SDK's output fields, and every refusal must arrive as the SDK's
// error with S3's code and status.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectTaggingCommand,
  GetObjectCommand,
  GetObjectLegalHoldCommand,
  GetObjectRetentionCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  InvalidObjectState,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  NoSuchKey,
  PutObjectCommand,
  PutObjectLegalHoldCommand,
  PutObjectRetentionCommand,
  PutObjectTaggingCommand,
  RestoreObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { LOCAL_S3_CREDENTIALS, type LocalS3, localS3Client } from "../s3.ts";
import type { S3ArchiveFront } from "./server.ts";
import { objectLockBucket, startLocalArchive, startTestArchiveFront } from "./test_support.ts";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** "plain" is unversioned; "defaulted" has the deployed archive bucket's default retention. */
const BUCKETS = [
  "plain",
  { name: "versioned", versioning: true },
  { name: "locked", objectLock: true },
  objectLockBucket("defaulted", 365),
];

/** The SDK's error for a refused call: its name is S3's code. */
async function refusal(call: Promise<unknown>): Promise<S3ServiceException> {
  try {
    await call;
  } catch (error) {
    assert.ok(error instanceof S3ServiceException, `expected an S3ServiceException, got ${String(error)}`);
    return error;
  }
  assert.fail("the call succeeded");
}

describe("local S3 archive front", () => {
  let dir: string;
  let s3: LocalS3;
  let front: S3ArchiveFront;
  let client: S3Client;
  let now = Date.parse("2026-03-03T10:00:00.000Z");

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logarchive-s3-archive-"));
    ({ s3, front } = await startLocalArchive(dir, BUCKETS, () => now));
    client = localS3Client(front.endpoint, "us-east-1");
  });

  after(async () => {
    client.destroy();
    await front.stop();
    await s3.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const put = (bucket: string, key: string, body: string, extra: Partial<PutObjectCommand["input"]> = {}) =>
    client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ...extra }));
  const text = async (bucket: string, key: string, versionId?: string) => {
    const output = await client.send(
      new GetObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }),
    );
    return output.Body!.transformToString();
  };

  /** A multipart upload of `body` in one part, created with `create`'s extra fields. */
  async function multipart(
    bucket: string,
    key: string,
    body: string,
    create: Partial<CreateMultipartUploadCommand["input"]> = {},
  ) {
    const created = await client.send(
      new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ...create }),
    );
    const part = await client.send(
      new UploadPartCommand({
        Bucket: bucket,
        Key: key,
        UploadId: created.UploadId,
        PartNumber: 1,
        Body: body,
      }),
    );
    return client.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId: created.UploadId,
        MultipartUpload: { Parts: [{ ETag: part.ETag, PartNumber: 1 }] },
      }),
    );
  }

  it("passes plain calls through to s3rver: metadata kept, ListObjectsV2 unchanged", async () => {
    await put("plain", "ns/a.ndjson.gz", "line-a", { Metadata: { "logarchive-sha256": "abc" } });
    const head = await client.send(new HeadObjectCommand({ Bucket: "plain", Key: "ns/a.ndjson.gz" }));
    assert.equal(head.Metadata?.["logarchive-sha256"], "abc");
    assert.equal(head.StorageClass, undefined, "S3 omits x-amz-storage-class for STANDARD");
    assert.equal(head.VersionId, undefined);
    assert.equal(await text("plain", "ns/a.ndjson.gz"), "line-a");
    const listed = await client.send(new ListObjectsV2Command({ Bucket: "plain", Prefix: "ns/" }));
    assert.deepEqual(
      listed.Contents?.map((c) => c.Key),
      ["ns/a.ndjson.gz"],
    );
  });

  it("passes a shipper-style PUT (streamed body, SHA-256 checksum, If-None-Match) as s3rver answers it, and s3rver still emits its event", async () => {
    const body = Buffer.from("shipped-batch");
    const sha256 = createHash("sha256").update(body).digest("base64");
    const shipperPut = (target: S3Client, key: string) =>
      target
        .send(
          new PutObjectCommand({
            Bucket: "versioned",
            Key: key,
            Body: Readable.from([body]),
            ContentLength: body.length,
            ChecksumSHA256: sha256,
            ContentType: "application/gzip",
            Metadata: { "logarchive-sha256": "feed" },
            IfNoneMatch: "*",
          }),
        )
        .then(
          (output) => ({ ok: true, status: output.$metadata.httpStatusCode }),
          (error: S3ServiceException) => ({
            ok: false,
            status: error.$metadata?.httpStatusCode,
            name: error.name,
          }),
        );
    const events: string[] = [];
    const onEvent = (event: { Records: { s3: { object: { key: string } } }[] }) =>
      events.push(event.Records[0]!.s3.object.key);
    s3.server.on("event", onEvent);
    const directClient = localS3Client(s3.endpoint, "us-east-1");
    try {
      const viaFront = await shipperPut(client, "shipped/through-front");
      const direct = await shipperPut(directClient, "shipped/direct");
      assert.deepEqual(viaFront, direct);
    } finally {
      directClient.destroy();
      s3.server.off("event", onEvent);
    }
    assert.ok(events.includes("shipped/through-front"));
    const head = await client.send(
      new HeadObjectCommand({ Bucket: "versioned", Key: "shipped/through-front" }),
    );
    assert.equal(head.Metadata?.["logarchive-sha256"], "feed");
    assert.equal(head.ContentType, "application/gzip");
    assert.ok(head.VersionId);
    assert.equal(await text("versioned", "shipped/through-front", head.VersionId), "shipped-batch");
  });

  it("records a multipart upload completed through the front as a version", async () => {
    const completed = await multipart("versioned", "multi", "multipart-body", {
      StorageClass: "DEEP_ARCHIVE",
    });
    assert.ok(completed.VersionId);
    const listed = await client.send(new ListObjectVersionsCommand({ Bucket: "versioned", Prefix: "multi" }));
    assert.deepEqual(
      listed.Versions?.map((v) => v.VersionId),
      [completed.VersionId],
    );
  });

  it("keeps the storage class of the PUT and of a simulated lifecycle transition", async () => {
    await put("plain", "ia", "x", { StorageClass: "STANDARD_IA" });
    assert.equal(
      (await client.send(new HeadObjectCommand({ Bucket: "plain", Key: "ia" }))).StorageClass,
      "STANDARD_IA",
    );
    await front.setStorageClass("plain", "ia", "GLACIER_IR");
    assert.equal(
      (await client.send(new HeadObjectCommand({ Bucket: "plain", Key: "ia" }))).StorageClass,
      "GLACIER_IR",
    );
    assert.equal(await text("plain", "ia"), "x", "Glacier Instant Retrieval needs no restore");
    await put("plain", "ia-replaced", "r");
    await front.setStorageClass("plain", "ia-replaced", "DEEP_ARCHIVE");
    await put("plain", "ia-replaced", "r2");
    const replaced = await client.send(new HeadObjectCommand({ Bucket: "plain", Key: "ia-replaced" }));
    assert.equal(replaced.StorageClass, undefined, "a new object does not inherit the old one's transition");
    assert.equal(await text("plain", "ia-replaced"), "r2");
  });

  it("refuses GET of an unrestored GLACIER object with InvalidObjectState, then restores it on the test clock", async () => {
    await put("plain", "cold", "cold-body", { StorageClass: "GLACIER" });
    const head = await client.send(new HeadObjectCommand({ Bucket: "plain", Key: "cold" }));
    assert.equal(head.StorageClass, "GLACIER");
    assert.equal(head.Restore, undefined);

    const refused = await refusal(client.send(new GetObjectCommand({ Bucket: "plain", Key: "cold" })));
    assert.ok(refused instanceof InvalidObjectState);
    assert.equal(refused.$metadata.httpStatusCode, 403);
    assert.equal(refused.StorageClass, "GLACIER");

    const started = await client.send(
      new RestoreObjectCommand({
        Bucket: "plain",
        Key: "cold",
        RestoreRequest: { Days: 2, GlacierJobParameters: { Tier: "Standard" } },
      }),
    );
    assert.equal(started.$metadata.httpStatusCode, 202);
    const ongoing = await client.send(new HeadObjectCommand({ Bucket: "plain", Key: "cold" }));
    assert.equal(ongoing.Restore, 'ongoing-request="true"');

    const again = await refusal(
      client.send(new RestoreObjectCommand({ Bucket: "plain", Key: "cold", RestoreRequest: { Days: 2 } })),
    );
    assert.equal(again.name, "RestoreAlreadyInProgress");
    assert.equal(again.$metadata.httpStatusCode, 409);
    assert.ok(
      (await refusal(client.send(new GetObjectCommand({ Bucket: "plain", Key: "cold" })))) instanceof
        InvalidObjectState,
    );

    now += 5 * HOUR; // the Standard job of Glacier Flexible Retrieval is done
    const done = await client.send(new HeadObjectCommand({ Bucket: "plain", Key: "cold" }));
    // Done at 15:00 on March 3, kept 2 days: expires at the midnight UTC after, March 6.
    assert.equal(done.Restore, 'ongoing-request="false", expiry-date="Fri, 06 Mar 2026 00:00:00 GMT"');
    assert.equal(await text("plain", "cold"), "cold-body");

    const extended = await client.send(
      new RestoreObjectCommand({ Bucket: "plain", Key: "cold", RestoreRequest: { Days: 5 } }),
    );
    assert.equal(extended.$metadata.httpStatusCode, 200, "a restored copy's expiry is moved: 200, not 202");
    assert.match(
      (await client.send(new HeadObjectCommand({ Bucket: "plain", Key: "cold" }))).Restore ?? "",
      /expiry-date="Mon, 09 Mar 2026 00:00:00 GMT"/,
    );

    now = Date.parse("2026-03-09T00:00:00.000Z");
    const expired = await client.send(new HeadObjectCommand({ Bucket: "plain", Key: "cold" }));
    assert.equal(expired.Restore, undefined, "the restored copy is gone at its expiry");
    assert.ok(
      (await refusal(client.send(new GetObjectCommand({ Bucket: "plain", Key: "cold" })))) instanceof
        InvalidObjectState,
    );
  });

  it("restores DEEP_ARCHIVE (transitioned by the test) through completeRestores, and refuses Expedited for it", async () => {
    await put("plain", "deep", "deep-body");
    await front.setStorageClass("plain", "deep", "DEEP_ARCHIVE");
    assert.equal(
      (await client.send(new HeadObjectCommand({ Bucket: "plain", Key: "deep" }))).StorageClass,
      "DEEP_ARCHIVE",
    );

    const expedited = await refusal(
      client.send(
        new RestoreObjectCommand({
          Bucket: "plain",
          Key: "deep",
          RestoreRequest: { Days: 1, GlacierJobParameters: { Tier: "Expedited" } },
        }),
      ),
    );
    assert.equal(expedited.name, "InvalidArgument");
    assert.equal(expedited.$metadata.httpStatusCode, 400);

    const bulk = await client.send(
      new RestoreObjectCommand({
        Bucket: "plain",
        Key: "deep",
        RestoreRequest: { Days: 1, GlacierJobParameters: { Tier: "Bulk" } },
      }),
    );
    assert.equal(bulk.$metadata.httpStatusCode, 202);
    now += 47 * HOUR;
    assert.equal(
      (await client.send(new HeadObjectCommand({ Bucket: "plain", Key: "deep" }))).Restore,
      'ongoing-request="true"',
    );
    assert.equal(front.completeRestores(), 1);
    assert.match(
      (await client.send(new HeadObjectCommand({ Bucket: "plain", Key: "deep" }))).Restore ?? "",
      /^ongoing-request="false", expiry-date="[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} 00:00:00 GMT"$/,
    );
    assert.equal(await text("plain", "deep"), "deep-body");
  });

  it("refuses RestoreObject for a class with nothing to restore, and for a missing key", async () => {
    const standard = await refusal(
      client.send(new RestoreObjectCommand({ Bucket: "plain", Key: "ia", RestoreRequest: { Days: 1 } })),
    );
    assert.equal(standard.name, "InvalidObjectState");
    assert.equal(standard.$metadata.httpStatusCode, 403);
    const missing = await refusal(
      client.send(new RestoreObjectCommand({ Bucket: "plain", Key: "nope", RestoreRequest: { Days: 1 } })),
    );
    assert.ok(missing instanceof NoSuchKey);
  });

  it("versions: each PUT a version, ListObjectVersions newest first, GET/HEAD by versionId, delete markers", async () => {
    const first = await put("versioned", "k", "one");
    const second = await put("versioned", "k", "two", { StorageClass: "GLACIER" });
    assert.ok(first.VersionId && second.VersionId && first.VersionId !== second.VersionId);

    const listed = await client.send(new ListObjectVersionsCommand({ Bucket: "versioned", Prefix: "k" }));
    assert.deepEqual(
      listed.Versions?.map((v) => [v.Key, v.VersionId, v.IsLatest, v.StorageClass, v.Size]),
      [
        ["k", second.VersionId, true, "GLACIER", 3],
        ["k", first.VersionId, false, "STANDARD", 3],
      ],
    );
    assert.ok(listed.Versions?.[0]?.LastModified instanceof Date);
    assert.equal(listed.IsTruncated, false);

    assert.equal(await text("versioned", "k", first.VersionId), "one");
    const head = await client.send(
      new HeadObjectCommand({ Bucket: "versioned", Key: "k", VersionId: first.VersionId }),
    );
    assert.equal(head.VersionId, first.VersionId);
    assert.equal(head.ContentLength, 3);
    const latest = await client.send(new HeadObjectCommand({ Bucket: "versioned", Key: "k" }));
    assert.equal(latest.VersionId, second.VersionId);
    assert.equal(latest.StorageClass, "GLACIER");
    assert.ok(
      (await refusal(
        client.send(new GetObjectCommand({ Bucket: "versioned", Key: "k", VersionId: second.VersionId })),
      )) instanceof InvalidObjectState,
    );

    const page = await client.send(
      new ListObjectVersionsCommand({ Bucket: "versioned", Prefix: "k", MaxKeys: 1 }),
    );
    assert.equal(page.IsTruncated, true);
    assert.equal(page.NextKeyMarker, "k");
    assert.equal(page.NextVersionIdMarker, second.VersionId);
    const rest = await client.send(
      new ListObjectVersionsCommand({
        Bucket: "versioned",
        Prefix: "k",
        KeyMarker: page.NextKeyMarker,
        VersionIdMarker: page.NextVersionIdMarker,
      }),
    );
    assert.deepEqual(
      rest.Versions?.map((v) => v.VersionId),
      [first.VersionId],
    );

    const deleted = await client.send(new DeleteObjectCommand({ Bucket: "versioned", Key: "k" }));
    assert.equal(deleted.DeleteMarker, true);
    assert.ok(deleted.VersionId);
    assert.ok(
      (await refusal(client.send(new GetObjectCommand({ Bucket: "versioned", Key: "k" })))) instanceof
        NoSuchKey,
    );
    assert.equal(
      await text("versioned", "k", first.VersionId),
      "one",
      "older versions outlive a delete marker",
    );
    const afterDelete = await client.send(
      new ListObjectVersionsCommand({ Bucket: "versioned", Prefix: "k" }),
    );
    assert.deepEqual(
      afterDelete.DeleteMarkers?.map((m) => [m.VersionId, m.IsLatest]),
      [[deleted.VersionId, true]],
    );
    assert.equal(afterDelete.Versions?.length, 2);

    // Removing the marker brings the previous version back as the current object.
    await client.send(
      new DeleteObjectCommand({ Bucket: "versioned", Key: "k", VersionId: deleted.VersionId }),
    );
    assert.equal(
      (await client.send(new HeadObjectCommand({ Bucket: "versioned", Key: "k" }))).VersionId,
      second.VersionId,
    );

    const missing = await refusal(
      client.send(new GetObjectCommand({ Bucket: "versioned", Key: "k", VersionId: "0123456789abcdef" })),
    );
    assert.equal(missing.name, "NoSuchVersion");
    assert.equal(missing.$metadata.httpStatusCode, 404);
  });

  it("DELETE with If-Match: judged against the current version, 412 PreconditionFailed on another ETag, NoSuchKey under a delete marker", async () => {
    const first = await put("versioned", "cond", "one");
    const second = await put("versioned", "cond", "two");
    // The first version's ETag no longer matches: nothing happens.
    const stale = await refusal(
      client.send(new DeleteObjectCommand({ Bucket: "versioned", Key: "cond", IfMatch: first.ETag })),
    );
    assert.equal(stale.name, "PreconditionFailed");
    assert.equal(stale.$metadata.httpStatusCode, 412);
    const before = await client.send(new ListObjectVersionsCommand({ Bucket: "versioned", Prefix: "cond" }));
    assert.equal(before.DeleteMarkers, undefined);
    assert.equal(before.Versions?.[0]?.VersionId, second.VersionId);

    const marked = await client.send(
      new DeleteObjectCommand({ Bucket: "versioned", Key: "cond", IfMatch: second.ETag }),
    );
    assert.equal(marked.DeleteMarker, true);
    const gone = await refusal(
      client.send(new DeleteObjectCommand({ Bucket: "versioned", Key: "cond", IfMatch: second.ETag })),
    );
    assert.equal(gone.name, "NoSuchKey");
    const after = await client.send(new ListObjectVersionsCommand({ Bucket: "versioned", Prefix: "cond" }));
    assert.equal(after.DeleteMarkers?.length, 1);
  });

  it("lists an unversioned bucket's objects as their one null version", async () => {
    const listed = await client.send(new ListObjectVersionsCommand({ Bucket: "plain", Prefix: "cold" }));
    assert.deepEqual(
      listed.Versions?.map((v) => [v.Key, v.VersionId, v.IsLatest, v.StorageClass]),
      [["cold", "null", true, "GLACIER"]],
    );
  });

  it("legal hold: PUT/GET parse, HEAD carries it, a versioned DELETE is AccessDenied while it is ON", async () => {
    const object = await put("locked", "held", "evidence");
    const missing = await refusal(
      client.send(new GetObjectLegalHoldCommand({ Bucket: "locked", Key: "held" })),
    );
    assert.equal(missing.name, "NoSuchObjectLockConfiguration");
    assert.equal(missing.$metadata.httpStatusCode, 404);

    await client.send(
      new PutObjectLegalHoldCommand({ Bucket: "locked", Key: "held", LegalHold: { Status: "ON" } }),
    );
    const hold = await client.send(new GetObjectLegalHoldCommand({ Bucket: "locked", Key: "held" }));
    assert.equal(hold.LegalHold?.Status, "ON");
    const head = await client.send(new HeadObjectCommand({ Bucket: "locked", Key: "held" }));
    assert.equal(head.ObjectLockLegalHoldStatus, "ON");

    const denied = await refusal(
      client.send(new DeleteObjectCommand({ Bucket: "locked", Key: "held", VersionId: object.VersionId })),
    );
    assert.equal(denied.name, "AccessDenied");
    assert.equal(denied.$metadata.httpStatusCode, 403);
    assert.equal(await text("locked", "held", object.VersionId), "evidence");

    await client.send(
      new PutObjectLegalHoldCommand({
        Bucket: "locked",
        Key: "held",
        VersionId: object.VersionId,
        LegalHold: { Status: "OFF" },
      }),
    );
    await client.send(
      new DeleteObjectCommand({ Bucket: "locked", Key: "held", VersionId: object.VersionId }),
    );
    assert.ok(
      (await refusal(client.send(new HeadObjectCommand({ Bucket: "locked", Key: "held" })))).$metadata
        .httpStatusCode === 404,
    );
  });

  it("retention: governance needs the bypass header, compliance refuses until the date passes", async () => {
    const until = new Date(now + 30 * DAY);
    const governed = await put("locked", "gov", "g", {
      ObjectLockMode: "GOVERNANCE",
      ObjectLockRetainUntilDate: until,
    });
    const head = await client.send(new HeadObjectCommand({ Bucket: "locked", Key: "gov" }));
    assert.equal(head.ObjectLockMode, "GOVERNANCE");
    assert.equal(head.ObjectLockRetainUntilDate?.getTime(), until.getTime());
    const retention = await client.send(new GetObjectRetentionCommand({ Bucket: "locked", Key: "gov" }));
    assert.equal(retention.Retention?.Mode, "GOVERNANCE");
    assert.equal(retention.Retention?.RetainUntilDate?.getTime(), until.getTime());

    const denied = await refusal(
      client.send(new DeleteObjectCommand({ Bucket: "locked", Key: "gov", VersionId: governed.VersionId })),
    );
    assert.equal(denied.name, "AccessDenied");
    const shortened = await refusal(
      client.send(
        new PutObjectRetentionCommand({
          Bucket: "locked",
          Key: "gov",
          Retention: { Mode: "GOVERNANCE", RetainUntilDate: new Date(now + DAY) },
        }),
      ),
    );
    assert.equal(shortened.name, "AccessDenied");
    await client.send(
      new DeleteObjectCommand({
        Bucket: "locked",
        Key: "gov",
        VersionId: governed.VersionId,
        BypassGovernanceRetention: true,
      }),
    );

    const complied = await put("locked", "comp", "c");
    await client.send(
      new PutObjectRetentionCommand({
        Bucket: "locked",
        Key: "comp",
        Retention: { Mode: "COMPLIANCE", RetainUntilDate: new Date(now + DAY) },
      }),
    );
    assert.equal(
      (await client.send(new HeadObjectCommand({ Bucket: "locked", Key: "comp" }))).ObjectLockMode,
      "COMPLIANCE",
    );
    const bypassed = await refusal(
      client.send(
        new DeleteObjectCommand({
          Bucket: "locked",
          Key: "comp",
          VersionId: complied.VersionId,
          BypassGovernanceRetention: true,
        }),
      ),
    );
    assert.equal(bypassed.name, "AccessDenied", "nobody deletes a compliance-retained version");
    const relaxed = await refusal(
      client.send(
        new PutObjectRetentionCommand({
          Bucket: "locked",
          Key: "comp",
          BypassGovernanceRetention: true,
          Retention: { Mode: "GOVERNANCE", RetainUntilDate: new Date(now + DAY) },
        }),
      ),
    );
    assert.equal(relaxed.name, "AccessDenied");
    // A DELETE without a version id only adds a delete marker, which S3 allows under any lock.
    const marker = await client.send(new DeleteObjectCommand({ Bucket: "locked", Key: "comp" }));
    assert.equal(marker.DeleteMarker, true);

    now += DAY;
    await client.send(
      new DeleteObjectCommand({ Bucket: "locked", Key: "comp", VersionId: complied.VersionId }),
    );
    const left = await client.send(new ListObjectVersionsCommand({ Bucket: "locked", Prefix: "comp" }));
    assert.equal(left.Versions, undefined);
    assert.equal(left.DeleteMarkers?.length, 1);
  });

  it("default retention: a PUT naming none takes the bucket's mode and period from its creation; an explicit one replaces it", async () => {
    const defaulted = await put("defaulted", "by-default", "d");
    const head = await client.send(new HeadObjectCommand({ Bucket: "defaulted", Key: "by-default" }));
    assert.equal(head.ObjectLockMode, "GOVERNANCE");
    assert.equal(head.ObjectLockRetainUntilDate?.getTime(), now + 365 * DAY);
    const denied = await refusal(
      client.send(
        new DeleteObjectCommand({ Bucket: "defaulted", Key: "by-default", VersionId: defaulted.VersionId }),
      ),
    );
    assert.equal(denied.name, "AccessDenied", "the default retention protects the version");

    // Shorter than the default, and another mode: the request's own retention wins, both ways.
    const until = new Date(now + 3 * DAY);
    await put("defaulted", "explicit", "e", {
      ObjectLockMode: "COMPLIANCE",
      ObjectLockRetainUntilDate: until,
    });
    const retention = await client.send(
      new GetObjectRetentionCommand({ Bucket: "defaulted", Key: "explicit" }),
    );
    assert.equal(retention.Retention?.Mode, "COMPLIANCE");
    assert.equal(retention.Retention?.RetainUntilDate?.getTime(), until.getTime());
    // A bucket without a default retention leaves a PUT naming none unlocked.
    await put("locked", "no-default", "n");
    const plain = await client.send(new HeadObjectCommand({ Bucket: "locked", Key: "no-default" }));
    assert.equal(plain.ObjectLockMode, undefined);
    assert.equal(plain.ObjectLockRetainUntilDate, undefined);

    const past = await refusal(
      put("defaulted", "past", "p", {
        ObjectLockMode: "GOVERNANCE",
        ObjectLockRetainUntilDate: new Date(now - DAY),
      }),
    );
    assert.equal(past.name, "InvalidArgument");
  });

  it("refuses a PUT that locks its version without Content-MD5 or an x-amz-checksum-* header, as S3 does", async () => {
    // Without the SDK's default CRC32 trailer: the request carries no checksum at all.
    const bare = new S3Client({
      endpoint: front.endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: LOCAL_S3_CREDENTIALS,
      requestChecksumCalculation: "WHEN_REQUIRED",
    });
    const bareBody = (key: string, bucket: string, extra: Partial<PutObjectCommand["input"]> = {}) =>
      bare.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: Buffer.from("b"), ...extra }));
    try {
      const retained = await refusal(
        bareBody("bare-retained", "locked", {
          ObjectLockMode: "GOVERNANCE",
          ObjectLockRetainUntilDate: new Date(now + DAY),
        }),
      );
      assert.equal(retained.name, "InvalidRequest");
      assert.equal(retained.$metadata.httpStatusCode, 400);
      assert.match(retained.message, /Content-MD5 OR x-amz-checksum- HTTP header is required/);
      const held = await refusal(bareBody("bare-held", "locked", { ObjectLockLegalHoldStatus: "ON" }));
      assert.equal(held.name, "InvalidRequest");
      const byDefault = await refusal(bareBody("bare-default", "defaulted"));
      assert.equal(byDefault.name, "InvalidRequest", "the bucket's default retention locks it too");
      // Nothing locks the version: no checksum needed.
      await bareBody("bare-unlocked", "locked");
      // With one: SHA-256 in a header (the shipper's), Content-MD5, or the SDK's CRC32 trailer.
      const body = Buffer.from("b");
      await bareBody("sha", "defaulted", {
        ChecksumSHA256: createHash("sha256").update(body).digest("base64"),
      });
      await bareBody("md5", "defaulted", { ContentMD5: createHash("md5").update(body).digest("base64") });
      await put("defaulted", "crc", "b");
      for (const key of ["sha", "md5", "crc"]) {
        const head = await client.send(new HeadObjectCommand({ Bucket: "defaulted", Key: key }));
        assert.equal(head.ObjectLockMode, "GOVERNANCE", key);
      }
    } finally {
      bare.destroy();
    }
  });

  it("keeps versions, locks, class changes and restores across a restart on the same data directory", async () => {
    const object = await put("locked", "kept", "old");
    await put("locked", "kept", "new");
    await client.send(
      new PutObjectLegalHoldCommand({ Bucket: "locked", Key: "kept", LegalHold: { Status: "ON" } }),
    );
    await put("locked", "tagged", "t", { Tagging: "logarchive-landing=1" });
    await put("plain", "thawing", "t");
    await front.setStorageClass("plain", "thawing", "DEEP_ARCHIVE");
    await client.send(
      new RestoreObjectCommand({ Bucket: "plain", Key: "thawing", RestoreRequest: { Days: 1 } }),
    );

    await front.stop();
    client.destroy();
    front = await startTestArchiveFront(s3, dir, BUCKETS, () => now);
    client = localS3Client(front.endpoint, "us-east-1");

    const listed = await client.send(new ListObjectVersionsCommand({ Bucket: "locked", Prefix: "kept" }));
    assert.equal(listed.Versions?.length, 2);
    assert.equal(await text("locked", "kept", object.VersionId), "old");
    const head = await client.send(new HeadObjectCommand({ Bucket: "locked", Key: "kept" }));
    assert.equal(head.ObjectLockLegalHoldStatus, "ON");
    assert.deepEqual(
      (await client.send(new GetObjectTaggingCommand({ Bucket: "locked", Key: "tagged" }))).TagSet,
      [{ Key: "logarchive-landing", Value: "1" }],
    );
    const thawing = await client.send(new HeadObjectCommand({ Bucket: "plain", Key: "thawing" }));
    assert.equal(thawing.StorageClass, "DEEP_ARCHIVE");
    assert.equal(thawing.Restore, 'ongoing-request="true"');
    const again = await refusal(
      client.send(new RestoreObjectCommand({ Bucket: "plain", Key: "thawing", RestoreRequest: { Days: 1 } })),
    );
    assert.equal(again.name, "RestoreAlreadyInProgress");
  });

  it("answers lock calls on a bucket without Object Lock with InvalidRequest", async () => {
    const hold = await refusal(
      client.send(new PutObjectLegalHoldCommand({ Bucket: "plain", Key: "ia", LegalHold: { Status: "ON" } })),
    );
    assert.equal(hold.name, "InvalidRequest");
    assert.equal(hold.$metadata.httpStatusCode, 400);
    const retention = await refusal(
      client.send(new GetObjectRetentionCommand({ Bucket: "plain", Key: "ia" })),
    );
    assert.equal(retention.name, "InvalidRequest");
    const lockedPut = await refusal(
      put("plain", "x", "x", {
        ObjectLockMode: "COMPLIANCE",
        ObjectLockRetainUntilDate: new Date(now + DAY),
      }),
    );
    assert.equal(lockedPut.name, "InvalidRequest");
    assert.equal(lockedPut.$metadata.httpStatusCode, 400);
    assert.equal(lockedPut.message, "Bucket is missing ObjectLockConfiguration");
  });
  const tagsOf = async (bucket: string, key: string, versionId?: string) =>
    (await client.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key, VersionId: versionId })))
      .TagSet;

  it("object tags: x-amz-tagging on PUT kept per version, GetObjectTagging in S3's format, PutObjectTagging and DeleteObjectTagging, GET's tag count", async () => {
    const first = await put("versioned", "tags/one", "a", { Tagging: "logarchive-landing=1&team=a%20b+c" });
    const second = await put("versioned", "tags/one", "b");
    assert.deepEqual(await tagsOf("versioned", "tags/one", first.VersionId), [
      { Key: "logarchive-landing", Value: "1" },
      { Key: "team", Value: "a b c" },
    ]);
    const latest = await client.send(new GetObjectTaggingCommand({ Bucket: "versioned", Key: "tags/one" }));
    assert.deepEqual(latest.TagSet, [], "the newer version was PUT without tags");
    assert.equal(latest.VersionId, second.VersionId);
    const got = await client.send(
      new GetObjectCommand({ Bucket: "versioned", Key: "tags/one", VersionId: first.VersionId }),
    );
    await got.Body!.transformToString();
    assert.equal(got.TagCount, 2);

    await client.send(
      new PutObjectTaggingCommand({
        Bucket: "versioned",
        Key: "tags/one",
        Tagging: { TagSet: [{ Key: "k", Value: "v = w + x@y/z" }] },
      }),
    );
    assert.deepEqual(await tagsOf("versioned", "tags/one"), [{ Key: "k", Value: "v = w + x@y/z" }]);
    assert.equal(
      (await tagsOf("versioned", "tags/one", first.VersionId))?.length,
      2,
      "other versions keep theirs",
    );
    await client.send(new DeleteObjectTaggingCommand({ Bucket: "versioned", Key: "tags/one" }));
    assert.deepEqual(await tagsOf("versioned", "tags/one"), []);

    // A plain bucket keeps them too, and a new PUT of the key replaces them.
    await put("plain", "tags/plain", "p", { Tagging: "a=1" });
    assert.deepEqual(await tagsOf("plain", "tags/plain"), [{ Key: "a", Value: "1" }]);
    assert.equal(await text("plain", "tags/plain"), "p");
    await put("plain", "tags/plain", "q");
    assert.deepEqual(await tagsOf("plain", "tags/plain"), []);
    const missing = await refusal(
      client.send(new GetObjectTaggingCommand({ Bucket: "plain", Key: "tags/none" })),
    );
    assert.equal(missing.name, "NoSuchKey");
  });

  it("answers GetObjectTagging with S3's Tagging document", async () => {
    await put("plain", "tags/raw", "r", { Tagging: "logarchive-landing=1" });
    const recorded: string[] = [];
    const raw = localS3Client(front.endpoint, "us-east-1");
    raw.middlewareStack.add(
      (next) => async (args) => {
        const result = await next(args);
        const response = result.response as { body: Readable };
        const chunks: Buffer[] = [];
        for await (const chunk of response.body) chunks.push(chunk as Buffer);
        recorded.push(Buffer.concat(chunks).toString("utf8"));
        response.body = Readable.from([Buffer.concat(chunks)]);
        return result;
      },
      { step: "deserialize", name: "recordBody", priority: "low" },
    );
    try {
      await raw.send(new GetObjectTaggingCommand({ Bucket: "plain", Key: "tags/raw" }));
    } finally {
      raw.destroy();
    }
    assert.match(
      recorded[0] ?? "",
      /<Tagging xmlns="http:\/\/s3\.amazonaws\.com\/doc\/2006-03-01\/"><TagSet><Tag><Key>logarchive-landing<\/Key><Value>1<\/Value><\/Tag><\/TagSet><\/Tagging>$/,
    );
  });

  it("refuses a malformed x-amz-tagging with S3's error and stores nothing", async () => {
    const eleven = Array.from({ length: 11 }, (_, i) => `k${i}=v`).join("&");
    const cases: [string, string, string, number][] = [
      [
        "a=%E0%A4%A",
        "InvalidArgument",
        "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.",
        400,
      ],
      [
        "a=1&a=2",
        "InvalidArgument",
        "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.",
        400,
      ],
      [
        "a=%3Cb%3E",
        "InvalidArgument",
        "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.",
        400,
      ],
      [eleven, "BadRequest", "Object tags cannot be greater than 10", 400],
      [`${"k".repeat(129)}=v`, "InvalidTag", "The TagKey you have provided is too long, max 128", 400],
      [`k=${"v".repeat(257)}`, "InvalidTag", "The TagValue you have provided is too long, max 256", 400],
      ["aws:x=1", "InvalidTag", "Your TagKey cannot be prefixed with aws:", 400],
      ["=1", "InvalidTag", "The TagKey you have provided is invalid", 400],
    ];
    for (const [index, [tagging, code, message, status]] of cases.entries()) {
      for (const bucket of ["plain", "versioned"]) {
        const key = `tags/bad-${index}`;
        const error = await refusal(put(bucket, key, "x", { Tagging: tagging }));
        assert.deepEqual(
          [error.name, error.message, error.$metadata.httpStatusCode],
          [code, message, status],
          tagging,
        );
        const head = await refusal(client.send(new HeadObjectCommand({ Bucket: bucket, Key: key })));
        assert.equal(head.$metadata.httpStatusCode, 404, `${bucket}/${key} was not stored`);
      }
    }
    // At the limits, accepted.
    const limits = `${"k".repeat(128)}=${"v".repeat(256)}&${Array.from({ length: 9 }, (_, i) => `t${i}=`).join("&")}`;
    await put("plain", "tags/limits", "x", { Tagging: limits });
    assert.equal((await tagsOf("plain", "tags/limits"))?.length, 10);
    const badDocument = await refusal(
      client.send(
        new PutObjectTaggingCommand({
          Bucket: "plain",
          Key: "tags/limits",
          Tagging: {
            TagSet: [
              { Key: "a", Value: "1" },
              { Key: "a", Value: "2" },
            ],
          },
        }),
      ),
    );
    assert.equal(badDocument.name, "InvalidTag");
    assert.equal(
      (await tagsOf("plain", "tags/limits"))?.length,
      10,
      "a refused PutObjectTagging changes nothing",
    );
  });

  it("gives a multipart upload the tags of its CreateMultipartUpload", async () => {
    const completed = await multipart("versioned", "tags/multi", "multipart-body", {
      Tagging: "logarchive-landing=1",
    });
    assert.deepEqual(await tagsOf("versioned", "tags/multi", completed.VersionId), [
      { Key: "logarchive-landing", Value: "1" },
    ]);
    const refused = await refusal(
      client.send(
        new CreateMultipartUploadCommand({ Bucket: "versioned", Key: "tags/multi-bad", Tagging: "a=1&a=2" }),
      ),
    );
    assert.equal(refused.name, "InvalidArgument");
  });

  it("multipart uploads and Object Lock: CompleteMultipartUpload takes the bucket's default retention, or the lock its CreateMultipartUpload named", async () => {
    const defaulted = await multipart("defaulted", "multi-default", "part-body");
    const head = await client.send(
      new HeadObjectCommand({ Bucket: "defaulted", Key: "multi-default", VersionId: defaulted.VersionId }),
    );
    assert.equal(head.ObjectLockMode, "GOVERNANCE");
    assert.equal(head.ObjectLockRetainUntilDate?.getTime(), now + 365 * DAY);

    const until = new Date(now + 5 * DAY);
    await multipart("defaulted", "multi-explicit", "part-body", {
      ObjectLockMode: "COMPLIANCE",
      ObjectLockRetainUntilDate: until,
      ObjectLockLegalHoldStatus: "ON",
    });
    const explicit = await client.send(new HeadObjectCommand({ Bucket: "defaulted", Key: "multi-explicit" }));
    assert.equal(explicit.ObjectLockMode, "COMPLIANCE");
    assert.equal(explicit.ObjectLockRetainUntilDate?.getTime(), until.getTime());
    assert.equal(explicit.ObjectLockLegalHoldStatus, "ON");

    const unlockable = await refusal(
      client.send(
        new CreateMultipartUploadCommand({
          Bucket: "versioned",
          Key: "multi-refused",
          ObjectLockMode: "GOVERNANCE",
          ObjectLockRetainUntilDate: until,
        }),
      ),
    );
    assert.equal(unlockable.name, "InvalidRequest");
    const past = await refusal(
      client.send(
        new CreateMultipartUploadCommand({
          Bucket: "defaulted",
          Key: "multi-past",
          ObjectLockMode: "GOVERNANCE",
          ObjectLockRetainUntilDate: new Date(now - DAY),
        }),
      ),
    );
    assert.equal(past.name, "InvalidArgument");
  });

  it("a read of a key while its PUT is being recorded waits: the object is seen with its lock, one version", async () => {
    // s3rver holds the body a moment before the front has recorded the version; a HEAD sent as
    // soon as s3rver has the object must still see the version as S3 shows a new object: whole.
    const direct = localS3Client(s3.endpoint, "us-east-1");
    try {
      const body = "x".repeat(4 << 20);
      const until = new Date(now + 2 * DAY);
      const putting = put("defaulted", "racing", body, {
        ObjectLockMode: "GOVERNANCE",
        ObjectLockRetainUntilDate: until,
        ChecksumAlgorithm: "SHA256",
      });
      let stored = false;
      while (!stored) {
        stored = await direct
          .send(new HeadObjectCommand({ Bucket: "defaulted", Key: "racing" }))
          .then(() => true)
          .catch(() => false);
      }
      const head = await client.send(new HeadObjectCommand({ Bucket: "defaulted", Key: "racing" }));
      const written = await putting;
      assert.equal(head.VersionId, written.VersionId);
      assert.equal(head.ObjectLockMode, "GOVERNANCE");
      assert.equal(head.ObjectLockRetainUntilDate?.getTime(), until.getTime());
      const listed = await client.send(
        new ListObjectVersionsCommand({ Bucket: "defaulted", Prefix: "racing" }),
      );
      assert.deepEqual(
        listed.Versions?.map((v) => v.VersionId),
        [written.VersionId],
      );
    } finally {
      direct.destroy();
    }
  });
});
