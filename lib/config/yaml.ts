// Reads a YAML config file and validates it with a zod schema, reporting every problem.

import { readFile } from "node:fs/promises";
import { parseDocument } from "yaml";
import type { z } from "zod";
import { ConfigError, describeIssues } from "./errors.ts";

export function parseYamlConfig<S extends z.ZodType>(text: string, schema: S, source: string): z.output<S> {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      source,
      doc.errors.map((e) => `YAML syntax: ${e.message.split("\n")[0]}`),
    );
  }
  const result = schema.safeParse(doc.toJS() ?? {});
  if (!result.success) throw new ConfigError(source, describeIssues(result.error));
  return result.data;
}

export async function loadYamlConfig<S extends z.ZodType>(path: string, schema: S): Promise<z.output<S>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new ConfigError(path, [`cannot read the file: ${(error as NodeJS.ErrnoException).code ?? error}`]);
  }
  return parseYamlConfig(text, schema, path);
}
