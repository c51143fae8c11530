// One namespace-hour's committed manifests (docs/design/compaction.md), read the one way every
// reader and the compactor read them: listed under the hour's `manifest-` prefix, in generation
// order 0..n-1 with no gap, each parsed, naming its own hour and generation, and chained to the
// one before by SHA-256. Retrieval, reconcile (through lib/retrieval/compacted.ts) and the
// compactor (compact.ts) all call readHourManifests, so they agree on what is committed.
//
// Here, not in lib/retrieval: retrieval depends on the compaction module for it, and this file
// depends on neither (its own ListObjectsV2 loop), so the dependency runs one way.

import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { compactionManifestsPrefix, parseCompactedKey } from "../keys/layout.ts";
import {
  type CompactionManifest,
  manifestSha256,
  parseCompactionManifest,
} from "../object/compaction-manifest.ts";
import { listObjectPages } from "../retrieval/find.ts";

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
  const prefix = compactionManifestsPrefix(keyPrefix, namespace, dt, hour);
  for await (const page of listObjectPages(s3, bucket, prefix)) {
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
  return readListedManifests(s3, bucket, out, listed);
}

/**
 * An hour's manifests from keys already listed (the scheduled compactor lists a namespace's
 * compacted keys once for its whole window): every one parsed as a manifest key, then read and
 * chained as readHourManifests does, so both judge an hour the same way. `gets` counts the
 * GetObjects sent.
 */
export async function readListedHourManifests(
  s3: S3Client,
  bucket: string,
  namespace: string,
  dt: string,
  hour: string,
  keys: string[],
): Promise<HourManifests & { gets: number }> {
  const out: HourManifests = { namespace, dt, hour, keys: [...keys], manifests: [], problem: null };
  const listed: { key: string; generation: number }[] = [];
  for (const key of keys) {
    try {
      const parsed = parseCompactedKey(key);
      if (parsed.kind === "manifest") listed.push({ key, generation: parsed.generation });
      else out.problem ??= `${key} is not a manifest key`;
    } catch (error) {
      out.problem ??= `${key} is not a manifest key: ${(error as Error).message}`;
    }
  }
  let gets = 0;
  const counting: Pick<S3Client, "send"> = {
    send: ((command: Parameters<S3Client["send"]>[0]) => {
      gets++;
      return s3.send(command);
    }) as S3Client["send"],
  };
  const read = await readListedManifests(counting, bucket, out, listed);
  return { ...read, gets };
}

async function readListedManifests(
  s3: Pick<S3Client, "send">,
  bucket: string,
  out: HourManifests,
  listed: { key: string; generation: number }[],
): Promise<HourManifests> {
  const { namespace, dt, hour } = out;
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
