// The reader's side of archive compaction (docs/design/compaction.md#readers-no-line-twice-none-missed):
// for one namespace-hour, its committed manifests (every generation, in order), and each
// compacted part's members cut out of it at the manifest's offsets.
//
// The rule every reader keeps, per batch: a batch (original key) a committed manifest names is
// read from its member in the part, and its original, if still present, is not read; every
// other original present (a late batch not yet in a supplement, or one whose hour's compaction
// was refused and which the compactor keeps whole) is read as an original. Never both (a member
// is the original's bytes), never a part no manifest names. Readers list the originals before
// the manifests: the compactor deletes only originals a manifest it committed names, so an
// original missing from the listing is named by a manifest read after it.

import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import type { HourManifests, ReadManifest } from "../compaction/manifests.ts";
import type { CompactedPart, CompactionMember } from "../object/compaction-manifest.ts";
import { versionParam } from "./find.ts";

// The hour's committed manifests are read by the one shared reader (lib/compaction/manifests.ts),
// which the compactor uses too.
export { type HourManifests, type ReadManifest, readHourManifests } from "../compaction/manifests.ts";

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
