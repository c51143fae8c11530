// Runs `plan` and `cost` through their exported commands, as cli/program.ts would, capturing output.

import { Command } from "commander";

/** Runs `logarchive ARGS` through the exported command; returns what it wrote and its exit code. */
export async function runCommand(
  make: (io: { write(t: string): void; setExitCode(c: number): void }) => Command,
  args: string[],
): Promise<{ out: string; code: number | undefined }> {
  let out = "";
  let code: number | undefined;
  const program = new Command("logarchive").exitOverride();
  program.addCommand(
    make({
      write: (t) => {
        out += t;
      },
      setExitCode: (c) => {
        code = c;
      },
    }).exitOverride(),
  );
  await program.parseAsync(["node", "logarchive", ...args]);
  return { out, code };
}
