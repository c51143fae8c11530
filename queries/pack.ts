// The query pack: `queries/<engine>/<name>.sql`, each opening with a header block that
// says what it answers and which parameters it takes. This module reads the headers,
// checks parameter values against their declared types, and binds them the way each
// engine binds safely: DuckDB `$name` prepared parameters, BigQuery `@name` query
// parameters, Athena `?` execution parameters in the order the header lists.
//
// Header lines are `-- key: value`; a line `--   more` (two or more spaces) continues the
// previous one. The header ends at the first line that is not a comment.
//
//   -- title: Error rate per namespace and container
//   -- answers: which containers log errors, and how much of what they log is errors
//   -- param: namespaces STRING_LIST  namespaces to read; example: payments,checkout
//   -- param: from TIMESTAMP  start of the range, inclusive, UTC; example: 2026-11-21 00:00:00
//   -- positional: namespaces, from, to        (Athena: the order of the ? markers)
//   -- cost: reads the dt partitions of the range only
//   -- lookback_hours: 24   (optional: the query also reads this many hours before `from`)

import { readdir, readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { UserError } from "../lib/config/errors.ts";
import { isNamespaceName } from "../lib/policy/policy.ts";
import { DEFINITIONS, ENGINES, type Engine } from "./definitions.ts";

export const PACK_DIR = fileURLToPath(new URL(".", import.meta.url));

export const PARAM_TYPES = ["STRING", "STRING_LIST", "TIMESTAMP", "INT64", "NAMESPACE", "REGEX"] as const;
export type ParamType = (typeof PARAM_TYPES)[number];

export interface QueryParam {
  readonly name: string;
  readonly type: ParamType;
  readonly description: string;
  readonly example: string;
  /**
   * Used when the parameter is not given; undefined means required. `default: ''` in the header
   * is the empty text, which a query reads as "no filter" (`$text = '' OR …`).
   */
  readonly default?: string;
}

export interface PackQuery {
  readonly name: string;
  readonly engine: Engine;
  readonly path: string;
  readonly title: string;
  readonly answers: string;
  readonly cost: string;
  readonly params: readonly QueryParam[];
  /** Athena only: parameter names in the order of the `?` markers (a name may repeat). */
  readonly positional: readonly string[];
  /**
   * Hours before `from` the query reads too (noisiest_pods looks at the day before the range);
   * engines that choose partitions themselves (the archive engine) read those hours as well.
   */
  readonly lookbackHours: number;
  /** The file without its header: the statement to run. */
  readonly body: string;
}

export class PackFormatError extends Error {
  override name = "PackFormatError";
}

/** A `?` marker, or a string literal or quoted identifier whose `?` is text. */
const ATHENA_MARKERS = /'(?:[^']|'')*'|"(?:[^"]|"")*"|\?/g;
const HEADER_LINE = /^--\s?([a-z_]+):\s*(.*)$/;
const CONTINUATION = /^--\s{2,}(.*)$/;
const PARAM_LINE = /^([a-z_][a-z0-9_]*)\s+([A-Z_0-9]+)\s+(.+)$/;

/** Reads a query file's header; throws PackFormatError naming the file and line. */
export function parseQuery(text: string, path: string, engine: Engine): PackQuery {
  const lines = text.split("\n");
  const entries: [string, string][] = [];
  let i = 0;
  for (; i < lines.length; i++) {
    const line = lines[i]!.trimEnd();
    if (!line.startsWith("--")) break;
    const continued = CONTINUATION.exec(line);
    if (continued !== null && entries.length > 0) {
      entries[entries.length - 1]![1] += ` ${continued[1]!.trim()}`;
      continue;
    }
    const m = HEADER_LINE.exec(line);
    if (m !== null) entries.push([m[1]!, m[2]!.trim()]);
  }
  const body = lines.slice(i).join("\n").trim();
  const fail = (why: string) => new PackFormatError(`${path}: ${why}`);
  const one = (key: string) => {
    const values = entries.filter(([k]) => k === key).map(([, v]) => v);
    if (values.length !== 1) throw fail(`the header needs exactly one "-- ${key}:" line`);
    return values[0]!;
  };
  const params = entries
    .filter(([k]) => k === "param")
    .map(([, v]) => {
      const m = PARAM_LINE.exec(v);
      if (m === null) throw fail(`"-- param: ${v}" is not "name TYPE description; example: value"`);
      const type = m[2] as ParamType;
      if (!PARAM_TYPES.includes(type))
        throw fail(`parameter ${m[1]} has type ${m[2]}, not one of ${PARAM_TYPES}`);
      const example = /;\s*example:\s*([^;]+)/.exec(m[3]!)?.[1]?.trim();
      if (example === undefined) throw fail(`parameter ${m[1]} needs "; example: value"`);
      const written = /;\s*default:\s*([^;]+)/.exec(m[3]!)?.[1]?.trim();
      const fallback = written === "''" ? "" : written;
      return {
        name: m[1]!,
        type,
        description: m[3]!.split(";")[0]!.trim(),
        example,
        ...(fallback !== undefined ? { default: fallback } : {}),
      };
    });
  const names = new Set(params.map((p) => p.name));
  if (names.size !== params.length) throw fail("a parameter is declared twice");
  const positionalEntry = entries.find(([k]) => k === "positional")?.[1];
  const positional =
    positionalEntry === undefined || positionalEntry === ""
      ? []
      : positionalEntry.split(",").map((s) => s.trim());
  const used = engine === "athena" ? new Set(positional) : placeholders(body, engine);
  for (const name of used)
    if (!names.has(name)) throw fail(`the SQL uses parameter ${name}, which the header does not declare`);
  for (const name of names)
    if (!used.has(name)) throw fail(`parameter ${name} is declared but the SQL does not use it`);
  if (engine === "athena") {
    const markers = Array.from(body.matchAll(ATHENA_MARKERS)).filter((m) => m[0] === "?").length;
    if (markers !== positional.length) {
      throw fail(`the SQL has ${markers} ? markers but "-- positional:" lists ${positional.length} names`);
    }
  }
  const lookback = entries.filter(([k]) => k === "lookback_hours").map(([, v]) => v);
  if (lookback.length > 1 || (lookback.length === 1 && !/^\d{1,4}$/.test(lookback[0]!))) {
    throw fail('the header may have one "-- lookback_hours: N" line, N a whole number of hours');
  }
  return {
    name: basename(path, ".sql"),
    engine,
    path,
    title: one("title"),
    answers: one("answers"),
    cost: one("cost"),
    params,
    positional,
    lookbackHours: lookback.length === 1 ? Number(lookback[0]) : 0,
    body,
  };
}

function placeholders(body: string, engine: Engine): Set<string> {
  const sigil = engine === "duckdb" ? "\\$" : "@";
  // Outside string literals only: a '$' or '@' inside quotes is text.
  const code = body.replace(/'(?:[^']|'')*'/g, "''");
  return new Set(Array.from(code.matchAll(new RegExp(`${sigil}([a-z_][a-z0-9_]*)`, "g")), (m) => m[1]!));
}

export async function loadPack(dir = PACK_DIR): Promise<Map<Engine, Map<string, PackQuery>>> {
  const pack = new Map<Engine, Map<string, PackQuery>>();
  for (const engine of ENGINES) {
    const queries = new Map<string, PackQuery>();
    const files = (await readdir(join(dir, engine))).filter((f) => f.endsWith(".sql") && !f.startsWith("_"));
    for (const file of files.sort()) {
      const path = join(dir, engine, file);
      const query = parseQuery(await readFile(path, "utf8"), path, engine);
      queries.set(query.name, query);
    }
    pack.set(engine, queries);
  }
  return pack;
}

export async function loadQuery(engine: Engine, name: string, dir = PACK_DIR): Promise<PackQuery> {
  const queries = (await loadPack(dir)).get(engine)!;
  const query = queries.get(name);
  if (query === undefined) {
    throw new UserError(
      `there is no query ${JSON.stringify(name)} for ${engine}: run \`logarchive query --list\` (queries: ${[...queries.keys()].join(", ")})`,
    );
  }
  return query;
}

// ------------------------------------------------------------ values

export type ParamValue = string | bigint | readonly string[];

const TIMESTAMP_ARG = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?)?Z?$/;

/** A UTC instant as the warehouse writes it, `YYYY-MM-DD HH:MM:SS[.ffffff]`, or undefined. */
export function normaliseTimestamp(value: string): string | undefined {
  const m = TIMESTAMP_ARG.exec(value.trim());
  if (m === null) return undefined;
  const text = `${m[1]} ${m[2] ?? "00"}:${m[3] ?? "00"}:${m[4] ?? "00"}${m[5] ?? ""}`;
  const parsed = new Date(`${text.replace(" ", "T")}Z`);
  // Date rolls 2026-02-30 over to March; a round trip catches it.
  if (
    Number.isNaN(parsed.getTime()) ||
    parsed.toISOString().slice(0, 19) !== text.slice(0, 19).replace(" ", "T")
  ) {
    return undefined;
  }
  return text;
}

/**
 * Why a pattern would not run the same in the three engines, or undefined. DuckDB and BigQuery
 * use RE2, Athena (Trino) Java-style patterns: what they share is RE2's syntax, which has no
 * lookaround and no backreferences. The rest is checked by JavaScript's parser (with a leading
 * `(?i)`, which all three take, set aside), so a malformed pattern is named here rather than by
 * the engine after a scan has started.
 */
export function regexProblem(pattern: string): string | undefined {
  if (/\(\?<?[=!]/.test(pattern)) return "lookaround such as (?=…) is not in RE2";
  if (/\\[1-9]/.test(pattern)) return "backreferences such as \\1 are not in RE2";
  try {
    new RegExp(pattern.replace(/^\(\?i\)/, ""));
    return undefined;
  } catch (error) {
    return (error as Error).message.replace(/^Invalid regular expression: /, "");
  }
}

function convert(param: QueryParam, raw: string): ParamValue {
  const bad = (expected: string) =>
    new UserError(
      `--param ${param.name}=${raw}: expected ${expected} (example: ${param.name}=${param.example})`,
    );
  switch (param.type) {
    case "STRING":
      if (raw === "" && param.default !== "") throw bad("a non-empty text");
      return raw;
    case "REGEX": {
      if (raw === "" && param.default !== "") throw bad("a regular expression");
      const problem = regexProblem(raw);
      if (problem !== undefined) throw bad(`a regular expression in RE2 syntax (${problem})`);
      return raw;
    }
    case "NAMESPACE":
      if (!isNamespaceName(raw)) throw bad("a Kubernetes namespace name");
      return raw;
    case "STRING_LIST": {
      const items = raw.split(",").map((s) => s.trim());
      if (items.some((s) => !isNamespaceName(s))) throw bad("comma-separated Kubernetes namespace names");
      return items;
    }
    case "TIMESTAMP": {
      const ts = normaliseTimestamp(raw);
      if (ts === undefined) throw bad("a UTC time, YYYY-MM-DD[ HH:MM[:SS[.ffffff]]]");
      return ts;
    }
    case "INT64":
      if (!/^-?\d{1,18}$/.test(raw)) throw bad("an integer");
      return BigInt(raw);
  }
}

/** `k=v` arguments to typed values; every problem names the parameter. */
export function resolveParams(
  query: PackQuery,
  given: Readonly<Record<string, string>>,
): Map<string, ParamValue> {
  const declared = new Map(query.params.map((p) => [p.name, p]));
  for (const name of Object.keys(given)) {
    if (!declared.has(name)) {
      throw new UserError(
        `--param ${name}: query ${query.name} has no parameter ${name} (it takes ${query.params.map((p) => p.name).join(", ") || "none"})`,
      );
    }
  }
  const values = new Map<string, ParamValue>();
  for (const param of query.params) {
    const raw = given[param.name] ?? param.default;
    if (raw === undefined) {
      throw new UserError(
        `query ${query.name} needs --param ${param.name}=… (${param.type}: ${param.description}; example: ${param.name}=${param.example})`,
      );
    }
    values.set(param.name, convert(param, raw));
  }
  return values;
}

/** `--param k=v` strings to a record; a malformed one names itself. */
export function parseParamArgs(args: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const arg of args) {
    const eq = arg.indexOf("=");
    if (eq <= 0) throw new UserError(`--param ${arg}: expected name=value, such as --param from=2026-11-21`);
    const name = arg.slice(0, eq);
    if (name in out) throw new UserError(`--param ${name} is given twice`);
    out[name] = arg.slice(eq + 1);
  }
  return out;
}

// ------------------------------------------------------------ binding per engine

/** DuckDB: values for `prepared.bind()`, by `$name`; lists travel as one comma-joined text (namespaces hold no comma). */
export function duckDbBindings(values: ReadonlyMap<string, ParamValue>): Record<string, string | bigint> {
  const out: Record<string, string | bigint> = {};
  for (const [name, value] of values)
    out[name] = Array.isArray(value) ? value.join(",") : (value as string | bigint);
  return out;
}

export interface BigQueryRequest {
  query: string;
  params: Record<string, string | number | string[]>;
  types: Record<string, string | string[]>;
}

/** BigQuery: the script (temp functions, then the query) with typed `@name` parameters. */
export function bigQueryRequest(query: PackQuery, values: ReadonlyMap<string, ParamValue>): BigQueryRequest {
  const params: BigQueryRequest["params"] = {};
  const types: BigQueryRequest["types"] = {};
  for (const param of query.params) {
    const value = values.get(param.name)!;
    if (param.type === "STRING_LIST") {
      params[param.name] = [...(value as readonly string[])];
      types[param.name] = ["STRING"];
    } else if (param.type === "INT64") {
      params[param.name] = Number(value);
      types[param.name] = "INT64";
    } else {
      params[param.name] = value as string;
      types[param.name] = param.type === "TIMESTAMP" ? "TIMESTAMP" : "STRING";
    }
  }
  return { query: `${DEFINITIONS.bigquery()}\n${query.body}`, params, types };
}

const athenaString = (text: string) => `'${text.replaceAll("'", "''")}'`;

/**
 * Athena: the statement and its ExecutionParameters. Athena substitutes each parameter as
 * SQL text, so every value is rendered as a literal here (strings quoted, integers checked
 * digits); a list fills one `?` with as many markers as it has items.
 */
export function athenaRequest(
  query: PackQuery,
  values: ReadonlyMap<string, ParamValue>,
): { queryString: string; executionParameters: string[] } {
  const executionParameters: string[] = [];
  let index = 0;
  const queryString = query.body.replace(ATHENA_MARKERS, (token) => {
    if (token !== "?") return token;
    const name = query.positional[index++]!;
    const value = values.get(name)!;
    if (Array.isArray(value)) {
      executionParameters.push(...value.map(athenaString));
      return value.map(() => "?").join(", ");
    }
    executionParameters.push(typeof value === "bigint" ? value.toString() : athenaString(value as string));
    return "?";
  });
  return { queryString, executionParameters };
}
