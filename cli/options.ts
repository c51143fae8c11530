// Option parsers shared by commands: each failure names the flag and what it accepts.

import { InvalidArgumentError } from "commander";

/**
 * Exit codes, the same for every command (README.md#exit-codes): a check that found a
 * problem in the data is `verdict`, a mistake in how the command was called or configured
 * is `usage`.
 */
export const EXIT = { ok: 0, verdict: 1, usage: 2 } as const;

export function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65_535) {
    throw new InvalidArgumentError("expected a port number 0-65535 (0 picks a free port).");
  }
  return n;
}

/** The policy file a command uses: the one given, else ./namespaces.yaml if present, else none (built-in default). */
export async function policyPathOrDefault(given: string | undefined): Promise<string | undefined> {
  if (given !== undefined) return given;
  const { access } = await import("node:fs/promises");
  try {
    await access("namespaces.yaml");
    return "namespaces.yaml";
  } catch {
    return undefined;
  }
}
