// `logarchive local --object-lock`: the local archive bucket has Object Lock, as `pulumi up`
// makes it, so the compliance procedure's `hold` can be rehearsed against a live local run.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { CLI as cli, localCliEnv, runCli, waitForOutput } from "../test_support.ts";

const env = localCliEnv({ LOGARCHIVE_LOG_LEVEL: "error" });

const run = (args: string[]) => runCli(args, { env });

describe("logarchive local --object-lock", () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it("runs with an Object Lock bucket: `logarchive hold --on` holds the shipped objects (exit 0)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "logarchive-local-lock-"));
    dirs.push(dir);
    // Per-namespace delivery: archive objects every few seconds locally.
    const policy = join(dir, "namespaces.yaml");
    await writeFile(policy, "archive: {prefix: logs}\n");
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

      const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
      child.kill("SIGINT");
      assert.equal(await exited, 0, stderr);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });
});
