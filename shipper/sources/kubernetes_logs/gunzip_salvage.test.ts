import assert from "node:assert/strict";
import { once } from "node:events";
import fs, { type ReadStream } from "node:fs";
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { syncBuiltinESMExports } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it, mock } from "node:test";
import { constants, gunzipSync, gzipSync } from "node:zlib";
import fc from "fast-check";
import {
  describeGzipDamage,
  type GzipDamage,
  gunzipSalvageSync,
  type SalvagingGunzip,
  salvageGzipBytes,
  salvageGzipFile,
  salvageGzipHandle,
} from "./gunzip_salvage.ts";

/** Log-like text that compresses to well over one 16 KiB input slice. */
function logText(lines: number, seed = 1): Buffer {
  let x = seed;
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
    out.push(`2026-11-21T11:17:${String(i % 60).padStart(2, "0")}Z stdout F line ${i} ${x.toString(36)}\n`);
  }
  return Buffer.from(out.join(""));
}

async function drain(g: SalvagingGunzip): Promise<{ data: Buffer; damage: GzipDamage | null }> {
  const parts: Buffer[] = [];
  for await (const chunk of g) parts.push(chunk);
  const data = Buffer.concat(parts);
  assert.equal(g.inflatedBytes, data.length);
  return { data, damage: g.damage };
}

/**
 * The most a gunzip can hand out: the output of the longest prefix zlib takes without an
 * error, found by trying prefixes from the whole input down (quick when the damage is found
 * near the end, as a flipped bit caught by the CRC is).
 */
function longestSoundPrefix(compressed: Buffer): { data: Buffer; offset: number } {
  for (let n = compressed.length; n >= 0; n--) {
    try {
      const data = gunzipSync(compressed.subarray(0, n), { finishFlush: constants.Z_SYNC_FLUSH });
      return { data, offset: n };
    } catch {
      // refused: try one byte less
    }
  }
  throw new Error("unreachable: the empty prefix inflates to nothing");
}

const TEXT = logText(12_000);
const GZ = gzipSync(TEXT);

describe("salvaging gunzip", () => {
  it("inflates a sound file exactly, reporting no damage", async () => {
    assert.ok(GZ.length > 64 * 1024, "the sample spans several input slices");
    const { data, damage } = await drain(salvageGzipBytes(GZ));
    assert.equal(damage, null);
    assert.ok(data.equals(TEXT));
  });

  it("inflates every member of a multi-member file, and takes zero padding after the last", async () => {
    const second = Buffer.from("second member\n");
    const { data, damage } = await drain(
      salvageGzipBytes(Buffer.concat([GZ, gzipSync(second), Buffer.alloc(16)])),
    );
    assert.equal(damage, null);
    assert.ok(data.equals(Buffer.concat([TEXT, second])));
  });

  it("keeps every line before trailing garbage, and says where the garbage starts", async () => {
    const { data, damage } = await drain(salvageGzipBytes(Buffer.concat([GZ, Buffer.from("garbage\n")])));
    assert.ok(data.equals(TEXT));
    assert.deepEqual(damage, {
      offset: GZ.length + 1,
      message: "incorrect header check",
      code: "Z_DATA_ERROR",
    });
  });

  it("keeps everything a truncated file inflates to, and reports the early end", async () => {
    const cut = GZ.subarray(0, Math.floor(GZ.length * 0.6));
    const { data, damage } = await drain(salvageGzipBytes(cut));
    const expected = gunzipSync(cut, { finishFlush: constants.Z_SYNC_FLUSH });
    assert.ok(expected.length > TEXT.length / 2);
    assert.ok(data.equals(expected));
    assert.deepEqual(damage, { offset: cut.length, message: "unexpected end of file", code: "Z_BUF_ERROR" });
  });

  it("hands out nothing of a file whose member a flipped bit damaged: its CRC-32 fails, and what inflated is not the content", async () => {
    const flipped = Buffer.from(GZ);
    flipped[Math.floor(GZ.length / 3)]! ^= 0x55;
    // What zlib inflates before it finds the damage differs from the text (the reason
    // nothing is handed out), and zlib finds it only at the member's end.
    const prefix = longestSoundPrefix(flipped);
    assert.ok(!TEXT.subarray(0, prefix.data.length).equals(prefix.data), "zlib inflated wrong bytes");
    const { data, damage } = await drain(salvageGzipBytes(flipped));
    assert.equal(data.length, 0);
    assert.equal(damage?.offset, 0);
    assert.equal(damage?.code, "Z_DATA_ERROR");
    assert.match(
      damage?.message ?? "",
      /^incorrect data check inside a gzip member: .*none of the file is read$/,
    );
  });

  it("hands out nothing when the member's CRC-32 or length in its trailer is wrong", async () => {
    for (const at of [GZ.length - 8, GZ.length - 1]) {
      const bad = Buffer.from(GZ);
      bad[at]! ^= 0x01;
      const { data, damage } = await drain(salvageGzipBytes(bad));
      assert.equal(data.length, 0, `byte ${at}`);
      assert.equal(damage?.offset, 0);
    }
  });

  it("reports a file that is not gzip at all, with nothing inflated", async () => {
    const { data, damage } = await drain(salvageGzipBytes(TEXT.subarray(0, 200)));
    assert.equal(data.length, 0);
    assert.deepEqual(damage, { offset: 1, message: "incorrect header check", code: "Z_DATA_ERROR" });
    assert.equal(
      describeGzipDamage(damage!),
      "damaged gzip data at compressed byte 1: incorrect header check",
    );
  });

  it("reports an empty file as ending early", async () => {
    const { data, damage } = await drain(salvageGzipBytes(Buffer.alloc(0)));
    assert.equal(data.length, 0);
    assert.equal(damage?.message, "unexpected end of file");
  });

  it("reads files by path and by open handle, the handle left open", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gunzip-salvage-"));
    try {
      const path = join(dir, "0.log.20260101-000000.gz");
      const damaged = Buffer.concat([GZ, Buffer.from([0x1f, 0x8b, 0x99, 0, 0, 0, 0, 0, 0, 0])]);
      await writeFile(path, damaged);
      const byPath = await drain(salvageGzipFile(path));
      const handle = await open(path);
      try {
        const byHandle = await drain(salvageGzipHandle(handle));
        assert.deepEqual(byHandle, byPath);
        assert.equal((await handle.stat()).size, damaged.length, "the handle is still usable");
      } finally {
        await handle.close();
      }
      assert.ok(byPath.data.equals(TEXT));
      assert.equal(byPath.damage?.message, "unknown compression method");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("leaves the handle usable after salvaging damage mid-file, where the reading stops early", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gunzip-salvage-"));
    try {
      const path = join(dir, "0.log.20260101-000000.gz");
      // Garbage after the first member, and more bytes after it than one read takes.
      const damaged = Buffer.concat([GZ, Buffer.from("garbage\n"), GZ, GZ]);
      await writeFile(path, damaged);
      const handle = await open(path);
      // A stream on the descriptor closes it when destroyed, whatever autoClose says, but only
      // once its read in flight is done: wait for every stream opened to settle before looking.
      const streams: ReadStream[] = [];
      const createReadStream = fs.createReadStream;
      mock.method(fs, "createReadStream", (...args: Parameters<typeof fs.createReadStream>) => {
        const stream = createReadStream(...args);
        streams.push(stream);
        return stream;
      });
      syncBuiltinESMExports();
      try {
        const { data, damage } = await drain(salvageGzipHandle(handle));
        mock.restoreAll();
        syncBuiltinESMExports();
        await Promise.all(streams.filter((st) => st.destroyed && !st.closed).map((st) => once(st, "close")));
        assert.ok(data.equals(TEXT));
        assert.deepEqual(damage, {
          offset: GZ.length + 1,
          message: "incorrect header check",
          code: "Z_DATA_ERROR",
        });
        // A descriptor closed under the handle fails with EBADF, or reads another file once reused.
        assert.equal((await handle.stat()).size, damaged.length);
        const head = Buffer.alloc(64);
        const { bytesRead } = await handle.read(head, 0, head.length, 0);
        assert.ok(head.subarray(0, bytesRead).equals(damaged.subarray(0, 64)));
        assert.deepEqual(
          await drain(salvageGzipHandle(handle)),
          { data, damage },
          "salvaged again by the same handle",
        );
      } finally {
        mock.restoreAll();
        syncBuiltinESMExports();
        await handle.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("hands the damage out as the iterator's final value too", async () => {
    const iterator = salvageGzipBytes(GZ.subarray(0, 100))[Symbol.asyncIterator]();
    let next = await iterator.next();
    while (!next.done) next = await iterator.next();
    assert.equal(next.value?.offset, 100);
  });

  it("stops cleanly when the reader stops early", async () => {
    const g = salvageGzipBytes(GZ);
    for await (const chunk of g) {
      assert.ok(chunk.length > 0);
      break;
    }
    assert.equal(g.damage, null);
  });

  it("streaming and at-once salvage agree, and never hand out more than zlib can (property)", async () => {
    const damage = fc.oneof(
      fc.record({ kind: fc.constant("cut" as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }),
      fc.record({
        kind: fc.constant("flip" as const),
        at: fc.double({ min: 0, max: 1, noNaN: true }),
        mask: fc.integer({ min: 1, max: 255 }),
      }),
      fc.record({
        kind: fc.constant("garbage" as const),
        bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
      }),
    );
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 3000 }), fc.integer(), damage, async (lines, seed, d) => {
        const text = logText(lines, seed);
        let gz = gzipSync(text);
        if (d.kind === "cut") gz = gz.subarray(0, Math.floor(gz.length * d.at));
        else if (d.kind === "flip") {
          gz = Buffer.from(gz);
          gz[Math.min(gz.length - 1, Math.floor(gz.length * d.at))]! ^= d.mask;
        } else gz = Buffer.concat([gz, d.bytes]);
        const streamed = await drain(salvageGzipBytes(gz));
        const atOnce = gunzipSalvageSync(gz);
        assert.ok(streamed.data.equals(atOnce.data));
        assert.deepEqual(streamed.damage, atOnce.damage);
        // Never a byte the log did not hold: a true prefix of it, whatever the damage.
        assert.ok(text.subarray(0, streamed.data.length).equals(streamed.data));
        if (streamed.damage === null) assert.ok(streamed.data.equals(gunzipSync(gz)));
        else assert.ok(streamed.damage.offset <= gz.length);
      }),
      { numRuns: 60 },
    );
  });
});
