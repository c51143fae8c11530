// compactNamespaceHour against a real local S3 (s3rver behind the archive front, for a
// versioned bucket), with archive objects as the shipper writes them: parts that inflate to
// the members' lines in manifest order, member byte ranges that hash to their SHA-256, parts
// split at member boundaries, a multipart part, a supplement generation for a late batch,
// refused and vanished originals, and DuckDB reading a part. The write order's promise (no
// complete part outside a written plan, docs/design/compaction.md): a crash at each step
// (upload, plan, completion, manifest) and a refusal mid-plan, each followed by a listing of
// every `.ndjson.gz` under the compacted prefix (what Athena's compacted table reads) checked
// against the committed manifests, and a re-run that writes a clean run's bytes.

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { gunzipSync } from "node:zlib";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  type S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { DuckDBInstance } from "@duckdb/node-api";
import { type LocalS3, localS3Client, startLocalS3 } from "../../local/s3.ts";
import { type S3ArchiveFront, startS3ArchiveFront } from "../../local/s3-archive/server.ts";
import {
  compactedHourPrefix,
  compactedPrefix,
  compactionManifestsPrefix,
  formatCompactionManifestKey,
  parseCompactedKey,
} from "../keys/layout.ts";
import { parseCompactionManifest } from "../object/compaction-manifest.ts";
import { METADATA_PREFIX } from "../object/metadata.ts";
import { listObjectPages } from "../retrieval/find.ts";
import {
  countCommands,
  putTestObject,
  type TestObject,
  testHourIndex,
  testObject,
} from "../retrieval/test_support.ts";
import {
  type CompactionOutcome,
  type CompactOptions,
  compactNamespaceHour,
  HourNotSettledError,
} from "./compact.ts";
import { readHourManifests } from "./manifests.ts";
import { readCompactionIndexes } from "./readiness.ts";

const E = "0c0c0c0c";
const HOUR = { dt: "2026-03-03", hour: "10" };
const AFTER_SETTLE = () => new Date("2026-03-03T13:00:00Z");

/** `n` lines of one node's batch in the hour, with messages of `size` random characters (incompressible). */
function batch(
  node: string,
  seq: number,
  n: number,
  o: { tier?: "archive" | "analytics"; namespace?: string; at?: string; size?: number } = {},
): TestObject {
  return testObject({
    namespace: o.namespace ?? "payments",
    node,
    epoch: E,
    seq,
    tier: o.tier ?? "archive",
    lines: Array.from({ length: n }, (_, i) => ({
      at: o.at ?? `2026-03-03T10:${String(i % 60).padStart(2, "0")}:00.${String(seq).padStart(9, "0")}Z`,
      message:
        o.size === undefined
          ? `line ${i} of ${node} ${seq}`
          : randomBytes(o.size).toString("base64").slice(0, o.size),
    })),
  });
}

const hourMembers = [
  batch("node-b", 3, 40),
  batch("node-a", 1, 25),
  batch("node-c", 7, 60),
  batch("node-a", 2, 10, { tier: "analytics" }),
  batch("node-c", 8, 5),
];
const otherNamespace = batch("node-a", 4, 5, { namespace: "web" });
const otherHour = batch("node-a", 5, 5, { at: "2026-03-03T11:10:00Z" });

async function bytesOf(s3: S3Client, bucket: string, key: string): Promise<Buffer> {
  const response = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await response.Body!.transformToByteArray());
}

async function keysUnder(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const page of listObjectPages(s3, bucket, prefix)) for (const o of page) keys.push(o.Key!);
  return keys;
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe("compactNamespaceHour", () => {
  let dir: string;
  let local: LocalS3;
  let front: S3ArchiveFront;
  let s3: S3Client;
  const clients: S3Client[] = [];
  const buckets = [
    "plain",
    "reference",
    "crash-upload",
    "crash-plan",
    "crash-complete",
    "crash-manifest",
    "refused-mid-plan",
    "vanished-head",
    "vanished-get",
    "late",
    "tampered",
    "big",
    "versioned",
    "indexed",
    "indexed-bad",
    "race-same",
    "race-other",
    "requests-indexed",
    "requests-unindexed",
    "indexed-unlabelled",
    "indexed-vanished",
  ];

  const options = (bucket: string, extra: Partial<CompactOptions> = {}): CompactOptions => ({
    s3,
    bucket,
    prefix: "logs",
    namespace: "payments",
    ...HOUR,
    now: AFTER_SETTLE,
    ...extra,
  });

  /** A client of its own whose commands are counted (a middleware name can be added once per client). */
  function counted(): { client: S3Client; counts: Map<string, number> } {
    const client = localS3Client(front.endpoint, "us-east-1");
    clients.push(client);
    return { client, counts: countCommands(client) };
  }

  /** A client of its own that records each command with its key, in order. */
  function recordingKeys(): { client: S3Client; sent: { command: string; key: string }[] } {
    const client = localS3Client(front.endpoint, "us-east-1");
    clients.push(client);
    const sent: { command: string; key: string }[] = [];
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const command = (context as { commandName?: string }).commandName ?? "?";
        sent.push({ command, key: (args.input as { Key?: string }).Key ?? "" });
        return next(args);
      },
      { step: "initialize", name: "recordKeys" },
    );
    return { client, sent };
  }

  /** hourMembers and every node's hour index of them (each node's batches numbered in the hour). */
  async function putIndexed(bucket: string, members: readonly TestObject[]): Promise<void> {
    await putAll(bucket, members);
    for (const node of new Set(members.map((m) => m.key.match(/\/(node-[a-z])_/)![1]!))) {
      const batches = members.filter((m) => m.key.includes(`/${node}_`));
      await putTestObject(
        s3,
        bucket,
        testHourIndex({ node, epoch: E, hour: "2026-03-03T10", batches, previous: null }),
        { ContentType: "application/json" },
      );
    }
  }

  async function putAll(bucket: string, objects: readonly TestObject[]): Promise<void> {
    for (const o of objects) await putTestObject(s3, bucket, o);
  }

  /** Every check a reader relies on, from what is stored: returns the parts' bytes. */
  async function checkCommitted(
    bucket: string,
    outcome: CompactionOutcome,
    originals: readonly TestObject[],
  ): Promise<Buffer[]> {
    assert.equal(outcome.status, "committed");
    const manifest = parseCompactionManifest(await bytesOf(s3, bucket, outcome.manifestKey!));
    assert.deepEqual(manifest, outcome.manifest);
    const byKey = new Map(originals.map((o) => [o.key, o]));
    assert.deepEqual(
      manifest.members.map((m) => m.key),
      originals.map((o) => o.key).sort(),
      "every original of the hour once, in key order",
    );
    const parts: Buffer[] = [];
    for (const part of manifest.parts) {
      const body = await bytesOf(s3, bucket, part.key);
      parts.push(body);
      assert.equal(body.length, part.bytes);
      assert.equal(sha(body), part.sha256);
      const members = manifest.members.filter((m) => m.part === part.part);
      for (const m of members) {
        const original = byKey.get(m.key)!;
        const range = body.subarray(m.offset, m.offset + m.length);
        assert.equal(sha(range), m.sha256, `${m.key}'s range hashes to its sha256`);
        assert.ok(range.equals(original.body), `${m.key}'s bytes are the original's`);
        assert.equal(m.records, original.lines.length);
      }
      // RFC 1952 §2.2: the part is a gzip file whose inflation is the members' lines in order.
      const expected = members.map((m) => `${byKey.get(m.key)!.lines.join("\n")}\n`).join("");
      assert.equal(gunzipSync(body).toString("utf8"), expected);
    }
    return parts;
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "compact-"));
    local = await startLocalS3({ host: "127.0.0.1", port: 0, dataDir: join(dir, "s3"), buckets });
    front = await startS3ArchiveFront({
      host: "127.0.0.1",
      port: 0,
      upstream: local.endpoint,
      region: "us-east-1",
      dataDir: join(dir, "front"),
      buckets: [{ name: "versioned", versioning: true }],
    });
    s3 = localS3Client(front.endpoint, "us-east-1");
  });

  after(async () => {
    s3?.destroy();
    for (const c of clients) c.destroy();
    await front?.stop();
    await local?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("concatenates the hour's originals of both tiers in key order into parts split at member boundaries, then commits one manifest", async () => {
    await putAll("plain", [...hourMembers, otherNamespace, otherHour]);
    await putTestObject(s3, "plain", {
      ...hourMembers[0]!,
      key: `${hourMembers[0]!.key.replace(/[^/]+$/, "")}notes.txt`,
    });
    const sizes = hourMembers.map((o) => o.body.length);
    // Room for about two members per part, so the split is exercised.
    const partMaxBytes = Math.max(...sizes) * 2;
    const outcome = await compactNamespaceHour(options("plain", { partMaxBytes }));
    await checkCommitted("plain", outcome, hourMembers);
    const manifest = outcome.manifest!;
    assert.ok(manifest.parts.length >= 2, `${manifest.parts.length} parts`);
    for (const [i, part] of manifest.parts.entries()) {
      const members = manifest.members.filter((m) => m.part === i);
      assert.ok(part.bytes <= partMaxBytes || members.length === 1, `part ${i} is within partMaxBytes`);
      const next = manifest.members.find((m) => m.part === i + 1);
      if (next !== undefined)
        assert.ok(
          part.bytes + next.length > partMaxBytes,
          `part ${i} ends only where the next member would not fit`,
        );
    }
    assert.equal(manifest.generation, 0);
    assert.equal(manifest.previous, null);
    assert.deepEqual(outcome.ignored, [`${hourMembers[0]!.key.replace(/[^/]+$/, "")}notes.txt`]);
    assert.ok(outcome.parts.every((p) => p.outcome === "written"));
    assert.equal(outcome.manifestWritten, true);
    assert.deepEqual(
      await keysUnder(s3, "plain", compactionManifestsPrefix("logs", "payments", HOUR.dt, HOUR.hour)),
      [outcome.manifestKey],
    );
    assert.deepEqual(
      manifest.members.map((m) => [m.node, m.seq, m.tier, m.versionId]),
      [
        ["node-a", 2, "analytics", null],
        ["node-a", 1, "archive", null],
        ["node-b", 3, "archive", null],
        ["node-c", 7, "archive", null],
        ["node-c", 8, "archive", null],
      ],
    );

    // Run again: everything is in generation 0, nothing is written.
    const { client, counts } = counted();
    const again = await compactNamespaceHour(options("plain", { s3: client, partMaxBytes }));
    assert.equal(again.status, "up-to-date");
    assert.equal(again.alreadyCompacted, hourMembers.length);
    assert.equal(counts.get("PutObjectCommand") ?? 0, 0);
    assert.equal(counts.get("CreateMultipartUploadCommand") ?? 0, 0);
  });

  /**
   * A client whose process "dies" at the first command `crashAt` matches: that command and
   * every later one fail, as after a kill (no abort or other cleanup reaches S3).
   */
  function crashingClient(crashAt: (command: string, key: string) => boolean): S3Client {
    const client = localS3Client(front.endpoint, "us-east-1");
    clients.push(client);
    let dead = false;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const command = (context as { commandName?: string }).commandName ?? "";
        if (!dead && crashAt(command, (args.input as { Key?: string }).Key ?? "")) dead = true;
        if (dead) throw new Error(`injected crash at ${command}`);
        return next(args);
      },
      { step: "initialize", name: "crash" },
    );
    return client;
  }

  /**
   * What Athena's compacted table reads is every `.ndjson.gz` under the compacted prefix: each
   * must be a part a committed manifest of its hour names (or, with `plans`, one a written plan
   * names, which a re-run commits). Everything else there is plan or manifest JSON.
   */
  async function checkNoOrphanParts(
    bucket: string,
    o: { plans?: boolean } = {},
  ): Promise<{ parts: string[]; plans: string[]; manifests: string[] }> {
    const found = { parts: [] as string[], plans: [] as string[], manifests: [] as string[] };
    const hours = new Map<string, { namespace: string; dt: string; hour: string }>();
    for (const key of await keysUnder(s3, bucket, compactedPrefix("logs"))) {
      const parsed = parseCompactedKey(key); // anything else under the prefix fails here
      hours.set(`${parsed.namespace}/${parsed.dt}/${parsed.hour}`, parsed);
      if (parsed.kind === "part") found.parts.push(key);
      else {
        assert.ok(key.endsWith(".json") && !key.endsWith(".ndjson.gz"), key);
        (parsed.kind === "plan" ? found.plans : found.manifests).push(key);
      }
    }
    const named = new Set<string>();
    for (const h of hours.values()) {
      const read = await readHourManifests(s3, bucket, "logs", h.namespace, h.dt, h.hour);
      assert.equal(read.problem, null);
      for (const m of read.manifests) for (const p of m.manifest.parts) named.add(p.key);
    }
    if (o.plans) {
      for (const key of found.plans) {
        for (const p of parseCompactionManifest(await bytesOf(s3, bucket, key)).parts) named.add(p.key);
      }
    }
    for (const part of found.parts) {
      assert.ok(
        named.has(part),
        `${part} is read by Athena's compacted table, but no committed ${o.plans ? "plan or manifest" : "manifest"} names it`,
      );
    }
    return found;
  }

  /** The manifest of a clean run of `hourMembers` at `partMaxBytes`, to compare re-runs' bytes with. */
  async function referenceManifest(partMaxBytes: number): Promise<Buffer> {
    await putAll("reference", hourMembers);
    const outcome = await compactNamespaceHour(options("reference", { partMaxBytes }));
    const key =
      outcome.manifestKey ??
      formatCompactionManifestKey({ prefix: "logs", namespace: "payments", ...HOUR, generation: 0 });
    return bytesOf(s3, "reference", key);
  }

  const crashSteps: {
    bucket: string;
    step: string;
    crashAt: (command: string, key: string) => boolean;
    /** What is visible under the compacted prefix after the crash. */
    visible: "nothing" | "plan and the first part" | "plan and every part";
  }[] = [
    {
      bucket: "crash-upload",
      step: "(a) the second part's upload",
      crashAt: (c, k) => c === "UploadPartCommand" && k.includes("/part-0000-0001-"),
      visible: "nothing",
    },
    {
      bucket: "crash-plan",
      step: "(c) the plan's PUT",
      crashAt: (c, k) => c === "PutObjectCommand" && k.includes("/plan-"),
      visible: "nothing",
    },
    {
      bucket: "crash-complete",
      step: "(d) the second part's completion",
      crashAt: (c, k) => c === "CompleteMultipartUploadCommand" && k.includes("/part-0000-0001-"),
      visible: "plan and the first part",
    },
    {
      bucket: "crash-manifest",
      step: "(e) the manifest's PUT",
      crashAt: (c, k) => c === "PutObjectCommand" && k.includes("/manifest-"),
      visible: "plan and every part",
    },
  ];
  for (const { bucket, step, crashAt, visible } of crashSteps) {
    it(`a crash at ${step} leaves ${visible} visible, every part inside a written plan; a re-run commits the same bytes as a clean run, every part named by the manifest`, async () => {
      const partMaxBytes = Math.max(...hourMembers.map((o) => o.body.length)) * 2;
      const reference = await referenceManifest(partMaxBytes);
      const planned = parseCompactionManifest(reference);
      assert.ok(planned.parts.length >= 2, `${planned.parts.length} parts`);
      await putAll(bucket, hourMembers);
      await assert.rejects(
        compactNamespaceHour(options(bucket, { s3: crashingClient(crashAt), partMaxBytes })),
        /injected crash/,
      );
      const afterCrash = await checkNoOrphanParts(bucket, { plans: true });
      assert.deepEqual(afterCrash.manifests, [], "nothing committed");
      const partKeys = planned.parts.map((p) => p.key);
      switch (visible) {
        case "nothing":
          assert.deepEqual(afterCrash, { parts: [], plans: [], manifests: [] });
          break;
        case "plan and the first part":
          assert.deepEqual(afterCrash.parts, partKeys.slice(0, 1));
          assert.equal(afterCrash.plans.length, 1);
          break;
        case "plan and every part":
          assert.deepEqual(afterCrash.parts, partKeys);
          assert.equal(afterCrash.plans.length, 1);
          break;
      }
      if (afterCrash.plans.length > 0) {
        assert.ok(
          (await bytesOf(s3, bucket, afterCrash.plans[0]!)).equals(reference),
          "the plan is the manifest-to-be, byte for byte",
        );
      }
      // A batch that lands before the re-run: a stored plan is completed without it (with no
      // plan stored, the re-run plans afresh, as a clean run would, so none is added then).
      const resumes = visible !== "nothing";
      const late = batch("node-d", 0, 12);
      if (resumes) await putTestObject(s3, bucket, late);

      const { client, counts } = counted();
      const rerun = await compactNamespaceHour(options(bucket, { s3: client, partMaxBytes }));
      assert.equal(rerun.status, "committed");
      assert.equal(rerun.resumedPlan, resumes);
      assert.ok((await bytesOf(s3, bucket, rerun.manifestKey!)).equals(reference), "a clean run's manifest");
      assert.ok(
        rerun.manifest!.members.every((m) => m.key !== late.key),
        "the late batch is not in a plan written before it",
      );
      if (visible === "plan and every part") {
        assert.ok(rerun.parts.every((p) => p.outcome === "kept"));
        assert.equal(counts.get("PutObjectCommand"), 1, "only the manifest was written");
        assert.equal(counts.get("CreateMultipartUploadCommand") ?? 0, 0);
      }
      if (visible === "plan and the first part") {
        assert.deepEqual(
          rerun.parts.map((p) => p.outcome),
          ["kept", ...rerun.parts.slice(1).map(() => "written")],
        );
      }
      const committed = await checkNoOrphanParts(bucket);
      assert.deepEqual(committed.parts, partKeys);
      await checkCommitted(bucket, rerun, hourMembers);

      if (resumes) {
        const next = await compactNamespaceHour(options(bucket, { partMaxBytes }));
        await checkCommitted(bucket, next, [late]);
        assert.equal(next.generation, 1);
        await checkNoOrphanParts(bucket);
      }
    });
  }

  it("a refused original in a later part aborts every upload of the run, the earlier parts' too: nothing under the compacted prefix", async () => {
    const partMaxBytes = Math.max(...hourMembers.map((o) => o.body.length)) * 2;
    const byKey = [...hourMembers].sort((a, b) => (a.key < b.key ? -1 : 1));
    const victim = byKey.at(-1)!;
    const stranger = byKey[0]!;
    await putAll(
      "refused-mid-plan",
      hourMembers.map((o) => (o === victim ? { ...victim, body: stranger.body } : o)),
    );
    const { client, counts } = counted();
    const outcome = await compactNamespaceHour(options("refused-mid-plan", { s3: client, partMaxBytes }));
    assert.equal(outcome.status, "refused");
    assert.ok(outcome.parts.length >= 2 && outcome.members.find((m) => m.key === victim.key)!.part > 0);
    assert.deepEqual(
      outcome.refused.map((r) => r.key),
      [victim.key],
    );
    assert.ok((counts.get("CreateMultipartUploadCommand") ?? 0) >= 1, "earlier parts were uploaded");
    assert.equal(counts.get("AbortMultipartUploadCommand"), counts.get("CreateMultipartUploadCommand"));
    assert.equal(counts.get("CompleteMultipartUploadCommand") ?? 0, 0);
    assert.equal(counts.get("PutObjectCommand") ?? 0, 0, "no plan, no manifest");
    assert.deepEqual(await checkNoOrphanParts("refused-mid-plan"), { parts: [], plans: [], manifests: [] });
  });

  for (const [bucket, command] of [
    ["vanished-head", "HeadObjectCommand"],
    ["vanished-get", "GetObjectCommand"],
  ] as const) {
    it(`an original deleted between the listing and its ${command === "HeadObjectCommand" ? "HEAD" : "GET"} (404) is refused by name for the hour, not a crash; nothing visible`, async () => {
      const victim = hourMembers[2]!;
      await putAll(bucket, hourMembers);
      const client = localS3Client(front.endpoint, "us-east-1");
      clients.push(client);
      client.middlewareStack.add(
        (next, context) => async (args) => {
          const name = (context as { commandName?: string }).commandName;
          if (name === command && (args.input as { Key?: string }).Key === victim.key) {
            await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: victim.key }));
          }
          return next(args);
        },
        { step: "initialize", name: "vanish" },
      );
      const outcome = await compactNamespaceHour(options(bucket, { s3: client }));
      assert.equal(outcome.status, "refused");
      assert.deepEqual(
        outcome.refused.map((r) => r.key),
        [victim.key],
      );
      assert.match(
        outcome.refused[0]!.reason,
        /the object is gone: listed, then HeadObject or GetObject answered 404/,
      );
      assert.deepEqual(await checkNoOrphanParts(bucket), { parts: [], plans: [], manifests: [] });
    });
  }

  it("one request per original: a GET, whose response headers give the metadata, when its node's hour index gives the SHA-256; a HEAD and a GET without an index", async () => {
    const originals = (sent: { command: string; key: string }[]) =>
      sent.filter((r) => hourMembers.some((m) => m.key === r.key));
    const perOriginal = (sent: { command: string; key: string }[]) =>
      hourMembers.map((m) =>
        sent
          .filter((r) => r.key === m.key)
          .map((r) => r.command)
          .join(" "),
      );

    await putIndexed("requests-indexed", hourMembers);
    const indexed = recordingKeys();
    const outcome = await compactNamespaceHour(options("requests-indexed", { s3: indexed.client }));
    await checkCommitted("requests-indexed", outcome, hourMembers);
    assert.equal(outcome.indexes.unindexedNodes.length, 0);
    assert.deepEqual(
      perOriginal(indexed.sent),
      hourMembers.map(() => "GetObjectCommand"),
    );
    // Records and times in the manifest are the metadata's, taken from the GET.
    for (const m of outcome.manifest!.members) {
      const original = hourMembers.find((o) => o.key === m.key)!;
      assert.equal(m.records, original.lines.length);
      assert.equal(m.firstTimestamp, original.metadata[`${METADATA_PREFIX}first-ts`]);
    }

    // Without indexes (a shipper before them, or --no-index-check): the SHA-256 a part's key
    // needs comes from a HEAD first.
    await putAll("requests-unindexed", hourMembers);
    const unindexed = recordingKeys();
    await checkCommitted(
      "requests-unindexed",
      await compactNamespaceHour(options("requests-unindexed", { s3: unindexed.client })),
      hourMembers,
    );
    assert.deepEqual(
      perOriginal(unindexed.sent),
      hourMembers.map(() => "HeadObjectCommand GetObjectCommand"),
    );
    assert.equal(originals(indexed.sent).length * 2, originals(unindexed.sent).length);
  });

  it("an indexed original is still refused at its GET for missing metadata, or when it is gone (404); nothing visible", async () => {
    const victim = hourMembers[1]!;
    await putIndexed("indexed-unlabelled", hourMembers);
    await putTestObject(s3, "indexed-unlabelled", { ...victim, metadata: {} });
    const unlabelled = await compactNamespaceHour(options("indexed-unlabelled"));
    assert.equal(unlabelled.status, "refused");
    assert.deepEqual(
      unlabelled.refused.map((r) => r.key),
      [victim.key],
    );
    assert.match(unlabelled.refused[0]!.reason, /object metadata logarchive-\S+ is missing/);
    assert.deepEqual(await checkNoOrphanParts("indexed-unlabelled"), { parts: [], plans: [], manifests: [] });

    await putIndexed("indexed-vanished", hourMembers);
    const { client, sent } = recordingKeys();
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const name = (context as { commandName?: string }).commandName;
        const input = args.input as { Key?: string; VersionId?: string };
        // The version the listing found, removed for good (a DeleteObject of that version).
        if (name === "GetObjectCommand" && input.Key === victim.key) {
          await s3.send(
            new DeleteObjectCommand({
              Bucket: "indexed-vanished",
              Key: victim.key,
              VersionId: input.VersionId,
            }),
          );
        }
        return next(args);
      },
      { step: "initialize", name: "vanish" },
    );
    const vanished = await compactNamespaceHour(options("indexed-vanished", { s3: client }));
    assert.equal(vanished.status, "refused");
    assert.deepEqual(
      vanished.refused.map((r) => r.key),
      [victim.key],
    );
    assert.match(
      vanished.refused[0]!.reason,
      /the object is gone: listed, then HeadObject or GetObject answered 404/,
    );
    assert.ok(!sent.some((r) => r.command === "HeadObjectCommand" && r.key === victim.key));
    assert.deepEqual(await checkNoOrphanParts("indexed-vanished"), { parts: [], plans: [], manifests: [] });
  });

  it("a batch that arrives after the hour was committed goes into generation 1, chained to generation 0, and no original is taken twice", async () => {
    await putAll("late", hourMembers);
    const first = await compactNamespaceHour(options("late"));
    assert.equal(first.status, "committed");
    assert.equal(first.manifest!.parts.length, 1, "1 GiB holds the whole hour");
    const late = batch("node-d", 0, 12);
    await putTestObject(s3, "late", late);
    const second = await compactNamespaceHour(options("late"));
    await checkCommitted("late", second, [late]);
    assert.equal(second.generation, 1);
    assert.equal(second.alreadyCompacted, hourMembers.length);
    const firstBody = await bytesOf(s3, "late", first.manifestKey!);
    assert.deepEqual(second.manifest!.previous, { generation: 0, sha256: sha(firstBody) });
    assert.match(second.manifest!.parts[0]!.key, /\/part-0001-0000-[0-9a-f]{16}\.ndjson\.gz$/);
    assert.equal((await compactNamespaceHour(options("late"))).status, "up-to-date");
  });

  it("refuses an original whose bytes do not hash to its metadata's sha256, or that has no metadata, and commits nothing", async () => {
    const [good, victim, other] = [hourMembers[0]!, hourMembers[1]!, hourMembers[2]!];
    // The victim's key and metadata with other bytes: what an overwrite by another writer looks like.
    await putAll("tampered", [good, { ...victim, body: other.body }]);
    const outcome = await compactNamespaceHour(options("tampered"));
    assert.equal(outcome.status, "refused");
    assert.equal(outcome.manifest, null);
    assert.deepEqual(
      outcome.refused.map((r) => r.key),
      [victim.key],
    );
    assert.match(
      outcome.refused[0]!.reason,
      /sha256 mismatch: the stored bytes hash to [0-9a-f]{64}, its metadata says/,
    );
    assert.deepEqual(
      await keysUnder(s3, "tampered", compactedHourPrefix("logs", "payments", HOUR.dt, HOUR.hour)),
      [],
      "no part, no manifest",
    );

    await putTestObject(s3, "tampered", { ...victim, metadata: {} });
    const unlabelled = await compactNamespaceHour(options("tampered", { dryRun: true }));
    assert.equal(unlabelled.status, "refused");
    assert.match(unlabelled.refused[0]!.reason, /object metadata logarchive-\S+ is missing/);
  });

  it("waits for the hour indexes: a batch an index names that is not in S3, or one numbered after its node's last index, makes the hour not ready; a node without indexes does not", async () => {
    const a0 = batch("node-a", 0, 5);
    const a1 = batch("node-a", 1, 5, { namespace: "web" });
    const a2 = batch("node-a", 2, 5, { tier: "analytics" });
    const b0 = batch("node-b", 0, 5);
    const b1 = batch("node-b", 1, 5);
    const c0 = batch("node-c", 0, 5);
    const d0 = batch("node-d", 0, 5);
    await putAll("indexed", [a0, a1, a2, b0, b1, c0]);
    const index = (
      node: string,
      hour: string,
      batches: TestObject[],
      previous: { hour: string; last: number } | null,
    ) => testHourIndex({ node, epoch: E, hour, batches, previous });
    for (const i of [
      index("node-a", "2026-03-03T10", [a0, a1, a2], null),
      index("node-b", "2026-03-03T10", [b0], null),
      index("node-d", "2026-03-03T10", [d0], null),
    ])
      await putTestObject(s3, "indexed", i, { ContentType: "application/json" });

    const early = await compactNamespaceHour(options("indexed"));
    assert.equal(early.status, "not-ready");
    assert.equal(early.notReady.length, 2, early.notReady.join("\n"));
    assert.ok(
      early.notReady.some(
        (p) => p.includes(b1.key) && /numbered after its last index read \(number 0\)/.test(p),
      ),
    );
    assert.ok(
      early.notReady.some((p) => p.includes(d0.key) && /named by hour index .* but is not in S3/.test(p)),
    );
    assert.deepEqual(
      await keysUnder(s3, "indexed", compactedHourPrefix("logs", "payments", HOUR.dt, HOUR.hour)),
      [],
    );

    // node-b's next index and node-d's batch arrive: ready, node-c (no index) named.
    await putTestObject(
      s3,
      "indexed",
      index("node-b", "2026-03-03T11", [b1], { hour: "2026-03-03T10", last: 0 }),
      { ContentType: "application/json" },
    );
    await putTestObject(s3, "indexed", d0);
    const ready = await compactNamespaceHour(options("indexed"));
    await checkCommitted("indexed", ready, [a0, a2, b0, b1, c0, d0]);
    assert.deepEqual(ready.indexes.unindexedNodes, [`node-c ${E}`]);
    assert.equal(ready.indexes.read, 4);

    // Another namespace of the same hour with the indexes read once: no index is listed or read again.
    const reading = await readCompactionIndexes({ s3, bucket: "indexed", prefix: "logs", ...HOUR });
    const { client, counts } = counted();
    const web = await compactNamespaceHour(
      options("indexed", { s3: client, namespace: "web", indexReading: reading }),
    );
    assert.equal(web.status, "committed");
    assert.deepEqual(
      web.manifest!.members.map((m) => m.key),
      [a1.key],
    );
    assert.equal(counts.get("ListObjectsV2Command"), 1, "the manifests, no index hour");
    assert.equal(counts.get("ListObjectVersionsCommand"), 2, "the two tiers");
    assert.equal(
      counts.get("HeadObjectCommand"),
      2,
      "the part's (none under its key before, its size once completed); none of the original",
    );
    assert.equal(
      counts.get("GetObjectCommand"),
      2,
      "the plan looked for (none) and the one original, no index",
    );
  });

  it("refuses an original whose metadata and bytes were rewritten together, when its hour index gives another sha256", async () => {
    const shipped = batch("node-e", 0, 5);
    const rewritten = batch("node-e", 0, 6);
    assert.equal(shipped.key, rewritten.key);
    await putAll("indexed-bad", [rewritten]);
    await putTestObject(
      s3,
      "indexed-bad",
      testHourIndex({ node: "node-e", epoch: E, hour: "2026-03-03T10", batches: [shipped], previous: null }),
      {
        ContentType: "application/json",
      },
    );
    const outcome = await compactNamespaceHour(options("indexed-bad"));
    assert.equal(outcome.status, "refused");
    assert.match(outcome.refused[0]!.reason, /its node's hour index says [0-9a-f]{64}/);
    const unchecked = await compactNamespaceHour(options("indexed-bad", { indexCheck: false, dryRun: true }));
    assert.equal(unchecked.status, "planned", "without the index check only the metadata speaks");
  });

  /**
   * A client for one of two racing runs. Its plan and manifest PUTs wait for `manifestGate`; it calls
   * `listed` at its first HeadObject (it has listed the manifests and the originals by then).
   * With `conditional`, a PUT with If-None-Match: * gets S3's answer when the key exists, 412
   * PreconditionFailed (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html),
   * which s3rver does not give (it ignores the header on PUT).
   */
  function racingClient(o: {
    manifestGate: Promise<unknown>;
    listed?: () => void;
    conditional: boolean;
  }): S3Client {
    const client = localS3Client(front.endpoint, "us-east-1");
    clients.push(client);
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const command = (context as { commandName?: string }).commandName;
        const input = args.input as { Bucket?: string; Key?: string; IfNoneMatch?: string };
        if (command === "HeadObjectCommand") o.listed?.();
        if (command === "PutObjectCommand" && /\/(manifest|plan)-/.test(input.Key ?? ""))
          await o.manifestGate;
        if (o.conditional && command === "PutObjectCommand" && input.IfNoneMatch === "*") {
          const exists = await s3.send(new HeadObjectCommand({ Bucket: input.Bucket, Key: input.Key })).then(
            () => true,
            () => false,
          );
          if (exists) {
            throw new S3ServiceException({
              name: "PreconditionFailed",
              $fault: "client",
              $metadata: { httpStatusCode: 412 },
              message: "At least one of the pre-conditions you specified did not hold",
            });
          }
        }
        return next(args);
      },
      { step: "initialize", name: "race" },
    );
    return client;
  }

  /** Two runs of the hour planned before either commits: the first commits, then the second tries. */
  async function race(bucket: string, second: Partial<CompactOptions>) {
    let secondListed!: () => void;
    let firstDone!: () => void;
    const listed = new Promise<void>((resolve) => {
      secondListed = resolve;
    });
    const done = new Promise<void>((resolve) => {
      firstDone = resolve;
    });
    const a = compactNamespaceHour(
      options(bucket, { s3: racingClient({ manifestGate: listed, conditional: false }) }),
    ).finally(firstDone);
    const b = compactNamespaceHour(
      options(bucket, {
        s3: racingClient({ manifestGate: done, listed: secondListed, conditional: true }),
        ...second,
      }),
    );
    return Promise.allSettled([a, b]);
  }

  it("two runs of the same hour at once: the second's manifest PUT finds the first's (412), the same bytes, and both report it committed; one manifest", async () => {
    await putAll("race-same", hourMembers);
    const [first, second] = await race("race-same", {});
    assert.equal(first.status, "fulfilled");
    assert.equal(second.status, "fulfilled");
    const [a, b] = [first.value, second.value];
    assert.equal(a.status, "committed");
    assert.equal(b.status, "committed");
    assert.equal(a.manifestWritten, true);
    assert.equal(b.manifestWritten, false, "the second found the same bytes stored");
    await checkCommitted("race-same", b, hourMembers);
    assert.deepEqual(
      await keysUnder(s3, "race-same", compactionManifestsPrefix("logs", "payments", HOUR.dt, HOUR.hour)),
      [a.manifestKey],
    );
  });

  it("two runs at once with other plans: the second is refused at its plan, its uploads aborted, so none of its parts ever becomes visible", async () => {
    await putAll("race-other", hourMembers);
    const [a, b] = await race("race-other", { partMaxBytes: 1 });
    assert.equal(a.status, "fulfilled");
    assert.equal(b.status, "rejected");
    assert.match(String((b as PromiseRejectedResult).reason), /plan .* already exists with other content/);
    const committed = (a as PromiseFulfilledResult<CompactionOutcome>).value;
    await checkCommitted("race-other", committed, hourMembers);
    const { parts } = await checkNoOrphanParts("race-other");
    assert.deepEqual(parts, [committed.manifest!.parts[0]!.key], "the first run's one part only");
  });

  it("refuses an hour that has not closed plus the settle delay", async () => {
    await assert.rejects(
      compactNamespaceHour(
        options("plain", { now: () => new Date("2026-03-03T11:30:00Z"), settleMs: 60 * 60_000 }),
      ),
      (e: Error) =>
        e instanceof HourNotSettledError &&
        /not closed plus the settle delay \(60 min\) until 2026-03-03T12:00:00.000Z/.test(e.message),
    );
  });

  it("streams a part larger than an upload part as a multipart upload, on a versioned bucket (version ids in the manifest), and DuckDB reads every line of it once", async () => {
    // Incompressible lines, so three members make a part over S3's 5 MiB minimum upload part.
    const big = [
      batch("node-a", 10, 1200, { size: 2000 }),
      batch("node-b", 11, 1200, { size: 2000 }),
      batch("node-c", 12, 1200, { size: 2000 }),
    ];
    await putAll("versioned", big);
    const { client, counts } = counted();
    const outcome = await compactNamespaceHour(
      options("versioned", { s3: client, uploadChunkBytes: 5 * 1024 * 1024 }),
    );
    const [part] = await checkCommitted("versioned", outcome, big);
    assert.ok(part!.length > 5 * 1024 * 1024, `part of ${part!.length} bytes`);
    assert.equal(counts.get("CreateMultipartUploadCommand"), 1);
    assert.ok((counts.get("UploadPartCommand") ?? 0) >= 2);
    for (const m of outcome.manifest!.members) {
      const versions = await s3.send(new ListObjectVersionsCommand({ Bucket: "versioned", Prefix: m.key }));
      assert.equal(m.versionId, versions.Versions![0]!.VersionId);
      assert.notEqual(m.versionId, null);
    }

    // DuckDB over the compacted part: a multi-member .ndjson.gz file.
    const file = join(dir, "part.ndjson.gz");
    await writeFile(file, part!);
    const db = await DuckDBInstance.create(":memory:");
    const c = await db.connect();
    try {
      // Each line as batch/seq/sha256(message), so a failure prints short lines, not megabytes.
      const line = (r: Record<string, unknown>) =>
        `${r.batch_id}/${r.seq}/${sha(Buffer.from(String(r.message)))}`;
      const rows = (
        await c.runAndReadAll(
          `SELECT batch_id, seq::INTEGER AS seq, message FROM read_ndjson('${file}') ORDER BY batch_id, seq`,
        )
      )
        .getRowObjectsJson()
        .map(line);
      const expected = big.flatMap((o) => o.lines.map((l) => line(JSON.parse(l))));
      assert.equal(rows.length, expected.length, "every line once");
      assert.deepEqual(rows, expected);
      const [json] = (
        await c.runAndReadAll(
          `SELECT count(*)::INTEGER AS n FROM read_json('${file}', format = 'newline_delimited')`,
        )
      ).getRowObjectsJson();
      assert.equal(json!.n, expected.length);
    } finally {
      c.closeSync();
      db.closeSync();
    }
  });
});
