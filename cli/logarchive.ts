#!/bin/sh
// 2>/dev/null; f=$(readlink -f "$0") && n="${f%/*}/../node_modules/.bin/node" && [ -x "$n" ] && exec "$n" "$f" "$@"; echo "logarchive: this needs the project's Node 24 (run npm ci), then use npx logarchive $*" >&2; exit 2

// The two lines above are a shell script to the kernel and a comment to JavaScript: run as
// `./cli/logarchive.ts` (or through a symlink, as npm links bin files), the machine's `node`
// may be one that cannot run .ts files (Node 20), so sh resolves the link and runs the file
// with the Node 24 that `npm ci` installs beside it (`//` itself fails silently, as a directory).
// `node cli/logarchive.ts` and the compiled dist/ (no comments) never see them.

import { InvalidArgumentError } from "commander";
import { ConfigError, UserError } from "../lib/config/errors.ts";
import { EXIT } from "./options.ts";
import { buildProgram, CommanderExit } from "./program.ts";

// A file or directory the user named that is not there (or not usable) is a usage error.
const USER_PATH_ERRORS = new Set(["ENOENT", "ENOTDIR", "EACCES", "EEXIST", "EISDIR"]);

try {
  await buildProgram().parseAsync(process.argv);
} catch (error) {
  // commander has printed the message or the help already.
  if (error instanceof CommanderExit) process.exit(error.exitCode);
  // A usage mistake, a bad config or an expected condition (a bad argument, a missing
  // directory, a locked warehouse) is one line for the user, not a stack trace.
  if (error instanceof ConfigError || error instanceof InvalidArgumentError || error instanceof UserError) {
    process.stderr.write(`logarchive: ${error.message}\n`);
    process.exit(EXIT.usage);
  }
  const code = (error as NodeJS.ErrnoException).code;
  if (typeof code === "string" && USER_PATH_ERRORS.has(code)) {
    process.stderr.write(`logarchive: ${(error as Error).message}\n`);
    process.exit(EXIT.usage);
  }
  // Anything else is a bug or an outage nobody anticipated: the stack is what a report needs.
  process.stderr.write(
    `logarchive: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(EXIT.verdict);
}
