// The reader's side of archive compaction (docs/design/compaction.md#readers-no-line-twice-none-missed):
// for one namespace-hour, its committed manifests (every generation, in order), and each
// compacted part's members cut out of it at the manifest's offsets.
//
// The rule every reader keeps: an hour with any committed manifest is read from the members
// its manifests name, and only from them; an hour without one from its originals. Never both
// (a member is the original's bytes), never a part no manifest names. Retrieval decides this
// per hour once, at the start of a run: a manifest appears only after its parts are complete,
// and originals outlive the commit by the landing days, so either choice stays readable for
// the rest of the run.

import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { compactionManifestsPrefix, parseCompactedKey } from "../keys/layout.ts";
import {
  type CompactedPart,
  type CompactionManifest,
  type CompactionMember,
  manifestSha256,
  parseCompactionManifest,
} from "../object/compaction-manifest.ts";
import { listObjectPages, versionParam } from "./find.ts";

/** One committed manifest as read. */
export interface ReadManifest {
  key: string;
  /** The version read ("null" on an unversioned bucket). */
  versionId: string;
  /** SHA-256 of its bytes: what the next generation's `previous` names. */
  sha256: string;
  manifest: CompactionManifest;
}

/**
 * An hour's manifests: `manifests` in generation order when every one of 0..n-1 is there,
 * reads, parses and chains; else `problem` says why (the hour is then not read at all, since
 * its originals may be gone and a partial member list would hide lines).
 */
export interface HourManifests {
  namespace: string;
  dt: string;
  hour: string;
  /** Manifest keys listed (also when they could not be used). */
  keys: string[];
  manifests: ReadManifest[];
  problem: string | null;
}

/** Lists and reads one namespace-hour's committed manifests. An hour with none has `keys` empty. */
export async function readHourManifests(
  s3: S3Client,
  bucket: string,
  keyPrefix: string,
  namespace: string,
  dt: string,
  hour: string,
): Promise<HourManifests> {
  const out: HourManifests = { namespace, dt, hour, keys: [], manifests: [], problem: null };
  const listed: { key: string; generation: number }[] = [];
  for await (const page of listObjectPages(
    s3,
    bucket,
    compactionManifestsPrefix(keyPrefix, namespace, dt, hour),
  )) {
    for (const o of page) {
      if (o.Key === undefined) continue;
      out.keys.push(o.Key);
      try {
        const parsed = parseCompactedKey(o.Key);
        if (parsed.kind === "manifest") listed.push({ key: o.Key, generation: parsed.generation });
        else out.problem ??= `${o.Key} is not a manifest key`;
      } catch (error) {
        out.problem ??= `${o.Key} is not a manifest key: ${(error as Error).message}`;
      }
    }
  }
  listed.sort((a, b) => a.generation - b.generation);
  const hourText = `${dt}T${hour}:00:00Z`;
  for (const [i, { key, generation }] of listed.entries()) {
    if (out.problem !== null) break;
    if (generation !== i) {
      out.problem = `manifest generation ${i} is missing (the next found is ${key})`;
      break;
    }
    try {
      const response = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const body = Buffer.from((await response.Body?.transformToByteArray()) ?? new Uint8Array());
      const manifest = parseCompactionManifest(body);
      if (
        manifest.namespace !== namespace ||
        manifest.hour !== hourText ||
        manifest.generation !== generation
      ) {
        throw new Error(
          `its body describes ${manifest.namespace} ${manifest.hour} generation ${manifest.generation}`,
        );
      }
      const previous = out.manifests.at(-1);
      if (previous !== undefined && manifest.previous?.sha256 !== previous.sha256) {
        throw new Error(`it does not chain to generation ${generation - 1} (its previous SHA-256 differs)`);
      }
      out.manifests.push({
        key,
        versionId: response.VersionId ?? "null",
        sha256: manifestSha256(body),
        manifest,
      });
    } catch (error) {
      out.problem = `manifest ${key} is not usable: ${(error as Error).message}`;
    }
  }
  if (out.problem !== null) out.manifests = [];
  return out;
}

/** One member's bytes cut from its part, or why they could not be. */
export interface MemberBytes {
  member: CompactionMember;
  bytes: Buffer | null;
  problem: string | null;
}

/**
 * Reads a part whole, in one streamed GET, and hands each member's bytes to `onMember` in
 * offset order as they arrive (one member in memory at a time, at most the shipper's batch
 * size; a part may be a GiB). Returns the SHA-256 and size of everything read, for the part's
 * own check against the manifest. Members whose range the body does not reach get a problem.
 */
export async function readPartMembers(
  s3: S3Client,
  bucket: string,
  part: { key: string; versionId: string },
  members: readonly CompactionMember[],
  onMember: (read: MemberBytes) => void,
): Promise<{ sha256: string; bytes: number }> {
  const ordered = [...members].sort((a, b) => a.offset - b.offset);
  const response = await s3.send(
    new GetObjectCommand({ Bucket: bucket, Key: part.key, ...versionParam(part.versionId) }),
  );
  const hash = createHash("sha256");
  let position = 0;
  let next = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const body = response.Body as Readable | undefined;
  const take = (chunk: Buffer) => {
    hash.update(chunk);
    let rest = chunk;
    while (rest.length > 0 && next < ordered.length) {
      const member = ordered[next]!;
      const start = member.offset;
      const end = member.offset + member.length;
      if (position + rest.length <= start) break;
      if (position < start) {
        rest = rest.subarray(start - position);
        position = start;
      }
      const wanted = end - position;
      const piece = rest.subarray(0, wanted);
      pending.push(piece);
      pendingBytes += piece.length;
      position += piece.length;
      rest = rest.subarray(piece.length);
      if (position === end) {
        onMember({ member, bytes: Buffer.concat(pending, pendingBytes), problem: null });
        pending = [];
        pendingBytes = 0;
        next++;
      }
    }
    position += rest.length;
  };
  if (body !== undefined) {
    for await (const chunk of body) take(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
  }
  for (; next < ordered.length; next++) {
    onMember({
      member: ordered[next]!,
      bytes: null,
      problem: `the part ${part.key} ends at byte ${position}, before this member's range ${ordered[next]!.offset}-${ordered[next]!.offset + ordered[next]!.length - 1}`,
    });
  }
  return { sha256: hash.digest("hex"), bytes: position };
}

/** Every part of an hour's generations, with the manifest that names it. */
export function hourParts(hour: HourManifests): { part: CompactedPart; manifest: ReadManifest }[] {
  return hour.manifests.flatMap((m) => m.manifest.parts.map((part) => ({ part, manifest: m })));
}
