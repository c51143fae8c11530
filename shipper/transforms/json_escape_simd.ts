// JSON string escaping of a message's bytes, with UTF-8 validation, in WebAssembly SIMD:
// 16 bytes are tested at once for anything that is not copied as it is (controls, `"`,
// `\`, bytes from 0x80), so plain runs cost a load, four compares and a store per 16 bytes.
// It writes exactly what the JavaScript loop in record_encoder.ts writes (a property test
// compares the two), at 2–3× its speed on log text, where a `"` comes every 15 bytes or so.
//
// The module is assembled here from its instructions (there is no text-format compiler in
// this project's toolchain); each block says what it does. It owns one 64 KiB page: the
// input slice at [0, MAX_INPUT), the output at [OUTPUT, OUTPUT + 6 × MAX_INPUT + 16), two
// lookup tables at TABLES. The page never grows, so the Buffer view of it stays valid.
//
// escape(s, end, d) escapes memory[s, end) to memory[d, …) and returns the end of the
// output, or -1 at the first invalid UTF-8 sequence (WHATWG rules: no overlongs, no
// surrogates, nothing past U+10FFFF), like writeEscapedUtf8.

/** Longest input one call takes; record_encoder.ts escapes longer messages in slices of this. */
export const MAX_INPUT = 8 * 1024;
const OUTPUT = MAX_INPUT;
/** SHORT_ESCAPE (128 bytes) then HEX (16 bytes), past the largest output (6 bytes per input byte + 16). */
const TABLES = 65536 - 256;

// ---------------------------------------------------------------- a small assembler

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
}

const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const name = (s: string): number[] => [...uleb(s.length), ...Buffer.from(s, "latin1")];

const I32 = 0x7f;
const V128 = 0x7b;
const op = {
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  if: [0x04, 0x40],
  else: [0x05],
  end: [0x0b],
  br: (depth: number) => [0x0c, ...uleb(depth)],
  brIf: (depth: number) => [0x0d, ...uleb(depth)],
  return: [0x0f],
  select: [0x1b],
  get: (local: number) => [0x20, ...uleb(local)],
  set: (local: number) => [0x21, ...uleb(local)],
  tee: (local: number) => [0x22, ...uleb(local)],
  load8: (offset = 0) => [0x2d, 0, ...uleb(offset)],
  store8: (offset = 0) => [0x3a, 0, ...uleb(offset)],
  i32: (n: number) => [0x41, ...sleb(n)],
  eqz: [0x45],
  eq: [0x46],
  ne: [0x47],
  ltU: [0x49],
  gtU: [0x4b],
  leU: [0x4d],
  geU: [0x4f],
  ctz: [0x68],
  add: [0x6a],
  and: [0x71],
  shrU: [0x76],
  v128Load: [0xfd, 0x00, 0, 0],
  v128Store: [0xfd, 0x0b, 0, 0],
  v128Splat: (byte: number) => [0xfd, 0x0c, ...new Array<number>(16).fill(byte)],
  i8x16Eq: [0xfd, 0x23],
  i8x16LtU: [0xfd, 0x26],
  v128Or: [0xfd, 0x50],
  i8x16Bitmask: [0xfd, 0x64],
};

// ---------------------------------------------------------------- the function

// Parameters and locals.
const S = 0;
const END = 1;
const D = 2;
const V = 3; // v128
const MASK = 4;
const C = 5;
const C1 = 6;

const add = (local: number, n: number) => [...op.get(local), ...op.i32(n), ...op.add, ...op.set(local)];
const fail = [...op.i32(-1), ...op.return];
/** Unless memory[s + k] is a continuation byte (10xxxxxx), return -1. */
const continuation = (k: number) => [
  ...op.get(S),
  ...op.load8(k),
  ...op.i32(0xc0),
  ...op.and,
  ...op.i32(0x80),
  ...op.ne,
  ...op.if,
  ...fail,
  ...op.end,
];
/** Unless s + k < end, return -1 (a sequence cut off by the end of the input). */
const within = (k: number) => [
  ...op.get(S),
  ...op.i32(k),
  ...op.add,
  ...op.get(END),
  ...op.geU,
  ...op.if,
  ...fail,
  ...op.end,
];
/** c1 = memory[s + 1]; unless it is in [c === lead ? low : 0x80, c === top ? high : 0xbf], return -1. */
const secondByte = (lowLead: number, low: number, highLead: number, high: number) => [
  ...op.get(S),
  ...op.load8(1),
  ...op.set(C1),
  ...op.get(C1),
  ...op.i32(low),
  ...op.i32(0x80),
  ...op.get(C),
  ...op.i32(lowLead),
  ...op.eq,
  ...op.select,
  ...op.ltU,
  ...op.if,
  ...fail,
  ...op.end,
  ...op.get(C1),
  ...op.i32(high),
  ...op.i32(0xbf),
  ...op.get(C),
  ...op.i32(highLead),
  ...op.eq,
  ...op.select,
  ...op.gtU,
  ...op.if,
  ...fail,
  ...op.end,
];
/** memory[d + k] = memory[s + k] */
const copyByte = (k: number) => [...op.get(D), ...op.get(S), ...op.load8(k), ...op.store8(k)];

// Inside `block $done { loop $top { … } }`, `br depth` counts the enclosing ifs, then $top, then $done.
const body = [
  ...op.block,
  ...op.loop,

  // 16 bytes or more left: test them at once; a lane is special if < 0x20, `"`, `\` or ≥ 0x80.
  ...op.get(S),
  ...op.i32(16),
  ...op.add,
  ...op.get(END),
  ...op.leU,
  ...op.if,
  ...op.get(S),
  ...op.v128Load,
  ...op.tee(V),
  ...op.v128Splat(0x20),
  ...op.i8x16LtU,
  ...op.get(V),
  ...op.v128Splat(0x22),
  ...op.i8x16Eq,
  ...op.v128Or,
  ...op.get(V),
  ...op.v128Splat(0x5c),
  ...op.i8x16Eq,
  ...op.v128Or,
  ...op.get(V), // a byte ≥ 0x80 has its high bit set already
  ...op.v128Or,
  ...op.i8x16Bitmask,
  ...op.set(MASK),
  // Store all 16; bytes past the first special one are written again after it.
  ...op.get(D),
  ...op.get(V),
  ...op.v128Store,
  ...op.get(MASK),
  ...op.eqz,
  ...op.if,
  ...add(S, 16),
  ...add(D, 16),
  ...op.br(2), // continue $top
  ...op.end,
  // Skip the plain bytes before the first special one, which the scalar code below handles.
  ...op.get(MASK),
  ...op.ctz,
  ...op.set(MASK),
  ...op.get(S),
  ...op.get(MASK),
  ...op.add,
  ...op.set(S),
  ...op.get(D),
  ...op.get(MASK),
  ...op.add,
  ...op.set(D),
  ...op.else,
  // Fewer than 16 left: byte by byte, to the end.
  ...op.get(S),
  ...op.get(END),
  ...op.geU,
  ...op.brIf(2), // break $done
  ...op.end,

  // One byte: c = memory[s].
  ...op.get(S),
  ...op.load8(),
  ...op.tee(C),
  ...op.i32(0x80),
  ...op.ltU,
  ...op.if,
  // ASCII. Plain (≥ 0x20, not `"` or `\`): copy it.
  ...op.get(C),
  ...op.i32(0x20),
  ...op.geU,
  ...op.get(C),
  ...op.i32(0x22),
  ...op.ne,
  ...op.and,
  ...op.get(C),
  ...op.i32(0x5c),
  ...op.ne,
  ...op.and,
  ...op.if,
  ...op.get(D),
  ...op.get(C),
  ...op.store8(),
  ...add(S, 1),
  ...add(D, 1),
  ...op.br(2), // continue $top
  ...op.end,
  // Escaped: `\` and the short form from SHORT_ESCAPE, else \u00XX with HEX.
  ...op.get(D),
  ...op.i32(0x5c),
  ...op.store8(),
  ...op.get(C),
  ...op.load8(TABLES),
  ...op.tee(C1),
  ...op.if,
  ...op.get(D),
  ...op.get(C1),
  ...op.store8(1),
  ...add(D, 2),
  ...op.else,
  ...op.get(D),
  ...op.i32(0x75),
  ...op.store8(1),
  ...op.get(D),
  ...op.i32(0x30),
  ...op.store8(2),
  ...op.get(D),
  ...op.i32(0x30),
  ...op.store8(3),
  ...op.get(D),
  ...op.get(C),
  ...op.i32(4),
  ...op.shrU,
  ...op.load8(TABLES + 128),
  ...op.store8(4),
  ...op.get(D),
  ...op.get(C),
  ...op.i32(15),
  ...op.and,
  ...op.load8(TABLES + 128),
  ...op.store8(5),
  ...add(D, 6),
  ...op.end,
  ...add(S, 1),
  ...op.br(1), // continue $top
  ...op.end,

  // A UTF-8 lead byte: copy the whole sequence if it is valid, else return -1.
  ...op.get(C),
  ...op.i32(0xc2),
  ...op.ltU,
  ...op.if,
  ...fail,
  ...op.end,
  // Two bytes: C2–DF, 80–BF.
  ...op.get(C),
  ...op.i32(0xe0),
  ...op.ltU,
  ...op.if,
  ...within(1),
  ...continuation(1),
  ...copyByte(0),
  ...copyByte(1),
  ...add(S, 2),
  ...add(D, 2),
  ...op.br(1),
  ...op.end,
  // Three bytes: E0 A0–BF, E1–EC 80–BF, ED 80–9F (no surrogates), EE–EF 80–BF; then 80–BF.
  ...op.get(C),
  ...op.i32(0xf0),
  ...op.ltU,
  ...op.if,
  ...within(2),
  ...secondByte(0xe0, 0xa0, 0xed, 0x9f),
  ...continuation(2),
  ...copyByte(0),
  ...copyByte(1),
  ...copyByte(2),
  ...add(S, 3),
  ...add(D, 3),
  ...op.br(1),
  ...op.end,
  // Four bytes: F0 90–BF, F1–F3 80–BF, F4 80–8F (nothing past U+10FFFF); then 80–BF twice.
  ...op.get(C),
  ...op.i32(0xf5),
  ...op.geU,
  ...op.if,
  ...fail,
  ...op.end,
  ...within(3),
  ...secondByte(0xf0, 0x90, 0xf4, 0x8f),
  ...continuation(2),
  ...continuation(3),
  ...copyByte(0),
  ...copyByte(1),
  ...copyByte(2),
  ...copyByte(3),
  ...add(S, 4),
  ...add(D, 4),
  ...op.br(0),

  ...op.end, // loop
  ...op.end, // block
  ...op.get(D),
  ...op.end,
];

function moduleBytes(): Uint8Array {
  const shortEscape = new Array<number>(128).fill(0);
  for (const [c, e] of [
    [0x22, 0x22],
    [0x5c, 0x5c],
    [0x0a, 0x6e],
    [0x09, 0x74],
    [0x0d, 0x72],
    [0x08, 0x62],
    [0x0c, 0x66],
  ] as const) {
    shortEscape[c] = e;
  }
  const tables = [...shortEscape, ...Buffer.from("0123456789abcdef", "latin1")];
  const code = [
    ...vec([
      [1, V128],
      [3, I32],
    ]),
    ...body,
  ];
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec([[0x60, ...vec([[I32], [I32], [I32]]), ...vec([[I32]])]])), // (i32, i32, i32) -> i32
    ...section(3, vec([[0]])),
    ...section(5, vec([[0x01, 1, 1]])), // one page, which never grows
    ...section(
      7,
      vec([
        [...name("escape"), 0x00, 0],
        [...name("memory"), 0x02, 0],
      ]),
    ),
    ...section(10, vec([[...uleb(code.length), ...code]])),
    ...section(11, vec([[0x00, ...op.i32(TABLES), ...op.end, ...vec(tables.map((b) => [b]))]])),
  ]);
}

// The project compiles without the DOM library, which is where TypeScript declares the
// WebAssembly global; this is the part of it used here.
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
};

/** The compiled module's function and a view of its memory, or null where WebAssembly SIMD is not available. */
function instantiate(): { run: (s: number, end: number, d: number) => number; memory: Buffer } | null {
  try {
    const instance = new WebAssembly.Instance(new WebAssembly.Module(moduleBytes()), {});
    const memory = instance.exports.memory as { buffer: ArrayBuffer };
    return {
      run: instance.exports.escape as (s: number, end: number, d: number) => number,
      memory: Buffer.from(memory.buffer),
    };
  } catch {
    // --jitless, or a CPU without the vector instructions V8 needs for SIMD.
    return null;
  }
}

const wasm = instantiate();

/**
 * Escapes `src[i, end)` (at most MAX_INPUT bytes) into `dst` from `o`, which has room for
 * 6 bytes per input byte; returns the end in `dst`, or -1 at the first invalid UTF-8
 * sequence. null where WebAssembly SIMD is not available.
 */
export const escapeJsonSimd:
  | ((src: Buffer, i: number, end: number, dst: Buffer, o: number) => number)
  | null = wasm === null ? null : simdEscaper(wasm.run, wasm.memory);

function simdEscaper(run: (s: number, end: number, d: number) => number, memory: Buffer) {
  return (src: Buffer, i: number, end: number, dst: Buffer, o: number): number => {
    if (end - i > MAX_INPUT) throw new RangeError(`escapeJsonSimd takes at most ${MAX_INPUT} bytes`);
    src.copy(memory, 0, i, end);
    const stop = run(0, end - i, OUTPUT);
    return stop < 0 ? -1 : o + memory.copy(dst, o, OUTPUT, stop);
  };
}
