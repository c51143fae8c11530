// The `logarchive` command line: one program, a subcommand per stage.

import { readFileSync } from "node:fs";
import { Command } from "commander";
import { loaderCommand } from "./commands/loader.ts";
import { localCommand } from "./commands/local.ts";
import { parseCommand } from "./commands/parse.ts";
import { policyCommand } from "./commands/policy.ts";
import { reconcileCommand } from "./commands/reconcile.ts";
import { schemaCommand } from "./commands/schema.ts";
import { shipCommand } from "./commands/ship.ts";
import { transferCommand } from "./commands/transfer.ts";

export const VERSION: string = JSON.parse(
  readFileSync(new URL("../package.json", import.meta.url), "utf8"),
).version;

export function buildProgram(): Command {
  const program = new Command("logarchive")
    .description("Archive Kubernetes container logs to S3 and load them into BigQuery, exactly once.")
    .version(VERSION)
    .showHelpAfterError("(run with --help for usage)")
    .configureHelp({ showGlobalOptions: true });
  program.addCommand(shipCommand(VERSION));
  program.addCommand(localCommand(VERSION));
  program.addCommand(parseCommand());
  program.addCommand(schemaCommand());
  program.addCommand(policyCommand());
  program.addCommand(transferCommand());
  program.addCommand(loaderCommand());
  program.addCommand(reconcileCommand());
  return program;
}
