import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  compareSequencers,
  decodeEventKey,
  encodeEventKey,
  formatS3EventMessage,
  formatS3TestEvent,
  isObjectCreated,
  parseS3EventMessage,
  S3EventError,
} from "./s3-event.ts";

const sample = (name: string) => readFileSync(new URL(`./testdata/${name}`, import.meta.url), "utf8");

describe("parseS3EventMessage", () => {
  it("reads the AWS documentation's Put example", () => {
    const msg = parseS3EventMessage(sample("put-docs-example.json"));
    assert.equal(msg.kind, "records");
    assert.deepEqual(msg.kind === "records" && msg.records, [
      {
        eventName: "ObjectCreated:Put",
        eventTime: "1970-01-01T00:00:00.000Z",
        awsRegion: "us-west-2",
        bucket: "amzn-s3-demo-bucket",
        key: "HappyFace.jpg",
        size: 1024,
        eTag: "d41d8cd98f00b204e9800998ecf8427e",
        versionId: "096fKKXTRTtl3on89fVO.nfljtsv6qko",
        sequencer: "0055AED6DCD90281E5",
        configurationId: "testRule",
      },
    ]);
  });

  it("recognises s3:TestEvent, which has no Records", () => {
    assert.deepEqual(parseS3EventMessage(sample("test-event-docs-example.json")), {
      kind: "test",
      bucket: "amzn-s3-demo-bucket",
      time: "2014-10-13T15:57:02.089Z",
    });
  });

  it("decodes %3D in hive-style keys of a multipart upload", () => {
    const msg = parseS3EventMessage(sample("multipart-hive-key.json"));
    assert.ok(msg.kind === "records");
    const [event] = msg.records;
    assert.equal(
      event?.key,
      "logs/analytics/namespace=payments/dt=2026-11-21/hour=11/ip-10-0-1-5.eu-west-1.compute.internal_9f2c1a7b_000000000042.ndjson.gz",
    );
    assert.ok(event && isObjectCreated(event));
  });

  it("unwraps an SNS envelope", () => {
    const body = JSON.stringify({
      Type: "Notification",
      MessageId: "x",
      Message: sample("put-docs-example.json"),
    });
    const msg = parseS3EventMessage(body);
    assert.ok(msg.kind === "records" && msg.records[0]?.key === "HappyFace.jpg");
  });

  it("rejects an eventVersion whose major is not 2", () => {
    const body = sample("put-docs-example.json").replace('"2.1"', '"3.0"');
    assert.throws(() => parseS3EventMessage(body), /eventVersion "3.0" is not 2.x/);
  });

  it("rejects non-JSON and messages that are not S3 events", () => {
    assert.throws(() => parseS3EventMessage("not json"), S3EventError);
    assert.throws(() => parseS3EventMessage('{"hello":1}'), /neither Records nor Event/);
    assert.throws(
      () => parseS3EventMessage(sample("put-docs-example.json").replace('"HappyFace.jpg"', '"bad%zz"')),
      /malformed %-escape/,
    );
  });
});

describe("event key encoding", () => {
  it("matches S3's form encoding: + for space, / kept, = as %3D", () => {
    assert.equal(encodeEventKey("red flower.jpg"), "red+flower.jpg");
    assert.equal(encodeEventKey("a/dt=1/b+c"), "a/dt%3D1/b%2Bc");
    assert.equal(decodeEventKey("red+flower.jpg"), "red flower.jpg");
    assert.equal(decodeEventKey("a%2Bb"), "a+b");
  });

  it("round-trips any key", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: "grapheme", maxLength: 80 }),
        (key) => decodeEventKey(encodeEventKey(key)) === key,
      ),
    );
  });
});

describe("formatS3EventMessage", () => {
  it("produces a message the parser reads back, in AWS's shape", () => {
    const body = formatS3EventMessage({
      eventName: "ObjectCreated:Put",
      eventTime: new Date("2026-11-21T11:00:00Z"),
      awsRegion: "us-east-1",
      bucket: "b",
      key: "logs/analytics/namespace=web/x y.ndjson.gz",
      size: 10,
      eTag: '"abc"',
      sequencer: "0A",
      configurationId: "logarchive-analytics",
    });
    const raw = JSON.parse(body);
    assert.equal(raw.Records[0].s3.object.key, "logs/analytics/namespace%3Dweb/x+y.ndjson.gz");
    assert.equal(raw.Records[0].s3.bucket.arn, "arn:aws:s3:::b");
    assert.equal(raw.Records[0].eventVersion, "2.1");
    const parsed = parseS3EventMessage(body);
    assert.ok(parsed.kind === "records");
    assert.equal(parsed.records[0]?.key, "logs/analytics/namespace=web/x y.ndjson.gz");
    assert.equal(parsed.records[0]?.eTag, "abc");
    assert.equal(parseS3TestEventKind(formatS3TestEvent("b", new Date(0))), "test");
  });
});

function parseS3TestEventKind(body: string): string {
  return parseS3EventMessage(body).kind;
}

describe("compareSequencers", () => {
  it("pads the shorter with zeros before comparing", () => {
    assert.equal(compareSequencers("0A", "00A"), 0);
    assert.ok(compareSequencers("FF", "100") < 0);
    assert.ok(compareSequencers("0055AED6DCD90281E6", "0055AED6DCD90281E5") > 0);
  });
});
