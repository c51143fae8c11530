// The local transfer copies what the bucket notification announces into GCS exactly as
// STS would: metadata carried, duplicates not re-finalized, changed objects re-copied, and a
// copy cut short (stop, SIGKILL) leaves no object and its message comes back.

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { get } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import {
  ChangeMessageVisibilityCommand,
  ReceiveMessageCommand,
  type ReceiveMessageCommandOutput,
  SendMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { Storage } from "@google-cloud/storage";
import { formatS3EventMessage } from "../lib/events/s3-event.ts";
import { formatObjectKey } from "../lib/keys/layout.ts";
import type { StageLog } from "../lib/log.ts";
import { toUserMetadata } from "../lib/object/metadata.ts";
import { parsePolicy } from "../lib/policy/policy.ts";
import { type LoggedProcess, startCli as startLogarchive, waitFor } from "../shipper/test_support/harness.ts";
import type { GcsObjectResource } from "./gcs/server.ts";
import { LOCAL_S3_CREDENTIALS } from "./s3.ts";
import { type LocalCloud, startLocalCloud } from "./stack.ts";
import { md5FromEtag, sameContent, TransferWorker, type TransferWorkerOptions } from "./transfer.ts";

const policy = parsePolicy(`
archive: { prefix: logs }
analytics: { include: ["payments", "web"] }
`);

function analyticsKey(namespace: string, seq: number): string {
  return formatObjectKey({
    prefix: "logs",
    tier: "analytics",
    namespace,
    dt: "2026-11-21",
    hour: "10",
    node: "node-1",
    epoch: "00c0ffee",
    seq,
  });
}

/**
 * An object's bytes as stored. Plain node:http, which (unlike fetch) leaves gzip alone, and
 * (unlike the client's download) does not warn about listener counts on larger objects.
 */
function storedBytes(mediaLink: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    get(mediaLink, { headers: { "accept-encoding": "gzip" } }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () =>
        response.statusCode === 200
          ? resolve(Buffer.concat(chunks))
          : reject(new Error(`GET ${mediaLink}: ${response.statusCode}`)),
      );
      response.on("error", reject);
    }).on("error", reject);
  });
}

describe("local transfer (S3 → SQS → GCS)", () => {
  let dir: string;
  let cloud: LocalCloud;
  let s3: S3Client;
  let sqs: SQSClient;
  let storage: Storage;
  const finalized: GcsObjectResource[] = [];
  const logs: { level: string; event: string; fields: Record<string, unknown> }[] = [];
  const log: StageLog = (level, event, fields) => logs.push({ level, event, fields });
  const finalizesOf = (key: string) => finalized.filter((o) => o.name === key);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logarchive-transfer-"));
    cloud = await startLocalCloud({ dataDir: dir, policy });
    cloud.onGcsFinalize((o) => {
      finalized.push(o);
    });
    const e = cloud.endpoints;
    s3 = new S3Client({
      endpoint: e.s3.endpoint,
      region: e.region,
      forcePathStyle: true,
      credentials: LOCAL_S3_CREDENTIALS,
    });
    sqs = new SQSClient({
      endpoint: e.sqs.endpoint,
      region: e.region,
      credentials: { accessKeyId: e.sqs.accessKeyId, secretAccessKey: e.sqs.secretAccessKey },
    });
    storage = new Storage({ apiEndpoint: e.gcs.apiEndpoint, projectId: e.gcs.projectId });
  });

  after(async () => {
    s3?.destroy();
    sqs?.destroy();
    await cloud?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  function worker(options: Partial<TransferWorkerOptions> = {}): TransferWorker {
    return new TransferWorker({
      sqs,
      queueUrl: cloud.endpoints.sqs.queueUrl,
      s3,
      storage,
      gcsBucket: cloud.endpoints.gcs.bucket,
      visibilityTimeoutSeconds: 2,
      waitTimeSeconds: 1,
      log,
      ...options,
    });
  }

  /** PUTs a shipper-like object; returns its body and sha256. */
  async function putLogObject(key: string, text: string, metadata = true) {
    const body = gzipSync(text);
    const sha256 = createHash("sha256").update(body).digest("hex");
    await s3.send(
      new PutObjectCommand({
        Bucket: cloud.endpoints.s3.bucket,
        Key: key,
        Body: body,
        ContentType: "application/x-ndjson",
        ContentEncoding: "gzip",
        ...(metadata
          ? {
              Metadata: toUserMetadata({
                schemaVersion: 1,
                records: text.split("\n").length - 1,
                firstTimestamp: "2026-11-21T10:00:00.000000001Z",
                lastTimestamp: "2026-11-21T10:00:01Z",
                sha256,
                rawBytes: Buffer.byteLength(text),
                batchId: "node-1_00c0ffee_000000000001",
                shipperVersion: "test",
              }),
            }
          : {}),
      }),
    );
    return { body, sha256 };
  }

  async function gcsFile(key: string) {
    const file = storage.bucket(cloud.endpoints.gcs.bucket).file(key);
    const [exists] = await file.exists();
    if (!exists) return null;
    const [metadata] = await file.getMetadata();
    return { metadata, bytes: await storedBytes(metadata.mediaLink!) };
  }

  describe("with one running worker", () => {
    let w: TransferWorker;
    before(() => {
      w = worker();
      w.start();
    });
    after(async () => {
      await w.stop();
    });

    it("copies a created object with its metadata, content type and encoding, and deletes the TestEvent", async () => {
      const key = analyticsKey("payments", 1);
      const { body, sha256 } = await putLogObject(key, '{"message":"paid"}\n{"message":"refunded"}\n');
      await waitFor("the GCS finalize", () => finalizesOf(key).length === 1);
      await w.drained();
      const copy = await gcsFile(key);
      assert.ok(copy);
      assert.ok(copy.bytes.equals(body));
      assert.equal(copy.metadata.contentType, "application/x-ndjson");
      assert.equal(copy.metadata.contentEncoding, "gzip");
      assert.equal(copy.metadata.metadata?.["logarchive-sha256"], sha256);
      assert.equal(copy.metadata.metadata?.["logarchive-records"], "2");
      assert.equal(copy.metadata.metadata?.["logarchive-batch"], "node-1_00c0ffee_000000000001");
      const stats = w.stats();
      assert.equal(stats.testEvents, 1, "the s3:TestEvent sent at start is consumed");
      assert.equal(stats.objectsCopied, 1);
      assert.equal(stats.messagesDeleted, 2);
      assert.equal(stats.errors, 0);
      assert.equal(stats.bytesCopied, body.length);
      assert.ok(logs.some((l) => l.event === "transfer_object_copied" && l.fields.key === key));
    });

    it("does not finalize again for duplicate messages, even in one batch", async () => {
      const key = analyticsKey("payments", 1);
      const before = w.stats();
      const [first] = finalizesOf(key);
      assert.ok(first);
      const duplicate = formatS3EventMessage({
        eventName: "ObjectCreated:Put",
        eventTime: new Date(),
        awsRegion: cloud.endpoints.region,
        bucket: cloud.endpoints.s3.bucket,
        key,
        size: Number(first.size),
        eTag: Buffer.from(first.md5Hash, "base64").toString("hex"),
        sequencer: "0000000000000000AA",
        configurationId: "logarchive-analytics",
      });
      for (let i = 0; i < 3; i++) {
        await sqs.send(
          new SendMessageCommand({ QueueUrl: cloud.endpoints.sqs.queueUrl, MessageBody: duplicate }),
        );
      }
      await waitFor("the duplicates", () => w.stats().skippedDuplicates - before.skippedDuplicates === 3);
      await w.drained();
      assert.equal(finalizesOf(key).length, 1);
      assert.equal(w.stats().objectsCopied, before.objectsCopied);
      assert.equal(w.stats().messagesDeleted - before.messagesDeleted, 3);
    });

    it("copies keys S3 sends URL-encoded (`=`, spaces, `+`) under their real names", async () => {
      const key = "logs/analytics/namespace=web/dt=2026-11-21/hour=10/a b+c=d%20e.ndjson.gz";
      const { body } = await putLogObject(key, '{"message":"odd key"}\n');
      await waitFor("the odd key's finalize", () => finalizesOf(key).length === 1);
      const copy = await gcsFile(key);
      assert.ok(copy?.bytes.equals(body));
      const [names] = await storage
        .bucket(cloud.endpoints.gcs.bucket)
        .getFiles({ prefix: "logs/analytics/namespace=web/" });
      assert.deepEqual(
        names.map((f) => f.name),
        [key],
      );
    });

    it("copies an object again when it changed in S3 under the same key", async () => {
      const key = analyticsKey("web", 7);
      await putLogObject(key, '{"message":"v1"}\n');
      await waitFor("v1", () => finalizesOf(key).length === 1);
      const v2 = await putLogObject(key, '{"message":"v2"}\n{"message":"v2 again"}\n');
      await waitFor("v2", () => finalizesOf(key).length === 2);
      const copy = await gcsFile(key);
      assert.ok(copy?.bytes.equals(v2.body));
      assert.equal(copy?.metadata.metadata?.["logarchive-sha256"], v2.sha256);
      assert.notEqual(finalizesOf(key)[0]!.generation, finalizesOf(key)[1]!.generation);
    });

    it("falls back to size and MD5 for objects without the sha256 metadata", async () => {
      const key = analyticsKey("web", 8);
      await putLogObject(key, '{"message":"no metadata"}\n', false);
      await waitFor("the copy", () => finalizesOf(key).length === 1);
      // The finalize fires as the upload completes, a moment before the worker counts the
      // copy: let it finish before taking the count.
      await w.drained();
      const copies = w.stats().objectsCopied;
      const [copied] = finalizesOf(key);
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: cloud.endpoints.sqs.queueUrl,
          MessageBody: formatS3EventMessage({
            eventName: "ObjectCreated:Put",
            eventTime: new Date(),
            awsRegion: cloud.endpoints.region,
            bucket: cloud.endpoints.s3.bucket,
            key,
            size: Number(copied!.size),
            eTag: "ignored",
            sequencer: "0000000000000000AB",
            configurationId: "logarchive-analytics",
          }),
        }),
      );
      await w.drained();
      await w.drained();
      assert.equal(finalizesOf(key).length, 1);
      assert.equal(w.stats().objectsCopied, copies);
    });

    it("deletes a message whose object is gone from S3, and ignores deletion events", async () => {
      const before = w.stats();
      const gone = formatS3EventMessage({
        eventName: "ObjectCreated:Put",
        eventTime: new Date(),
        awsRegion: cloud.endpoints.region,
        bucket: cloud.endpoints.s3.bucket,
        key: analyticsKey("payments", 999),
        size: 10,
        eTag: "0123456789abcdef0123456789abcdef",
        sequencer: "0000000000000000AC",
        configurationId: "logarchive-analytics",
      });
      const removed = JSON.parse(gone);
      removed.Records[0].eventName = "ObjectRemoved:Delete";
      for (const body of [gone, JSON.stringify(removed)]) {
        await sqs.send(new SendMessageCommand({ QueueUrl: cloud.endpoints.sqs.queueUrl, MessageBody: body }));
      }
      await waitFor("both handled", () => w.stats().messagesDeleted - before.messagesDeleted === 2);
      assert.equal(w.stats().objectsMissing - before.objectsMissing, 1);
      assert.equal(w.stats().eventsIgnored - before.eventsIgnored, 1);
      assert.ok(logs.some((l) => l.event === "transfer_object_missing" && l.level === "warn"));
    });

    it("leaves a message that is not an S3 event in the queue, for its dead-letter queue", async () => {
      const before = w.stats();
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: cloud.endpoints.sqs.queueUrl,
          MessageBody: "hello, not an event",
        }),
      );
      await waitFor("the rejection", () => w.stats().messagesRejected - before.messagesRejected === 1);
      assert.equal(w.stats().messagesDeleted, before.messagesDeleted);
      const rejected = logs.find((l) => l.event === "transfer_message_rejected");
      assert.equal(rejected?.level, "error");
      assert.match(String(rejected?.fields.body), /hello, not an event/);
      // It comes back after its (backed-off) visibility timeout, received a second time.
      await waitFor("the second receive", () => w.stats().messagesRejected - before.messagesRejected === 2);
      const second = logs.filter((l) => l.event === "transfer_message_rejected").at(-1);
      assert.equal(second?.fields.receiveCount, 2);
    });
  });

  it("compares content by sha256 metadata, else by size and single-part MD5", () => {
    const md5 = createHash("md5").update("x").digest();
    const eTag = `"${md5.toString("hex")}"`;
    assert.equal(md5FromEtag(eTag), md5.toString("base64"));
    assert.equal(md5FromEtag('"0123456789abcdef0123456789abcdef-3"'), undefined);
    const sha = (c: string) => ({ "logarchive-sha256": c.repeat(64) });
    const source = { size: 1, eTag, userMetadata: sha("a") };
    assert.equal(sameContent(source, { size: "99", metadata: sha("a") }), true);
    assert.equal(
      sameContent(source, { size: "1", md5Hash: md5.toString("base64"), metadata: sha("b") }),
      false,
    );
    const bare = { size: 1, eTag, userMetadata: {} };
    assert.equal(sameContent(bare, { size: "1", md5Hash: md5.toString("base64") }), true);
    assert.equal(sameContent(bare, { size: "2", md5Hash: md5.toString("base64") }), false);
    assert.equal(sameContent({ ...bare, eTag: '"abc-2"' }, { size: "1", md5Hash: "x" }), false);
  });

  for (const upload of ["multipart", "resumable"] as const) {
    it(`a ${upload} copy abandoned by stop() finalizes nothing; a new worker copies it`, async () => {
      const key = analyticsKey("payments", upload === "multipart" ? 100 : 101);
      const size = 1024 * 1024;
      const body = randomBytes(size);
      const resumableThresholdBytes = upload === "resumable" ? 64 * 1024 : 64 * 1024 * 1024;
      const slow = worker({ maxBytesPerSecond: 256 * 1024, resumableThresholdBytes });
      slow.start();
      await s3.send(new PutObjectCommand({ Bucket: cloud.endpoints.s3.bucket, Key: key, Body: body }));
      await waitFor("the copy to be under way", () => slow.stats().bytesInFlight >= 128 * 1024);
      await slow.stop({ graceMs: 0 });
      assert.equal(slow.stats().messagesAbandoned, 1);
      assert.equal(slow.stats().objectsCopied, 0);
      assert.equal(slow.stats().copiesInFlight, 0);
      // Give the server time to commit anything it (wrongly) would.
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(await gcsFile(key), null);
      assert.equal(finalizesOf(key).length, 0);

      const next = worker({ resumableThresholdBytes });
      next.start();
      try {
        await waitFor("the redelivered copy", () => finalizesOf(key).length === 1);
        await next.drained();
      } finally {
        await next.stop();
      }
      const copy = await gcsFile(key);
      assert.ok(copy?.bytes.equals(body));
      assert.equal(finalizesOf(key).length, 1);
      assert.equal(next.stats().objectsCopied, 1);
    });
  }

  it("keeps a message hidden while its copy outlasts the visibility timeout, by renewing the lease", async () => {
    const key = analyticsKey("payments", 102);
    // 2 MiB at 256 KiB/s: an 8 s copy, four times the 2 s lease.
    const body = randomBytes(2 * 1024 * 1024);
    // Every lease renewal the worker sends for this object's message, as it sends it.
    const fileName = key.slice(key.lastIndexOf("/") + 1);
    const handles = new Set<string>();
    const renewals: (number | undefined)[] = [];
    const recording = Object.create(sqs) as SQSClient;
    recording.send = (async (command: Parameters<SQSClient["send"]>[0]) => {
      if (command instanceof ChangeMessageVisibilityCommand && handles.has(command.input.ReceiptHandle!))
        renewals.push(command.input.VisibilityTimeout);
      const response = await sqs.send(command);
      if (command instanceof ReceiveMessageCommand) {
        for (const m of (response as ReceiveMessageCommandOutput).Messages ?? [])
          if (m.Body?.includes(fileName)) handles.add(m.ReceiptHandle!);
      }
      return response;
    }) as SQSClient["send"];
    const slow = worker({ sqs: recording, maxBytesPerSecond: 256 * 1024 });
    slow.start();
    try {
      await s3.send(new PutObjectCommand({ Bucket: cloud.endpoints.s3.bucket, Key: key, Body: body }));
      // Three renewals, one a second, from a lease of 2 s: the first lease has run out by now.
      await waitFor("three renewals during the copy", () => renewals.length >= 3);
      assert.equal(slow.stats().copiesInFlight, 1, "still copying");
      // Another consumer looks: the message must still be hidden. (Visibility 0 hands back
      // anything it receives at once.)
      const probe = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: cloud.endpoints.sqs.queueUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 0,
          VisibilityTimeout: 0,
        }),
      );
      assert.deepEqual(
        (probe.Messages ?? []).filter((m) => m.Body?.includes(fileName)).length,
        0,
        "the message came back while its copy ran",
      );
      await waitFor("the copy", () => finalizesOf(key).length === 1);
      await slow.drained();
    } finally {
      await slow.stop();
    }
    assert.equal(handles.size, 1, "received once");
    assert.deepEqual(new Set(renewals), new Set([2]), "each renewal is for the whole lease");
    const stats = slow.stats();
    assert.equal(stats.objectsCopied, 1);
    assert.equal(stats.skippedDuplicates, 0);
    assert.equal(finalizesOf(key).length, 1);
    assert.ok((await gcsFile(key))?.bytes.equals(body));
  });

  describe("logarchive transfer (child process)", () => {
    function startCli(extra: string[]): LoggedProcess {
      const e = cloud.endpoints;
      return startLogarchive(
        [
          "transfer",
          "--sqs-endpoint",
          e.sqs.endpoint,
          "--queue-url",
          e.sqs.queueUrl,
          "--s3-endpoint",
          e.s3.endpoint,
          "--region",
          e.region,
          "--gcs-endpoint",
          e.gcs.apiEndpoint,
          "--gcs-bucket",
          e.gcs.bucket,
          "--gcs-project",
          e.gcs.projectId,
          "--wait-seconds",
          "1",
          ...extra,
        ],
        {
          // One key pair for both: s3rver checks signatures, fauxqs accepts any.
          env: {
            ...process.env,
            AWS_ACCESS_KEY_ID: LOCAL_S3_CREDENTIALS.accessKeyId,
            AWS_SECRET_ACCESS_KEY: LOCAL_S3_CREDENTIALS.secretAccessKey,
            LOGARCHIVE_LOG_LEVEL: "debug",
          },
        },
      );
    }

    it("copies an object and exits 0 on SIGTERM", async () => {
      const key = analyticsKey("web", 200);
      const cli = startCli(["--visibility-timeout", "5"]);
      try {
        await cli.waitForEvent("transfer_started");
        const { body } = await putLogObject(key, '{"message":"via the CLI"}\n');
        await waitFor("the CLI's copy", () => finalizesOf(key).length === 1);
        assert.ok((await gcsFile(key))?.bytes.equals(body));
      } finally {
        cli.child.kill("SIGTERM");
      }
      assert.equal(await cli.exited, 0, cli.log());
      assert.match(cli.log(), /transfer_stopped/);
    });

    it("SIGKILLed mid-copy: nothing in GCS, and the message comes back after the visibility timeout", async () => {
      const key = analyticsKey("web", 201);
      const body = randomBytes(1024 * 1024);
      // 1 MiB at 256 KiB/s: a 4 s copy, twice the 2 s lease.
      const cli = startCli(["--visibility-timeout", "2", "--max-bytes-per-second", "256KiB"]);
      let putAt = 0;
      try {
        await cli.waitForEvent("transfer_started");
        putAt = Date.now();
        await s3.send(new PutObjectCommand({ Bucket: cloud.endpoints.s3.bucket, Key: key, Body: body }));
        await cli.waitForEvent("transfer_copy_started", { where: (e) => e.key === key });
      } finally {
        cli.child.kill("SIGKILL");
      }
      assert.equal(await cli.exited, null);
      // Its own log says the copy was cut short (the 4 s copy outlasting its start is not assumed).
      assert.equal(cli.events("transfer_object_copied").length, 0, "killed before the copy finished");
      // Give the server time to commit anything it (wrongly) would: a check that nothing
      // happens, which a slow machine can only make pass, never fail.
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(await gcsFile(key), null);
      assert.equal(finalizesOf(key).length, 0);

      const next = worker();
      next.start();
      try {
        await waitFor("the redelivered copy", () => finalizesOf(key).length === 1);
      } finally {
        await next.stop();
      }
      assert.ok((await gcsFile(key))?.bytes.equals(body));
      // The message was received no earlier than the PUT, for a 2 s lease the killed process
      // held (and renewed): no other worker got it before that lease ran out.
      const redeliveredAt = Date.parse(finalizesOf(key)[0]!.timeCreated);
      assert.ok(
        redeliveredAt >= putAt + 2000,
        `redelivered ${redeliveredAt - putAt} ms after the PUT, inside the killed process's 2 s lease`,
      );
      assert.equal(next.stats().objectsCopied, 1);
    });
  });

  it("the queue is empty at the end: every message was deleted or is a rejected one", async () => {
    const r = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: cloud.endpoints.sqs.queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 0,
        VisibilityTimeout: 0,
      }),
    );
    for (const m of r.Messages ?? []) assert.equal(m.Body, "hello, not an event");
  });
});
