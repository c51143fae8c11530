import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { checkRecordBytes } from "../../functions/loader/inspect.ts";
import { checkRecordLine, encodeRecord } from "../../lib/record/codec.ts";
import { MAX_RECORD_LINE_BYTES } from "../../lib/record/limits.ts";
import type { LogRecord } from "../../lib/record/schema.ts";
import { formatRecordTimestamp, instantFromMs, parseRfc3339 } from "../../lib/record/timestamp.ts";
import { type DecodedLine, FileDecoder } from "../sources/kubernetes_logs/file_decoder.ts";
import { parseRfc3339Bytes } from "../sources/kubernetes_logs/parser/timestamp.ts";
import { corpusLines } from "../test_support/corpora.ts";
import { MULTILINE_DEFAULTS } from "./multiline/merger.ts";
import { MULTILINE_MODES } from "./multiline/rules.ts";
import {
  appendBatchFields,
  appendRecordEnd,
  batchFieldsFragment,
  OutputBuffer,
  RecordEncoder,
  type RecordMetadata,
} from "./record_encoder.ts";

interface Line {
  epochSeconds: number;
  nanos: number;
  stream: "stdout" | "stderr";
  message: Uint8Array;
  truncated: boolean;
  parseError: string | null;
}

/** The reference record for a line, built the way the schema describes it. */
function reference(meta: RecordMetadata, l: Line, batchId: string, seq: number): string {
  const bytes = Buffer.from(l.message);
  const text = new TextDecoder().decode(bytes);
  const valid = Buffer.from(text).equals(bytes);
  const record: LogRecord = {
    timestamp: formatRecordTimestamp(l),
    timestamp_nanos: l.nanos,
    namespace: meta.namespace,
    pod: meta.pod,
    pod_uid: meta.podUid,
    container: meta.container,
    container_id: meta.containerId,
    restart_count: meta.restartCount,
    node: meta.node,
    stream: l.stream,
    message: text,
    message_base64: valid ? undefined : bytes.toString("base64"),
    truncated: l.truncated ? true : undefined,
    parse_error: l.parseError ?? undefined,
    batch_id: batchId,
    seq,
  };
  return `${encodeRecord(record)}\n`;
}

function encodeAll(meta: RecordMetadata, lines: Line[], batchId: string, out = new OutputBuffer(16)): Buffer {
  const encoder = new RecordEncoder(meta);
  const fragment = batchFieldsFragment(batchId);
  lines.forEach((l, seq) => {
    const padded = Buffer.concat([Buffer.from('"\\'), l.message, Buffer.from("\\\u0000")]);
    encoder.encode(
      out,
      l.epochSeconds,
      l.nanos,
      l.stream,
      padded,
      2,
      2 + l.message.length,
      l.truncated,
      l.parseError,
    );
    appendBatchFields(out, fragment, seq);
  });
  return out.view();
}

// Bytes that exercise every branch: escapes, controls, DEL, U+2028, overlongs,
// surrogates, truncated sequences and code points past U+10FFFF.
const interesting = [
  [0x22],
  [0x5c],
  [0x00],
  [0x1f],
  [0x0a],
  [0x0d],
  [0x09],
  [0x08],
  [0x0c],
  [0x7f],
  [0xe2, 0x80, 0xa8],
  [0xc3, 0xa9],
  [0xf0, 0x9f, 0x98, 0x80],
  [0xc0, 0xaf],
  [0xe0, 0x80, 0xaf],
  [0xed, 0xa0, 0x80],
  [0xf4, 0x90, 0x80, 0x80],
  [0xf0, 0x9f, 0x98],
  [0xe2, 0x82],
  [0xff],
  [0x80],
];
const messageArb = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  fc
    .array(
      fc.oneof(fc.constantFrom(...interesting), fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 4 })),
      {
        maxLength: 24,
      },
    )
    .map((parts) => new Uint8Array(parts.flat())),
  fc.string({ unit: "grapheme", maxLength: 40 }).map((s) => new Uint8Array(Buffer.from(s))),
);
const lineArb: fc.Arbitrary<Line> = fc.record({
  epochSeconds: fc.integer({ min: 0, max: 253_402_300_799 }),
  nanos: fc.integer({ min: 0, max: 999_999_999 }),
  stream: fc.constantFrom("stdout", "stderr"),
  message: messageArb,
  truncated: fc.boolean(),
  parseError: fc.option(fc.string({ maxLength: 20 })),
});
const metaArb: fc.Arbitrary<RecordMetadata> = fc.record(
  {
    namespace: fc.string({ minLength: 1, maxLength: 10 }),
    pod: fc.string({ minLength: 1, maxLength: 10 }),
    podUid: fc.uuid(),
    container: fc.string({ minLength: 1, maxLength: 10 }),
    containerId: fc.stringMatching(/^[0-9a-f]{1,64}$/),
    restartCount: fc.nat(),
    node: fc.string({ unit: "grapheme", minLength: 1, maxLength: 10 }),
  },
  { requiredKeys: ["namespace", "pod", "container", "node"] },
);

describe("record encoder", () => {
  it("writes the same bytes as encodeRecord, for any message bytes and metadata (property)", () => {
    fc.assert(
      fc.property(
        metaArb,
        fc.array(lineArb, { minLength: 1, maxLength: 8 }),
        fc.string({ maxLength: 30 }),
        (meta, lines, batchId) => {
          const want = lines.map((l, seq) => reference(meta, l, batchId, seq)).join("");
          assert.equal(
            encodeAll(meta, lines, batchId).toString("latin1"),
            Buffer.from(want).toString("latin1"),
          );
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("writes lines that pass checkRecordLine (property)", () => {
    const meta = {
      namespace: "payments",
      pod: "api-0",
      podUid: "u-1",
      container: "api",
      restartCount: 2,
      node: "node-a",
    };
    fc.assert(
      fc.property(fc.array(lineArb, { minLength: 1, maxLength: 5 }), (lines) => {
        const text = encodeAll(meta, lines, "node-a_0123abcd_000000000007").toString("utf8");
        const records = text.split("\n");
        assert.equal(records.pop(), "");
        for (const r of records) assert.equal(checkRecordLine(r), null, r);
        assert.deepEqual(
          records.map((r) => JSON.parse(r).seq),
          lines.map((_, i) => i),
        );
      }),
    );
  });

  it("dates records as parseRfc3339 and formatRecordTimestamp do, from runtime timestamp bytes (property)", () => {
    const meta = { namespace: "ns", pod: "p", container: "c", node: "n" };
    const rfc3339 = fc
      .tuple(
        fc.date({
          min: new Date("0100-01-01T00:00:00Z"),
          max: new Date("9999-12-30T00:00:00Z"),
          noInvalidDate: true,
        }),
        fc.stringMatching(/^(\.\d{1,9})?$/),
        fc.constantFrom("Z", "+01:00", "-05:30", "+0000", "+14:00"),
      )
      .map(([d, frac, zone]) => `${d.toISOString().slice(0, 19)}${frac}${zone}`);
    fc.assert(
      fc.property(rfc3339, (text) => {
        const slot = { epochSeconds: 0, nanos: 0 };
        assert.ok(parseRfc3339Bytes(Buffer.from(text), 0, text.length, slot));
        const line: Line = {
          ...slot,
          stream: "stdout",
          message: new Uint8Array(),
          truncated: false,
          parseError: null,
        };
        const t = parseRfc3339(text)!;
        assert.equal(encodeAll(meta, [line], "b").toString(), reference(meta, { ...line, ...t }, "b", 0));
      }),
    );
  });

  it("encodes the corpora's JSON app logs, surrogate escapes and NULs included, like encodeRecord", () => {
    const meta = { namespace: "ns", pod: "p", container: "c", node: "n" };
    const lines: Line[] = [];
    for (const file of [
      "json/fluentbit_utf8_surrogate_bench_2k.ndjson",
      "json/beats_kibana_log_test.log",
      "multiline/fluentbit_filter_multiline_example.log",
    ]) {
      for (const message of corpusLines(file)) {
        lines.push({
          epochSeconds: 1_795_259_857 + lines.length,
          nanos: 1,
          stream: "stdout",
          message,
          truncated: false,
          parseError: null,
        });
      }
    }
    assert.ok(lines.length > 2000);
    const want = lines.map((l, seq) => reference(meta, l, "b", seq)).join("");
    assert.equal(encodeAll(meta, lines, "b").toString(), want);
  });

  it("keeps valid UTF-8 raw and base64s only invalid messages", () => {
    const meta = { namespace: "ns", pod: "p", container: "c", node: "n" };
    const out = new OutputBuffer();
    const encoder = new RecordEncoder(meta);
    const valid = Buffer.from("é\u2028😀");
    encoder.encode(out, 0, 0, "stdout", valid, 0, valid.length, false, null);
    appendRecordEnd(out);
    const invalid = Buffer.from([0x61, 0xff, 0x62]);
    encoder.encode(out, 0, 0, "stderr", invalid, 0, invalid.length, false, null);
    appendRecordEnd(out);
    const [a, b] = out
      .view()
      .toString()
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.deepEqual([a.message, a.message_base64], ["é\u2028😀", undefined]);
    assert.ok(out.view().includes(valid), "valid bytes are copied as they are");
    assert.deepEqual([b.message, b.message_base64], ["a\ufffdb", "Yf9i"]);
  });

  it("grows its buffer for a long message made only of escapes", () => {
    const meta = { namespace: "ns", pod: "p", container: "c", node: "n" };
    const out = new OutputBuffer(16);
    const message = Buffer.alloc(100_000, 0x01);
    new RecordEncoder(meta).encode(out, 0, 0, "stdout", message, 0, message.length, true, "x");
    appendRecordEnd(out);
    const record = JSON.parse(out.view().toString());
    assert.equal(record.message, "\u0001".repeat(100_000));
    assert.deepEqual([record.truncated, record.parse_error], [true, "x"]);
  });
});

describe("record encoder, long messages", () => {
  const meta = { namespace: "ns", pod: "p", container: "c", node: "n" };
  // Long enough for several of the encoder's 8 KiB slices, with multi-byte characters
  // (and broken ones) wherever the slices happen to be cut.
  const longMessageArb = fc
    .tuple(
      fc.array(fc.oneof(fc.constantFrom(...interesting), fc.constant([0x61, 0x62, 0x63, 0x64])), {
        minLength: 1,
        maxLength: 40,
      }),
      fc.integer({ min: 8 * 1024, max: 40 * 1024 }),
      fc.boolean(),
    )
    .map(([units, length, valid]) => {
      const pool = valid
        ? units.filter((u) => Buffer.from(new TextDecoder().decode(new Uint8Array(u))).equals(Buffer.from(u)))
        : units;
      const parts = pool.length > 0 ? pool : [[0x61]];
      const bytes: number[] = [];
      for (let i = 0; bytes.length < length; i++) bytes.push(...parts[i % parts.length]!);
      return new Uint8Array(bytes);
    });

  it("writes the same bytes as encodeRecord for messages longer than a slice (property)", () => {
    fc.assert(
      fc.property(fc.array(longMessageArb, { minLength: 1, maxLength: 3 }), (messages) => {
        const lines: Line[] = messages.map((message, i) => ({
          epochSeconds: 1_795_259_857 + i,
          nanos: 7,
          stream: "stderr",
          message,
          truncated: i === 0,
          parseError: null,
        }));
        const want = lines.map((l, seq) => reference(meta, l, "b", seq)).join("");
        assert.equal(encodeAll(meta, lines, "b").toString("latin1"), Buffer.from(want).toString("latin1"));
      }),
      { numRuns: 150 },
    );
  });

  it("writes the same bytes into a buffer that hands its content on instead of growing (property)", () => {
    // Like the shipper's batch staging: when a reservation does not fit, what is there goes
    // on (to gzip) and writing continues at 0, so a record may be split across chunks.
    class HandingOn extends OutputBuffer {
      readonly chunks: Buffer[] = [];
      override reserve(extra: number): Buffer {
        if (this.length + extra > this.bytes.length && this.length > 0) {
          this.chunks.push(Buffer.from(this.view()));
          this.length = 0;
        }
        return super.reserve(extra);
      }
    }
    fc.assert(
      fc.property(
        fc.array(fc.oneof(longMessageArb, fc.uint8Array({ maxLength: 64 })), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 256, max: 64 * 1024 }),
        (messages, capacity) => {
          const lines: Line[] = messages.map((message, i) => ({
            epochSeconds: 1_795_259_857,
            nanos: i,
            stream: "stdout",
            message,
            truncated: false,
            parseError: i % 2 === 0 ? "bad" : null,
          }));
          const out = new HandingOn(capacity);
          const tail = encodeAll(meta, lines, "b", out);
          const handedOn = Buffer.concat([...out.chunks, tail]);
          assert.equal(handedOn.toString("latin1"), encodeAll(meta, lines, "b").toString("latin1"));
        },
      ),
      { numRuns: 150 },
    );
  });
});

/** The records of NDJSON bytes, as bytes (a string would hide bytes that are not UTF-8). */
function recordLines(ndjson: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  let start = 0;
  for (let nl = ndjson.indexOf(0x0a); nl !== -1; nl = ndjson.indexOf(0x0a, start)) {
    lines.push(ndjson.subarray(start, nl));
    start = nl + 1;
  }
  assert.equal(start, ndjson.length, "the last record ends with a newline");
  return lines;
}

describe("record encoder, whatever the log file holds", () => {
  /** Timestamps at and past the edges of what a record (and BigQuery's TIMESTAMP) can hold. */
  const edgeTimestamp = fc
    .tuple(
      fc.constantFrom("0000", "0001", "0099", "0100", "1899", "1969", "1970", "2026", "9998", "9999"),
      fc.constantFrom("01", "02", "12"),
      fc.constantFrom("01", "28", "29", "31"),
      fc.constantFrom("00:00:00", "23:59:59", "23:59:60", "12:30:00"),
      fc.constantFrom("", ".0", ".999999", ".999999999", ".5"),
      fc.constantFrom("Z", "z", "+00:00", "-00:00", "+23:59", "-23:59", "+0100", "-0001", "+14:00"),
    )
    .map(([y, mo, d, hms, frac, zone]) => `${y}-${mo}-${d}T${hms}${frac}${zone}`);
  const anyTimestamp = fc.oneof(
    edgeTimestamp,
    fc
      .date({
        min: new Date("1900-01-01T00:00:00Z"),
        max: new Date("9999-12-31T23:59:59Z"),
        noInvalidDate: true,
      })
      .map((d) => d.toISOString()),
    fc.string({ unit: "binary-ascii", maxLength: 36 }),
  );
  const stream = fc.constantFrom("stdout", "stderr", "stdin", "");
  /** Stack-trace lines, so that the multi-line merger joins some records. */
  const traceLine = fc.constantFrom(
    "java.lang.IllegalStateException: boom",
    "\tat com.example.Api.handle(Api.java:42)",
    "Caused by: java.io.IOException: x",
    "Traceback (most recent call last):",
    '  File "app.py", line 3, in <module>',
    "ValueError: bad",
    "panic: runtime error",
    "goroutine 1 [running]:",
    "main.main()",
    "\t/app/main.go:12 +0x1d",
  );
  const message = fc.oneof(
    messageArb,
    fc.string({ maxLength: 30 }).map((m) => new Uint8Array(Buffer.from(m))),
    traceLine.map((m) => new Uint8Array(Buffer.from(m))),
  );
  const criLine = fc
    .tuple(anyTimestamp, stream, fc.constantFrom("F", "P", "F:x", "X", ""), message)
    .map(([t, s, tag, msg]) => Buffer.concat([Buffer.from(`${t} ${s} ${tag} `), msg]));
  const dockerLine = fc.tuple(anyTimestamp, stream, message, fc.boolean()).map(([t, s, msg, full]) =>
    Buffer.from(
      JSON.stringify({
        log: Buffer.from(msg).toString("utf8") + (full ? "\n" : ""),
        stream: s,
        time: t,
      }),
    ),
  );
  /** Lines of one file: mostly one format, with the other's lines, cut lines and garbage mixed in. */
  const fileLines = fc.array(
    fc.oneof(
      { weight: 4, arbitrary: criLine },
      { weight: 4, arbitrary: dockerLine },
      {
        weight: 1,
        arbitrary: fc
          .tuple(fc.oneof(criLine, dockerLine), fc.nat())
          .map(([l, cut]) => l.subarray(0, cut % (l.length + 1))),
      },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)) },
    ),
    { minLength: 1, maxLength: 12 },
  );
  /** File mtimes (the time of malformed lines before a good one), past the edges too. */
  const fallbackMs = fc.oneof(
    fc.integer({ min: -62_135_596_800_000, max: 253_402_300_799_999 }),
    fc.constantFrom(-8.64e15, -62_135_596_800_001, 253_402_300_800_000, 8.64e15, 1.5e15),
  );

  const multilineMode = fc.constantFrom(null, ...MULTILINE_MODES);

  it("only writes records the loader's check accepts, from any CRI or Docker lines (property)", () => {
    const meta = { namespace: "payments", pod: "api-0", podUid: "u-1", container: "api", node: "node-a" };
    const fragment = batchFieldsFragment("node-a_0123abcd_000000000007");
    fc.assert(
      fc.property(fileLines, fallbackMs, fc.boolean(), multilineMode, (lines, mtimeMs, merge, mode) => {
        const out = new OutputBuffer(16);
        const encoder = new RecordEncoder(meta);
        const decoder = new FileDecoder({
          merge,
          fallbackTime: instantFromMs(mtimeMs),
          multiline: merge && mode !== null ? { mode, ...MULTILINE_DEFAULTS } : null,
        });
        let seq = 0;
        const sink = (l: DecodedLine) => {
          encoder.encodeLine(out, l);
          appendBatchFields(out, fragment, seq++);
        };
        const file = Buffer.concat(lines.flatMap((l) => [l, Buffer.from("\n")]));
        decoder.push(file, sink);
        decoder.end(sink);
        const records = recordLines(out.view());
        // Merging joins partial chunks; without it every physical line is one record.
        if (!merge) assert.equal(records.length, file.filter((b) => b === 0x0a).length);
        else assert.ok(records.length > 0);
        for (const r of records) {
          // The loader's own check of the bytes (UTF-8, JSON, schema, repeated fields), and its length cap.
          assert.equal(checkRecordBytes(r), null, r.toString());
          assert.equal(checkRecordLine(r.toString("utf8")), null);
          assert.ok(r.length <= MAX_RECORD_LINE_BYTES);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it("writes its longest records, of escapes and bytes that are not UTF-8, within the loader's line limit", () => {
    const meta = {
      namespace: "payments",
      pod: "p".repeat(253),
      container: "c".repeat(63),
      node: "n".repeat(253),
    };
    const worst = Buffer.alloc(3 * 1024 * 1024, 0x01);
    worst[0] = 0xff;
    const chunk = (i: number, partial: boolean) =>
      Buffer.concat([
        Buffer.from(`2026-11-21T11:17:37.${i}Z stdout ${partial ? "P" : "F"} `),
        worst,
        Buffer.from("\n"),
      ]);
    const file = Buffer.concat([chunk(1, false), chunk(2, true), chunk(3, false), worst, Buffer.from("\n")]);
    const fragment = batchFieldsFragment(`${"n".repeat(253)}_0123abcd_000000000007`);
    for (const merge of [true, false]) {
      const out = new OutputBuffer(16);
      const encoder = new RecordEncoder(meta);
      const decoder = new FileDecoder({ merge, fallbackTime: { epochSeconds: 0, nanos: 0 } });
      const sink = (l: DecodedLine) => {
        encoder.encodeLine(out, l);
        appendBatchFields(out, fragment, 999_999_999);
      };
      decoder.push(file, sink);
      decoder.end(sink);
      const records = recordLines(out.view());
      assert.equal(records.length, merge ? 3 : 4);
      for (const r of records) {
        assert.ok(r.length > 7 * 1024 * 1024, `${r.length}`);
        assert.ok(r.length <= MAX_RECORD_LINE_BYTES, `${r.length} > ${MAX_RECORD_LINE_BYTES}`);
        assert.equal(checkRecordBytes(r), null);
      }
    }
  });

  it("keeps a line whose time lies past year 9999 raw, as malformed, dated like one", () => {
    const meta = { namespace: "ns", pod: "p", container: "c", node: "n" };
    const good = "2026-11-21T11:17:37.5Z stdout F before";
    const late = "9999-12-31T23:59:59.999999999-23:59 stdout F too late";
    const dockerLate = '{"log":"too late\\n","stream":"stderr","time":"9999-12-31T23:59:59.999999999-23:59"}';
    const out = new OutputBuffer(16);
    const encoder = new RecordEncoder(meta);
    const decoder = new FileDecoder({ fallbackTime: { epochSeconds: 0, nanos: 0 } });
    const fragment = batchFieldsFragment("b");
    const sink = (l: DecodedLine) => {
      encoder.encodeLine(out, l);
      appendBatchFields(out, fragment, 0);
    };
    decoder.push(Buffer.from(`${good}\n${late}\n`), sink);
    decoder.end(sink);
    const docker = new FileDecoder({ fallbackTime: { epochSeconds: 1_795_259_857, nanos: 0 } });
    docker.push(Buffer.from(`${dockerLate}\n`), sink);
    const records = out
      .view()
      .toString()
      .trimEnd()
      .split("\n")
      .map((r) => {
        assert.equal(checkRecordLine(r), null, r);
        return JSON.parse(r);
      });
    assert.deepEqual(
      records.map((r) => [r.timestamp, r.message, r.parse_error]),
      [
        ["2026-11-21 11:17:37.500000", "before", undefined],
        ["2026-11-21 11:17:37.500000", late, "invalid timestamp"],
        ["2026-11-21 11:17:37.000000", dockerLate, "invalid time"],
      ],
    );
  });
});
