// Configuration errors: every problem in one message, each naming the field and a fix,
// so a bad config stops startup once, not once per field.

import type { z } from "zod";

export class ConfigError extends Error {
  override name = "ConfigError";
  readonly problems: readonly string[];

  constructor(source: string, problems: readonly string[]) {
    super(`${source} is invalid:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.problems = problems;
  }
}

function fieldPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    out += typeof part === "number" ? `[${part}]` : `${out === "" ? "" : "."}${String(part)}`;
  }
  return out === "" ? "(top level)" : out;
}

/** One line per zod issue: `field.path: message`. */
export function describeIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => `${fieldPath(issue.path)}: ${issue.message}`);
}

/** A condition the user can fix (a missing directory, a locked file), reported without a stack trace. */
export class UserError extends Error {
  override name = "UserError";
}
