// Gunzip that keeps what it can: every byte that inflates is handed out, and damage
// (trailing garbage, a truncated end, a flipped bit) is reported instead of thrown.
//
// A rotated `.gz` is the only copy of its lines, so a bad byte near its end must not cost
// the lines before it. zlib's stream discards the output of the call in which it finds the
// error (up to one output chunk, 16 KiB), so the input is fed in slices, and on damage the
// input is read once more from the start, the damaged slice byte by byte, to recover the
// output up to the exact byte zlib refused. Damage is rare; the normal path is one pass.
//
// All gzip members are inflated, as gunzip(1) does; zero bytes after a member are padding
// (zlib's own rule), anything else there is damage.
//
// What inflates is trusted only where its integrity can be told: a file cut short inflates
// to a true prefix of its content, and garbage after a member comes after that member's
// CRC-32 has been checked. A flipped bit inside a member is different: deflate goes on
// decoding wrong bytes, usually without complaint, until the member's CRC-32 at its end
// fails (seen: 622 invented lines and 1,504 real ones missing from a 3,000-line file). So
// each input is first inflated once with its output thrown away, and a file with damage
// inside a member hands out nothing: its content is counted lost (from byte 0), never
// archived as lines the container did not write.

import { createReadStream } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { constants, createGunzip, type Gunzip, gunzipSync } from "node:zlib";

export interface GzipDamage {
  /** Compressed bytes zlib accepted before it refused the next one (the input's length when it ends early). */
  readonly offset: number;
  /** zlib's message: `incorrect header check`, `unexpected end of file`, `incorrect data check`, … */
  readonly message: string;
  /** zlib's code: `Z_DATA_ERROR`, `Z_BUF_ERROR`, … */
  readonly code: string;
}

/** The compressed bytes, from the start each time it is called (twice when there is damage). */
export type CompressedBytes = () => AsyncIterable<Uint8Array>;

const SLICE_BYTES = 16 * 1024;
/**
 * zlib's messages for a bad member header: where the next member should start (or the file's
 * first bytes), so every byte inflated before it passed its member's CRC-32.
 */
const BETWEEN_MEMBERS = /header|unknown compression method|invalid window size/;
/** Fed at once during a replay, up to the slice zlib refused. */
const REPLAY_SLICE_BYTES = 256 * 1024;
/** Compressed bytes read from the file at a time. */
const READ_BYTES = 64 * 1024;

/** `What went wrong at offset N`, for logs and one-line errors. */
export function describeGzipDamage(damage: GzipDamage): string {
  return `damaged gzip data at compressed byte ${damage.offset}: ${damage.message}`;
}

/**
 * Inflates `open()`'s bytes. Iterate it for the inflated chunks; when the iteration ends,
 * `damage` says whether (and where) the input was damaged, and the iterator's final value
 * is the same. Iterate once.
 */
export class SalvagingGunzip implements AsyncIterable<Buffer> {
  /** null until the iteration ends, and after it when the input was sound. */
  damage: GzipDamage | null = null;
  /** Inflated bytes handed out so far. */
  inflatedBytes = 0;
  readonly #open: CompressedBytes;

  constructor(open: CompressedBytes) {
    this.#open = open;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer, GzipDamage | null, undefined> {
    const unverifiable = await this.#damageInsideMember();
    if (unverifiable !== null) {
      this.damage = unverifiable;
      return this.damage;
    }
    const zlib = new ZlibFeed();
    let fed = 0;
    try {
      for await (const chunk of this.#open()) {
        for (let at = 0; at < chunk.length; at += SLICE_BYTES) {
          const slice = chunk.subarray(at, Math.min(chunk.length, at + SLICE_BYTES));
          const error = await zlib.write(slice);
          for (const out of zlib.take()) yield this.#emit(out);
          if (error !== null) {
            const lostFrom = zlib.consumed();
            zlib.destroy();
            yield* this.#replay(lostFrom, error);
            return this.damage;
          }
          fed += slice.length;
        }
      }
      const error = await zlib.end();
      for (const out of zlib.take()) yield this.#emit(out);
      // The input was all accepted; the end is what is wrong (truncated, or a partial member).
      if (error !== null) this.damage = damageOf(error, fed);
      return this.damage;
    } finally {
      zlib.destroy();
    }
  }

  /**
   * Inflates the whole input once, output discarded, and returns damage found inside a
   * member (whose inflated bytes cannot be trusted), as damage at offset 0; null when the
   * input is sound, cut short, or damaged only between members.
   */
  async #damageInsideMember(): Promise<GzipDamage | null> {
    const zlib = new ZlibFeed();
    try {
      for await (const chunk of this.#open()) {
        const error = await zlib.write(chunk);
        zlib.take();
        if (error !== null) {
          return BETWEEN_MEMBERS.test(error.message) ? null : untrustedContent(error);
        }
      }
      await zlib.end();
      zlib.take();
      return null;
    } finally {
      zlib.destroy();
    }
  }

  #emit(out: Buffer): Buffer {
    this.inflatedBytes += out.length;
    return out;
  }

  /**
   * Inflates the input again from the start, up to `lostFrom` (where the refused call
   * began) at once and then byte by byte, handing out what the first pass lost.
   */
  async *#replay(lostFrom: number, firstError: ZlibError): AsyncGenerator<Buffer, void, undefined> {
    const zlib = new ZlibFeed();
    const alreadyOut = this.inflatedBytes;
    let out = 0;
    let pos = 0;
    try {
      for await (const chunk of this.#open()) {
        let at = 0;
        while (at < chunk.length) {
          const step = pos + at < lostFrom ? Math.min(REPLAY_SLICE_BYTES, lostFrom - pos - at) : 1;
          const slice = chunk.subarray(at, Math.min(chunk.length, at + step));
          const error = await zlib.write(slice);
          for (const piece of zlib.take()) {
            const skip = Math.max(0, alreadyOut - out);
            out += piece.length;
            if (skip < piece.length) yield this.#emit(skip === 0 ? piece : piece.subarray(skip));
          }
          if (error !== null) {
            this.damage = damageOf(error, zlib.consumed());
            return;
          }
          at += slice.length;
        }
        pos += chunk.length;
      }
    } finally {
      zlib.destroy();
    }
    // The second reading did not fail the same way (the input changed under us): report
    // what the first pass saw.
    this.damage = damageOf(firstError, lostFrom);
  }
}

/** `SalvagingGunzip` over a whole file. */
export function salvageGzipFile(path: string): SalvagingGunzip {
  return new SalvagingGunzip(() => createReadStream(path, { highWaterMark: READ_BYTES }));
}

/**
 * `SalvagingGunzip` over an open file, read by position from byte 0; the handle stays open.
 * Read with `handle.read`, not a stream on its descriptor: a stream left early (as the
 * replay leaves it) closes the descriptor whatever `autoClose` says.
 */
export function salvageGzipHandle(handle: FileHandle): SalvagingGunzip {
  return new SalvagingGunzip(async function* () {
    let position = 0;
    for (;;) {
      // A fresh buffer per read: the consumer may keep a chunk past the next read.
      const { buffer, bytesRead } = await handle.read(
        Buffer.allocUnsafe(READ_BYTES),
        0,
        READ_BYTES,
        position,
      );
      if (bytesRead === 0) return;
      position += bytesRead;
      yield buffer.subarray(0, bytesRead);
    }
  });
}

/** `SalvagingGunzip` over bytes in memory. */
export function salvageGzipBytes(compressed: Uint8Array): SalvagingGunzip {
  return new SalvagingGunzip(async function* () {
    yield compressed;
  });
}

/**
 * Inflates `compressed` at once: what the streaming SalvagingGunzip hands out, and the damage
 * it reports (same bytes, same offset).
 */
export function gunzipSalvageSync(compressed: Uint8Array): { data: Buffer; damage: GzipDamage | null } {
  try {
    return { data: gunzipSync(compressed), damage: null };
  } catch (error) {
    if (!isZlibError(error)) throw error;
    if (error.code !== "Z_BUF_ERROR" && !BETWEEN_MEMBERS.test(error.message)) {
      return { data: Buffer.alloc(0), damage: untrustedContent(error) };
    }
    const upTo = (n: number) =>
      gunzipSync(compressed.subarray(0, n), { finishFlush: constants.Z_SYNC_FLUSH });
    if (error.code === "Z_BUF_ERROR") {
      const data = tryOrNull(() => upTo(compressed.length));
      if (data !== null) return { data, damage: damageOf(error, compressed.length) };
    }
    // Once zlib refuses a byte it refuses every longer input: find the longest prefix it takes.
    let ok = 0;
    let refused = compressed.length;
    let refusal: ZlibError = error;
    while (refused - ok > 1) {
      const mid = ok + Math.floor((refused - ok) / 2);
      try {
        upTo(mid);
        ok = mid;
      } catch (e) {
        if (!isZlibError(e)) throw e;
        refused = mid;
        refusal = e;
      }
    }
    if (refused === compressed.length) refusal = tryError(() => upTo(refused)) ?? refusal;
    return { data: upTo(ok), damage: damageOf(refusal, ok) };
  }
}

interface ZlibError extends Error {
  code: string;
}

function isZlibError(error: unknown): error is ZlibError {
  const code = (error as { code?: unknown } | null)?.code;
  return error instanceof Error && typeof code === "string" && code.startsWith("Z_");
}

/** Damage inside a member, reported at offset 0: nothing of the file is handed out. */
function untrustedContent(error: ZlibError): GzipDamage {
  return {
    offset: 0,
    message: `${error.message} inside a gzip member: its inflated bytes cannot be trusted, so none of the file is read`,
    code: error.code,
  };
}

function damageOf(error: ZlibError, offset: number): GzipDamage {
  return { offset, message: error.message, code: error.code };
}

function tryOrNull<T>(f: () => T): T | null {
  try {
    return f();
  } catch (error) {
    if (!isZlibError(error)) throw error;
    return null;
  }
}

function tryError(f: () => unknown): ZlibError | null {
  try {
    f();
    return null;
  } catch (error) {
    if (!isZlibError(error)) throw error;
    return error;
  }
}

/** One zlib gunzip stream, written a slice at a time, its output collected between writes. */
class ZlibFeed {
  readonly #gunzip: Gunzip = createGunzip();
  #out: Buffer[] = [];
  #error: ZlibError | null = null;
  #ended = false;

  constructor() {
    this.#gunzip.on("data", (b: Buffer) => this.#out.push(b));
    this.#gunzip.on("error", (error: Error) => {
      this.#error ??= isZlibError(error) ? error : Object.assign(error, { code: "Z_UNKNOWN" });
    });
    this.#gunzip.on("end", () => {
      this.#ended = true;
    });
  }

  /** Inflates `slice`; resolves with zlib's error, or null once the slice is consumed. */
  write(slice: Uint8Array): Promise<ZlibError | null> {
    return new Promise((resolve) => {
      const onError = () => resolve(this.#error);
      this.#gunzip.once("error", onError);
      this.#gunzip.write(slice, () => {
        this.#gunzip.off("error", onError);
        resolve(this.#error);
      });
    });
  }

  /** Ends the input; resolves with zlib's error (a truncated member), or null. */
  end(): Promise<ZlibError | null> {
    return new Promise((resolve) => {
      if (this.#ended || this.#error !== null) return resolve(this.#error);
      this.#gunzip.once("end", () => resolve(this.#error));
      this.#gunzip.once("error", () => resolve(this.#error));
      this.#gunzip.end();
    });
  }

  /** Output since the last take. */
  take(): Buffer[] {
    const out = this.#out;
    this.#out = [];
    return out;
  }

  /** Compressed bytes zlib consumed in calls that succeeded. */
  consumed(): number {
    return this.#gunzip.bytesWritten;
  }

  destroy(): void {
    this.#gunzip.destroy();
  }
}
