// The `logarchive` command line: one program, a subcommand per stage.

import { readFileSync } from "node:fs";
import { Command, type CommanderError } from "commander";
import { compactCommand } from "./commands/compact.ts";
import { costCommand } from "./commands/cost.ts";
import { holdCommand } from "./commands/hold.ts";
import { loaderCommand } from "./commands/loader.ts";
import { localCommand } from "./commands/local.ts";
import { manifestsCommand } from "./commands/manifests.ts";
import { parseCommand } from "./commands/parse.ts";
import { planCommand } from "./commands/plan.ts";
import { policyCommand } from "./commands/policy.ts";
import { queryCommand } from "./commands/query.ts";
import { reconcileCommand } from "./commands/reconcile.ts";
import { retrieveCommand } from "./commands/retrieve.ts";
import { schemaCommand } from "./commands/schema.ts";
import { shipCommand } from "./commands/ship.ts";
import { transferCommand } from "./commands/transfer.ts";
import { verifyCommand } from "./commands/verify.ts";
import { EXIT } from "./options.ts";

export const VERSION: string = JSON.parse(
  readFileSync(new URL("../package.json", import.meta.url), "utf8"),
).version;

/**
 * Thrown where commander would call process.exit, after it has printed its message or the
 * help: `cli/logarchive.ts` turns it into the exit code, so commander's own 1 for a usage
 * mistake becomes 2 like every other usage error.
 */
export class CommanderExit extends Error {
  override name = "CommanderExit";
  readonly exitCode: number;

  constructor(error: CommanderError) {
    super(error.message);
    // commander's own codes are all usage (an unknown command or option, a missing or bad
    // value, help shown for a missing subcommand) except help and version, which exit 0; a
    // command's own this.error() keeps the exit code it chose.
    this.exitCode =
      error.exitCode === 0 ? EXIT.ok : error.code.startsWith("commander.") ? EXIT.usage : error.exitCode;
  }
}

function everyCommand(command: Command): Command[] {
  return [command, ...command.commands.flatMap(everyCommand)];
}

export function buildProgram(): Command {
  const program = new Command("logarchive")
    .description("Archive Kubernetes container logs to S3 and load them into BigQuery, exactly once.")
    .version(VERSION)
    .configureHelp({ showGlobalOptions: true });
  program.addCommand(shipCommand(VERSION));
  program.addCommand(localCommand(VERSION));
  program.addCommand(parseCommand());
  program.addCommand(schemaCommand());
  program.addCommand(policyCommand());
  program.addCommand(transferCommand());
  program.addCommand(loaderCommand());
  program.addCommand(reconcileCommand());
  program.addCommand(retrieveCommand(VERSION));
  program.addCommand(verifyCommand());
  program.addCommand(holdCommand(VERSION));
  program.addCommand(queryCommand());
  program.addCommand(planCommand());
  program.addCommand(costCommand());
  program.addCommand(manifestsCommand());
  program.addCommand(compactCommand(VERSION));
  // addCommand() does not pass settings down, so each command gets them here.
  for (const command of everyCommand(program)) {
    command.showHelpAfterError("(run with --help for usage)").exitOverride((error) => {
      throw new CommanderExit(error);
    });
  }
  return program;
}
