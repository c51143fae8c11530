// The kubernetes_logs source: finds container log files, recognises them across renames,
// compression, truncation, restarts and inode reuse, and reads each container's files in
// order so a line split across a rotation is merged.
//
// Identity is (device, inode) plus a fingerprint of the first KiB of content, never the
// path: kubelet renames `<n>.log` to `<n>.log.<ts>` and later replaces it with a `.gz`
// copy; copytruncate leaves the old content in a copy and new content in the old inode;
// a restarted shipper may find its checkpointed inode reused by another file.
//
// A file is finished when it has been read to the end, its writer has moved on (it was
// renamed, removed, or replaced by a newer file of its chain or a newer restart), and
// neither happened nor was it written in the last `finishGraceMs`, by the evidence on disk
// (ctime, mtime), because containerd may still write the tail of a partial line into a
// just-rotated file; and the next file of its chain is known: a scan that started after that
// grace, and after the scan that saw the writer move, has looked for it, or a listing of the
// file's own directory taken after the grace shows every newer file of its chain already
// tracked. Its pending partial line then
// moves to that next file, or, when there is none, is emitted as it is. A chain is read in
// order: only its oldest unfinished file is read, so a line split across a rotation (its P
// chunk ending one file, its F chunk starting the next) is merged.
//
// Under Docker, kubelet's names are symlinks to dockerd's `<id>-json.log`, which dockerd
// rotates itself (`.1`, `.2`, … beside it, where no glob of kubelet's directories
// reaches). Each scan follows a link to such a target and lists those rotated files too,
// under the link's name plus `.<N>`, so they join the link's chain with its metadata.
//
// Loss that cannot be prevented (a file that vanished before it was read to the end while
// the shipper was down, a truncation that outran the reader) is counted in
// logarchive_shipper_lost_bytes_total and logged, never silent.

import type { Stats } from "node:fs";
import { type FileHandle, glob, readdir, readlink, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import type { Tier } from "../../../lib/keys/layout.ts";
import type { StageLog } from "../../../lib/log.ts";
import type { LossFacts, LossReason } from "../../../lib/object/loss.ts";
import { classifyNamespace, type NamespacePolicy } from "../../../lib/policy/policy.ts";
import { formatRfc3339Nano, instantFromMs } from "../../../lib/record/timestamp.ts";
import type { ShipperMetrics } from "../../metrics.ts";
import type { FileCheckpoint } from "../../state/checkpoint.ts";
import { type MultilineRule, multilineFor } from "../../transforms/multiline/config.ts";
import type { DecodedLineSink } from "./file_decoder.ts";
import { type LogFileMeta, parseLogPath } from "./paths.ts";
import {
  chainBaseOf,
  FINGERPRINT_BYTES,
  type FileContext,
  fingerprintOf,
  matchesFingerprint,
  readHeadAt,
  readHeadOf,
  snapshotAt,
  TrackedFile,
} from "./tracked_file.ts";

export interface SourceOptions {
  globs: readonly string[];
  node: string;
  maxLineBytes: number;
  /** Stack-trace merging rules (first match wins); empty: off. */
  multiline: readonly MultilineRule[];
  policy: NamespacePolicy;
  /** How long a finished-looking file must stay unchanged before it is closed. */
  finishGraceMs: number;
  /**
   * `--once`: finish a file whose writer moved on as soon as it is read to its end, without
   * the grace. A live file is never finished: it is read to its end and stays live.
   */
  once: boolean;
  /**
   * A live file read to its end is read again after 100 ms, then at doubling intervals up to
   * this while it stays quiet; a scan that sees it grow, a read that finds more, or its
   * writer moving on has it read at the next step again. Absent or 0: every step reads
   * every file (not with `once`, which never waits).
   */
  quietPollMaxMs?: number;
  metrics: ShipperMetrics;
  log: StageLog;
  /** Where a file's lines go. */
  lineSink: (file: TrackedFile) => DecodedLineSink;
  /** The wall clock the finish grace is measured on (tests); Date.now. */
  now?: () => number;
  /**
   * Told of every loss as it is counted (each `log_bytes_lost`), so the sink writes a loss
   * record into the archive (docs/shipper.md#loss-records).
   */
  onLoss?: (facts: LossFacts) => void;
}

/** Scans a restored file may go unseen before its unread bytes are counted as lost. */
const ORPHAN_SCANS = 3;
/**
 * How long a finished file is remembered after it was last seen. A scan can list a
 * rotated file just before kubelet swaps it for its .gz and miss both; forgetting the
 * file then would make the .gz look new and ship its lines twice.
 */
const DONE_RETENTION_MS = 10 * 60_000;
/** The first wait before a quiet live file is read again (see SourceOptions.quietPollMaxMs). */
const FIRST_QUIET_WAIT_MS = 100;
/** dockerd's json-file log, which it rotates to `<id>-json.log.<N>` (N ≥ 1, `.1` the newest). */
const DOCKER_JSON_LOG = /^[0-9a-f]{64}-json\.log$/;

interface Candidate {
  path: string;
  /** Where to open it: `path`, or for a dockerd-rotated file its real path. */
  open: string;
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
  /** From the scan's stat; absent for a restored file. See InodeIdentity. */
  birthtimeMs?: number;
  meta: LogFileMeta;
  tier: Tier;
}

interface StatsSeen {
  lines: number;
  truncated: number;
  truncatedBytes: number;
  multiline: { next_line: number; timeout: number; limit: number; end: number; lines: number };
}

export class KubernetesLogsSource {
  readonly options: SourceOptions;
  files: TrackedFile[] = [];
  #byInode = new Map<string, TrackedFile>();
  #nextOrder = 0;
  #orphanScans = new Map<TrackedFile, number>();
  #warned = new Set<string>();
  #statsSeen = new WeakMap<TrackedFile, StatsSeen>();
  #scans = 0;
  /** Scans run to their end; a file found in scan k is read once this passes k. */
  #completedScans = 0;
  /** When the scan running now started, and when the last one run to its end started (#now). */
  #scanStartedAt = Number.NEGATIVE_INFINITY;
  #completedScanStartedAt = Number.NEGATIVE_INFINITY;
  /** The completed scan count when #successorsKnown last listed a file's directory. */
  #successorsListedAt = new WeakMap<TrackedFile, number>();
  readonly #now: () => number;

  constructor(options: SourceOptions, restore: readonly FileCheckpoint[] = []) {
    this.options = options;
    this.#now = options.now ?? Date.now;
    for (const cp of onePerFile(restore).sort((a, b) => a.order - b.order)) {
      const candidate = this.#candidateFor(cp.path, { dev: cp.dev, ino: cp.ino, size: cp.size, mtimeMs: 0 });
      if (candidate === null) continue;
      const tf = new TrackedFile(
        cp.path,
        {
          dev: cp.dev,
          ino: cp.ino,
          size: cp.size,
          fingerprint: { hash: cp.fingerprint, bytes: cp.fingerprintBytes },
        },
        this.#context(candidate),
        cp.order,
        cp,
      );
      tf.seen = false;
      this.#add(tf);
      this.#nextOrder = Math.max(this.#nextOrder, cp.order + 1);
    }
  }

  get scans(): number {
    return this.#scans;
  }

  /**
   * A scan should run now: a file's head changed under a read (truncation), a file just
   * found waits for a second listing before it is read (see TrackedFile.foundInScan), or a
   * rotated file read to its end waits for a scan to look for its successor.
   */
  get needsScan(): boolean {
    return this.files.some(
      (f) => f.headChanged || (f.state === "active" && (!this.#confirmed(f) || f.awaitsScan)),
    );
  }

  /** Listed again by a scan that started after the one that found it (restored files are). */
  #confirmed(tf: TrackedFile): boolean {
    return tf.foundInScan < this.#completedScans;
  }

  #key(dev: number, ino: number): string {
    return `${dev}:${ino}`;
  }

  #add(tf: TrackedFile): void {
    this.files.push(tf);
    this.#byInode.set(this.#key(tf.dev, tf.ino), tf);
  }

  #remove(tf: TrackedFile): void {
    this.files = this.files.filter((f) => f !== tf);
    if (this.#byInode.get(this.#key(tf.dev, tf.ino)) === tf) this.#byInode.delete(this.#key(tf.dev, tf.ino));
    this.#orphanScans.delete(tf);
    this.options.metrics.fileLagBytes.remove({ file: tf.path });
  }

  #candidateFor(
    path: string,
    st: { dev: number; ino: number; size: number; mtimeMs: number },
    open = path,
  ): Candidate | null {
    const parsed = parseLogPath(path);
    if (!parsed.ok) {
      if (parsed.error.kind !== "temporary" && !this.#warned.has(path)) {
        this.#warned.add(path);
        this.options.log("warn", "unrecognised_log_path", { path, error: parsed.error.message });
      }
      return null;
    }
    const c = classifyNamespace(this.options.policy, parsed.meta.namespace);
    if (!c.archived) return null;
    return { path, open, ...st, meta: parsed.meta, tier: c.tier };
  }

  #context(c: Candidate): FileContext {
    const ms = c.mtimeMs;
    return {
      meta: c.meta,
      tier: c.tier,
      node: this.options.node,
      maxLineBytes: this.options.maxLineBytes,
      multiline: multilineFor(this.options.multiline, c.meta.namespace, c.meta.container),
      fallbackTime: instantFromMs(ms),
    };
  }

  /** Finds files, matches them to what is tracked, and notes moved, truncated and vanished files. */
  async scan(): Promise<void> {
    this.#scans++;
    this.#scanStartedAt = this.#now();
    for (const tf of this.files) tf.awaitsScan = false;
    // Name the file is tracked under → path it is opened at.
    const paths = new Map<string, string>();
    for (const pattern of this.options.globs) {
      for await (const p of glob(pattern)) {
        if (p.endsWith(".tmp")) continue;
        // kubelet's /var/log/containers link is tracked under the /var/log/pods name it
        // points to, the name the file's rotated successors and the pods glob share.
        const name = POD_LOG_FILE_NAME.test(basename(p)) ? p : ((await podsNameBehind(p)) ?? p);
        paths.set(name, name);
      }
    }
    for (const link of [...paths.keys()]) await addDockerRotated(link, paths);
    const followed = await this.#followRotated(paths);
    for (const tf of this.files) tf.seen = false;
    // One name per file: a file reached by several names (a /var/log/containers symlink and
    // the /var/log/pods file it points to, or two globs) is one file, under one name.
    const named = new Map<string, { st: Stats; candidate: Candidate }>();
    for (const [path, open] of paths) {
      let st: Stats;
      try {
        st = await stat(open);
      } catch {
        continue;
      }
      if (!st.isFile()) continue;
      const candidate = this.#candidateFor(path, st, open);
      if (candidate === null) continue;
      const key = this.#key(st.dev, st.ino);
      const other = named.get(key);
      if (other === undefined || this.#preferredName(candidate, other.candidate, this.#byInode.get(key)))
        named.set(key, { st, candidate });
    }
    const fresh: Candidate[] = [];
    const truncated: TrackedFile[] = [];
    for (const { st, candidate } of named.values()) {
      const open = candidate.open;
      let tf = this.#byInode.get(this.#key(st.dev, st.ino));
      // Tracked under a /var/log/containers name, now also reached under its /var/log/pods
      // name: it goes on under that one, so it joins the chain of the files around it.
      if (tf !== undefined && tf.state === "active" && rankOfName(candidate) < rankOfName(tf.context))
        tf = this.#replace(tf, candidate, tf.order);
      if (tf !== undefined && tf.handle !== null) {
        // Held open: the inode cannot be reused, but its content can be truncated.
        if (!tf.compressed && (tf.headChanged || st.size < tf.readPos || !(await this.#sameHead(tf)))) {
          truncated.push(tf);
          tf.seen = true;
          fresh.push(candidate);
          continue;
        }
        this.#observe(tf, candidate);
        await tf.growFingerprint();
        continue;
      }
      if (tf !== undefined) {
        const head = await readHeadAt(open, candidate.meta.compressed, st);
        // The path moved on between stat and open: the next scan sees it as it is.
        if (head === null) continue;
        // Not held, so the inode number may have been freed and given to another file. A
        // .gz is never the inode of a plain file (gzip writes a new one): a match by content
        // is then its compressed copy, replaced in #placeFresh. A file with no fingerprint
        // (tracked while empty) is taken on the number only within its own chain.
        const sameKind = candidate.meta.compressed === tf.compressed;
        if (
          sameKind &&
          (matchesFingerprint(head, tf.fingerprint) ||
            (tf.fingerprint.bytes === 0 &&
              st.size >= tf.readPos &&
              chainBaseOf(candidate.path) === tf.chainBase))
        ) {
          this.#observe(tf, candidate);
          // A file tracked while nearly empty gets its full fingerprint as soon as it has the
          // bytes, so it is still recognised if it is renamed or compressed later.
          if (tf.state === "active" && head.length > tf.fingerprint.bytes)
            tf.fingerprint = fingerprintOf(head);
          continue;
        }
        // The inode now holds other content: the checkpointed file is gone, this one is new.
        this.#byInode.delete(this.#key(st.dev, st.ino));
      }
      fresh.push(candidate);
    }
    // A held file whose head changed under a read or at its end, under no listed name: it
    // was truncated (copytruncate) and then renamed out of the listing or unlinked (rotated
    // and gzipped) before a scan saw it. Its old content goes on in the copy all the same.
    for (const tf of this.files) {
      if (tf.headChanged && tf.handle !== null && tf.state === "active" && !truncated.includes(tf))
        truncated.push(tf);
    }
    await this.#placeFresh(fresh, truncated, followed);
    await this.#confirmFound(paths);
    await this.#refreshHeldPaths();
    this.#settle();
    this.#completedScans = this.#scans;
    this.#completedScanStartedAt = this.#scanStartedAt;
  }

  /**
   * Files found in this scan are read at once if their directory, listed again now, holds
   * no name of their chain that this scan's listing lacked. Such a name is a file renamed
   * between the listing and the stat that found its successor under the old name: it may
   * be older than what was found, so the chain waits for the next scan to place it (see
   * TrackedFile.foundInScan); reading the successor first would split a line across them.
   */
  async #confirmFound(listed: Map<string, string>): Promise<void> {
    const found = this.files.filter((tf) => tf.foundInScan === this.#scans);
    const unlistedChains = new Map<string, Set<string>>();
    for (const dir of new Set(found.map((tf) => dirname(tf.chainBase)))) {
      const chains = new Set<string>();
      for (const name of await readdir(dir).catch(() => [] as string[])) {
        const path = join(dir, name);
        if (!name.endsWith(".tmp") && !listed.has(path)) chains.add(chainBaseOf(path));
      }
      unlistedChains.set(dir, chains);
    }
    for (const tf of found) {
      if (unlistedChains.get(dirname(tf.chainBase))?.has(tf.chainBase)) continue;
      tf.foundInScan = -1;
    }
  }

  /**
   * Which of two names of one file it is tracked under: the /var/log/pods name, which
   * carries the pod UID and restart count and is never ambiguous; between names of the
   * same layout, the one it is tracked under already, else the first found (glob order).
   */
  #preferredName(a: Candidate, b: Candidate, tracked: TrackedFile | undefined): boolean {
    const ra = rankOfName(a);
    const rb = rankOfName(b);
    if (ra !== rb) return ra < rb;
    return tracked !== undefined && tracked.path === a.path && tracked.path !== b.path;
  }

  #observe(tf: TrackedFile, { path, open, size }: Candidate): void {
    tf.seen = true;
    tf.lastSeenAt = Date.now();
    tf.openPath = open;
    if (tf.path !== path) {
      this.options.metrics.fileLagBytes.remove({ file: tf.path });
      tf.path = path;
    }
    if (!tf.compressed) {
      tf.size = size;
      tf.observedSize = size;
      // The scan's stat is what notices a quiet file growing between its polls.
      if (size > tf.readPos) this.#wake(tf);
    }
    this.#orphanScans.delete(tf);
  }

  /** Read `tf` at the next step again (it grew, or its writer moved on). */
  #wake(tf: TrackedFile): void {
    tf.quietWaitMs = 0;
    tf.nextReadAt = 0;
  }

  /**
   * `tf` was read to its end: a live file is read again after a wait that doubles while it
   * stays quiet, up to quietPollMaxMs. A file whose writer moved on is not made to wait: it
   * is about to be finished, which needs a read that finds its end.
   */
  #quiet(tf: TrackedFile, now: number): void {
    const max = this.options.quietPollMaxMs ?? 0;
    if (max <= 0 || this.options.once || tf.movedAt !== null || tf.state !== "active") return;
    tf.quietWaitMs = Math.min(max, tf.quietWaitMs === 0 ? FIRST_QUIET_WAIT_MS : tf.quietWaitMs * 2);
    tf.nextReadAt = now + tf.quietWaitMs;
  }

  async #sameHead(tf: TrackedFile): Promise<boolean> {
    if (tf.fingerprint.bytes === 0) return true;
    const head = await readHeadOf(tf.handle!, false);
    return matchesFingerprint(head, tf.fingerprint);
  }

  /**
   * Adds to `paths` the rotated names (`<n>.log.<ts>`, its `.gz`, dockerd's `.<N>`) of every
   * chain with a file the globs may no longer list: a tracked file is followed to its
   * rotated name whether or not the globs match it. That is a file not at a listed name,
   * and a file not held open (restored from the checkpoint): its name may now be another
   * file's, as after `<n>.log` was rotated and replaced while the shipper was down. Returns
   * the names added: a file found only that way is tracked only as the successor of a
   * tracked file (see #placeFresh).
   */
  async #followRotated(paths: Map<string, string>): Promise<Set<string>> {
    const followed = new Set<string>();
    const chainsByDir = new Map<string, Set<string>>();
    for (const tf of this.files) {
      if (tf.state !== "active" || (paths.has(tf.path) && tf.handle !== null)) continue;
      const dir = dirname(tf.chainBase);
      const chains = chainsByDir.get(dir) ?? new Set<string>();
      chainsByDir.set(dir, chains);
      chains.add(tf.chainBase);
    }
    for (const [dir, chains] of chainsByDir) {
      for (const name of await readdir(dir).catch(() => [] as string[])) {
        const path = join(dir, name);
        if (paths.has(path) || name.endsWith(".tmp") || !chains.has(chainBaseOf(path))) continue;
        paths.set(path, path);
        followed.add(path);
      }
    }
    return followed;
  }

  async #placeFresh(fresh: Candidate[], truncated: TrackedFile[], followed: Set<string>): Promise<void> {
    // Older files of a chain first: rotated names (timestamped) before the live name.
    fresh.sort((a, b) => {
      const ca = chainBaseOf(a.path);
      const cb = chainBaseOf(b.path);
      if (ca !== cb) return ca < cb ? -1 : 1;
      const ra = a.path === ca ? 1 : 0;
      const rb = b.path === cb ? 1 : 0;
      // dockerd's `.<N>`: the higher N, the older.
      return ra - rb || dockerRotation(b.path) - dockerRotation(a.path) || (a.path < b.path ? -1 : 1);
    });
    const copies = new Map<TrackedFile, Candidate>();
    for (const c of fresh) {
      if (truncated.some((t) => t.dev === c.dev && t.ino === c.ino)) continue;
      // Head and size through one descriptor, kept if the file is new (see snapshotAt).
      const snapshot = await snapshotAt(c.open, c.meta.compressed, c);
      if (snapshot === null) continue;
      const { head } = snapshot;
      const base = chainBaseOf(c.path);
      // Identity is content, not path: a checkpointed file not found at any path in this
      // scan is also recognised elsewhere (logs copied to a disk mounted at another path).
      const known =
        this.files.find((tf) => tf.chainBase === base && matchesFingerprint(head, tf.fingerprint)) ??
        this.files.find((tf) => !tf.seen && tf.handle === null && matchesFingerprint(head, tf.fingerprint));
      if (known !== undefined) {
        await snapshot.handle.close();
        if (known.state === "done") {
          known.seen = true;
          known.lastSeenAt = Date.now();
        } else if (known.handle !== null) {
          // A copy of content still being read (a .gz made while we drain, or copytruncate's copy).
          copies.set(known, c);
        } else {
          // A restored file found under a new name (compressed while the shipper was down).
          this.#replace(known, c, known.order);
        }
        continue;
      }
      if (await this.#copyInProgress(c, head, base)) {
        await snapshot.handle.close();
        continue;
      }
      // Found only by following a chain: a file rotated after one already tracked (born
      // and rotated while the shipper was down) is its successor and read; an older one,
      // rotated before the chain was first seen, is outside the globs and stays unread.
      if (
        followed.has(c.path) &&
        !this.files.some((tf) => tf.chainBase === base && rotationStamp(tf.path) < rotationStamp(c.path))
      ) {
        await snapshot.handle.close();
        continue;
      }
      const tf = new TrackedFile(
        c.path,
        {
          dev: c.dev,
          ino: c.ino,
          size: c.meta.compressed ? c.size : snapshot.size,
          fingerprint: fingerprintOf(head),
        },
        this.#context(c),
        this.#nextOrder++,
      );
      tf.openPath = c.open;
      tf.birthtimeMs = snapshot.birthtimeMs;
      tf.foundInScan = this.#scans;
      // Held from the start, the descriptor the head was read through: a file renamed out
      // of the globs before its turn to be read (a chain behind on a fast rotation) is
      // still read, and it is the file the head and size belong to.
      tf.handle = snapshot.handle;
      this.#add(tf);
      this.options.log("debug", "file_tracked", {
        path: c.path,
        ino: c.ino,
        order: tf.order,
        size: c.size,
        fingerprintBytes: tf.fingerprint.bytes,
      });
    }
    for (const tf of truncated) await this.#truncatedUnder(tf, copies.get(tf), fresh);
  }

  /**
   * A rotated name whose content so far is the start of a tracked file of its chain, but
   * shorter: copytruncate's copy, listed while it is being written (copyFileSync creates
   * the file, then fills it). It is not a file of its own; it is left for a later scan,
   * which finds it complete and matches it to the file it copies.
   */
  async #copyInProgress(c: Candidate, head: Buffer, base: string): Promise<boolean> {
    if (c.meta.compressed || c.path === base || head.length >= FINGERPRINT_BYTES) return false;
    for (const tf of this.files) {
      if (tf.chainBase !== base || tf.state !== "active" || tf.compressed) continue;
      const theirs =
        tf.handle !== null ? await readHeadOf(tf.handle, false) : await readHeadAt(tf.openPath, false, tf);
      if (theirs !== null && theirs.length > head.length && theirs.subarray(0, head.length).equals(head)) {
        this.options.log("debug", "copy_incomplete", {
          path: c.path,
          ino: c.ino,
          of: tf.path,
          bytes: head.length,
        });
        return true;
      }
    }
    return false;
  }

  /** Continues `old`'s content from its offset at a new path (a copy, or its .gz). */
  #replace(old: TrackedFile, at: Candidate, order: number): TrackedFile {
    this.options.log("debug", "file_moved", {
      from: old.path,
      to: at.path,
      ino: at.ino,
      order,
      offset: old.readPos,
    });
    const next = new TrackedFile(
      at.path,
      { dev: at.dev, ino: at.ino, size: at.size, fingerprint: old.fingerprint },
      this.#context(at),
      order,
      old.checkpoint(),
    );
    next.openPath = at.open;
    next.birthtimeMs = at.birthtimeMs ?? 0;
    void old.close();
    this.#remove(old);
    this.#add(next);
    return next;
  }

  /**
   * The inode of `tf` was truncated (copytruncate) or rewritten. Its old content continues
   * in `copy` if one was found; otherwise what was not read is lost and counted. The inode
   * is then read from its start as a new file.
   */
  async #truncatedUnder(tf: TrackedFile, found: Candidate | undefined, fresh: Candidate[]): Promise<void> {
    const listed = fresh.find((c) => c.dev === tf.dev && c.ino === tf.ino);
    // copytruncate copies before it truncates, so a copy exists now even if this scan's
    // listing was taken before it appeared.
    const copy = found ?? (await this.#findCopy(tf));
    // Not listed: the new content is reached through the held descriptor only.
    const held = listed === undefined ? tf.handle : null;
    const heldName = held !== null ? await this.#heldName(tf) : null;
    this.options.log("debug", "file_truncated", {
      path: tf.path,
      now: listed?.path ?? heldName,
      ino: tf.ino,
      readPos: tf.readPos,
      size: listed?.size ?? null,
      headChanged: tf.headChanged,
      copy: copy?.path ?? null,
    });
    // The descriptor goes to the tracker of the new content, not closed with the old one.
    if (held !== null) tf.handle = null;
    if (copy !== undefined) {
      // copytruncate's own gap: what was appended after the copy was made and before the
      // truncation is in neither file. It is counted when a look at the file saw it.
      const gap = copy.meta.compressed ? 0 : tf.observedSize - Math.max(copy.size, tf.readPos);
      if (gap > 0) {
        this.options.metrics.bytesLost.inc({ reason: "truncation" }, gap);
        this.options.log("error", "log_bytes_lost", {
          reason: "truncation",
          path: tf.path,
          bytes: gap,
          copy: copy.path,
          note: "written after copytruncate copied the file and before it truncated it: in neither file",
        });
        const start = Math.max(copy.size, tf.readPos);
        this.#recordLoss(
          tf,
          "truncation",
          gap,
          { start, end: start + gap },
          `written after copytruncate copied the file (to ${copy.path}) and before it truncated it: in neither file`,
        );
      }
      this.#replace(tf, copy, tf.order);
    } else {
      const lost = Math.max(0, tf.size - tf.readPos);
      if (lost > 0) {
        this.options.metrics.bytesLost.inc({ reason: "truncation" }, lost);
        this.options.log("error", "log_bytes_lost", { reason: "truncation", path: tf.path, bytes: lost });
        this.#recordLoss(
          tf,
          "truncation",
          lost,
          { start: tf.readPos, end: tf.size },
          "the file was truncated before it was read to the end, and no copy of it was found",
        );
      }
      tf.decoder.end(this.options.lineSink(tf));
      void tf.close();
      this.#remove(tf);
    }
    if (held !== null) {
      await this.#trackHeldRest(tf, held, heldName!);
      return;
    }
    const now = listed!;
    // The inode's new content, as one open sees it (see snapshotAt); if the name moved on
    // meanwhile, an empty fingerprint: the next scan finds the inode again by number.
    const snapshot = await snapshotAt(now.open, false, now);
    const head = snapshot?.head ?? Buffer.alloc(0);
    const restarted = new TrackedFile(
      now.path,
      { dev: now.dev, ino: now.ino, size: snapshot?.size ?? 0, fingerprint: fingerprintOf(head) },
      this.#context(now),
      this.#nextOrder++,
    );
    restarted.openPath = now.open;
    restarted.foundInScan = this.#scans;
    if (snapshot !== null) {
      restarted.handle = snapshot.handle;
      restarted.birthtimeMs = snapshot.birthtimeMs;
    }
    this.#add(restarted);
    this.options.log("debug", "file_tracked", {
      path: now.path,
      ino: now.ino,
      order: restarted.order,
      size: now.size,
      fingerprintBytes: restarted.fingerprint.bytes,
      after: "truncation",
    });
  }

  /**
   * The new content of a truncated file no name lists any more, read through `handle`
   * under `name` (its last name, as the kernel gives it): unless a tracked file of its
   * chain already holds that content (its .gz, found as a new file), which is then the one
   * read.
   */
  async #trackHeldRest(old: TrackedFile, handle: FileHandle, name: string): Promise<void> {
    let head: Buffer;
    let st: Stats;
    try {
      head = await readHeadOf(handle, false);
      st = await handle.stat();
    } catch {
      await handle.close().catch(() => undefined);
      return;
    }
    const twin = this.files.find(
      (f) => f.chainBase === old.chainBase && f.state === "active" && matchesFingerprint(head, f.fingerprint),
    );
    const candidate = this.#candidateFor(name, st);
    if (twin !== undefined || candidate === null || head.length === 0 || st.size === 0) {
      // Nothing to read that is not tracked already (or nothing at all).
      await handle.close().catch(() => undefined);
      return;
    }
    const rest = new TrackedFile(
      name,
      { dev: st.dev, ino: st.ino, size: st.size, fingerprint: fingerprintOf(head) },
      this.#context(candidate),
      this.#nextOrder++,
    );
    rest.birthtimeMs = st.birthtimeMs;
    rest.handle = handle;
    this.#add(rest);
    this.options.log("debug", "file_tracked", {
      path: name,
      ino: st.ino,
      order: rest.order,
      size: st.size,
      fingerprintBytes: rest.fingerprint.bytes,
      after: "truncation",
    });
  }

  /** A held file's name now, by its descriptor (Linux), if still in its directory; else its known path. */
  async #heldName(tf: TrackedFile): Promise<string> {
    if (tf.handle === null) return tf.path;
    const current = await readlink(`/proc/self/fd/${tf.handle.fd}`).catch(() => null);
    if (current === null) return tf.path;
    const real = current.replace(/ \(deleted\)$/, "");
    return dirname(real) === resolve(dirname(tf.path)) ? join(dirname(tf.path), basename(real)) : tf.path;
  }

  /**
   * A file in `tf`'s chain whose content starts like `tf`'s and that no other tracked file
   * reads. What the inode number maps to is checked, not trusted: the copy may have taken
   * the number of a finished rotated file (gzipped and unlinked, still remembered so its
   * .gz is not read again), and a copy listed while still being written may have been
   * tracked as a file of its own; neither has read anything of it yet.
   */
  async #findCopy(tf: TrackedFile): Promise<Candidate | undefined> {
    const dir = dirname(tf.path);
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const path = join(dir, name);
      if (path === tf.path || chainBaseOf(path) !== tf.chainBase || path.endsWith(".tmp")) continue;
      const st = await stat(path).catch(() => null);
      if (st === null || !st.isFile()) continue;
      const candidate = this.#candidateFor(path, st);
      if (candidate === null) continue;
      const head = await readHeadAt(path, candidate.meta.compressed, st);
      if (head === null || !matchesFingerprint(head, tf.fingerprint)) continue;
      const key = this.#key(st.dev, st.ino);
      const other = this.#byInode.get(key);
      if (other === tf) continue;
      if (other !== undefined) {
        const stale = other.handle === null && !matchesFingerprint(head, other.fingerprint);
        const unreadTwin = other.state === "active" && other.readPos === 0 && !this.#confirmed(other);
        if (!stale && !unreadTwin) continue;
        this.options.log("debug", "file_untracked", {
          path: other.path,
          ino: other.ino,
          order: other.order,
          why: stale ? "inode number reused" : "a copy found while being written",
        });
        if (stale) this.#byInode.delete(key);
        else {
          await other.close();
          this.#remove(other);
        }
      }
      return candidate;
    }
    return undefined;
  }

  /**
   * A held file's name as the kernel knows it now. A scan's listing can miss a rename
   * that happens while it runs; a stale live name would rank a rotated file after its
   * successor and split the line that spans them. Linux only; elsewhere, the scan's view.
   * A file reached through a symlink (/var/log/containers, Docker) keeps the scan's view:
   * the kernel names the link's target, and taking that name would make the live file
   * look rotated, to be finished and closed at its first quiet moment.
   */
  async #refreshHeldPaths(): Promise<void> {
    for (const tf of this.files) {
      if (tf.handle === null || tf.state !== "active") continue;
      const current = await readlink(`/proc/self/fd/${tf.handle.fd}`).catch(() => null);
      if (current === null) continue;
      const real = current.replace(/ \(deleted\)$/, "");
      if (dirname(real) !== resolve(dirname(tf.path))) continue;
      const name = basename(real);
      if (name !== basename(tf.path)) {
        this.options.metrics.fileLagBytes.remove({ file: tf.path });
        tf.path = join(dirname(tf.path), name);
      }
    }
  }

  /** After a scan: moved files noted, finished files forgotten once gone, vanished ones counted. */
  #settle(): void {
    const now = this.#now();
    for (const tf of [...this.files]) {
      if (tf.seen) {
        this.#orphanScans.delete(tf);
        if (this.#writerMoved(tf)) this.#noteMoved(tf, now);
        else {
          tf.movedAt = null;
          tf.movedInScan = -1;
        }
        if (tf.state === "done" && tf.movedAt === null && !tf.compressed && tf.size > tf.readPos)
          this.#reopen(tf);
        continue;
      }
      if (tf.state === "done") {
        if (now - tf.lastSeenAt > DONE_RETENTION_MS) this.#remove(tf);
      } else if (tf.handle !== null) {
        // Unlinked (pod deleted) or out of the globs: the descriptor still reads it to the end.
        this.#noteMoved(tf, now);
      } else {
        const scans = (this.#orphanScans.get(tf) ?? 0) + 1;
        this.#orphanScans.set(tf, scans);
        if (scans >= ORPHAN_SCANS) this.#lost(tf);
      }
    }
    let lag = 0;
    for (const tf of this.files) {
      if (tf.state !== "active") continue;
      lag += tf.lag;
      if (!tf.compressed) this.options.metrics.fileLagBytes.set({ file: tf.path }, tf.lag);
    }
    this.options.metrics.lagBytes.set(lag);
    this.options.metrics.filesTracked.set(this.files.filter((f) => f.state === "active").length);
  }

  /** The first time a scan sees that `tf`'s writer has moved on. */
  #noteMoved(tf: TrackedFile, now: number): void {
    if (tf.movedAt !== null) return;
    tf.movedAt = now;
    tf.movedInScan = this.#scans;
    this.#wake(tf);
  }

  /**
   * A file marked done still at its live name, grown, with no newer file in its chain: an
   * earlier version's `--once` finished a file its writer kept appending to. It goes on
   * from where that run stopped.
   */
  #reopen(tf: TrackedFile): void {
    this.options.log("warn", "file_reopened", {
      path: tf.path,
      ino: tf.ino,
      offset: tf.readPos,
      size: tf.size,
      note: "a live file was marked done (by an earlier version's --once); reading it on",
    });
    tf.state = "active";
    tf.reachedEnd = false;
    this.#wake(tf);
  }

  /** A checkpointed file vanished before it was read to the end, while the shipper was down. */
  #lost(tf: TrackedFile): void {
    const lost = Math.max(0, tf.size - tf.readPos);
    if (lost > 0) {
      this.options.metrics.bytesLost.inc({ reason: "rotation" }, lost);
      this.options.log("error", "log_bytes_lost", {
        reason: "rotation",
        path: tf.path,
        bytes: lost,
        note: "the file was rotated away or removed before it was read to the end",
      });
      this.#recordLoss(
        tf,
        "rotation",
        lost,
        { start: tf.readPos, end: tf.size },
        "the file was rotated away or removed before it was read to the end",
      );
    }
    // Partial lines held from before the restart are still data. If nothing was lost, their
    // end is in the next file (dockerd's max-file can delete a file that was read to its end
    // but not yet finished), so they move there, as when a file is finished; else emit them.
    const successor = lost === 0 ? this.#unreadSuccessor(tf) : undefined;
    if (successor !== undefined) successor.inheritPartials(tf.decoder.checkpoint());
    else tf.decoder.end(this.options.lineSink(tf));
    this.#remove(tf);
  }

  /** The next file of `tf`'s chain, if nothing of it has been read yet. */
  #unreadSuccessor(tf: TrackedFile): TrackedFile | undefined {
    const successor = this.files
      .filter(
        (f) => f !== tf && f.state === "active" && f.chainBase === tf.chainBase && compareInChain(f, tf) > 0,
      )
      .sort(compareInChain)[0];
    return successor?.readPos === 0 ? successor : undefined;
  }

  #writerMoved(tf: TrackedFile): boolean {
    if (tf.path !== tf.chainBase || tf.compressed) return true;
    const restart = tf.context.meta.restartCount;
    return this.files.some(
      (f) =>
        f !== tf &&
        ((f.chainBase === tf.chainBase && compareInChain(f, tf) > 0) ||
          (restart !== undefined &&
            f.context.meta.restartCount !== undefined &&
            f.context.meta.restartCount > restart &&
            dirname(f.chainBase) === dirname(tf.chainBase))),
    );
  }

  /**
   * Per chain, the oldest file not yet finished: the only one read, so lines stay in order
   * and a partial line moves forward across a rotation. While a restored file of a chain
   * is not found again, the chain waits: reading a newer file first would split lines. A
   * restored file that stays unfound is counted lost within ORPHAN_SCANS scans, which
   * unblocks the chain.
   */
  readable(): TrackedFile[] {
    const first = new Map<string, TrackedFile>();
    const waiting = new Set<string>();
    for (const tf of this.files) {
      if (tf.state !== "active") continue;
      // A restored file not found yet has a stale path, so its place in the chain is
      // unknown: the whole chain waits for it.
      if (!tf.seen && tf.handle === null) waiting.add(tf.chainBase);
      const cur = first.get(tf.chainBase);
      if (cur === undefined || compareInChain(tf, cur) < 0) first.set(tf.chainBase, tf);
    }
    // A file just found waits for the next listing, which would show an older file of its
    // chain that the listing it was found in missed (TrackedFile.foundInScan).
    return [...first.values()].filter((tf) => !waiting.has(tf.chainBase) && this.#confirmed(tf));
  }

  /**
   * Reads one chunk from every readable file; returns the bytes read. `between` runs after
   * each file's chunk (the shipper waits there for gzip to catch up).
   */
  async readStep(buf: Buffer, between?: () => Promise<void>): Promise<number> {
    let total = 0;
    const now = this.#now();
    for (const tf of this.readable()) {
      if (tf.nextReadAt > now) {
        // Quiet and not due (see #quiet): no read, but an open stack trace is still emitted
        // when its stream has been quiet for its timeout.
        if (tf.decoder.multiline?.open === true) {
          tf.decoder.flushIdle(Date.now(), this.options.lineSink(tf));
          this.#account(tf, 0);
        }
        continue;
      }
      if (total > 0) await between?.();
      let n = 0;
      try {
        n = await tf.readChunk(buf, this.options.lineSink(tf));
      } catch (error) {
        this.options.log("warn", "read_failed", { path: tf.path, error: (error as Error).message });
        continue;
      }
      // A stack trace whose stream went quiet is emitted now, not when the next line comes;
      // unless the writer moved on to the next file of the chain (a rotation), where the
      // trace may go on: it is carried there, or emitted, when this file is finished.
      if (tf.movedAt === null) tf.decoder.flushIdle(Date.now(), this.options.lineSink(tf));
      if (tf.compressed) this.#countGzipDamage(tf);
      total += n;
      this.#account(tf, n);
      if (n > 0) {
        tf.reachedEnd = false;
        this.#wake(tf);
      } else if (!tf.headChanged) {
        await this.#maybeFinish(tf);
        if (tf.reachedEnd) this.#quiet(tf, now);
      }
    }
    return total;
  }

  /** A damaged .gz: every line that inflated before the damage is shipped, the rest counted. */
  #countGzipDamage(tf: TrackedFile): void {
    const damage = tf.takeGzipDamage();
    if (damage === null) return;
    this.options.metrics.bytesLost.inc({ reason: "corrupt_gzip" }, damage.lostBytes);
    this.options.log("error", "log_bytes_lost", {
      reason: "corrupt_gzip",
      path: tf.path,
      bytes: damage.lostBytes,
      offset: damage.offset,
      readPos: tf.readPos,
      error: damage.error,
      note: "the compressed file is damaged from this offset; what inflated before it is shipped",
    });
    this.#recordLoss(
      tf,
      "corrupt_gzip",
      damage.lostBytes,
      { start: damage.offset, end: damage.offset + damage.lostBytes },
      `the compressed file is damaged from this offset (${damage.error}); what inflated before it is shipped`,
    );
  }

  /** Hands a counted loss to the sink (onLoss), with what is known of the file and its window. */
  #recordLoss(
    tf: TrackedFile,
    reason: LossReason,
    bytes: number,
    range: { start: number; end: number } | null,
    note: string,
  ): void {
    const onLoss = this.options.onLoss;
    if (onLoss === undefined) return;
    const meta = tf.context.meta;
    onLoss({
      reason,
      namespace: meta.namespace,
      pod: meta.pod,
      podUid: meta.podUid ?? null,
      container: meta.container,
      file: {
        path: tf.path,
        dev: tf.dev,
        ino: tf.ino,
        fingerprint: tf.fingerprint.hash,
        compressed: tf.compressed,
      },
      bytes,
      range,
      detectedAt: formatRfc3339Nano(instantFromMs(this.#now())),
      window: {
        lastLineBefore: Number.isNaN(tf.lastLineSeconds)
          ? null
          : formatRfc3339Nano({ epochSeconds: tf.lastLineSeconds, nanos: tf.lastLineNanos }),
        // Known only once reading goes on past the loss, after the record is committed.
        firstLineAfter: null,
      },
      note,
    });
  }

  #account(tf: TrackedFile, bytes: number): void {
    const m = this.options.metrics;
    if (bytes > 0) m.bytesRead.inc(bytes);
    const seen = this.#statsSeen.get(tf) ?? {
      lines: 0,
      truncated: 0,
      truncatedBytes: 0,
      multiline: { next_line: 0, timeout: 0, limit: 0, end: 0, lines: 0 },
    };
    const reader = tf.decoder.reader.stats;
    const merger = tf.decoder.merger.stats;
    if (reader.lines > seen.lines) m.linesRead.inc(reader.lines - seen.lines);
    if (merger.truncatedLines > seen.truncated) m.linesTruncated.inc(merger.truncatedLines - seen.truncated);
    if (merger.droppedBytes > seen.truncatedBytes)
      m.bytesTruncated.inc(merger.droppedBytes - seen.truncatedBytes);
    const ml = tf.decoder.multiline?.stats;
    const mlSeen = ml === undefined ? seen.multiline : { ...seen.multiline };
    if (ml !== undefined) {
      for (const reason of ["next_line", "timeout", "limit", "end"] as const) {
        if (ml.records[reason] > mlSeen[reason])
          m.multilineRecords.inc({ reason }, ml.records[reason] - mlSeen[reason]);
        mlSeen[reason] = ml.records[reason];
      }
      if (ml.lines > mlSeen.lines) m.multilineLines.inc(ml.lines - mlSeen.lines);
      mlSeen.lines = ml.lines;
    }
    this.#statsSeen.set(tf, {
      lines: reader.lines,
      truncated: merger.truncatedLines,
      truncatedBytes: merger.droppedBytes,
      multiline: mlSeen,
    });
  }

  async #maybeFinish(tf: TrackedFile): Promise<void> {
    tf.reachedEnd = await tf.atEnd();
    // A file its writer has not left may still be appended to: it is never finished, with
    // `--once` neither; the checkpoint keeps it live at its offset for the next run.
    if (!tf.reachedEnd || tf.movedAt === null) return;
    // The grace runs from evidence on disk: the writer left no later than the rename or
    // unlink (which set ctime) and no later than the scan that saw it; the file was last
    // written at its mtime. A backlog found after a restart is then read at disk speed.
    // A .gz is complete when it appears under its name: it needs no grace.
    const graceFrom = Math.max(Math.min(tf.movedAt, tf.ctimeMs), tf.mtimeMs);
    const graced = !this.options.once && !tf.compressed;
    if (graced && this.#now() - graceFrom < this.options.finishGraceMs) return;
    // Its pending partial line goes to the next file of its chain, so that file must be
    // known: a scan has to have looked for it after the writer moved on. The scan that saw
    // the move may have listed the directory before the rename (it learnt of it from the
    // held descriptor), and that scan may have taken longer than the grace (the fs calls
    // wait behind gzip in libuv's pool on a loaded node), or the shipper may have had no CPU
    // from then until the grace was over: finishing then would split the line across the
    // rotation in two records. So a later scan, one that started after the grace was over,
    // must have run to its end.
    // A full scan takes a while on a loaded node; a rotated file's own directory, listed now,
    // is enough when every newer file of its chain there is one already tracked (#successorsKnown).
    if (
      (this.#completedScans <= tf.movedInScan ||
        (graced && this.#completedScanStartedAt - graceFrom < this.options.finishGraceMs)) &&
      !(graced && (await this.#successorsKnown(tf)))
    ) {
      tf.awaitsScan = true;
      return;
    }
    // Read to its end, or truncated below the offset? A copytruncate followed by a rename
    // before any scan saw it leaves a file shorter than what was read: its old content goes
    // on in the copy (the next scan sorts it out), not finished here.
    if (!(await tf.headIntact())) {
      tf.headChanged = true;
      return;
    }
    const successor = this.#unreadSuccessor(tf);
    // Its pending partial line goes to the next file of the chain: only once a second
    // listing has shown that file is the next one.
    if (successor !== undefined && !this.#confirmed(successor)) return;
    if (successor !== undefined) {
      // Everything is read; what is left is a partial line whose end is in the next file.
      tf.decoder.endUnterminatedTail(this.options.lineSink(tf));
      this.#account(tf, 0);
      successor.inheritPartials(tf.decoder.checkpoint());
    } else {
      tf.decoder.end(this.options.lineSink(tf));
      this.#account(tf, 0);
    }
    tf.state = "done";
    this.options.log("debug", "file_finished", {
      path: tf.path,
      ino: tf.ino,
      order: tf.order,
      readPos: tf.readPos,
      partialsTo: successor?.path ?? null,
    });
    await tf.close();
    this.options.metrics.fileLagBytes.remove({ file: tf.path });
  }

  /**
   * Whether every file of `tf`'s chain newer than it is tracked, by a listing of its
   * directory taken now, after its grace: then the next file of the chain is known without
   * waiting for a full scan, and its pending partial line can move there. Only for a file
   * held open at a kubelet rotated name (`<n>.log.<stamp>`, read back from the descriptor),
   * whose place in the chain its name gives; anything else (dockerd's `.<N>` chains, a
   * file unlinked or out of its directory, a newer name not tracked or tracked from a
   * checkpoint without a descriptor) waits for the full scan. One listing per completed
   * scan: a chain that is not known now waits for the next scan in any case.
   */
  async #successorsKnown(tf: TrackedFile): Promise<boolean> {
    if (tf.handle === null || tf.compressed) return false;
    if (this.#successorsListedAt.get(tf) === this.#completedScans) return false;
    this.#successorsListedAt.set(tf, this.#completedScans);
    const current = await readlink(`/proc/self/fd/${tf.handle.fd}`).catch(() => null);
    if (current === null || current.endsWith(" (deleted)")) return false;
    const dir = dirname(tf.chainBase);
    if (dirname(current) !== resolve(dir)) return false;
    const own = rotationStamp(join(dir, basename(current)));
    if (own === "~" || chainBaseOf(join(dir, basename(current))) !== tf.chainBase) return false;
    const names = await readdir(dir).catch(() => null);
    if (names === null) return false;
    for (const name of names) {
      const path = join(dir, name);
      if (name.endsWith(".tmp") || chainBaseOf(path) !== tf.chainBase || rotationStamp(path) <= own) continue;
      const st = await stat(path).catch(() => null);
      if (st === null) return false;
      const known = this.#byInode.get(this.#key(st.dev, st.ino));
      if (
        known === undefined ||
        known.state !== "active" ||
        known.handle === null ||
        known.chainBase !== tf.chainBase
      )
        return false;
    }
    return true;
  }

  /**
   * Emits every open stack-trace group, for the drain: a trace is not held in the
   * checkpoint of a shipper that may not run again on this node. Pending partial lines
   * stay, as they must (their end may still be written).
   */
  flushMultiline(): void {
    for (const tf of this.files) {
      if (tf.state !== "active") continue;
      tf.decoder.flushMultiline(this.options.lineSink(tf));
      this.#account(tf, 0);
    }
  }

  /**
   * Whether everything present has been read, for `--once`: every file is finished (or
   * counted lost), or is a live file read to its end, which stays live.
   */
  caughtUp(): boolean {
    return this.files.every((tf) => tf.state !== "active" || (tf.movedAt === null && tf.reachedEnd));
  }

  checkpoints(): FileCheckpoint[] {
    return this.files.map((tf) => tf.checkpoint());
  }

  async close(): Promise<void> {
    await Promise.all(this.files.map((tf) => tf.close()));
  }
}

/**
 * Chronological order of a container's files: kubelet names rotated files by the time of
 * rotation, and the live file (no suffix) is the newest. Discovery order only breaks
 * ties (the same path seen with a new inode, as under /var/log/containers), because after
 * a restart or a burst of rotations, files are found in no particular order.
 */
function compareInChain(a: TrackedFile, b: TrackedFile): number {
  const ra = rotationStamp(a.path);
  const rb = rotationStamp(b.path);
  return ra < rb ? -1 : ra > rb ? 1 : a.order - b.order;
}

/**
 * The checkpoint of each file once. An earlier version tracked a file reached by two
 * names twice; the entry that read furthest goes on (the other's lines are all in it),
 * the /var/log/pods name on a tie.
 */
function onePerFile(restore: readonly FileCheckpoint[]): FileCheckpoint[] {
  const byFile = new Map<string, FileCheckpoint>();
  for (const cp of restore) {
    const key = `${cp.dev}:${cp.ino}:${cp.fingerprint}`;
    const other = byFile.get(key);
    const rank = (c: FileCheckpoint) => (POD_LOG_NAME.test(c.path) ? 0 : 1);
    if (
      other === undefined ||
      cp.reader.offset > other.reader.offset ||
      (cp.reader.offset === other.reader.offset && rank(cp) < rank(other))
    )
      byFile.set(key, cp);
  }
  return [...byFile.values()];
}

/** A /var/log/pods file name, `<n>.log` and its rotated names. */
const POD_LOG_NAME = /\/\d+\.log(?:\.[^/]*)?$/;
const POD_LOG_FILE_NAME = /^\d+\.log(?:\.|$)/;

/**
 * The /var/log/pods name a symlink leads to (through any number of links), or null: a
 * regular file, a dangling link, or a link straight to dockerd's json log.
 */
async function podsNameBehind(link: string): Promise<string | null> {
  let target = link;
  for (let hops = 0; hops < 8; hops++) {
    const next = await readlink(target).catch(() => null);
    if (next === null) return null;
    target = resolve(dirname(target), next);
    if (!POD_LOG_FILE_NAME.test(basename(target))) continue;
    const parsed = parseLogPath(target);
    if (parsed.ok && parsed.meta.podUid !== undefined) return target;
  }
  return null;
}

/** 0 for a /var/log/pods name (it has the pod UID), 1 for a /var/log/containers one. */
function rankOfName(named: { meta: LogFileMeta }): number {
  return named.meta.podUid !== undefined ? 0 : 1;
}

/** dockerd's rotation number of a `<link>.<N>` name, 0 for any other. */
function dockerRotation(path: string): number {
  return Number(/\.log\.([1-9][0-9]{0,5})$/.exec(path)?.[1] ?? 0);
}

/**
 * If `link` is a symlink (through any number of links, dangling or not, as during a
 * rotation) to dockerd's `<id>-json.log`, adds its rotated `<id>-json.log.<N>` files to
 * `paths` as `<link>.<N>` → real path.
 */
async function addDockerRotated(link: string, paths: Map<string, string>): Promise<void> {
  let target = link;
  for (let hops = 0; hops < 8; hops++) {
    const next = await readlink(target).catch(() => null);
    if (next === null) break;
    target = resolve(dirname(target), next);
  }
  if (target === link || !DOCKER_JSON_LOG.test(basename(target))) return;
  const prefix = `${basename(target)}.`;
  for (const name of await readdir(dirname(target)).catch(() => [] as string[])) {
    const n = name.slice(prefix.length);
    if (name.startsWith(prefix) && /^[1-9][0-9]{0,5}$/.test(n))
      paths.set(`${link}.${n}`, join(dirname(target), name));
  }
}

function rotationStamp(path: string): string {
  return /\.(\d{8}-\d{6})(?:\.gz)?$/.exec(path)?.[1] ?? "~";
}
