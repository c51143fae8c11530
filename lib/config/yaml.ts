// Reads a YAML config file and validates it with a zod schema, reporting every problem.
//
// Config text can be hostile (a policy passed inline through an environment variable, a
// file from a pull request), so parsing is bounded: nesting is measured by a linear scan
// of the tokens before the recursive parser sees them, alias expansion is capped, and a
// value that refers to itself is refused. Every failure is a ConfigError naming the file.

import { readFile } from "node:fs/promises";
import {
  CST,
  type Document,
  isAlias,
  isCollection,
  isScalar,
  Lexer,
  type Node,
  parseDocument,
  visit,
} from "yaml";
import type { z } from "zod";
import { ConfigError, describeIssues } from "./errors.ts";

/** Deeper than any real config (ours nest 4 levels); far below where the parser's recursion gets slow or overflows. */
export const MAX_YAML_NESTING = 64;
/** Alias expansions allowed while building the value: reuse of a few blocks is fine, a billion laughs is not. */
const MAX_ALIAS_COUNT = 100;
/** Syntax errors reported; past the first few they are echoes of the same mistake. */
const MAX_SYNTAX_ERRORS = 3;

/**
 * An upper bound on the nesting depth of the text, in linear time: flow brackets as the
 * lexer sees them (so brackets in quotes, comments and block scalars do not count), plus
 * block levels as the stack of indentations, plus block indicators on one line (`- - x`).
 */
function nestingBound(text: string): number {
  let flow = 0;
  let deepest = 0;
  const indents: number[] = [];
  let lineStart = true;
  let indent = 0;
  let indicatorsOnLine = 0;
  for (const token of new Lexer().lex(text)) {
    const type = CST.tokenType(token);
    if (type === "flow-seq-start" || type === "flow-map-start") flow++;
    else if (type === "flow-seq-end" || type === "flow-map-end") flow = Math.max(0, flow - 1);
    else if (type === "newline") {
      lineStart = true;
      indent = 0;
      indicatorsOnLine = 0;
      continue;
    } else if (type === "space") {
      if (lineStart) indent = token.length;
      continue;
    } else if (type === "comment" || type === null) continue;
    if (lineStart && flow === 0) {
      while (indents.length > 0 && indents.at(-1)! >= indent) indents.pop();
      indents.push(indent);
    }
    lineStart = false;
    if (flow === 0 && (type === "seq-item-ind" || type === "explicit-key-ind" || type === "map-value-ind")) {
      indicatorsOnLine++;
    }
    deepest = Math.max(deepest, indents.length + indicatorsOnLine + flow);
    if (deepest > MAX_YAML_NESTING) return deepest;
  }
  return deepest;
}

/**
 * What the document holds that no config can mean: an alias inside the node it names (its
 * value would contain itself), or a list or map used as a key (JS objects cannot hold it, nor binary).
 */
function structuralProblem(doc: Document): string | undefined {
  let found: string | undefined;
  visit(doc, {
    Alias(_key, alias, path) {
      const target = alias.resolve(doc);
      if (target !== undefined && isCollection(target) && path.includes(target as Node)) {
        found = `YAML alias *${alias.source} refers to itself (it sits inside &${alias.source})`;
        return visit.BREAK;
      }
      return undefined;
    },
    Pair(_key, pair) {
      const key = isAlias(pair.key) ? pair.key.resolve(doc) : pair.key;
      if (isCollection(key) || (isScalar(key) && typeof key.value === "object" && key.value !== null)) {
        found = "YAML mapping key is a list, a map or binary; keys must be plain names";
        return visit.BREAK;
      }
      return undefined;
    },
  });
  return found;
}

function firstLine(error: unknown): string {
  return ((error as Error | undefined)?.message ?? String(error)).split("\n")[0]!;
}

export function parseYamlConfig<S extends z.ZodType>(text: string, schema: S, source: string): z.output<S> {
  if (nestingBound(text) > MAX_YAML_NESTING) {
    throw new ConfigError(source, [
      `YAML is nested deeper than ${MAX_YAML_NESTING} levels; a config never needs that, check the brackets and indentation`,
    ]);
  }
  let value: unknown;
  try {
    const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
    if (doc.errors.length > 0) {
      const shown = doc.errors.slice(0, MAX_SYNTAX_ERRORS).map((e) => `YAML syntax: ${firstLine(e)}`);
      const more = doc.errors.length - shown.length;
      if (more > 0) shown.push(`... and ${more} more YAML syntax error(s)`);
      throw new ConfigError(source, shown);
    }
    const problem = structuralProblem(doc);
    if (problem !== undefined) throw new ConfigError(source, [problem]);
    value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    // yaml throws a ReferenceError for an unknown alias and for too many alias expansions.
    const why = firstLine(error);
    throw new ConfigError(source, [
      /alias count/i.test(why)
        ? `YAML aliases expand to too much data (more than ${MAX_ALIAS_COUNT} expansions); write the values out`
        : /alias/i.test(why)
          ? `YAML alias: ${why}`
          : `YAML: ${why}`,
    ]);
  }
  const result = schema.safeParse(value ?? {});
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
