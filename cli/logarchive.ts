#!/usr/bin/env node
import { InvalidArgumentError } from "commander";
import { ConfigError, UserError } from "../lib/config/errors.ts";
import { buildProgram } from "./program.ts";

try {
  await buildProgram().parseAsync(process.argv);
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`logarchive: ${error.message}\n`);
    process.exit(2);
  }
  // A usage mistake or an expected condition (a bad argument, a missing directory, a locked
  // warehouse) is a message for the user, not a stack trace.
  if (error instanceof InvalidArgumentError || error instanceof UserError) {
    process.stderr.write(`logarchive: ${error.message}\n`);
    process.exit(2);
  }
  const code = (error as NodeJS.ErrnoException).code;
  if (typeof code === "string" && ["ENOENT", "ENOTDIR", "EACCES", "EEXIST", "EISDIR"].includes(code)) {
    process.stderr.write(`logarchive: ${(error as Error).message}\n`);
    process.exit(1);
  }
  process.stderr.write(
    `logarchive: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
}
