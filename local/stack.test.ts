// The local cloud answers the real AWS and Google clients, and an S3 put becomes an SQS
// message in S3's format only where the namespace policy selects it.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { DeleteMessageCommand, type Message, ReceiveMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { Storage } from "@google-cloud/storage";
import { parseS3EventMessage } from "../lib/events/s3-event.ts";
import { formatObjectKey } from "../lib/keys/layout.ts";
import { fromUserMetadata, toUserMetadata } from "../lib/object/metadata.ts";
import { classifyNamespace, parsePolicy } from "../lib/policy/policy.ts";
import { type LocalCloud, startLocalCloud } from "./stack.ts";

const policy = parsePolicy(`
archive: { prefix: logs }
analytics: { include: ["payments", "web"] }
`);

function keyFor(namespace: string, seq: number): string {
  const c = classifyNamespace(policy, namespace);
  assert.ok(c.archived);
  return formatObjectKey({
    prefix: policy.archive.prefix,
    tier: c.tier,
    namespace,
    dt: "2026-11-21",
    hour: "10",
    node: "node-1",
    epoch: "00c0ffee",
    seq,
  });
}

describe("local cloud", () => {
  let dir: string;
  let cloud: LocalCloud;
  let s3: S3Client;
  let sqs: SQSClient;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logarchive-local-"));
    cloud = await startLocalCloud({ dataDir: dir, policy });
    const e = cloud.endpoints;
    s3 = new S3Client({
      endpoint: e.s3.endpoint,
      region: e.region,
      forcePathStyle: true,
      credentials: { accessKeyId: e.s3.accessKeyId, secretAccessKey: e.s3.secretAccessKey },
    });
    sqs = new SQSClient({
      endpoint: e.sqs.endpoint,
      region: e.region,
      credentials: { accessKeyId: e.sqs.accessKeyId, secretAccessKey: e.sqs.secretAccessKey },
    });
  });

  after(async () => {
    s3?.destroy();
    sqs?.destroy();
    await cloud?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function receiveAll(waitSeconds: number): Promise<Message[]> {
    const out: Message[] = [];
    for (;;) {
      const r = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: cloud.endpoints.sqs.queueUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: out.length === 0 ? waitSeconds : 1,
        }),
      );
      if (!r.Messages?.length) return out;
      for (const m of r.Messages) {
        out.push(m);
        await sqs.send(
          new DeleteMessageCommand({
            QueueUrl: cloud.endpoints.sqs.queueUrl,
            ReceiptHandle: m.ReceiptHandle,
          }),
        );
      }
    }
  }

  it("sends s3:TestEvent first, as S3 does when a configuration is enabled", async () => {
    const [first] = await receiveAll(5);
    assert.ok(first?.Body);
    assert.deepEqual(parseS3EventMessage(first.Body), {
      kind: "test",
      bucket: cloud.endpoints.s3.bucket,
      time: JSON.parse(first.Body).Time,
    });
  });

  it("stores objects with the contract's metadata and notifies only analytics namespaces", async () => {
    const body = gzipSync('{"message":"x"}\n');
    const sha256 = createHash("sha256").update(body).digest();
    const metadata = toUserMetadata({
      schemaVersion: 1,
      records: 1,
      firstTimestamp: "2026-11-21T10:00:00.000000001Z",
      lastTimestamp: "2026-11-21T10:00:00.000000001Z",
      sha256: sha256.toString("hex"),
      rawBytes: 16,
      batchId: "node-1_00c0ffee_000000000001",
      shipperVersion: "test",
    });
    const keys = { payments: keyFor("payments", 1), web: keyFor("web", 2), batch: keyFor("batch-jobs", 3) };
    assert.match(keys.batch, /^logs\/archive\//);
    for (const key of Object.values(keys)) {
      await s3.send(
        new PutObjectCommand({
          Bucket: cloud.endpoints.s3.bucket,
          Key: key,
          Body: body,
          ChecksumSHA256: sha256.toString("base64"),
          ContentType: "application/x-ndjson",
          ContentEncoding: "gzip",
          Metadata: metadata,
        }),
      );
    }
    const head = await s3.send(
      new HeadObjectCommand({ Bucket: cloud.endpoints.s3.bucket, Key: keys.payments }),
    );
    assert.equal(fromUserMetadata(head.Metadata ?? {}).sha256, sha256.toString("hex"));
    const got = await s3.send(new GetObjectCommand({ Bucket: cloud.endpoints.s3.bucket, Key: keys.web }));
    assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(body));

    const messages = await receiveAll(5);
    const events = messages.flatMap((m) => {
      const parsed = parseS3EventMessage(m.Body!);
      assert.equal(parsed.kind, "records");
      return parsed.kind === "records" ? parsed.records : [];
    });
    assert.deepEqual(events.map((e) => e.key).sort(), [keys.payments, keys.web].sort());
    for (const e of events) {
      assert.equal(e.eventName, "ObjectCreated:Put");
      assert.equal(e.bucket, cloud.endpoints.s3.bucket);
      assert.equal(e.size, body.length);
      assert.equal(e.configurationId, "logarchive-analytics");
      assert.match(e.sequencer ?? "", /^[0-9A-F]{18,}$/);
    }
    // On the wire the key is form-encoded, as S3 writes it.
    assert.ok(messages.some((m) => m.Body!.includes("namespace%3Dpayments")));
    assert.equal(cloud.notifications.counts.filtered, 1);
  });

  it("answers the Google Cloud Storage client", async () => {
    const storage = new Storage({
      apiEndpoint: cloud.endpoints.gcs.apiEndpoint,
      projectId: cloud.endpoints.gcs.projectId,
    });
    const file = storage
      .bucket(cloud.endpoints.gcs.bucket)
      .file("logs/analytics/namespace=web/x y.ndjson.gz");
    const body = gzipSync("hello\n");
    await file.save(body, {
      resumable: false,
      metadata: { contentEncoding: "gzip", metadata: { "logarchive-records": "1" } },
    });
    const [meta] = await file.getMetadata();
    assert.equal(meta.metadata?.["logarchive-records"], "1");
    const [downloaded] = await file.download({ decompress: false });
    assert.ok(downloaded.equals(body));
  });

  it("reports the GCS server's failures through its log, not the console", async () => {
    const own = await mkdtemp(join(tmpdir(), "logarchive-local-log-"));
    const reported: { via: string; text: string }[] = [];
    let noted: () => void = () => {};
    const seen = new Promise<void>((resolve) => {
      noted = resolve;
    });
    const consoleError = console.error;
    console.error = (...args: unknown[]) => {
      reported.push({ via: "console.error", text: args.map(String).join(" ") });
      noted();
    };
    const logged = await startLocalCloud({
      dataDir: own,
      policy,
      log: (event, fields) => {
        if (event === "s3_notification_send_failed") return;
        reported.push({ via: "log", text: `${event} ${JSON.stringify(fields)}` });
        noted();
      },
    });
    try {
      logged.onGcsFinalize(() => {
        throw new Error("listener broke");
      });
      const storage = new Storage({
        apiEndpoint: logged.endpoints.gcs.apiEndpoint,
        projectId: logged.endpoints.gcs.projectId,
      });
      await storage.bucket(logged.endpoints.gcs.bucket).file("x.ndjson.gz").save(gzipSync("x\n"), {
        resumable: false,
      });
      await seen;
      assert.equal(reported[0]?.via, "log", JSON.stringify(reported));
      assert.match(reported[0]!.text, /^local_gcs_error .*onFinalize failed.*listener broke/);
    } finally {
      console.error = consoleError;
      await logged.stop();
      await rm(own, { recursive: true, force: true });
    }
  });

  it("has the warehouse table the loader writes to", async () => {
    const c = await cloud.warehouse.connect();
    try {
      const r = await c.runAndReadAll("SELECT count(*) AS n FROM container_logs");
      assert.deepEqual(r.getRowObjectsJson(), [{ n: "0" }]);
    } finally {
      c.closeSync();
    }
  });
});
