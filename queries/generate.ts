// Writes queries/<engine>/_definitions.sql from queries/definitions.ts. Run after changing
// the severity or signature rules; queries/definitions.test.ts fails while a file is stale.

import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DEFINITIONS, ENGINES } from "./definitions.ts";
import { PACK_DIR } from "./pack.ts";

export function definitionsPath(engine: string): string {
  return join(PACK_DIR, engine, "_definitions.sql");
}

if (import.meta.main) {
  for (const engine of ENGINES) {
    await writeFile(definitionsPath(engine), DEFINITIONS[engine]());
    process.stdout.write(`wrote ${definitionsPath(engine)}\n`);
  }
}
