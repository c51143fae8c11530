// `npm start` as a user runs it: `logarchive local` comes up, prints its endpoints, answers
// the S3 client, loads its sample workload into the warehouse and stops cleanly on Ctrl-C
// (SIGINT); and `logarchive local --once` ships a sample backlog, loads it and exits 0.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import { ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { waitForOutput } from "../cli/test_support.ts";

const cli = new URL("../cli/logarchive.ts", import.meta.url).pathname;

/** `logarchive local --once` over the kubelet-layout logs under `dir/pods`, data in `dir/data`. */
async function localOnceOver(dir: string): Promise<{ code: number | null; out: string }> {
  const child = spawn(
    process.execPath,
    [
      cli,
      "local",
      "--once",
      "--data-dir",
      join(dir, "data"),
      "--logs",
      join(dir, "pods", "*", "*", "*.log*"),
    ],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LOGARCHIVE_LOG_LEVEL: "error" } },
  );
  let out = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    out += chunk.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  return { code, out };
}

describe("logarchive local", () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it("runs the pipeline on a live sample workload, loads rows, and stops on SIGINT with exit code 0", async () => {
    const dir = await mkdtemp(join(tmpdir(), "logarchive-cli-"));
    dirs.push(dir);
    const child = spawn(process.execPath, [cli, "local", "--data-dir", dir], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, LOGARCHIVE_LOG_LEVEL: "error" },
    });
    let stderr = "";
    child.stderr!.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    try {
      const banner = await waitForOutput(child, /Press Ctrl-C to stop\./, 60_000);
      const s3Endpoint = /S3\s+(http:\/\/127\.0\.0\.1:\d+)\s+bucket (\S+)/.exec(banner);
      assert.ok(s3Endpoint, banner);
      assert.match(banner, /SQS\s+http:\/\/127\.0\.0\.1:\d+/);
      assert.match(banner, /GCS\s+http:\/\/127\.0\.0\.1:\d+/);
      assert.match(banner, new RegExp(`Warehouse ${dir}/warehouse\\.duckdb`));
      const s3 = new S3Client({
        endpoint: s3Endpoint[1],
        region: "us-east-1",
        forcePathStyle: true,
        credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
      });
      await s3.send(new ListObjectsV2Command({ Bucket: s3Endpoint[2] }));
      s3.destroy();
      // The sample workload flows through to the warehouse while it runs.
      const status = await waitForOutput(child, /loaded [1-9][\d,]* rows/, 60_000);
      assert.match(status, /shipped [1-9][\d,]* lines/);

      const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
      const stopped = waitForOutput(child, /Stopped\./, 30_000).catch(() => "");
      child.kill("SIGINT");
      assert.equal(await exited, 0, stderr);
      assert.match(await stopped, /Stopped\./);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });

  it("--once ships a generated backlog, loads every analytics line, prints a summary and exits 0", async () => {
    const dir = await mkdtemp(join(tmpdir(), "logarchive-cli-once-"));
    dirs.push(dir);
    const child = spawn(
      process.execPath,
      [cli, "local", "--once", "--data-dir", dir, "--sample-lines", "3000"],
      {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, LOGARCHIVE_LOG_LEVEL: "error" },
      },
    );
    let stderr = "";
    child.stderr!.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    const out = await waitForOutput(child, /warehouse: .*container_logs/, 180_000);
    assert.equal(await exited, 0, `${out}\n${stderr}`);
    assert.match(out, /lines read by the shipper\s+3,000/);
    assert.match(out, /reconcile: OK/);
    const perNamespace = [...out.matchAll(/^\s{4}(\S+)\s+([\d,]+) rows of\s+([\d,]+) records/gm)];
    assert.ok(perNamespace.length >= 4, out);
    let rows = 0;
    for (const [, ns, r, records] of perNamespace) {
      assert.equal(r, records, ns);
      rows += Number(r!.replaceAll(",", ""));
    }
    assert.ok(
      !perNamespace.some(([, ns]) => ns === "kube-system"),
      "namespaces.yaml keeps kube-system out of analytics",
    );
    // The warehouse is a plain DuckDB file anyone can open.
    const { DuckDBInstance } = await import("@duckdb/node-api");
    const db = await DuckDBInstance.create(join(dir, "warehouse.duckdb"));
    const connection = await db.connect();
    const result = await connection.runAndReadAll("SELECT count(*)::INTEGER FROM container_logs");
    assert.equal(result.getRows()[0]?.[0], rows);
    connection.closeSync();
    db.closeSync();
  });

  it("--once with --logs that match nothing says so and exits 1", async () => {
    const dir = await mkdtemp(join(tmpdir(), "logarchive-cli-nologs-"));
    dirs.push(dir);
    const child = spawn(
      process.execPath,
      [cli, "local", "--once", "--data-dir", join(dir, "data"), "--logs", join(dir, "nothing-here", "*.log")],
      { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LOGARCHIVE_LOG_LEVEL: "error" } },
    );
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    const out = await waitForOutput(child, /No log lines found/, 120_000);
    assert.equal(await exited, 1);
    assert.match(out, /check --logs/);
  });

  it("--once again over files already shipped says nothing is new and exits 0; appended lines then ship", async () => {
    const dir = await mkdtemp(join(tmpdir(), "logarchive-cli-again-"));
    dirs.push(dir);
    const log = join(dir, "pods", "web_web-0_0f1c2d3e-4b5a-6978-8091-a2b3c4d5e6f7", "app", "0.log");
    await mkdir(dirname(log), { recursive: true });
    const line = (n: number) => `2026-11-21T10:00:0${n}.000000000Z stdout F line ${n}\n`;
    await writeFile(log, line(1) + line(2));
    const once = () => localOnceOver(dir);
    const first = await once();
    assert.equal(first.code, 0, first.out);
    assert.match(first.out, /Shipped 2 lines/);
    const again = await once();
    assert.equal(again.code, 0, again.out);
    assert.match(again.out, /Nothing new to ship/);
    assert.doesNotMatch(again.out, /No log lines found/);
    await writeFile(log, line(1) + line(2) + line(3));
    const appended = await once();
    assert.equal(appended.code, 0, appended.out);
    assert.match(appended.out, /Shipped 1 lines/);
  });

  it("--once counts lines of any year a record can hold in its whole-archive summary, not only 1970 to now", async () => {
    const dir = await mkdtemp(join(tmpdir(), "logarchive-cli-years-"));
    dirs.push(dir);
    const log = join(dir, "pods", "web_web-0_0f1c2d3e-4b5a-6978-8091-a2b3c4d5e6f7", "app", "0.log");
    await mkdir(dirname(log), { recursive: true });
    const times = [
      "0100-03-01T00:00:00Z",
      "1950-06-01T12:00:00Z",
      "2026-11-21T10:00:00Z",
      "9999-12-31T23:00:00Z",
    ];
    await writeFile(log, times.map((t, i) => `${t} stdout F line ${i}\n`).join(""));
    const { code, out } = await localOnceOver(dir);
    assert.equal(code, 0, out);
    // Before, the summary and the redelivery looked at 1970 to now + 1 h: 2 of these 4.
    assert.match(out, /\n {4}web +4 rows of +4 records\n/, out);
  });

  it("live with --logs that match nothing warns, naming the glob, on every status line until a file matches", async () => {
    const dir = await mkdtemp(join(tmpdir(), "logarchive-cli-nomatch-"));
    dirs.push(dir);
    const pattern = join(dir, "pods", "*", "*", "*.log");
    const child = spawn(
      process.execPath,
      [cli, "local", "--data-dir", join(dir, "data"), "--logs", pattern],
      {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, LOGARCHIVE_LOG_LEVEL: "error" },
      },
    );
    try {
      const escaped = pattern.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      const started = await waitForOutput(child, /Press Ctrl-C to stop\.\n.*\n/, 60_000);
      assert.match(started, new RegExp(`Warning: no file matches --logs ${escaped}; .*Check the glob`));
      await waitForOutput(
        child,
        new RegExp(`shipped 0 lines .* no file matches --logs ${escaped} yet\n`),
        60_000,
      );
      // A container log appears: the next status lines ship it and stop warning.
      const file = join(dir, "pods", "web_web-1_0e6f2c1a-1111-2222-3333-444455556666", "app", "0.log");
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, `${new Date().toISOString()} stdout F hello\n`);
      const shipped = await waitForOutput(child, /shipped 1 lines[^\n]*\n/, 60_000);
      const line = /[^\n]*shipped 1 lines[^\n]*/.exec(shipped)![0];
      assert.doesNotMatch(line, /no file matches/);
      const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
      child.kill("SIGINT");
      assert.equal(await exited, 0);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });

  it("keeps the terminal human: a component's warning goes to the log file, and the status line counts it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "logarchive-cli-human-"));
    dirs.push(dir);
    // Not kubelet's layout, so the shipper warns `unrecognised_log_path`.
    await mkdir(join(dir, "odd"), { recursive: true });
    await writeFile(join(dir, "odd", "app.log"), "hello\n");
    const { LOGARCHIVE_LOG_LEVEL: _, ...env } = process.env;
    const child = spawn(
      process.execPath,
      [cli, "local", "--data-dir", join(dir, "data"), "--logs", join(dir, "odd", "*.log")],
      { stdio: ["ignore", "pipe", "pipe"], env },
    );
    let stderr = "";
    child.stderr!.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    try {
      const logFile = join(dir, "data", "logarchive.log");
      const out = await waitForOutput(
        child,
        /shipped 0 lines[^\n]* · [1-9]\d* warnings? in \S+logarchive\.log \(last: \w+\)/,
        60_000,
      );
      assert.match(out, new RegExp(`Log file  ${logFile.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
      const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
      child.kill("SIGINT");
      assert.equal(await exited, 0);
      const json = `${out}\n${stderr}`.split("\n").filter((l) => l.trimStart().startsWith("{"));
      assert.deepEqual(json, [], "no JSON log line on the terminal");
      assert.match(await readFile(logFile, "utf8"), /"event":"unrecognised_log_path"/);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });

  it("refuses a bad policy file, naming the field, with exit code 2", async () => {
    const dir = await mkdtemp(join(tmpdir(), "logarchive-cli-"));
    dirs.push(dir);
    const policy = join(dir, "bad.yaml");
    const { writeFile } = await import("node:fs/promises");
    await writeFile(policy, "analytics:\n  include: [Payments]\n");
    const child = spawn(process.execPath, [cli, "local", "--data-dir", dir, "--policy", policy], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr!.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    assert.equal(code, 2);
    assert.match(stderr, /bad\.yaml is invalid:\n {2}- analytics\.include\[0\]: is not a namespace glob/);
  });
});
