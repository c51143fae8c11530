import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { parseRfc3339 } from "../../../../lib/record/timestamp.ts";
import { corpusLines } from "../../../test_support/corpora.ts";
import { parseCriLine } from "./cri.ts";
import { ParsedLine } from "./parsed_line.ts";

function parse(line: string | Buffer) {
  const raw = typeof line === "string" ? Buffer.from(line, "latin1") : line;
  // Bytes around the line must not leak into it.
  const b = Buffer.concat([Buffer.from("X 2026-11-21T00:00:00Z stdout F "), raw, Buffer.from(" trailing")]);
  const out = new ParsedLine();
  const ok = parseCriLine(b, 32, 32 + raw.length, out);
  return {
    ok,
    error: out.error,
    stream: out.stream,
    partial: out.partial,
    time: out.hasTime ? { epochSeconds: out.epochSeconds, nanos: out.nanos } : null,
    message: out.bytes.subarray(out.start, out.end),
  };
}

describe("CRI lines", () => {
  it("reads containerd's trimmed UTC timestamp, stream, F tag and message", () => {
    const r = parse("2026-11-21T11:17:37.1234Z stdout F hello world");
    assert.equal(r.ok, true);
    assert.equal(r.stream, "stdout");
    assert.equal(r.partial, false);
    assert.deepEqual(r.time, parseRfc3339("2026-11-21T11:17:37.1234Z"));
    assert.equal(r.message.toString(), "hello world");
  });

  it("reads CRI-O's nine digits with a numeric offset and a P tag on stderr", () => {
    const r = parse("2026-11-21T12:17:37.123456789+01:00 stderr P chunk");
    assert.deepEqual([r.ok, r.stream, r.partial, r.message.toString()], [true, "stderr", true, "chunk"]);
    assert.deepEqual(r.time, { epochSeconds: 1_795_259_857, nanos: 123_456_789 });
  });

  it("accepts tag extensions after the P/F tag", () => {
    const r = parse("2026-11-21T11:17:37Z stdout F:x-ext:more message");
    assert.deepEqual([r.ok, r.partial, r.message.toString()], [true, false, "message"]);
    assert.equal(parse("2026-11-21T11:17:37Z stdout P:ext m").partial, true);
  });

  it("keeps the message byte for byte: tabs, CR, spaces, invalid UTF-8", () => {
    const msg = Buffer.from([0x09, 0x20, 0x41, 0x0d, 0xff, 0xc3, 0x28, 0x20, 0x0d]);
    const r = parse(Buffer.concat([Buffer.from("2026-11-21T11:17:37Z stdout F "), msg]));
    assert.equal(r.ok, true);
    assert.deepEqual(r.message, msg);
  });

  it("reads an empty message, with or without the separating space", () => {
    assert.deepEqual(parse("2026-11-21T11:17:37Z stdout F ").message.length, 0);
    const bare = parse("2026-11-21T11:17:37Z stderr P");
    assert.deepEqual([bare.ok, bare.partial, bare.message.length], [true, true, 0]);
  });

  it("reads a very long message without copying it", () => {
    const body = Buffer.alloc(4 * 1024 * 1024, 0x61);
    const line = Buffer.concat([Buffer.from("2026-11-21T11:17:37Z stdout F "), body]);
    const out = new ParsedLine();
    assert.equal(parseCriLine(line, 0, line.length, out), true);
    assert.equal(out.bytes, line);
    assert.equal(out.end - out.start, body.length);
  });

  const malformed: [string, string, string][] = [
    ["an empty line", "", "empty line"],
    ["text without a timestamp", "hello world", "invalid timestamp"],
    ["an impossible date", "2026-02-30T11:17:37Z stdout F x", "invalid timestamp"],
    ["a timestamp without a zone", "2026-11-21T11:17:37 stdout F x", "invalid timestamp"],
    ["a time past year 9999", "9999-12-31T23:59:59.999999999-23:59 stdout F x", "invalid timestamp"],
    ["a long first field", `${"1".repeat(80)} stdout F x`, "invalid timestamp"],
    ["an unknown stream", "2026-11-21T11:17:37Z stdin F x", "unknown stream"],
    ["a line cut after the timestamp", "2026-11-21T11:17:37Z", "missing stream"],
    ["a missing tag", "2026-11-21T11:17:37Z stdout  x", "missing tag"],
    ["a line cut after the stream", "2026-11-21T11:17:37Z stdout ", "missing tag"],
    ["an unknown tag", "2026-11-21T11:17:37Z stdout X x", "invalid tag"],
    ["a two-letter tag", "2026-11-21T11:17:37Z stdout FF x", "invalid tag"],
    ["a Docker line", '{"log":"x\\n","stream":"stdout","time":"2026-11-21T11:17:37Z"}', "invalid timestamp"],
  ];
  for (const [what, line, reason] of malformed) {
    it(`reports ${what} as "${reason}", keeping the raw bytes`, () => {
      const r = parse(line);
      assert.equal(r.ok, false);
      assert.equal(r.error, reason);
      assert.equal(r.message.toString("latin1"), line);
      assert.equal(r.partial, false);
    });
  }

  it("keeps the timestamp and stream it read before an error", () => {
    const r = parse("2026-11-21T11:17:37Z stderr Q x");
    assert.deepEqual([r.error, r.stream, r.time?.epochSeconds], ["invalid tag", "stderr", 1_795_259_857]);
  });

  it("reads every corpus line wrapped by containerd", () => {
    let n = 0;
    for (const file of [
      "json/beats_elasticsearch_test_json.log",
      "k8s_access/beats_nginx_ingress_controller_test.log",
    ]) {
      for (const msg of corpusLines(file)) {
        const r = parse(Buffer.concat([Buffer.from("2026-11-21T11:17:37.5Z stdout F "), msg]));
        assert.equal(r.ok, true, msg.toString());
        assert.deepEqual(r.message, msg);
        n++;
      }
    }
    assert.ok(n > 50);
  });

  it("returns any message unchanged whatever its bytes (property)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), fc.boolean(), (msg, stderr, partial) => {
        const head = `2026-11-21T11:17:37.000000001+05:30 ${stderr ? "stderr" : "stdout"} ${partial ? "P" : "F"} `;
        const r = parse(Buffer.concat([Buffer.from(head), msg]));
        assert.equal(r.ok, true);
        assert.equal(r.stream, stderr ? "stderr" : "stdout");
        assert.equal(r.partial, partial);
        assert.deepEqual(new Uint8Array(r.message), msg);
      }),
    );
  });

  it("never throws and always keeps the raw line on failure (property)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        const r = parse(Buffer.from(bytes));
        if (!r.ok) assert.deepEqual(new Uint8Array(r.message), bytes);
      }),
    );
  });
});
