// Realistic container log workloads for end-to-end tests and benchmarks: CRI files laid
// out as kubelet does (/var/log/pods/<ns>_<pod>_<uid>/<container>/<n>.log), with JSON app
// logs and ingress access lines from the real corpora, plain text, stack traces, lines
// split into P/F chunks, and malformed lines. Every logical line carries a unique token
// `lid=<writer>:<n>` so a test can check each one arrives exactly once.
//
// Writers can rotate the way kubelet does (rename, later gzip) or by copytruncate, and can
// split a line's P and F chunks across a rotation, as containerd does.

import {
  closeSync,
  copyFileSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  truncateSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { corpusLines } from "./corpora.ts";

export const LID = /lid=(\d+:\d+)/;

/** Deterministic pseudo-random numbers (mulberry32), so a failing run can be replayed. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const text = (file: string) => corpusLines(file).map((b) => b.toString("utf8"));
const JSON_LINES = [
  ...text("json/beats_elasticsearch_test_json.log"),
  ...text("json/fluentbit_utf8_surrogate_bench_2k.ndjson").slice(0, 300),
  ...text("json/beats_kibana_log_test.log"),
];
const ACCESS_LINES = text("k8s_access/beats_nginx_ingress_controller_test.log");
const TRACE_LINES = text("multiline/fluentbit_filter_multiline_example.log");

function rfc3339Nano(ms: number, extraNanos: number): string {
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 19)}.${String((ms % 1000) * 1_000_000 + extraNanos).padStart(9, "0")}Z`;
}

export interface WriterOptions {
  root: string;
  namespace: string;
  pod: string;
  container: string;
  /** Unique small integer; part of every lid. */
  id: number;
  seed: number;
  /** Timestamp of the first line, ms since the epoch; lines advance by ~1 ms. */
  startMs: number;
  /** Pod UID directory suffix; defaults to `id`. Writers sharing it are one pod's containers or restarts. */
  uid?: number;
  /** The `<n>` of `<n>.log`: a container restart writes the next one beside the last. */
  restartCount?: number;
}

/** Appends CRI lines to one container's log and rotates it like a runtime would. */
export class ContainerLogWriter {
  readonly dir: string;
  readonly path: string;
  readonly id: number;
  readonly namespace: string;
  /** Every lid written, in order. */
  readonly lids: string[] = [];
  bytes = 0;
  #fd: number;
  #n = 0;
  #clockMs: number;
  #nanos = 0;
  #rand: () => number;
  #rotations = 0;
  #pendingPartial: { lid: string; rest: string } | null = null;

  constructor(o: WriterOptions) {
    this.dir = join(o.root, `${o.namespace}_${o.pod}_uid-${o.uid ?? o.id}`, o.container);
    mkdirSync(this.dir, { recursive: true });
    this.path = join(this.dir, `${o.restartCount ?? 0}.log`);
    this.id = o.id;
    this.namespace = o.namespace;
    this.#clockMs = o.startMs;
    this.#rand = random(o.seed);
    this.#fd = openSync(this.path, "a");
  }

  #ts(): string {
    this.#clockMs += this.#rand() < 0.5 ? 1 : 0;
    this.#nanos = (this.#nanos + 1 + Math.floor(this.#rand() * 1000)) % 1_000_000;
    return rfc3339Nano(this.#clockMs, this.#nanos);
  }

  #write(text: string): void {
    const b = Buffer.from(text, "utf8");
    writeSync(this.#fd, b);
    this.bytes += b.length;
  }

  #lid(): string {
    const lid = `${this.id}:${this.#n++}`;
    this.lids.push(lid);
    return lid;
  }

  /** Writes `count` logical lines of mixed kinds. */
  writeLines(count: number): void {
    for (let i = 0; i < count; i++) {
      const r = this.#rand();
      const lid = this.#lid();
      if (r < 0.45) {
        const src = JSON_LINES[Math.floor(this.#rand() * JSON_LINES.length)]!;
        // Keep it JSON: the token goes in as a field.
        const line = src.startsWith("{") ? `{"lid":"lid=${lid}",${src.slice(1)}` : `${src} lid=${lid}`;
        this.#write(`${this.#ts()} stdout F ${line}\n`);
      } else if (r < 0.7) {
        const src = ACCESS_LINES[Math.floor(this.#rand() * ACCESS_LINES.length)]!;
        this.#write(`${this.#ts()} stdout F ${src} lid=${lid}\n`);
      } else if (r < 0.85) {
        const src = TRACE_LINES[Math.floor(this.#rand() * TRACE_LINES.length)]!;
        this.#write(`${this.#ts()} stderr F ${src}\tlid=${lid}\n`);
      } else if (r < 0.97) {
        this.#write(`${this.#ts()} stdout F plain text line ${i} with unicode ✓ and "quotes" lid=${lid}\n`);
      } else if (r < 0.995) {
        // A long line split by the runtime into 16 KiB P chunks and a final F.
        const body = `lid=${lid} ${this.#filler(16384 + Math.floor(this.#rand() * 40000))}`;
        const stream = this.#rand() < 0.5 ? "stdout" : "stderr";
        let at = 0;
        while (body.length - at > 16384) {
          this.#write(`${this.#ts()} ${stream} P ${body.slice(at, at + 16384)}\n`);
          at += 16384;
        }
        this.#write(`${this.#ts()} ${stream} F ${body.slice(at)}\n`);
      } else {
        this.#write(`malformed line without a timestamp lid=${lid}\n`);
      }
    }
  }

  /** About `length` characters of real log text on one line, as a long JSON dump or trace would be. */
  #filler(length: number): string {
    let out = "";
    while (out.length < length) {
      const pool = this.#rand() < 0.5 ? JSON_LINES : ACCESS_LINES;
      out += `${pool[Math.floor(this.#rand() * pool.length)]} `;
    }
    return out;
  }

  /**
   * Starts a line whose P chunk goes into the current file; rotate() then puts its F chunk
   * first in the new file, as containerd does when kubelet reopens the log.
   */
  startLineAcrossRotation(): void {
    const lid = this.#lid();
    this.#write(`${this.#ts()} stderr P lid=${lid} first half across a rotation, \n`);
    this.#pendingPartial = { lid, rest: "second half after it" };
  }

  /** Kubelet rotation: rename to <n>.log.<ts>, gzip older rotated files, reopen. */
  rotateRename(gzipOlder = true): string {
    closeSync(this.#fd);
    const stamp = this.#stamp();
    const rotated = `${this.path}.${stamp}`;
    if (gzipOlder) {
      for (const older of this.#rotated) {
        const tmp = `${older}.tmp`;
        const body = gzipSync(readFileSync(older));
        const fd = openSync(tmp, "w");
        writeSync(fd, body);
        closeSync(fd);
        renameSync(tmp, `${older}.gz`);
        unlinkSync(older);
      }
      this.#rotated = [];
    }
    renameSync(this.path, rotated);
    this.#rotated.push(rotated);
    this.#fd = openSync(this.path, "a");
    this.#finishPartial();
    return rotated;
  }

  #rotated: string[] = [];

  /** kubelet's rotation suffix, YYYYMMDD-hhmmss, increasing with every rotation as the clock does. */
  #stamp(): string {
    const t = new Date(Date.UTC(2026, 0, 1) + 1000 * this.#rotations++).toISOString();
    return `${t.slice(0, 4)}${t.slice(5, 7)}${t.slice(8, 10)}-${t.slice(11, 13)}${t.slice(14, 16)}${t.slice(17, 19)}`;
  }

  /** copytruncate: copy the file aside, then truncate it in place and keep writing. */
  rotateCopyTruncate(): string {
    const stamp = this.#stamp();
    const copy = `${this.path}.${stamp}`;
    copyFileSync(this.path, copy);
    truncateSync(this.path, 0);
    this.#finishPartial();
    return copy;
  }

  #finishPartial(): void {
    if (this.#pendingPartial === null) return;
    this.#write(`${this.#ts()} stderr F ${this.#pendingPartial.rest}\n`);
    this.#pendingPartial = null;
  }

  close(): void {
    this.#finishPartial();
    closeSync(this.#fd);
  }
}

export interface Workload {
  writers: ContainerLogWriter[];
  /** Every lid written so far. */
  lids(): string[];
  bytes(): number;
  close(): void;
}

/** Writers across `namespaces` × `podsPerNamespace`, all under `root`. */
export function createWorkload(o: {
  root: string;
  namespaces: readonly string[];
  podsPerNamespace: number;
  seed: number;
  startMs: number;
}): Workload {
  const writers: ContainerLogWriter[] = [];
  let id = 0;
  for (const namespace of o.namespaces) {
    for (let p = 0; p < o.podsPerNamespace; p++) {
      writers.push(
        new ContainerLogWriter({
          root: o.root,
          namespace,
          pod: `app-${p}-7c9f5d.canary`,
          container: p % 2 === 0 ? "app" : "sidecar",
          id: id++,
          seed: o.seed * 1000 + id,
          startMs: o.startMs,
        }),
      );
    }
  }
  return {
    writers,
    lids: () => writers.flatMap((w) => w.lids),
    bytes: () => writers.reduce((s, w) => s + w.bytes, 0),
    close: () => {
      for (const w of writers) w.close();
    },
  };
}

/**
 * One pod's "app" container a namespace, under `root`: writer `i` writes namespace `namespaces[i]`,
 * pod `api-<i>-6b7d9`, with id `i` and seed `seed + i`, its first line at `startMs`.
 */
export function namespaceWriters(
  root: string,
  namespaces: readonly string[],
  o: { seed: number; startMs: number },
): ContainerLogWriter[] {
  return namespaces.map(
    (namespace, id) =>
      new ContainerLogWriter({
        root,
        namespace,
        pod: `api-${id}-6b7d9`,
        container: "app",
        id,
        seed: o.seed + id,
        startMs: o.startMs,
      }),
  );
}
