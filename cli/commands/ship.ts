// `logarchive ship`: the node agent. Options come from shipper/config.ts, so flags, the
// environment, the YAML config file and docs/shipper.md never disagree.

import { readFile } from "node:fs/promises";
import { Command, Option } from "commander";
import { ConfigError } from "../../lib/config/errors.ts";
import { createLogger } from "../../lib/log.ts";
import { DEFAULT_POLICY, loadPolicy } from "../../lib/policy/policy.ts";
import {
  envOf,
  flagOf,
  type OptionKey,
  type OptionSpec,
  parseShipperConfigFile,
  resolveShipperConfig,
  SHIPPER_OPTIONS,
} from "../../shipper/config.ts";

function camel(key: string): string {
  return key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

export function shipCommand(version: string): Command {
  const command = new Command("ship")
    .description(
      "Tail container logs, batch per namespace and hour, gzip, and upload to S3 exactly once. Runs until SIGTERM, then drains.",
    )
    .addOption(
      new Option("--config <file>", "YAML config file; keys are the option names below").env(
        "LOGARCHIVE_CONFIG",
      ),
    );
  for (const spec of SHIPPER_OPTIONS as readonly OptionSpec[]) {
    const flag = spec.kind === "boolean" ? flagOf(spec.key) : `${flagOf(spec.key)} <value>`;
    const def = spec.required
      ? "required"
      : (spec.defaultText ?? (spec.default === undefined ? undefined : String(spec.default)));
    command.addOption(
      new Option(flag, `${spec.description}${def ? ` (default: ${def})` : ""} [env: ${envOf(spec.key)}]`),
    );
  }
  command.addHelpText("after", "\nEvery option is documented with its unit and limits in docs/shipper.md.");
  command.action(async (opts: Record<string, unknown>) => {
    const logger = createLogger("shipper");
    let file: { path: string; values: Record<string, unknown> } | undefined;
    if (typeof opts.config === "string") {
      let text: string;
      try {
        text = await readFile(opts.config, "utf8");
      } catch (error) {
        throw new ConfigError(opts.config, [
          `cannot read the file: ${(error as NodeJS.ErrnoException).code ?? error}`,
        ]);
      }
      file = { path: opts.config, values: parseShipperConfigFile(text, opts.config) };
    }
    const flags: Partial<Record<OptionKey, unknown>> = {};
    for (const spec of SHIPPER_OPTIONS) {
      const v = opts[camel(spec.key)];
      if (v !== undefined) flags[spec.key] = v;
    }
    const config = resolveShipperConfig({ ...(file ? { file } : {}), flags, env: process.env });
    const policy = config.policy === undefined ? DEFAULT_POLICY : await loadPolicy(config.policy);
    const { Shipper } = await import("../../shipper/shipper.ts");
    const shipper = await Shipper.open({ config, policy, logger, version });
    const url = await shipper.startHttp();
    if (url !== null) logger.info({ event: "http_listening", url }, "http_listening");
    const onSignal = (signal: string) => {
      logger.info({ event: "shutdown_requested", signal }, "shutdown_requested");
      shipper.stop();
    };
    process.once("SIGTERM", () => onSignal("SIGTERM"));
    process.once("SIGINT", () => onSignal("SIGINT"));
    await shipper.run();
    await shipper.close();
  });
  return command;
}
