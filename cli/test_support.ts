// Running the real `logarchive` CLI from tests, as a user would: a child process, so a test
// process that serves the local cloud the CLI talks to is never blocked by it.

import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { tmpdir } from "node:os";
import { LOCAL_S3_CREDENTIALS } from "../local/s3.ts";

/** The CLI's entry point. */
export const CLI = new URL("./logarchive.ts", import.meta.url).pathname;

export interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The caller's environment with the local S3's credentials and region, and none of the
 * caller's LOGARCHIVE_ variables (they would change what the CLI is told), except `keep`.
 */
export function localCliEnv(keep: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AWS_ACCESS_KEY_ID: LOCAL_S3_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_S3_CREDENTIALS.secretAccessKey,
    AWS_REGION: "us-east-1",
  };
  for (const name of Object.keys(env)) if (name.startsWith("LOGARCHIVE_")) delete env[name];
  return { ...env, ...keep };
}

/** Runs `logarchive ...args` to its end (its output streams closed) and returns what it printed. */
export function runCli(
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; onStderr?: (stderrSoFar: string) => void } = {},
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      ...(options.env === undefined ? {} : { env: options.env }),
      cwd: options.cwd ?? tmpdir(),
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      options.onStderr?.(stderr);
    });
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

/** Resolves with the child's stdout so far once it matches `pattern`; rejects if it exits first. */
export function waitForOutput(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(
      () => reject(new Error(`timed out waiting for ${pattern}; output so far:\n${out}`)),
      timeoutMs,
    );
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      if (pattern.test(out)) {
        clearTimeout(timer);
        resolve(out);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before ${pattern}; output:\n${out}`));
    });
  });
}
