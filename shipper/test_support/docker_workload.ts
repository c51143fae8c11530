// Docker json-file container logs for end-to-end tests, written the way dockerd's json-file
// driver writes them (moby daemon/logger/{copier.go,jsonfilelog,loggerutils/logfile.go}):
//
// - one JSON object per message, `{"log":"…\n","stream":"stdout|stderr","time":"…"}`, with
//   `attrs` after `stream` when labels or env are configured; `time` is UTC RFC3339Nano with
//   trailing zeros trimmed (Go's time.RFC3339Nano);
// - `log` escaped as moby's jsonlog does: `"` `\` `\n` `\r` as two-character escapes, every
//   other control byte and `<` `>` `&` as \u00xx, U+2028/U+2029 as \u2028/\u2029, other
//   non-ASCII raw, and each byte of invalid UTF-8 (Go's utf8.DecodeRune) as \ufffd;
// - output longer than 16 KiB split by the copier into 16384-byte chunks (bytes, so a chunk
//   can cut a multi-byte character, which the encoder then turns into \ufffd's); only the
//   last chunk's `log` ends in `\n`, and every chunk has its own `time`; the other stream
//   may interleave between the chunks;
// - rotation by the daemon on write: once the file has reached max-size, `.{max-file−1}` is
//   removed, `.N` renamed to `.N+1`, the live file renamed to `.1`, and a new file opened
//   with O_TRUNC at the same name (max-file 1: the same file truncated in place).
//
// The file lives at `<root>/docker/<id>/<id>-json.log`; kubelet's view of it is a symlink,
// `<root>/containers/<pod>_<ns>_<container>-<id>.log` (dockershim's /var/log/containers) or
// `<pods-dir>/<ns>_<pod>_<uid>/<container>/<n>.log` (cri-dockerd's /var/log/pods).
//
// Every logical line carries `lid=<writer>:<n>` (the LID of workload.ts), and the writer
// keeps, for the lines whose bytes are worth checking (split, escaped, invalid UTF-8), the
// exact message the archive must hold.

import { createHash } from "node:crypto";
import { closeSync, mkdirSync, openSync, renameSync, symlinkSync, unlinkSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { corpusLines } from "./corpora.ts";
import { random } from "./workload.ts";

/** dockerd's copier buffer: longer output is logged as 16 KiB partial messages. */
export const DOCKER_CHUNK_BYTES = 16 * 1024;

const text = (file: string) => corpusLines(file).map((b) => b.toString("utf8"));
const JSON_LINES = [
  ...text("json/beats_elasticsearch_test_json.log"),
  ...text("json/fluentbit_utf8_surrogate_bench_2k.ndjson").slice(0, 300),
];
const ACCESS_LINES = text("k8s_access/beats_nginx_ingress_controller_test.log");
const TRACE_LINES = text("multiline/fluentbit_filter_multiline_example.log");

/** Go's utf8.DecodeRune: the length of the valid sequence at `i`, or 0 (RuneError, size 1). */
function validRuneLength(b: Buffer, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf) => i + k < b.length && b[i + k]! >= lo && b[i + k]! <= hi;
  if (c < 0xc2) return 0;
  if (c < 0xe0) return cont(1) ? 2 : 0;
  if (c < 0xf0) {
    const ok = cont(1, c === 0xe0 ? 0xa0 : 0x80, c === 0xed ? 0x9f : 0xbf) && cont(2);
    return ok ? 3 : 0;
  }
  if (c < 0xf5) {
    const ok = cont(1, c === 0xf0 ? 0x90 : 0x80, c === 0xf4 ? 0x8f : 0xbf) && cont(2) && cont(3);
    return ok ? 4 : 0;
  }
  return 0;
}

const HEX = "0123456789abcdef";

/**
 * moby's ffjsonWriteJSONBytesAsString: `raw` as a JSON string, and the bytes a JSON reader
 * gets back from it (invalid UTF-8 replaced byte by byte with U+FFFD).
 */
export function dockerJsonString(raw: Buffer): { json: string; decoded: Buffer } {
  let json = '"';
  const decoded: Buffer[] = [];
  for (let i = 0; i < raw.length; ) {
    const c = raw[i]!;
    if (c < 0x80) {
      if (c === 0x22 || c === 0x5c) json += `\\${String.fromCharCode(c)}`;
      else if (c === 0x0a) json += "\\n";
      else if (c === 0x0d) json += "\\r";
      else if (c < 0x20 || c === 0x3c || c === 0x3e || c === 0x26)
        json += `\\u00${HEX[c >> 4]}${HEX[c & 15]}`;
      else json += String.fromCharCode(c);
      decoded.push(raw.subarray(i, i + 1));
      i++;
      continue;
    }
    const n = validRuneLength(raw, i);
    if (n === 0) {
      json += "\\ufffd";
      decoded.push(Buffer.from("\ufffd"));
      i++;
      continue;
    }
    const ch = raw.toString("utf8", i, i + n);
    json += ch === "\u2028" ? "\\u2028" : ch === "\u2029" ? "\\u2029" : ch;
    decoded.push(raw.subarray(i, i + n));
    i += n;
  }
  return { json: `${json}"`, decoded: Buffer.concat(decoded) };
}

/** Go's time.RFC3339Nano in UTC: fractional seconds with trailing zeros trimmed. */
function rfc3339NanoTrimmed(ms: number, nanosInMs: number): string {
  const iso = new Date(ms).toISOString();
  const frac = String((ms % 1000) * 1_000_000 + nanosInMs)
    .padStart(9, "0")
    .replace(/0+$/, "");
  return `${iso.slice(0, 19)}${frac === "" ? "" : `.${frac}`}Z`;
}

export interface DockerWriterOptions {
  /** Holds `docker/<id>/` and, for the containers layout, `containers/`. */
  root: string;
  namespace: string;
  pod: string;
  container: string;
  /** Unique small integer; part of every lid. */
  id: number;
  seed: number;
  /** Timestamp of the first line, ms since the epoch; lines advance by ~1 ms. */
  startMs: number;
  /** Where kubelet's symlink is: dockershim's /var/log/containers (default) or cri-dockerd's /var/log/pods. */
  layout?: "containers" | "pods";
  /** For the pods layout: the directory playing /var/log/pods (default `<root>/pods`). */
  podsDir?: string;
  /** json-file `max-size` in bytes; 0 never rotates. */
  maxSize: number;
  /** json-file `max-file`: the live file plus `max-file − 1` rotated ones are kept. */
  maxFile: number;
}

/** Appends Docker json-file lines to one container's log, rotating as dockerd does. */
export class DockerLogWriter {
  readonly containerId: string;
  /** The file dockerd writes, `<root>/docker/<id>/<id>-json.log`. */
  readonly path: string;
  /** kubelet's symlink to it, the path the shipper is given. */
  readonly link: string;
  readonly id: number;
  /** Every lid written, in order. */
  readonly lids: string[] = [];
  /** lid → the exact message the archive must hold, for split, escaped and invalid-UTF-8 lines. */
  readonly expected = new Map<string, string>();
  /** The lids of lines written malformed (a parse error each). */
  readonly malformed: string[] = [];
  /** Lines written as more than one chunk. */
  split = 0;
  rotations = 0;
  /** Bytes removed by rotation (max-file) or truncation (max-file 1), whoever read them. */
  removedBytes = 0;
  bytes = 0;
  readonly #o: DockerWriterOptions;
  #fd: number;
  #size = 0;
  #n = 0;
  #clockMs: number;
  #nanos = 0;
  #rand: () => number;
  #rotatedSizes: number[] = [];
  #held: { lid: string; parts: Buffer[]; rest: Buffer } | null = null;

  constructor(o: DockerWriterOptions) {
    this.#o = o;
    this.id = o.id;
    this.containerId = createHash("sha256")
      .update(`${o.namespace}/${o.pod}/${o.container}/${o.id}`)
      .digest("hex");
    const dir = join(o.root, "docker", this.containerId);
    mkdirSync(dir, { recursive: true });
    this.path = join(dir, `${this.containerId}-json.log`);
    this.link =
      (o.layout ?? "containers") === "containers"
        ? join(o.root, "containers", `${o.pod}_${o.namespace}_${o.container}-${this.containerId}.log`)
        : join(
            o.podsDir ?? join(o.root, "pods"),
            `${o.namespace}_${o.pod}_uid-${o.id}`,
            o.container,
            "0.log",
          );
    this.#clockMs = o.startMs;
    this.#rand = random(o.seed);
    this.#fd = openSync(this.path, "a");
    mkdirSync(dirname(this.link), { recursive: true });
    symlinkSync(this.path, this.link);
  }

  #time(): string {
    this.#clockMs += this.#rand() < 0.5 ? 1 : 0;
    this.#nanos = (this.#nanos + 1 + Math.floor(this.#rand() * 1000)) % 1_000_000;
    // Now and then a round value, so trimmed fractions of every width occur.
    return rfc3339NanoTrimmed(this.#clockMs, this.#rand() < 0.1 ? 0 : this.#nanos);
  }

  #lid(): string {
    const lid = `${this.id}:${this.#n++}`;
    this.lids.push(lid);
    return lid;
  }

  /** One physical line, through the daemon's rotation check first, as LogFile.WriteLogEntry. */
  #writeRecord(line: string | Buffer): void {
    if (this.#o.maxSize > 0 && this.#size >= this.#o.maxSize) this.#rotate();
    const b = typeof line === "string" ? Buffer.from(line, "utf8") : line;
    writeSync(this.#fd, b);
    this.#size += b.length;
    this.bytes += b.length;
  }

  /** One message (a chunk), encoded as jsonfilelog does; returns the bytes a reader decodes from `log`. */
  #message(raw: Buffer, stream: "stdout" | "stderr", last: boolean): Buffer {
    const log = last ? Buffer.concat([raw, Buffer.from("\n")]) : raw;
    const { json, decoded } = dockerJsonString(log);
    const attrs = this.#rand() < 0.1 ? `,"attrs":{"io.kubernetes.pod.namespace":"${this.#o.namespace}"}` : "";
    this.#writeRecord(`{"log":${json},"stream":"${stream}"${attrs},"time":"${this.#time()}"}\n`);
    return last ? decoded.subarray(0, decoded.length - 1) : decoded;
  }

  /** A logical line as the copier logs it: split into 16 KiB chunks, the other stream maybe in between. */
  #line(raw: Buffer, stream: "stdout" | "stderr", lid: string, keep: boolean): void {
    const parts: Buffer[] = [];
    let at = 0;
    // The copier logs a full buffer without a newline as a partial, so a line of exactly
    // k × 16 KiB ends with a chunk whose log is just "\n".
    while (raw.length - at >= DOCKER_CHUNK_BYTES) {
      parts.push(this.#message(raw.subarray(at, at + DOCKER_CHUNK_BYTES), stream, false));
      at += DOCKER_CHUNK_BYTES;
      if (this.#rand() < 0.3) this.#interleaved(stream === "stdout" ? "stderr" : "stdout");
    }
    parts.push(this.#message(raw.subarray(at), stream, true));
    if (parts.length > 1) this.split++;
    if (keep || parts.length > 1) this.expected.set(lid, Buffer.concat(parts).toString("utf8"));
  }

  /** A short line of the other stream, logged between the chunks of a long one. */
  #interleaved(stream: "stdout" | "stderr"): void {
    const lid = this.#lid();
    this.#line(Buffer.from(`interleaved ${stream} line lid=${lid}`), stream, lid, true);
  }

  /** Writes `count` logical lines of mixed kinds. */
  writeLines(count: number): void {
    for (let i = 0; i < count; i++) {
      const r = this.#rand();
      const lid = this.#lid();
      const pick = (pool: string[]) => pool[Math.floor(this.#rand() * pool.length)]!;
      if (r < 0.4) {
        const src = pick(JSON_LINES);
        const line = src.startsWith("{") ? `{"lid":"lid=${lid}",${src.slice(1)}` : `${src} lid=${lid}`;
        this.#line(Buffer.from(line), "stdout", lid, false);
      } else if (r < 0.6) {
        this.#line(Buffer.from(`${pick(ACCESS_LINES)} lid=${lid}`), "stdout", lid, false);
      } else if (r < 0.72) {
        this.#line(Buffer.from(`${pick(TRACE_LINES)}\tlid=${lid}`), "stderr", lid, true);
      } else if (r < 0.82) {
        // Control characters, quotes, HTML-ish bytes, U+2028, non-ASCII and a CR before the newline.
        const line = `\x1b[32mINFO\x1b[0m\tlid=${lid} "q" \\ <a href="x?a=1&b=2"> \u0000\u0007\u001f\u007f é 漢字 😀 \u2028\u2029 end\r`;
        this.#line(Buffer.from(line), this.#rand() < 0.5 ? "stdout" : "stderr", lid, true);
      } else if (r < 0.87) {
        // Invalid UTF-8 from the application: a lone continuation, a cut sequence, an
        // overlong, a surrogate and 0xff, each replaced by dockerd.
        const bad = Buffer.from([
          0x80, 0xe2, 0x82, 0x20, 0xc0, 0xaf, 0xed, 0xa0, 0x80, 0xff, 0xf4, 0x90, 0x80, 0x80,
        ]);
        const line = Buffer.concat([Buffer.from(`bytes lid=${lid} `), bad, Buffer.from(" end")]);
        this.#line(line, "stdout", lid, true);
      } else if (r < 0.97) {
        this.#line(Buffer.from(`plain text line ${i} with unicode ✓ lid=${lid}`), "stdout", lid, false);
      } else if (r < 0.993) {
        // A long line, split into 16 KiB chunks; multi-byte text makes some splits cut a character.
        const exact = this.#rand() < 0.2;
        const length = exact
          ? DOCKER_CHUNK_BYTES * (1 + Math.floor(this.#rand() * 3))
          : 16_384 + Math.floor(this.#rand() * 50_000);
        this.#line(this.#long(`lid=${lid} `, length), this.#rand() < 0.5 ? "stdout" : "stderr", lid, true);
      } else {
        this.malformed.push(lid);
        // A cut write (the daemon killed mid-line, a full disk) and a line in no format.
        this.#writeRecord(
          this.#rand() < 0.5
            ? `{"log":"cut short lid=${lid}\\n","stream":"stdo\n`
            : `not json at all lid=${lid}\n`,
        );
      }
    }
  }

  /**
   * Logs the 16 KiB chunks of a long stderr line but not its last chunk, as when the
   * process has not yet written the rest; finishLongLine() logs it.
   */
  startLongLine(length: number): string {
    const lid = this.#lid();
    const raw = this.#long(`lid=${lid} `, length);
    const parts: Buffer[] = [];
    let at = 0;
    for (; raw.length - at >= DOCKER_CHUNK_BYTES; at += DOCKER_CHUNK_BYTES) {
      parts.push(this.#message(raw.subarray(at, at + DOCKER_CHUNK_BYTES), "stderr", false));
    }
    this.#held = { lid, parts, rest: raw.subarray(at) };
    return lid;
  }

  finishLongLine(): void {
    const held = this.#held!;
    this.#held = null;
    held.parts.push(this.#message(held.rest, "stderr", true));
    this.split++;
    this.expected.set(held.lid, Buffer.concat(held.parts).toString("utf8"));
  }

  /** Rotates now, as dockerd does at the next write once the file reached max-size. */
  rotate(): void {
    this.#rotate();
  }

  /** `prefix` then real log text (with some multi-byte characters) to exactly `length` bytes. */
  #long(prefix: string, length: number): Buffer {
    const parts: Buffer[] = [Buffer.from(prefix)];
    let size = parts[0]!.length;
    while (size < length) {
      const piece = Buffer.from(
        `${this.#rand() < 0.5 ? JSON_LINES[Math.floor(this.#rand() * JSON_LINES.length)] : "ünïcødé ✓ 漢字 😀"} `,
      );
      parts.push(piece);
      size += piece.length;
    }
    return Buffer.concat(parts).subarray(0, length);
  }

  /** dockerd's rotate(): drop the oldest, shift `.N` → `.N+1`, live → `.1`, reopen with O_TRUNC. */
  #rotate(): void {
    closeSync(this.#fd);
    const maxFile = this.#o.maxFile;
    if (maxFile < 2) {
      // No rename: the same file is truncated in place.
      this.removedBytes += this.#size;
    } else {
      const last = `${this.path}.${maxFile - 1}`;
      if (this.#rotatedSizes.length >= maxFile - 1) {
        unlinkSync(last);
        this.removedBytes += this.#rotatedSizes.pop()!;
      }
      for (let i = maxFile - 1; i > 1; i--) {
        try {
          renameSync(`${this.path}.${i - 1}`, `${this.path}.${i}`);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
        }
      }
      renameSync(this.path, `${this.path}.1`);
      this.#rotatedSizes.unshift(this.#size);
    }
    this.#fd = openSync(this.path, "w");
    this.#size = 0;
    this.rotations++;
  }

  close(): void {
    closeSync(this.#fd);
  }
}
