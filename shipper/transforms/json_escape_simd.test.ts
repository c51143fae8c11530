import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { escapeJsonSimd, MAX_INPUT } from "./json_escape_simd.ts";
import { writeEscapedUtf8 } from "./record_encoder.ts";

// Bytes that take every branch: escapes, controls, DEL, multi-byte characters, overlongs,
// surrogates, cut sequences, code points past U+10FFFF, stray continuation bytes.
const units = [
  [0x22],
  [0x5c],
  [0x00],
  [0x1f],
  [0x0a],
  [0x09],
  [0x7f],
  [0x41],
  [0x20],
  [0xc3, 0xa9],
  [0xe2, 0x80, 0xa8],
  [0xed, 0x9f, 0xbf],
  [0xf0, 0x9f, 0x98, 0x80],
  [0xf4, 0x8f, 0xbf, 0xbf],
  [0xc0, 0xaf],
  [0xc2],
  [0xe0, 0x80, 0xaf],
  [0xed, 0xa0, 0x80],
  [0xf0, 0x8f, 0xbf, 0xbf],
  [0xf4, 0x90, 0x80, 0x80],
  [0xf5, 0x80, 0x80, 0x80],
  [0xe2, 0x82],
  [0x80],
  [0xff],
];
const bytesArb = fc.oneof(
  fc.uint8Array({ maxLength: 100 }),
  fc
    .tuple(
      fc.array(fc.constantFrom(...units), { minLength: 1, maxLength: 30 }),
      fc.integer({ min: 0, max: MAX_INPUT }),
    )
    .map(([parts, length]) => {
      const out: number[] = [];
      for (let i = 0; out.length < length; i++) out.push(...parts[i % parts.length]!);
      return new Uint8Array(out.slice(0, length));
    }),
  // Mostly plain text with a few specials, as log lines are: long runs for the 16-byte path.
  fc
    .array(
      fc.oneof(
        { weight: 20, arbitrary: fc.constant([0x61]) },
        { weight: 1, arbitrary: fc.constantFrom(...units) },
      ),
      {
        maxLength: 3000,
      },
    )
    .map((parts) => new Uint8Array(parts.flat())),
);

function js(src: Buffer, i: number, end: number): Buffer | null {
  const dst = Buffer.alloc(6 * (end - i) + 16);
  const o = writeEscapedUtf8(src, i, end, dst, 3);
  return o < 0 ? null : dst.subarray(3, o);
}

function simd(src: Buffer, i: number, end: number): Buffer | null {
  const dst = Buffer.alloc(6 * (end - i) + 16);
  const o = escapeJsonSimd!(src, i, end, dst, 3);
  return o < 0 ? null : dst.subarray(3, o);
}

describe("JSON escaping in WebAssembly SIMD", () => {
  it("is available on this platform (else the encoder falls back to the JavaScript loop)", () => {
    assert.notEqual(escapeJsonSimd, null);
  });

  it("writes what the JavaScript loop writes, and rejects what it rejects (property)", () => {
    fc.assert(
      fc.property(bytesArb, fc.nat(8), (bytes, pad) => {
        const src = Buffer.concat([Buffer.alloc(pad, 0x22), Buffer.from(bytes), Buffer.alloc(pad, 0x80)]);
        const want = js(src, pad, pad + bytes.length);
        const got = simd(src, pad, pad + bytes.length);
        assert.deepEqual(got === null ? null : [...got], want === null ? null : [...want]);
      }),
      { numRuns: 3000 },
    );
  });

  it("escapes like JSON.stringify", () => {
    const text = `plain "quoted" back\\slash \n\t\r\b\f \u0000\u001f\u007f é \u2028 😀 ${"x".repeat(40)}`;
    const out = simd(Buffer.from(text), 0, Buffer.byteLength(text));
    assert.equal(`"${out!.toString()}"`, JSON.stringify(text));
  });

  it("takes at most MAX_INPUT bytes at once", () => {
    const big = Buffer.alloc(MAX_INPUT + 1, 0x61);
    assert.throws(() => simd(big, 0, big.length), RangeError);
    assert.equal(simd(big, 1, big.length)!.length, MAX_INPUT);
  });
});
