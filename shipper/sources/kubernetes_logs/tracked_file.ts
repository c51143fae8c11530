// One container log file the shipper follows: its identity (device, inode, content
// fingerprint), an open handle, and the decoder that turns its bytes into lines.
//
// Plain files are read with positional reads on a held descriptor, so a rename or an
// unlink never loses bytes: the descriptor keeps the inode. `.gz` files (rotated files
// kubelet compressed while the shipper was behind or down) are read through gunzip,
// skipping to the checkpointed offset, which counts decompressed bytes.

import { createHash } from "node:crypto";
import { type FileHandle, open } from "node:fs/promises";
import { gunzipSync, constants as zlibConstants } from "node:zlib";
import type { Tier } from "../../../lib/keys/layout.ts";
import type { FileCheckpoint } from "../../state/checkpoint.ts";
import type { MultilineSettings } from "../../transforms/multiline/merger.ts";
import { RecordEncoder } from "../../transforms/record_encoder.ts";
import { type DecodedLineSink, type DecoderCheckpoint, FileDecoder } from "./file_decoder.ts";
import { type CompressedBytes, describeGzipDamage, SalvagingGunzip } from "./gunzip_salvage.ts";
import type { LogFileMeta } from "./paths.ts";

/** Bytes of content hashed to recognise a file after a rename, a compression or a restart. */
export const FINGERPRINT_BYTES = 1024;

export interface Fingerprint {
  hash: string;
  bytes: number;
}

export function fingerprintOf(head: Buffer): Fingerprint {
  const bytes = Math.min(head.length, FINGERPRINT_BYTES);
  return { hash: createHash("sha256").update(head.subarray(0, bytes)).digest("hex"), bytes };
}

/** The first `FINGERPRINT_BYTES` of a file's content through an open handle, decompressed for `.gz`. */
export async function readHeadOf(handle: FileHandle, compressed: boolean): Promise<Buffer> {
  const want = compressed ? 64 * 1024 : FINGERPRINT_BYTES;
  const buf = Buffer.alloc(want);
  const { bytesRead } = await handle.read(buf, 0, want, 0);
  if (!compressed) return buf.subarray(0, bytesRead);
  try {
    return gunzipSync(buf.subarray(0, bytesRead), { finishFlush: zlibConstants.Z_SYNC_FLUSH }).subarray(
      0,
      FINGERPRINT_BYTES,
    );
  } catch {
    return Buffer.alloc(0);
  }
}

/**
 * Which file an inode is: device and inode number, and, where the filesystem records it,
 * its birth time. ext4 hands a freed inode number to the next file created (the new
 * `0.log` after a rotated file was gzipped and unlinked, the copy of a copytruncate), so
 * the number alone can name another file a moment later; the birth time tells them apart
 * (0 where unknown: a restored checkpoint, or a filesystem without it).
 */
export interface InodeIdentity {
  dev: number;
  ino: number;
  birthtimeMs?: number;
}

export function sameInode(st: InodeIdentity, expect: InodeIdentity): boolean {
  if (st.dev !== expect.dev || st.ino !== expect.ino) return false;
  const a = st.birthtimeMs ?? 0;
  const b = expect.birthtimeMs ?? 0;
  return a === 0 || b === 0 || a === b;
}

/**
 * Opens `path` only if it is still the inode `expect` names. Paths move under the shipper
 * (kubelet renames `<n>.log` and creates a new one in its place), so whatever is read by
 * path is checked against the inode it was meant to be.
 */
export async function openVerified(path: string, expect: InodeIdentity): Promise<FileHandle | null> {
  let handle: FileHandle;
  try {
    handle = await open(path, "r");
  } catch {
    return null;
  }
  const st = await handle.stat();
  if (sameInode(st, expect)) return handle;
  await handle.close();
  return null;
}

/** readHeadOf() for the inode `expect` at `path`; null if the path now names another file. */
export async function readHeadAt(
  path: string,
  compressed: boolean,
  expect: InodeIdentity,
): Promise<Buffer | null> {
  const handle = await openVerified(path, expect);
  if (handle === null) return null;
  try {
    return await readHeadOf(handle, compressed);
  } catch {
    return null;
  } finally {
    await handle.close();
  }
}

/** A file as one open saw it: its head, then its size, through the same descriptor. */
export interface FileSnapshot {
  handle: FileHandle;
  head: Buffer;
  /** Size after the head was read (compressed size for .gz): never more than the content the head belongs to had. */
  size: number;
  mtimeMs: number;
  birthtimeMs: number;
}

/**
 * Opens the inode `expect` at `path` and reads its head, then its size, through that one
 * descriptor; null if the path now names another file. A scan's stat of the name came
 * earlier: a copytruncate in between would pair the old size with the new, empty head,
 * and a tracked file with no fingerprint and a size it never had can be neither found
 * under its next name nor counted right when it is gone.
 */
export async function snapshotAt(
  path: string,
  compressed: boolean,
  expect: InodeIdentity,
): Promise<FileSnapshot | null> {
  const handle = await openVerified(path, expect);
  if (handle === null) return null;
  try {
    const head = await readHeadOf(handle, compressed);
    const st = await handle.stat();
    return { handle, head, size: st.size, mtimeMs: st.mtimeMs, birthtimeMs: st.birthtimeMs };
  } catch {
    await handle.close().catch(() => undefined);
    return null;
  }
}

export function matchesFingerprint(head: Buffer, fp: Fingerprint): boolean {
  return (
    fp.bytes > 0 && head.length >= fp.bytes && fingerprintOf(head.subarray(0, fp.bytes)).hash === fp.hash
  );
}

/** `…/0.log.20260101-000000.gz` → `…/0.log`: files of one container instance form a chain. */
export function chainBaseOf(path: string): string {
  return path.replace(/\.(\d{8}-\d{6}|\d+)(\.gz)?$/, "").replace(/\.gz$/, "");
}

export interface FileContext {
  meta: LogFileMeta;
  tier: Tier;
  node: string;
  maxLineBytes: number;
  /** Stack-trace merging for this container, or null (off). */
  multiline: MultilineSettings | null;
  /** Time for malformed lines before the first good one: the file's mtime, stable across replays. */
  fallbackTime: { epochSeconds: number; nanos: number };
}

export type FileState = "active" | "done";

/** A damaged `.gz`: where it stopped inflating, and what is counted lost. */
export interface GzipLoss {
  /** Compressed bytes zlib accepted before the damage. */
  offset: number;
  /** Compressed bytes from the damage to the end of the file, at least 1. */
  lostBytes: number;
  error: string;
}

export class TrackedFile {
  path: string;
  /**
   * Where the file is opened: `path`, except for a dockerd-rotated `<id>-json.log.<N>`, which
   * is tracked under its kubelet link's name plus `.<N>` (see source.ts) and opened here.
   */
  openPath: string;
  readonly chainBase: string;
  /** Reading order within a chain: rotated files before the file that replaced them. */
  order: number;
  dev: number;
  ino: number;
  /** The inode's birth time, where known (0 for a file restored from a checkpoint). */
  birthtimeMs = 0;
  /**
   * The scan that first tracked the file (-1: restored, or continuing a tracked file's
   * content). It is read only once a later scan has listed its directory again: a scan
   * whose listing missed an older file of the chain (renamed between the listing and the
   * stat) would otherwise have it read first, out of order, splitting a line across them.
   */
  foundInScan = -1;
  fingerprint: Fingerprint;
  readonly compressed: boolean;
  readonly context: FileContext;
  readonly encoder: RecordEncoder;
  decoder: FileDecoder;
  /** Offset of the next byte to read (decompressed for .gz). */
  readPos: number;
  /** Size at the last stat (compressed size for .gz; readPos at its end). */
  size: number;
  /**
   * Size seen by a scan that also found the head intact, so the size of this content, not
   * of what a truncation put in its place (0 until such a scan, and after a restart).
   */
  observedSize = 0;
  state: FileState = "active";
  handle: FileHandle | null = null;
  /** Seen at a path in the latest scan. */
  seen = true;
  /** When a scan last saw the file at some path. */
  lastSeenAt = Date.now();
  /** When the writer was first seen to have moved on (rotation, removal, restart), else null. */
  movedAt: number | null = null;
  /** The scan that set `movedAt` (-1 while it is null). */
  movedInScan = -1;
  /**
   * Read to its end, its grace over, and still not finished: no scan has looked for the next
   * file of its chain since (see the source's #maybeFinish). The source scans at once.
   */
  awaitsScan = false;
  /**
   * A live file found quiet is not read again before this (the source's clock, ms; 0: at the
   * next step), and the wait that set it, doubled while the file stays quiet (see the
   * source's quietPollMaxMs).
   */
  nextReadAt = 0;
  quietWaitMs = 0;
  /** The last look found everything there read (set by the source when a read returns nothing). */
  reachedEnd = false;
  /**
   * The inode's mtime and ctime at the last look at its end: the evidence on disk of when
   * it was last written and last renamed or unlinked (a rename sets ctime; so does a write).
   */
  mtimeMs = 0;
  ctimeMs = 0;
  /**
   * The file's head no longer matches its fingerprint: it was truncated (copytruncate) or
   * rewritten. Reading stops until the next scan sorts out where the old content went.
   */
  headChanged = false;
  /**
   * Time of the last line read from the file (set by the shipper's line sink, two numbers so
   * no object per line); NaN before the first. A loss record's window starts here.
   */
  lastLineSeconds = Number.NaN;
  lastLineNanos = 0;
  #headCheck: Buffer | null = null;
  /** The head bytes last found to match `fingerprint` (the object, which is replaced when it grows). */
  #headSeen: { fingerprint: Fingerprint | null; bytes: Buffer } = {
    fingerprint: null,
    bytes: Buffer.alloc(0),
  };
  #gz: { salvage: SalvagingGunzip; chunks: AsyncIterator<Buffer>; skip: number } | null = null;
  #gzEnded = false;
  #gzDamageTaken = false;

  constructor(
    path: string,
    identity: { dev: number; ino: number; fingerprint: Fingerprint; size: number },
    context: FileContext,
    order: number,
    resume?: FileCheckpoint,
  ) {
    this.path = path;
    this.openPath = path;
    this.chainBase = chainBaseOf(path);
    this.order = order;
    this.dev = identity.dev;
    this.ino = identity.ino;
    this.fingerprint = identity.fingerprint;
    this.size = identity.size;
    this.compressed = context.meta.compressed;
    this.context = context;
    this.encoder = new RecordEncoder({ ...context.meta, node: context.node });
    this.decoder = new FileDecoder({
      maxLineBytes: context.maxLineBytes,
      fallbackTime: context.fallbackTime,
      multiline: context.multiline,
      ...(resume
        ? {
            resumeFrom: {
              reader: resume.reader,
              merger: resume.merger,
              ...(resume.multiline ? { multiline: resume.multiline } : {}),
            },
          }
        : {}),
    });
    this.readPos = resume?.reader.offset ?? 0;
    if (resume?.done) this.state = "done";
    // Its damage was counted (and its loss record committed) in an earlier life: not again.
    if (resume?.gzipDamageCounted === true) this.#gzDamageTaken = true;
    if (resume?.lastLine !== undefined) {
      this.lastLineSeconds = resume.lastLine.epochSeconds;
      this.lastLineNanos = resume.lastLine.nanos;
    }
  }

  get namespace(): string {
    return this.context.meta.namespace;
  }

  /** Unread bytes, for lag metrics (0 for .gz, whose decompressed size is unknown). */
  get lag(): number {
    return this.compressed || this.state === "done" ? 0 : Math.max(0, this.size - this.readPos);
  }

  /** Opens the file's inode at its known path; false if the path now names another file. */
  async ensureOpen(): Promise<boolean> {
    if (this.handle === null) this.handle = await openVerified(this.openPath, this);
    return this.handle !== null;
  }

  /**
   * Whether the file still starts with its fingerprint, read through the held descriptor
   * (true for .gz, and when nothing is held to look through).
   */
  async headIntact(): Promise<boolean> {
    if (this.compressed || this.handle === null) return true;
    return this.#headIntact();
  }

  /** Carries pending partial lines and open stack traces over from the previous file of the chain. */
  inheritPartials(from: Omit<DecoderCheckpoint, "reader">): void {
    this.decoder = new FileDecoder({
      maxLineBytes: this.context.maxLineBytes,
      fallbackTime: this.context.fallbackTime,
      multiline: this.context.multiline,
      resumeFrom: { ...from, reader: { offset: this.readPos, discarding: false } },
    });
  }

  /**
   * Reads one chunk into `buf` and decodes it; returns the bytes read (0 at the end of
   * what is there now).
   */
  async readChunk(buf: Buffer, sink: DecodedLineSink): Promise<number> {
    if (!(await this.ensureOpen())) {
      // Moved since the last scan: wait for the next scan to find it by inode or content.
      this.seen = false;
      return 0;
    }
    if (this.compressed) return this.#readGz(sink);
    const { bytesRead } = await this.handle!.read(buf, 0, buf.length, this.readPos);
    // Checked after the read: if the file was truncated and rewritten around it, the chunk
    // may be new content at an old offset, so it is dropped; the old content is in the copy.
    if (bytesRead > 0 && !(await this.#headIntact())) {
      this.headChanged = true;
      return 0;
    }
    if (bytesRead > 0) await this.growFingerprint();
    if (bytesRead > 0) {
      this.readPos += bytesRead;
      this.decoder.push(buf.subarray(0, bytesRead), sink);
    }
    return bytesRead;
  }

  /**
   * A file first seen nearly empty gets its full fingerprint as soon as it has the bytes,
   * so truncation, copies and its compressed twin are recognised from then on.
   */
  async growFingerprint(): Promise<void> {
    if (this.compressed || this.handle === null || this.fingerprint.bytes >= FINGERPRINT_BYTES) return;
    const head = await readHeadOf(this.handle, false);
    if (head.length > this.fingerprint.bytes) this.fingerprint = fingerprintOf(head);
  }

  async #headIntact(): Promise<boolean> {
    const fingerprint = this.fingerprint;
    const want = fingerprint.bytes;
    if (want === 0) return true;
    if (this.#headCheck === null || this.#headCheck.length !== want)
      this.#headCheck = Buffer.allocUnsafeSlow(want);
    const { bytesRead } = await this.handle!.read(this.#headCheck, 0, want, 0);
    if (bytesRead !== want) return false;
    // Runs after every read: once the head has matched the fingerprint's hash, later checks
    // compare bytes (memcmp) instead of hashing them again.
    if (this.#headSeen.fingerprint === fingerprint) return this.#headCheck.equals(this.#headSeen.bytes);
    if (!matchesFingerprint(this.#headCheck, fingerprint)) return false;
    this.#headSeen = { fingerprint, bytes: Buffer.from(this.#headCheck) };
    return true;
  }

  async #readGz(sink: DecodedLineSink): Promise<number> {
    if (this.#gzEnded) return 0;
    if (this.#gz === null) {
      // Every byte that inflates, up to any damage (see gunzip_salvage.ts); decompressed
      // bytes before the checkpointed offset were already shipped.
      const salvage = new SalvagingGunzip(compressedBytesOf(this.handle!));
      this.#gz = { salvage, chunks: salvage[Symbol.asyncIterator](), skip: this.readPos };
    }
    const gz = this.#gz;
    for (;;) {
      const next = await gz.chunks.next();
      if (next.done) {
        this.#gzEnded = true;
        return 0;
      }
      let chunk = next.value;
      if (gz.skip >= chunk.length) {
        gz.skip -= chunk.length;
        continue;
      }
      chunk = chunk.subarray(gz.skip);
      gz.skip = 0;
      this.readPos += chunk.length;
      this.decoder.push(chunk, sink);
      return chunk.length;
    }
  }

  /**
   * Damage found in this `.gz`, once (the caller counts it): where zlib stopped, and the
   * compressed bytes from there to the end, at least 1, since how many log bytes they held
   * is unknown (a file cut short has lost a part no one can measure).
   */
  takeGzipDamage(): GzipLoss | null {
    const damage = this.#gz?.salvage.damage ?? null;
    if (damage === null || this.#gzDamageTaken) return null;
    this.#gzDamageTaken = true;
    return {
      offset: damage.offset,
      lostBytes: Math.max(1, this.size - damage.offset),
      error: describeGzipDamage(damage),
    };
  }

  /** Whether everything there is has been read (for .gz: the stream ended). */
  async atEnd(): Promise<boolean> {
    if (this.compressed && !this.#gzEnded) return false;
    if (!(await this.ensureOpen())) return false;
    const st = await this.handle!.stat();
    this.mtimeMs = st.mtimeMs;
    this.ctimeMs = st.ctimeMs;
    if (this.compressed) return true;
    this.size = st.size;
    return this.readPos >= st.size;
  }

  async close(): Promise<void> {
    const h = this.handle;
    this.handle = null;
    this.#gz = null;
    await h?.close().catch(() => undefined);
  }

  checkpoint(): FileCheckpoint {
    const { reader, merger, multiline } = this.decoder.checkpoint();
    return {
      path: this.path,
      dev: this.dev,
      ino: this.ino,
      fingerprint: this.fingerprint.hash,
      fingerprintBytes: this.fingerprint.bytes,
      reader,
      merger,
      // A finished file handed its open traces to its successor (or emitted them).
      ...(multiline && this.state !== "done" ? { multiline } : {}),
      size: this.size,
      done: this.state === "done",
      order: this.order,
      ...(this.#gzDamageTaken ? { gzipDamageCounted: true } : {}),
      ...(Number.isNaN(this.lastLineSeconds)
        ? {}
        : { lastLine: { epochSeconds: this.lastLineSeconds, nanos: this.lastLineNanos } }),
    };
  }
}

/**
 * A held `.gz`'s bytes from its start, by positional reads, each time it is called. Not a
 * ReadStream over the descriptor: leaving such a stream's iteration early (the salvaging
 * gunzip's replay does) closes the descriptor, autoClose or not, and the tracked file
 * would then read, or close, whatever file reuses its number.
 */
function compressedBytesOf(handle: FileHandle): CompressedBytes {
  return async function* () {
    for (let position = 0; ; ) {
      const buf = Buffer.allocUnsafe(64 * 1024);
      const { bytesRead } = await handle.read(buf, 0, buf.length, position);
      if (bytesRead === 0) return;
      position += bytesRead;
      yield buf.subarray(0, bytesRead);
    }
  };
}
