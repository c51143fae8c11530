import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { corpusLines } from "../../test_support/corpora.ts";
import { type DecodedLine, FileDecoder, type FileDecoderOptions } from "./file_decoder.ts";

type Got = Omit<DecodedLine, "bytes" | "start" | "end"> & { text: string };

function decode(data: Buffer, chunkSize: number, options: Partial<FileDecoderOptions> = {}): Got[] {
  const got: Got[] = [];
  const sink = (l: DecodedLine) => {
    const { bytes, start, end, ...rest } = l;
    got.push({ ...rest, text: bytes.toString("utf8", start, end) });
  };
  const d = new FileDecoder({ fallbackTime: { epochSeconds: 42, nanos: 7 }, ...options });
  for (let i = 0; i < data.length; i += chunkSize) d.push(data.subarray(i, i + chunkSize), sink);
  d.end(sink);
  return got;
}

const T0 = 1_795_259_857; // 2026-11-21T11:17:37Z

/** A containerd-style file: each message split into 16 KiB P chunks, stderr lines interleaved. */
function criFile(messages: Buffer[]): Buffer {
  const parts: Buffer[] = [];
  messages.forEach((m, i) => {
    const stream = i % 3 === 0 ? "stderr" : "stdout";
    for (let at = 0; at === 0 || at < m.length; at += 16_384) {
      const last = at + 16_384 >= m.length;
      parts.push(
        Buffer.from(`2026-11-21T11:17:37.${String(i + 1).padStart(9, "0")}Z ${stream} ${last ? "F" : "P"} `),
      );
      parts.push(m.subarray(at, at + 16_384), Buffer.from("\n"));
    }
  });
  return Buffer.concat(parts);
}

describe("file decoder", () => {
  const messages = [
    ...corpusLines("json/beats_elasticsearch_test_json.log"),
    ...corpusLines("k8s_access/beats_nginx_ingress_controller_test.log"),
    Buffer.alloc(40_000, 0x7a), // split by the runtime into three chunks
    Buffer.from("tab\there, CR at the end\r"),
    Buffer.alloc(0),
  ];

  it("reproduces every corpus line from a CRI file, whatever the read size", () => {
    const data = criFile(messages);
    for (const chunkSize of [1, 7, 4096, 65_536, data.length]) {
      const got = decode(data, chunkSize);
      assert.deepEqual(
        got.map((l) => l.text),
        messages.map((m) => m.toString("utf8")),
        `chunk size ${chunkSize}`,
      );
      assert.ok(got.every((l) => l.parseError === null && !l.truncated && !l.unterminated && !l.partial));
      assert.deepEqual(
        got.map((l) => [l.stream, l.epochSeconds, l.nanos]),
        messages.map((_, i) => [i % 3 === 0 ? "stderr" : "stdout", T0, i + 1]),
      );
    }
  });

  it("reproduces the lines of a Docker json-file log, partials merged", () => {
    const texts = ["plain", 'ünïcödé and "quotes"', "x".repeat(20_000)];
    const data = Buffer.from(
      texts
        .flatMap((t) => {
          const pieces = t.length > 16_384 ? [t.slice(0, 16_384), `${t.slice(16_384)}\n`] : [`${t}\n`];
          return pieces.map((log) =>
            JSON.stringify({ log, stream: "stdout", time: "2026-11-21T11:17:37.000000001Z" }),
          );
        })
        .join("\n"),
    );
    const got = decode(data, 1000);
    assert.deepEqual(
      got.map((l) => l.text),
      texts,
    );
  });

  it("keeps a malformed line, dated by the previous good line, or the fallback before any", () => {
    const data = Buffer.from(
      [
        "garbage first",
        "2026-11-21T11:17:37.5Z stdout F good",
        "half a line",
        "2026-11-21T11:17:38Z stderr X bad tag",
      ].join("\n"),
    );
    const got = decode(data, 5);
    assert.deepEqual(
      got.map((l) => [l.text, l.parseError, l.stream, l.epochSeconds, l.nanos]),
      [
        ["garbage first", "invalid timestamp", "stdout", 42, 7],
        ["good", null, "stdout", T0, 500_000_000],
        ["half a line", "invalid timestamp", "stdout", T0, 500_000_000],
        ["2026-11-21T11:17:38Z stderr X bad tag", "invalid tag", "stderr", T0 + 1, 0],
      ],
    );
  });

  it("does not let a malformed line join or break a pending partial", () => {
    const data = Buffer.from(
      "2026-11-21T11:17:37Z stdout P a\n\x00garbage\n2026-11-21T11:17:37Z stdout F b\n",
    );
    const got = decode(data, 3);
    assert.deepEqual(
      got.map((l) => [l.text, l.parseError]),
      [
        ["\x00garbage", "invalid timestamp"],
        ["ab", null],
      ],
    );
  });

  it("without merging gives one line per physical line with its partial flag", () => {
    const data = Buffer.from("2026-11-21T11:17:37Z stdout P a\n2026-11-21T11:17:37Z stdout F b\n");
    const got = decode(data, 100, { merge: false });
    assert.deepEqual(
      got.map((l) => [l.text, l.partial]),
      [
        ["a", true],
        ["b", false],
      ],
    );
  });

  it("flushes a P left at the end of a finished file as unterminated", () => {
    const got = decode(Buffer.from("2026-11-21T11:17:37Z stdout P prompt> "), 10);
    assert.deepEqual(
      got.map((l) => [l.text, l.unterminated]),
      [["prompt> ", true]],
    );
  });

  it("resumes from a checkpoint taken anywhere with the same lines as an uninterrupted read", () => {
    const data = criFile(messages);
    const whole = decode(data, 4096).map((l) => l.text);
    for (const at of [1, 5000, 20_000, 50_000, data.length - 3]) {
      const texts: string[] = [];
      const sink = (l: DecodedLine) => texts.push(l.bytes.toString("utf8", l.start, l.end));
      const first = new FileDecoder({ fallbackTime: { epochSeconds: 0, nanos: 0 } });
      first.push(data.subarray(0, at), sink);
      const saved = JSON.parse(JSON.stringify(first.checkpoint()));
      const second = new FileDecoder({ fallbackTime: { epochSeconds: 0, nanos: 0 }, resumeFrom: saved });
      second.push(data.subarray(saved.reader.offset), sink);
      second.end(sink);
      assert.deepEqual(texts, whole, `checkpoint at ${at}`);
    }
  });

  it("caps merged, unmerged and malformed lines alike (property)", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.string({ unit: "grapheme", maxLength: 30 }).filter((s) => !s.includes("\ufffd")),
            fc.constantFrom("P", "F", "?"),
          ),
          { maxLength: 20 },
        ),
        fc.integer({ min: 1, max: 20 }),
        fc.boolean(),
        fc.integer({ min: 1, max: 50 }),
        (lines, cap, merge, chunkSize) => {
          const data = Buffer.from(
            lines.map(([m, tag]) => (tag === "?" ? m : `2026-11-21T11:17:37Z stdout ${tag} ${m}`)).join("\n"),
          );
          const got = decode(data, chunkSize, { maxLineBytes: cap, merge });
          for (const l of got) {
            assert.ok(Buffer.byteLength(l.text) <= cap);
            assert.ok(!l.text.includes("\ufffd"), "cuts keep characters whole");
          }
          if (!merge) {
            // Unmerged, every physical line is one record, malformed or not.
            const text = data.toString();
            const physical = text === "" ? 0 : text.split("\n").length - (text.endsWith("\n") ? 1 : 0);
            assert.equal(got.length, physical);
          }
        },
      ),
    );
  });
});
