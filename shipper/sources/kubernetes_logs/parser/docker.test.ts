import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { corpusLines } from "../../../test_support/corpora.ts";
import { parseDockerLine } from "./docker.ts";
import { ParsedLine } from "./parsed_line.ts";

const TIME = "2019-04-30T18:33:14.873393957Z";

function parse(line: string | Buffer, out = new ParsedLine()) {
  const raw = typeof line === "string" ? Buffer.from(line) : line;
  const b = Buffer.concat([Buffer.from("{}"), raw, Buffer.from('"}')]);
  const ok = parseDockerLine(b, 2, 2 + raw.length, out);
  return {
    ok,
    error: out.error,
    stream: out.stream,
    partial: out.partial,
    time: out.hasTime ? { epochSeconds: out.epochSeconds, nanos: out.nanos } : null,
    message: Buffer.from(out.bytes.subarray(out.start, out.end)),
  };
}

/** A json-file line as dockerd writes it (Go's encoder escapes <, >, & too; JSON.stringify does not, which is also valid). */
function dockerLine(log: string, stream = "stdout", time = TIME): string {
  return `{"log":${JSON.stringify(log)},"stream":"${stream}","time":"${time}"}`;
}

describe("Docker json-file lines", () => {
  it("reads log, stream and time, and drops the newline that ends a full line", () => {
    const r = parse(dockerLine("hello\n", "stderr"));
    assert.deepEqual([r.ok, r.stream, r.partial, r.message.toString()], [true, "stderr", false, "hello"]);
    assert.deepEqual(r.time, { epochSeconds: 1_556_649_194, nanos: 873_393_957 });
  });

  it("treats a log without a trailing newline as a partial (16 KiB split)", () => {
    const r = parse(dockerLine("x".repeat(16_384)));
    assert.deepEqual([r.ok, r.partial, r.message.length], [true, true, 16_384]);
  });

  it("unescapes JSON escapes into raw bytes, pairing surrogates", () => {
    const r = parse(
      '{"log":"q\\"b\\\\s\\/t\\tcr\\r\\b\\f\\u0000\\u00e9\\u20ac\\ud83d\\ude00\\u003c\\n","stream":"stdout","time":"2026-11-21T00:00:00Z"}',
    );
    assert.equal(r.ok, true);
    assert.deepEqual(r.message, Buffer.from('q"b\\s/t\tcr\r\b\f\u0000é€😀<'));
  });

  it("turns a lone surrogate escape into U+FFFD, as JSON.parse then UTF-8 would", () => {
    const line = '{"log":"a\\ud800b\\udc00\\n","stream":"stdout","time":"2026-11-21T00:00:00Z"}';
    const r = parse(line);
    assert.deepEqual(r.message, Buffer.from(`${JSON.parse(line).log.slice(0, -1)}`));
    assert.deepEqual(r.message, Buffer.from("a\ufffdb\ufffd"));
  });

  it("keeps raw non-ASCII and invalid UTF-8 bytes inside the string", () => {
    const raw = Buffer.concat([
      Buffer.from('{"log":"'),
      Buffer.from([0xc3, 0xa9, 0xff]),
      Buffer.from('\\n","stream":"stdout","time":"2026-11-21T00:00:00Z"}'),
    ]);
    assert.deepEqual(parse(raw).message, Buffer.from([0xc3, 0xa9, 0xff]));
  });

  it("accepts any field order, whitespace and an attrs object", () => {
    const r = parse(
      ` { "time" : "${TIME}", "attrs":{"tag":"a}b","n":[1,{"x":"]"}]} , "stream":"stdout","log":"m\\n" } `,
    );
    assert.deepEqual([r.ok, r.message.toString()], [true, "m"]);
  });

  it("reads an empty full line", () => {
    const r = parse(dockerLine("\n"));
    assert.deepEqual([r.ok, r.partial, r.message.length], [true, false, 0]);
  });

  const malformed: [string, string, string][] = [
    ["an empty line", "", "empty line"],
    ["a CRI line", "2026-11-21T11:17:37Z stdout F x", "not a JSON object"],
    ["a JSON array", "[1]", "not a JSON object"],
    ["a missing log", `{"stream":"stdout","time":"${TIME}"}`, "missing log"],
    ["a missing stream", `{"log":"x\\n","time":"${TIME}"}`, "missing stream"],
    ["a missing time", '{"log":"x\\n","stream":"stdout"}', "missing time"],
    ["an unknown stream", dockerLine("x\n", "stdin"), "unknown stream"],
    ["a bad time", dockerLine("x\n", "stdout", "2019-04-30 18:33"), "invalid time"],
    [
      "a time past year 9999",
      dockerLine("x\n", "stdout", "9999-12-31T23:59:59.999999999-23:59"),
      "invalid time",
    ],
    ["a log that is not a string", `{"log":1,"stream":"stdout","time":"${TIME}"}`, "log is not a string"],
    ["a bad escape", `{"log":"\\x","stream":"stdout","time":"${TIME}"}`, "invalid JSON string in log"],
    [
      "a raw control character",
      `{"log":"a\tb","stream":"stdout","time":"${TIME}"}`,
      "invalid JSON string in log",
    ],
    ["a line cut inside the log", '{"log":"abc', "invalid JSON string in log"],
    ["a line cut after a value", `{"log":"x\\n"`, "invalid JSON"],
    ["a missing colon", `{"log" "x"}`, "invalid JSON"],
    ["bytes after the object", `${dockerLine("x\n")}x`, "bytes after the JSON object"],
  ];
  for (const [what, line, reason] of malformed) {
    it(`reports ${what} as "${reason}", keeping the raw bytes`, () => {
      const r = parse(line);
      assert.equal(r.ok, false);
      assert.equal(r.error, reason);
      assert.equal(r.message.toString(), line);
    });
  }

  it("reads every corpus line as dockerd would have written it", () => {
    let n = 0;
    for (const file of [
      "json/fluentbit_utf8_surrogate_bench_2k.ndjson",
      "multiline/fluentbit_filter_multiline_example.log",
    ]) {
      for (const msg of corpusLines(file)) {
        const text = msg.toString("utf8");
        const r = parse(dockerLine(`${text}\n`));
        assert.equal(r.ok, true);
        assert.deepEqual(r.message, Buffer.from(text));
        n++;
      }
    }
    assert.ok(n > 2000);
  });

  it("decodes what JSON.stringify encodes, for any text (property)", () => {
    const out = new ParsedLine();
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 100 }), fc.boolean(), (text, full) => {
        const r = parse(dockerLine(full ? `${text}\n` : text), out);
        assert.equal(r.ok, true);
        assert.equal(r.partial, !full);
        assert.deepEqual(r.message, Buffer.from(text));
      }),
    );
  });

  it("never throws and always keeps the raw line on failure (property)", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary-ascii", maxLength: 60 }), (text) => {
        const line = `{"log":"${text}`;
        const r = parse(line);
        if (!r.ok) assert.equal(r.message.toString(), line);
      }),
    );
  });
});
