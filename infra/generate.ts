// Writes the generated parts of the infra docs: Pulumi.dev.yaml and docs/deploy.md's config table,
// both from infra/config.ts. Run `node infra/generate.ts` after changing a setting.

import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { exampleStackYaml, stackConfigMarkdownTable } from "./config.ts";

export const DEPLOY_DOC = fileURLToPath(new URL("../docs/deploy.md", import.meta.url));
export const EXAMPLE_STACK = fileURLToPath(new URL("../Pulumi.dev.yaml", import.meta.url));
export const TABLE_START = "<!-- stack-config:start -->";
export const TABLE_END = "<!-- stack-config:end -->";

/** The doc with its generated table replaced. */
export function withConfigTable(doc: string): string {
  const start = doc.indexOf(TABLE_START);
  const end = doc.indexOf(TABLE_END);
  if (start < 0 || end < start) throw new Error(`${DEPLOY_DOC} has no ${TABLE_START} … ${TABLE_END} block`);
  return `${doc.slice(0, start + TABLE_START.length)}\n${stackConfigMarkdownTable()}\n${doc.slice(end)}`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await writeFile(EXAMPLE_STACK, exampleStackYaml());
  await writeFile(DEPLOY_DOC, withConfigTable(await readFile(DEPLOY_DOC, "utf8")));
}
