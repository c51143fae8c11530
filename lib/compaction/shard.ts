// Sharding `compact --pending` across the pods of an Indexed Job: shard <index>/<count> handles
// only the namespaces whose stable hash, taken mod count, is index. One hour of archive at the
// reference scale (about 425 GiB at 10,000 nodes and 1,000 namespaces) takes one process longer
// than the CronJob's run, so infra runs N of them at once, each with its own `--shard i/N`.
//
// The hash must never change between releases or machines: two pods of one Job built from
// different code, or a pod and a by-hand run, must agree which shard a namespace is in, or a
// namespace-hour is compacted twice at once (safe, the manifest commit is conditional, but
// wasted) or by nobody (an hour left pending until its originals expire). So: SHA-256 of the
// namespace name's UTF-8 bytes, its first 4 bytes read big-endian as an unsigned 32-bit
// integer, mod count. Namespaces are hashed, not hours, so every hour of a namespace (and its
// supplement generations) stays with one shard and a shard reads only its namespaces' entries
// of the hour indexes.

import { createHash } from "node:crypto";

export interface Shard {
  /** 0-based, below count. */
  index: number;
  /** At least 1; 1 is the whole archive. */
  count: number;
}

/** Every namespace: the default. */
export const WHOLE_ARCHIVE: Shard = { index: 0, count: 1 };

/** The largest shard count `--shard` takes (far above any pod count a CronJob would run). */
export const MAX_SHARD_COUNT = 1024;

/** The shard a namespace is in, among `count`. */
export function namespaceShard(namespace: string, count: number): number {
  const digest = createHash("sha256").update(namespace, "utf8").digest();
  return digest.readUInt32BE(0) % count;
}

/** Whether `shard` handles `namespace`. */
export function inShard(namespace: string, shard: Shard): boolean {
  return shard.count === 1 || namespaceShard(namespace, shard.count) === shard.index;
}

/** `<index>/<count>` (e.g. `2/8`), or an Error saying what is wrong (without the flag's name). */
export function parseShard(value: string): Shard {
  const m = /^(\d{1,4})\/(\d{1,4})$/.exec(value);
  if (m === null) throw new Error(`expected <index>/<count> such as 0/4, got ${JSON.stringify(value)}.`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || count > MAX_SHARD_COUNT)
    throw new Error(`the count ${count} must be from 1 to ${MAX_SHARD_COUNT}.`);
  if (index >= count) throw new Error(`the index ${index} must be below the count ${count} (0-based).`);
  return { index, count };
}

export function formatShard(shard: Shard): string {
  return `${shard.index}/${shard.count}`;
}
