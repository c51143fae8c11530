// `npm start`, Ctrl-C, `npm start` again, Ctrl-C, as a user runs it: every line the sample
// workload wrote across both runs is in the archive exactly once and, for the namespaces
// the policy loads, in the warehouse exactly once; nothing is logged as lost; and the
// terminal shows human lines only (the JSON log is in the data directory's log file).

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { glob, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { after, describe, it } from "node:test";
import { gunzipSync } from "node:zlib";
import { GetObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { checkLogPaths, writeParsedFiles } from "../cli/commands/parse.ts";
import { isIndexKey, isStreamKey } from "../lib/keys/layout.ts";
import { createLogger } from "../lib/log.ts";
import { classifyNamespace, loadPolicy } from "../lib/policy/policy.ts";
import { LocalPipeline } from "../local/pipeline.ts";
import { localS3Client } from "../local/s3.ts";
import { DEFAULT_MAX_LINE_BYTES } from "../shipper/sources/kubernetes_logs/partial_merger.ts";

const REPO = new URL("..", import.meta.url).pathname;
const CLI = join(REPO, "cli", "logarchive.ts");

interface ArchivedRecord {
  namespace: string;
  pod: string;
  container: string;
  stream: string;
  timestamp: string;
  message?: string;
  message_base64?: string;
  parse_error?: string;
}

/** What identifies a line: a malformed line's time is when it was read, so not its time. */
function identity(r: ArchivedRecord): string {
  return JSON.stringify([
    r.namespace,
    r.pod,
    r.container,
    r.stream,
    r.parse_error === undefined ? r.timestamp : null,
    r.message ?? null,
    r.message_base64 ?? null,
  ]);
}

function tally(records: readonly ArchivedRecord[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of records) out.set(identity(r), (out.get(identity(r)) ?? 0) + 1);
  return out;
}

interface LocalRun {
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
  waitFor(pattern: RegExp, timeoutMs: number): Promise<string>;
  child: ChildProcess;
}

function startLocal(dataDir: string, args: readonly string[] = []): LocalRun {
  const child = spawn(process.execPath, [CLI, "local", "--data-dir", dataDir, ...args], {
    cwd: REPO,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, LOGARCHIVE_LOG_LEVEL: "info" },
  });
  let stdout = "";
  let stderr = "";
  const waiters = new Set<() => void>();
  child.stdout!.on("data", (c: Buffer) => {
    stdout += c.toString();
    for (const w of waiters) w();
  });
  child.stderr!.on("data", (c: Buffer) => {
    stderr += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    waitFor: (pattern, timeoutMs) =>
      new Promise((resolve, reject) => {
        const check = () => {
          if (!pattern.test(stdout)) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(stdout);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for ${pattern}; output:\n${stdout}\n${stderr}`));
        }, timeoutMs);
        waiters.add(check);
        void exited.then(() => {
          if (!waiters.has(check)) return;
          waiters.delete(check);
          clearTimeout(timer);
          reject(new Error(`exited before ${pattern}; output:\n${stdout}\n${stderr}`));
        });
        check();
      }),
  };
}

/** Runs `logarchive local` until its output matches `until`, then Ctrl-C; returns its terminal output. */
async function runUntilThenInterrupt(
  dataDir: string,
  args: readonly string[] = [],
  until = /shipped [1-9][\d,]* lines/,
): Promise<{ stdout: string; stderr: string }> {
  const run = startLocal(dataDir, args);
  try {
    await run.waitFor(until, 120_000);
    run.child.kill("SIGINT");
    assert.equal(await run.exited, 0, `${run.stdout()}\n${run.stderr()}`);
    assert.match(run.stdout(), /Stopped\./);
    return { stdout: run.stdout(), stderr: run.stderr() };
  } finally {
    if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill("SIGKILL");
  }
}

/** The records the shipper archives from these files, decoded by `logarchive parse`'s code. */
async function recordsOnDisk(files: readonly string[]): Promise<ArchivedRecord[]> {
  const { metas, problems } = checkLogPaths(files);
  assert.deepEqual(problems, []);
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on("data", (c: Buffer) => chunks.push(c));
  await writeParsedFiles(
    files,
    metas,
    { merge: true, node: "local-node", maxLineBytes: DEFAULT_MAX_LINE_BYTES },
    sink,
  );
  const text = Buffer.concat(chunks).toString("utf8").trimEnd();
  return text === "" ? [] : text.split("\n").map((l) => JSON.parse(l) as ArchivedRecord);
}

/** Every line of the sample files under `dir` is archived once and, where the policy loads it, one row. */
async function assertEveryLineOnce(dir: string): Promise<void> {
  const files: string[] = [];
  for await (const f of glob(join(dir, "sample-logs", "*", "*", "*", "*.log*"))) files.push(f);
  const written = await recordsOnDisk(files.sort());
  assert.ok(written.length > 0);

  // Whatever either run left in flight (transfer, loader) is loaded by a pipeline started again.
  const policy = await loadPolicy(join(REPO, "namespaces.yaml"));
  const pipeline = await LocalPipeline.start({
    dataDir: dir,
    policy,
    logs: [],
    once: true,
    logger: createLogger("test", "fatal"),
    version: "test",
  });
  try {
    const report = await pipeline.settle(120_000);
    const e = pipeline.parts.cloud.endpoints;
    const s3 = localS3Client(e.s3.endpoint, e.region);
    const archived: ArchivedRecord[] = [];
    try {
      let token: string | undefined;
      do {
        const page = await s3.send(
          new ListObjectsV2Command({ Bucket: e.s3.bucket, ContinuationToken: token }),
        );
        for (const o of page.Contents ?? []) {
          // Stream delivery's per-table objects are second copies of analytics lines: the
          // archive is the per-namespace objects, and the rows below check the stream.
          if (isStreamKey(o.Key!)) continue;
          // Hour indexes (a run that spans an hour's end) hold no records.
          if (isIndexKey(o.Key!)) continue;
          const got = await s3.send(new GetObjectCommand({ Bucket: e.s3.bucket, Key: o.Key }));
          const text = gunzipSync(Buffer.from(await got.Body!.transformToByteArray())).toString("utf8");
          for (const line of text.split("\n"))
            if (line !== "") archived.push(JSON.parse(line) as ArchivedRecord);
        }
        token = page.NextContinuationToken;
      } while (token !== undefined);
    } finally {
      s3.destroy();
    }
    const want = tally(written);
    const got = tally(archived);
    const missing = [...want].filter(([k, n]) => (got.get(k) ?? 0) < n).map(([k]) => k);
    const extra = [...got].filter(([k, n]) => n > (want.get(k) ?? 0)).map(([k]) => k);
    assert.deepEqual(
      {
        missing: missing.slice(0, 5),
        extra: extra.slice(0, 5),
        missingCount: missing.length,
        extraCount: extra.length,
      },
      { missing: [], extra: [], missingCount: 0, extraCount: 0 },
      `${written.length} lines written, ${archived.length} archived`,
    );
    assert.equal(archived.length, written.length);

    assert.ok(report.ok, JSON.stringify(report.counts));
    // Lines per warehouse table, as the policy routes them.
    const linesByTable = new Map<string, number>();
    for (const r of written) {
      const c = classifyNamespace(policy, r.namespace);
      if (!c.archived || c.destination === null) continue;
      const schema = c.destination.dataset === policy.warehouse.dataset ? "main" : c.destination.dataset;
      const table = `"${schema}"."${c.destination.table}"`;
      linesByTable.set(table, (linesByTable.get(table) ?? 0) + 1);
    }
    assert.ok(linesByTable.size > 0);
    const connection = await pipeline.parts.cloud.warehouse.connect();
    try {
      for (const [table, lines] of linesByTable) {
        const rows = (
          await connection.runAndReadAll(`SELECT count(*)::INTEGER FROM ${table}`)
        ).getRows()[0]?.[0];
        assert.equal(rows, lines, `every analytics line is one row in ${table}`);
      }
    } finally {
      connection.closeSync();
    }
  } finally {
    await pipeline.stop();
  }
}

describe("logarchive local, stopped with Ctrl-C and started again", () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it("archives every line written across both runs exactly once, loads each once, and logs nothing lost", async () => {
    const dir = await mkdtemp(join(tmpdir(), "logarchive-cli-restart-"));
    dirs.push(dir);
    const first = await runUntilThenInterrupt(dir);
    const second = await runUntilThenInterrupt(dir);

    // The terminal is human: no JSON log line on it.
    for (const [name, text] of Object.entries({
      "first stdout": first.stdout,
      "first stderr": first.stderr,
      "second stdout": second.stdout,
      "second stderr": second.stderr,
    })) {
      const json = text.split("\n").filter((l) => l.trimStart().startsWith("{"));
      assert.deepEqual(json, [], `${name} has JSON log lines`);
    }
    const log = await readFile(join(dir, "logarchive.log"), "utf8");
    assert.match(log, /"event":"shipper_drained"/, "the JSON log is in the data directory");
    const lost = log.split("\n").filter((l) => l.includes('"log_bytes_lost"'));
    assert.deepEqual(lost, [], "nothing logged as lost");

    await assertEveryLineOnce(dir);
  });

  it("reads none of the live sample twice after a run on the same data dir with other --logs", async () => {
    const dir = await mkdtemp(join(tmpdir(), "logarchive-cli-restart-other-"));
    dirs.push(dir);
    await runUntilThenInterrupt(dir);
    // Long enough for the shipper to scan many times without the sample's files in its globs.
    const other = join(dir, "elsewhere", "*", "*", "*.log");
    await runUntilThenInterrupt(dir, ["--logs", other], /shipped 0 lines[^\n]*\n[^\n]*shipped 0 lines/);
    await runUntilThenInterrupt(dir);
    const log = await readFile(join(dir, "logarchive.log"), "utf8");
    assert.deepEqual(
      log.split("\n").filter((l) => l.includes('"log_bytes_lost"')),
      [],
      "nothing logged as lost",
    );
    await assertEveryLineOnce(dir);
  });
});
