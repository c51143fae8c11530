// The shipper's checkpoint: the single record of what is durable. It is written
// atomically (temp file, fsync, rename, fsync of the directory), and only after every
// batch it mentions is fsynced in the spool, so after any crash the checkpoint and the
// spool agree: a read offset is never ahead of data that is safe.

import { randomBytes } from "node:crypto";
import { mkdir, open, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import type { STREAM_TIER, Tier } from "../../lib/keys/layout.ts";
import type { ObjectMetadata } from "../../lib/object/metadata.ts";
import type { IndexLedgerState } from "../sinks/s3/hour-index.ts";
import type { LineReaderCheckpoint } from "../sources/kubernetes_logs/line_reader.ts";
import type { MergerSnapshot } from "../sources/kubernetes_logs/partial_merger.ts";
import type { MultilineSnapshot } from "../transforms/multiline/merger.ts";

export const CHECKPOINT_VERSION = 1;

export interface FileCheckpoint {
  /** Path where the file was last seen; a hint only, identity is dev/ino plus fingerprint. */
  path: string;
  dev: number;
  ino: number;
  /** sha256 (hex) of the first `fingerprintBytes` bytes of the (decompressed) content. */
  fingerprint: string;
  fingerprintBytes: number;
  reader: LineReaderCheckpoint;
  merger: MergerSnapshot;
  /**
   * Stack-trace groups open at the commit, with their lines: `reader.offset` is past those
   * lines, so they are restored from here, as `merger` restores pending partial lines.
   * Absent when none is open.
   */
  multiline?: MultilineSnapshot;
  /** Size last seen, so bytes lost to rotation can be counted if the file vanishes. */
  size: number;
  /** Read to the end and finished: remembered so a compressed copy is not read again. */
  done: boolean;
  /** Reading order within the file's chain (rotated files first). */
  order: number;
  /**
   * A damaged `.gz` whose loss was counted: committed with its loss record, so a restart that
   * reads the file on to the damage again does not count (or record) it twice.
   */
  gzipDamageCounted?: true;
  /** Time of the last line read from the file, for a loss record's window; absent before the first. */
  lastLine?: { epochSeconds: number; nanos: number };
}

/**
 * An open batch as the checkpoint names it: its identity and durable length, and its
 * target, a namespace's partition or (stream delivery, tier `stream`) a table's. Version 1
 * checkpoints written before stream delivery hold only the first kind and read unchanged.
 */
export type OpenBatchCheckpoint = OpenBatchState & (NamespaceTargetFields | StreamTargetFields);

interface NamespaceTargetFields {
  tier: Tier;
  namespace: string;
  dt: string;
  hour: string;
}

interface StreamTargetFields {
  tier: typeof STREAM_TIER;
  dataset: string;
  table: string;
  dt: string;
  hour: string;
}

export interface OpenBatchState {
  seq: number;
  /**
   * The batch id's epoch: the checkpoint's `epoch`, or for a stream batch `stream.epoch`.
   * Absent in checkpoints written before stream delivery: then the checkpoint's `epoch`.
   */
  epoch?: string;
  /** Node name in the batch id; kept so a renamed node finishes its batches under their ids. */
  node: string;
  /** Spool file generation: a batch rebuilt after a crash is written to a new file. */
  generation: number;
  /** The spool file of this generation. */
  file: string;
  /** Compressed bytes of the spool file that are durable, ending at a gzip sync-flush point. */
  spoolBytes: number;
  records: number;
  rawBytes: number;
  firstTimestamp: { epochSeconds: number; nanos: number };
  lastTimestamp: { epochSeconds: number; nanos: number };
  /** When the batch got its first record, ms since the epoch; the age cut counts from here. */
  openedAt: number;
}

export interface SealedBatchCheckpoint {
  /**
   * A loss record (docs/shipper.md#loss-records) or an hour index (docs/retrieval.md#hour-indexes)
   * rather than a batch of lines; absent for batches.
   */
  kind?: "loss" | "index";
  seq: number;
  key: string;
  /** Spool file holding the object body. */
  file: string;
  bytes: number;
  metadata: ObjectMetadata;
}

export interface Checkpoint {
  version: number;
  /** Random id made once per state directory; part of every batch id. */
  epoch: string;
  /** The next batch sequence number; never reused once a batch with it is committed. */
  nextSeq: number;
  /**
   * Stream delivery's batches are numbered in a sequence of their own, under an epoch of
   * their own, so the per-namespace objects' numbers stay contiguous: reconcile and
   * compliance retrieval find a lost archive batch as a gap in them, and stream objects,
   * which expire, would otherwise leave gaps there for ever. Absent until a stream batch is
   * opened (and in checkpoints written before stream delivery).
   */
  stream?: { epoch: string; nextSeq: number };
  files: FileCheckpoint[];
  open: OpenBatchCheckpoint[];
  /**
   * Sealed batches, and loss records, waiting for S3. A loss record enters here in the same
   * save as the file state that no longer holds the lost bytes, so it is written exactly
   * once: a crash before that save re-detects the loss from the previous file state.
   */
  sealed: SealedBatchCheckpoint[];
  /**
   * The hour-index ledger (shipper/sinks/s3/hour-index.ts). Absent in checkpoints written
   * before hour indexes: indexing then starts at `nextSeq`.
   */
  index?: IndexLedgerState;
}

export class CheckpointStore {
  readonly dir: string;
  readonly path: string;

  constructor(stateDir: string) {
    this.dir = stateDir;
    this.path = join(stateDir, "checkpoint.json");
  }

  /** The committed checkpoint, or a new one with a fresh epoch if there is none. */
  async load(): Promise<Checkpoint> {
    await mkdir(this.dir, { recursive: true });
    let text: string;
    try {
      text = await readFile(this.path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      return {
        version: CHECKPOINT_VERSION,
        epoch: newEpoch(),
        nextSeq: 0,
        files: [],
        open: [],
        sealed: [],
      };
    }
    const parsed = JSON.parse(text) as Checkpoint;
    if (parsed.version !== CHECKPOINT_VERSION) {
      throw new Error(
        `${this.path} has checkpoint version ${parsed.version}; this shipper reads ${CHECKPOINT_VERSION}. Use a matching shipper version.`,
      );
    }
    return parsed;
  }

  /**
   * Writes `checkpoint` as it is when called: it is serialised before the first await, so a
   * caller's live state (the sink's ledger, an upload acknowledged meanwhile) changing during
   * the write cannot reach the file half-applied.
   */
  async save(checkpoint: Checkpoint): Promise<void> {
    const text = JSON.stringify(checkpoint);
    const temp = `${this.path}.tmp`;
    const handle = await open(temp, "w");
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, this.path);
    await syncDirectory(this.dir);
  }
}

/** A random id for a batch sequence: part of every batch id, so a rebuilt node never reuses keys. */
export function newEpoch(differentFrom?: string): string {
  for (;;) {
    const epoch = randomBytes(4).toString("hex");
    if (epoch !== differentFrom) return epoch;
  }
}

/** fsync of a directory, so a rename or a new file in it survives a power loss. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
