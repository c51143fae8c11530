#!/usr/bin/env node
import { ConfigError } from "../lib/config/errors.ts";
import { buildProgram } from "./program.ts";

try {
  await buildProgram().parseAsync(process.argv);
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`logarchive: ${error.message}\n`);
    process.exit(2);
  }
  process.stderr.write(
    `logarchive: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
}
