// `logarchive local --object-lock`: the local archive bucket has Object Lock and the stack's
// default retention, as `pulumi up` makes it, and the shipper the matching object_lock_mode: the
// compliance procedure's `hold` can be rehearsed against a live local run, and stream objects
// get their short retention while archive objects keep the bucket's default.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { HeadObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { DEFAULT_LANDING_DAYS } from "../../lib/compaction/defaults.ts";
import { parseStreamKey } from "../../lib/keys/layout.ts";
import { parsePolicy } from "../../lib/policy/policy.ts";
import { localS3Client } from "../../local/s3.ts";
import { deployedArchiveBucket, shipperLockFor } from "../../local/stack.ts";
import { waitFor } from "../../shipper/test_support/harness.ts";
import { namespaceWriters } from "../../shipper/test_support/workload.ts";
import { CLI as cli, localCliEnv, runCli, waitForOutput } from "../test_support.ts";

const DAY_MS = 86_400_000;

const env = localCliEnv({ LOGARCHIVE_LOG_LEVEL: "error" });

const run = (args: string[]) => runCli(args, { env });

describe("logarchive local --object-lock", () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it("runs with an Object Lock bucket with the deployed default retention: `logarchive hold --on` holds the shipped objects (exit 0); stream objects get their short retention, archive objects the default", async () => {
    const dir = await mkdtemp(join(tmpdir(), "logarchive-local-lock-"));
    dirs.push(dir);
    // Archive batches every few seconds locally (the policy's archive age), and checkout's
    // lines in stream objects too (stream delivery; the local stream age is 5 s).
    const policy = join(dir, "namespaces.yaml");
    const policyText =
      "archive: {prefix: logs, batch_max_age: 5s}\nanalytics: {include: [checkout], delivery: stream}\n";
    await writeFile(policy, policyText);
    const child = spawn(
      process.execPath,
      [cli, "local", "--object-lock", "--data-dir", join(dir, "data"), "--policy", policy],
      { stdio: ["ignore", "pipe", "pipe"], env },
    );
    let stderr = "";
    child.stderr!.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    try {
      const banner = await waitForOutput(child, /Press Ctrl-C to stop\./, 60_000);
      const s3 = /S3\s+(http:\/\/127\.0\.0\.1:\d+)\s+bucket (\S+)/.exec(banner);
      assert.ok(s3, banner);
      const retention = deployedArchiveBucket().defaultRetention!;
      assert.match(
        banner,
        new RegExp(`Object Lock: default retention ${retention.mode} ${retention.days} days`),
      );
      await waitForOutput(child, /shipped [1-9][\d,]* lines/, 60_000);
      const hour = Math.floor(Date.now() / 3_600_000) * 3_600_000;
      const out = join(dir, "hold.json");
      const args = [
        "hold",
        "--on",
        "--namespace",
        "payments",
        "--from",
        new Date(hour - 3_600_000).toISOString(),
        "--to",
        new Date(hour + 2 * 3_600_000).toISOString(),
        "--s3-endpoint",
        s3[1]!,
        "--bucket",
        s3[2]!,
        "--prefix",
        "logs",
        "--out",
        out,
      ];
      // "shipped" counts lines read; their object may still be uploading: hold until one is found.
      let result = await run(args);
      for (
        let attempt = 0;
        attempt < 30 && result.status === 1 && /no object/i.test(result.stdout + result.stderr);
        attempt++
      ) {
        await waitForOutput(child, /shipped [1-9]/, 30_000);
        result = await run(args);
      }
      assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
      const manifest = JSON.parse(await readFile(out, "utf8")) as {
        complete: boolean;
        versions: { after: string }[];
      };
      assert.equal(manifest.complete, true);
      assert.ok(manifest.versions.length > 0);
      assert.ok(
        manifest.versions.every((v) => v.after === "ON"),
        JSON.stringify(manifest.versions.slice(0, 2)),
      );

      // Each kind of object carries the retention the deployed stack gives it.
      const client = localS3Client(s3[1]!, "us-east-1");
      try {
        const first = async (prefix: string) =>
          waitFor(`an object under ${prefix}`, async () => {
            const page = await client.send(new ListObjectsV2Command({ Bucket: s3[2]!, Prefix: prefix }));
            return page.Contents?.find((o) => o.Key!.endsWith(".ndjson.gz"))?.Key;
          });
        const lockOf = async (key: string) => {
          const head = await client.send(new HeadObjectCommand({ Bucket: s3[2]!, Key: key }));
          return {
            mode: head.ObjectLockMode,
            until: head.ObjectLockRetainUntilDate?.getTime() ?? Number.NaN,
            modified: head.LastModified!.getTime(),
          };
        };
        const archivedKey = await first("logs/archive/");
        const archived = await lockOf(archivedKey);
        assert.ok(
          Number.isFinite(archived.until),
          `${archivedKey} has a retention: ${JSON.stringify(archived)}`,
        );
        assert.equal(archived.mode, retention.mode);
        // The bucket's default: from the PUT, to the second (LastModified has whole seconds).
        assert.ok(
          Math.abs(archived.until - (archived.modified + retention.days * DAY_MS)) < 2000,
          `${new Date(archived.until).toISOString()} vs ${new Date(archived.modified).toISOString()} + ${retention.days} days`,
        );
        const streamKey = await first("logs/stream/");
        const streamed = await lockOf(streamKey);
        assert.ok(
          Number.isFinite(streamed.until),
          `${streamKey} has a retention: ${JSON.stringify(streamed)}`,
        );
        const key = parseStreamKey(streamKey);
        const hourEnd = Date.parse(`${key.dt}T${key.hour}:00:00Z`) + 3_600_000;
        assert.equal(streamed.mode, retention.mode);
        assert.equal(
          streamed.until,
          hourEnd + parsePolicy(policyText, "test").analytics.stream_expiration_days * DAY_MS,
        );
      } finally {
        client.destroy();
      }

      const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
      child.kill("SIGINT");
      assert.equal(await exited, 0, stderr);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });

  it("--compaction needs --object-lock: a usage error in one line (exit 2)", async () => {
    const result = await run(["local", "--once", "--compaction", "--data-dir", join(tmpdir(), "never-made")]);
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr.trim(), /^logarchive: --compaction needs --object-lock[^\n]*$/);
  });

  it("the shipper's lock options follow the local bucket as the stack sets them: none for a plain bucket, the default's mode, landing days with compaction", () => {
    assert.equal(shipperLockFor(undefined), null);
    assert.equal(shipperLockFor({ objectLock: true }), null, "no default retention: no lock headers");
    const bucket = deployedArchiveBucket();
    assert.deepEqual(shipperLockFor(bucket), {
      object_lock_mode: bucket.defaultRetention!.mode,
      landing_days: 0,
    });
    assert.deepEqual(shipperLockFor(bucket, true), {
      object_lock_mode: bucket.defaultRetention!.mode,
      landing_days: DEFAULT_LANDING_DAYS,
    });
  });

  it("--once --object-lock --compaction ships past hours and compacts the closed hours (exit 0)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "logarchive-local-compaction-"));
    dirs.push(dir);
    const policy = join(dir, "namespaces.yaml");
    await writeFile(policy, "archive: {prefix: logs}\n");
    // Lines of an hour that ended hours ago (settled), in two namespaces.
    const hourStart = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 4 * 3_600_000;
    const root = join(dir, "pods");
    const writers = namespaceWriters(root, ["web", "auth"], { seed: 900, startMs: hourStart + 10 * 60_000 });
    for (const w of writers) {
      w.writeLines(300);
      w.close();
    }
    const result = await run([
      "local",
      "--once",
      "--object-lock",
      "--compaction",
      "--logs",
      `${root}/*/*/*.log*`,
      "--data-dir",
      join(dir, "data"),
      "--policy",
      policy,
    ]);
    assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
    assert.match(
      result.stdout,
      /compaction \(compact --pending, hours [^)]+\): 2 namespace-hour\(s\) committed of 2 pending\n/,
      result.stdout,
    );
  });
});
