import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";

const cli = new URL("../logarchive.ts", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "reconcile-cli-"));
const env: NodeJS.ProcessEnv = { ...process.env, LOGARCHIVE_LOG_LEVEL: "error" };
for (const name of [
  "GOOGLE_CLOUD_PROJECT",
  "LOGARCHIVE_BUCKET",
  "LOGARCHIVE_LANDING_BUCKET",
  "LOGARCHIVE_DATA_DIR",
]) {
  delete env[name];
}
const run = (...args: string[]) =>
  spawnSync(process.execPath, [cli, ...args], {
    encoding: "utf8",
    env,
  });

describe("logarchive reconcile (mistakes)", () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("refuses a data directory with no local pipeline, and creates nothing there", () => {
    const missing = join(dir, "typo");
    const r = run("reconcile", "--data-dir", missing, "--from", "2026-11-21", "--to", "2026-11-22");
    assert.equal(r.status, 2);
    assert.match(r.stderr, /holds no local pipeline \(no warehouse\.duckdb\): run `logarchive local`/);
    assert.equal(existsSync(missing), false);
  });

  it("says what is wrong with a range in one line, without a stack trace", () => {
    const r = run("reconcile", "--data-dir", dir, "--from", "2026-11-22", "--to", "2026-11-21");
    assert.equal(r.status, 2);
    assert.equal(r.stderr.trim(), "logarchive: --to must be after --from.");
    const partial = run(
      "reconcile",
      "--data-dir",
      dir,
      "--from",
      "2026-11-21T10:30:00Z",
      "--to",
      "2026-11-22",
    );
    assert.match(partial.stderr, /partitions are whole hours/);
    assert.doesNotMatch(partial.stderr, /\n\s+at /);
  });

  it("names the flags the cloud mode needs", () => {
    const r = run("reconcile", "--from", "2026-11-21", "--to", "2026-11-22");
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--s3-bucket, --landing-bucket, --bigquery-project required \(or --data-dir/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });
});
