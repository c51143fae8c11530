// Severity, safe JSON field access and error signatures, defined once for the query packs.
//
// The archive keeps every line as text (docs/record-format.md): JSON app logs with four
// level conventions (`50`, `ERROR`, `error`, `warning`), access lines, plain text and stack
// traces share one `message` column. Every engine's definitions are generated from the
// tables below, so "what counts as an error" cannot drift between DuckDB, BigQuery and
// Athena: `queries/definitions.test.ts` runs the DuckDB SQL against the TypeScript
// reference (`severityOf`) and checks that the other two engines are generated from the
// same rules. Regexes use the subset RE2 (DuckDB, BigQuery) and Joni (Trino) agree on.

import { athenaColumns, DEFAULT_TABLE } from "../lib/record/ddl.ts";

export const SEVERITIES = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"] as const;
export type Severity = (typeof SEVERITIES)[number];

/** JSON keys that carry a level, first present wins (logback/zap/pino/structlog use `level`, GCP `severity`, logfmt ports `lvl`). */
export const LEVEL_KEYS = ["level", "severity", "lvl"] as const;

/** Level names, compared lowercased with surrounding spaces removed. */
export const LEVEL_NAMES: Readonly<Record<Severity, readonly string[]>> = {
  TRACE: ["trace", "finest", "finer"],
  DEBUG: ["debug", "fine", "verbose"],
  INFO: ["info", "information", "informational", "notice"],
  WARN: ["warn", "warning"],
  ERROR: ["error", "err", "severe"],
  FATAL: ["fatal", "critical", "crit", "alert", "emergency", "emerg", "panic"],
};

/**
 * Numeric levels (pino/bunyan: 10 trace … 60 fatal): the highest threshold at or below the
 * number wins; a number below the lowest has no severity (syslog's inverted 0-7 is not guessed at).
 */
export const LEVEL_NUMBERS: readonly (readonly [number, Severity])[] = [
  [60, "FATAL"],
  [50, "ERROR"],
  [40, "WARN"],
  [30, "INFO"],
  [20, "DEBUG"],
  [10, "TRACE"],
];

export interface TextRule {
  readonly pattern: string;
  readonly severity: Severity;
  /** When set, only the line's first characters are searched: level words further in are content, not level. */
  readonly prefixChars?: number;
}

const LEVEL_WORD_PREFIX = 80;

/**
 * Lines that are not JSON, first matching rule wins. Stack frames (`\tat …`, `Caused by:`,
 * `  File "…"`, `Traceback …`) match none: they continue an error already counted on its
 * first line, and counting each frame would make one exception look like twenty.
 */
export const TEXT_RULES: readonly TextRule[] = [
  // klog (Kubernetes components): I1121 10:00:00.123456
  { pattern: "^F[0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2}", severity: "FATAL" },
  { pattern: "^E[0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2}", severity: "ERROR" },
  { pattern: "^W[0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2}", severity: "WARN" },
  { pattern: "^I[0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2}", severity: "INFO" },
  // Go runtime panics
  { pattern: "^panic: ", severity: "FATAL" },
  // nginx/ingress access lines: the status after the request line
  { pattern: 'HTTP/[0-9.]+" 5[0-9]{2} ', severity: "ERROR" },
  { pattern: 'HTTP/[0-9.]+" 4[0-9]{2} ', severity: "WARN" },
  { pattern: 'HTTP/[0-9.]+" [1-3][0-9]{2} ', severity: "INFO" },
  // The first line of a Java/Python exception: com.acme.GatewayException: …, ConnectionError: …
  { pattern: "^[A-Za-z_][A-Za-z0-9_$.]*(Exception|Error)(: |$)", severity: "ERROR" },
  // Level words near the start: log4j/logback/Python/gunicorn/nginx error log/coredns
  {
    pattern: "\\b(FATAL|CRITICAL|PANIC)\\b|\\[(crit|alert|emerg)\\]",
    severity: "FATAL",
    prefixChars: LEVEL_WORD_PREFIX,
  },
  { pattern: "\\b(ERROR|SEVERE)\\b|\\[error\\]", severity: "ERROR", prefixChars: LEVEL_WORD_PREFIX },
  { pattern: "\\bWARN(ING)?\\b|\\[warn\\]", severity: "WARN", prefixChars: LEVEL_WORD_PREFIX },
  { pattern: "\\bINFO\\b|\\[(info|notice)\\]", severity: "INFO", prefixChars: LEVEL_WORD_PREFIX },
  { pattern: "\\bDEBUG\\b|\\[debug\\]", severity: "DEBUG", prefixChars: LEVEL_WORD_PREFIX },
  { pattern: "\\bTRACE\\b", severity: "TRACE", prefixChars: LEVEL_WORD_PREFIX },
];

/** JSON keys holding the human message, for signatures: zap/logrus `msg`, logback `message`, structlog `event`. */
export const MESSAGE_KEYS = ["msg", "message", "event"] as const;

/** Error signatures: the variable parts replaced, in this order, so the same error groups together. */
export const SIGNATURE_RULES: readonly (readonly [pattern: string, replacement: string])[] = [
  ["[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "<uuid>"],
  ["0x[0-9a-fA-F]+", "<hex>"],
  ["\\b[0-9a-fA-F]*[0-9][0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*\\b", "<hex>"],
  ["\\b[0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*[0-9][0-9a-fA-F]*\\b", "<hex>"],
  ["[0-9]+", "<n>"],
];
/** Signatures are cut here: the start of a message names the error, the rest is detail. */
export const SIGNATURE_CHARS = 160;

// ------------------------------------------------------------ reference implementation

const NAME_TO_SEVERITY = new Map<string, Severity>(
  SEVERITIES.flatMap((s) => LEVEL_NAMES[s].map((name) => [name, s] as const)),
);

function levelSeverity(raw: string): Severity | null {
  if (/^[0-9]+$/.test(raw)) {
    const n = Number(raw);
    for (const [threshold, severity] of LEVEL_NUMBERS) if (n >= threshold) return severity;
    return null;
  }
  return NAME_TO_SEVERITY.get(raw.replace(/^ +| +$/g, "").toLowerCase()) ?? null;
}

function parsedJson(message: string): unknown {
  try {
    return JSON.parse(message);
  } catch {
    return undefined;
  }
}

function scalarText(value: unknown): string | null {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return null;
}

/**
 * What the generated SQL computes, in TypeScript: the JSON level when there is one, nothing
 * for other JSON, the text rules for the rest. Tests compare the engines with it.
 */
export function severityOf(message: string): Severity | null {
  const json = parsedJson(message);
  if (json !== undefined) {
    if (json === null || typeof json !== "object" || Array.isArray(json)) return null;
    for (const key of LEVEL_KEYS) {
      const raw = scalarText((json as Record<string, unknown>)[key]);
      if (raw !== null) return levelSeverity(raw);
    }
    return null;
  }
  for (const rule of TEXT_RULES) {
    const text = rule.prefixChars === undefined ? message : message.slice(0, rule.prefixChars);
    if (new RegExp(rule.pattern, "u").test(text)) return rule.severity;
  }
  return null;
}

// ------------------------------------------------------------ SQL generation

export type Engine = "duckdb" | "bigquery" | "athena";
export const ENGINES: readonly Engine[] = ["athena", "bigquery", "duckdb"];

interface Dialect {
  /** A string literal holding `text` exactly. */
  literal(text: string): string;
  /** A regex literal for the engine's regex functions. */
  regex(pattern: string): string;
  matches(subject: string, pattern: string): string;
  prefix(subject: string, chars: number): string;
  /** A JSON scalar at `$.key` as text, NULL for messages that are not JSON objects. */
  jsonField(subject: string, key: string): string;
  isJson(subject: string): string;
  regexReplace(subject: string, pattern: string, replacement: string): string;
}

const plainLiteral = (text: string) => `'${text.replaceAll("'", "''")}'`;

const DIALECTS: Record<Engine, Dialect> = {
  duckdb: {
    literal: plainLiteral,
    regex: plainLiteral,
    matches: (s, p) => `regexp_matches(${s}, ${p})`,
    prefix: (s, n) => `left(${s}, ${n})`,
    // The CASE keeps the parser away from text: json_extract_string throws on it.
    jsonField: (s, key) => `CASE WHEN json_valid(${s}) THEN json_extract_string(${s}, '$.${key}') END`,
    isJson: (s) => `json_valid(${s})`,
    regexReplace: (s, p, r) => `regexp_replace(${s}, ${p}, ${r}, 'g')`,
  },
  bigquery: {
    literal: (text) => `'${text.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`,
    regex: (pattern) => {
      if (pattern.includes("'")) throw new Error(`BigQuery raw string cannot hold ' in ${pattern}`);
      return `r'${pattern}'`;
    },
    matches: (s, p) => `REGEXP_CONTAINS(${s}, ${p})`,
    prefix: (s, n) => `LEFT(${s}, ${n})`,
    // SAFE.PARSE_JSON is NULL for text; 'round' keeps 64-bit ids and long decimals from failing the parse.
    jsonField: (s, key) => `JSON_VALUE(SAFE.PARSE_JSON(${s}, wide_number_mode => 'round'), '$.${key}')`,
    isJson: (s) => `(SAFE.PARSE_JSON(${s}, wide_number_mode => 'round') IS NOT NULL)`,
    regexReplace: (s, p, r) => `REGEXP_REPLACE(${s}, ${p}, ${r})`,
  },
  athena: {
    literal: plainLiteral,
    regex: plainLiteral,
    matches: (s, p) => `regexp_like(${s}, ${p})`,
    prefix: (s, n) => `substr(${s}, 1, ${n})`,
    jsonField: (s, key) => `json_extract_scalar(try(json_parse(${s})), '$.${key}')`,
    isJson: (s) => `(try(json_parse(${s})) IS NOT NULL)`,
    regexReplace: (s, p, r) => `regexp_replace(${s}, ${p}, ${r})`,
  },
};

/** An SQL CASE mapping a level value (text) to a severity, NULL when it names none. */
export function levelSeveritySql(engine: Engine, raw: string): string {
  const d = DIALECTS[engine];
  const numeric = d.matches(raw, d.regex("^[0-9]+$"));
  const asNumber = engine === "bigquery" ? `SAFE_CAST(${raw} AS INT64)` : `TRY_CAST(${raw} AS BIGINT)`;
  const byNumber = LEVEL_NUMBERS.map(([n, s]) => `WHEN ${asNumber} >= ${n} THEN ${d.literal(s)}`).join(" ");
  const name = `lower(trim(${raw}, ' '))`;
  const byName = SEVERITIES.map(
    (s) => `WHEN ${name} IN (${LEVEL_NAMES[s].map(d.literal).join(", ")}) THEN ${d.literal(s)}`,
  ).join(" ");
  return `CASE WHEN ${numeric} THEN CASE ${byNumber} END ${byName} END`;
}

/** The JSON level of a message, first of LEVEL_KEYS present. */
export function jsonLevelSql(engine: Engine, message: string): string {
  const d = DIALECTS[engine];
  return `coalesce(${LEVEL_KEYS.map((k) => d.jsonField(message, k)).join(", ")})`;
}

export function textSeveritySql(engine: Engine, message: string): string {
  const d = DIALECTS[engine];
  const whens = TEXT_RULES.map((rule) => {
    const subject = rule.prefixChars === undefined ? message : d.prefix(message, rule.prefixChars);
    return `WHEN ${d.matches(subject, d.regex(rule.pattern))} THEN ${d.literal(rule.severity)}`;
  });
  return `CASE ${whens.join(" ")} END`;
}

/** The normalised start of a message, so one error's occurrences group together. */
export function signatureSql(engine: Engine, message: string): string {
  const d = DIALECTS[engine];
  let text = `coalesce(${MESSAGE_KEYS.map((k) => d.jsonField(message, k)).join(", ")}, ${message})`;
  text = d.prefix(text, SIGNATURE_CHARS * 2);
  for (const [pattern, replacement] of SIGNATURE_RULES) {
    text = d.regexReplace(text, d.regex(pattern), d.literal(replacement));
  }
  // Spaces only: the engines' one-argument trim differ on tabs and Unicode spaces.
  return d.prefix(`trim(${text}, ' ')`, SIGNATURE_CHARS);
}

export function jsonFieldSql(engine: Engine, message: string, key: string): string {
  return DIALECTS[engine].jsonField(message, key);
}

/** The reference signature, as signatureSql computes it. */
export function signatureOf(message: string): string {
  const json = parsedJson(message);
  let text = message;
  if (json !== null && typeof json === "object" && !Array.isArray(json)) {
    for (const key of MESSAGE_KEYS) {
      const value = scalarText((json as Record<string, unknown>)[key]);
      if (value !== null) {
        text = value;
        break;
      }
    }
  }
  text = [...text].slice(0, SIGNATURE_CHARS * 2).join("");
  for (const [pattern, replacement] of SIGNATURE_RULES)
    text = text.replace(new RegExp(pattern, "gu"), replacement);
  return [...text.replace(/^ +| +$/g, "")].slice(0, SIGNATURE_CHARS).join("");
}

// ------------------------------------------------------------ per-engine definition files

const GENERATED =
  "-- Generated from queries/definitions.ts by `node queries/generate.ts`; edit that file, not this one.";

/** queries/duckdb/_definitions.sql: macros every DuckDB query of the pack uses. */
export function duckDbDefinitions(): string {
  return [
    GENERATED,
    "-- DuckDB macros: run once per connection (`logarchive query` does), then use in any query.",
    "",
    "CREATE OR REPLACE TEMP MACRO json_field(msg, path) AS CASE WHEN json_valid(msg) THEN json_extract_string(msg, path) END;",
    `CREATE OR REPLACE TEMP MACRO json_level(message) AS ${jsonLevelSql("duckdb", "message")};`,
    `CREATE OR REPLACE TEMP MACRO level_severity(level) AS ${levelSeveritySql("duckdb", "level")};`,
    `CREATE OR REPLACE TEMP MACRO text_severity(message) AS ${textSeveritySql("duckdb", "message")};`,
    "CREATE OR REPLACE TEMP MACRO severity(message) AS CASE WHEN json_level(message) IS NOT NULL THEN level_severity(json_level(message)) WHEN json_valid(message) THEN NULL ELSE text_severity(message) END;",
    `CREATE OR REPLACE TEMP MACRO error_signature(message) AS ${signatureSql("duckdb", "message")};`,
    "CREATE OR REPLACE TEMP MACRO is_error(message) AS coalesce(severity(message) IN ('ERROR', 'FATAL'), false);",
    "",
  ].join("\n");
}

/** queries/bigquery/_definitions.sql: temporary functions, prepended to each query of the pack in the same script. */
export function bigQueryDefinitions(): string {
  return [
    GENERATED,
    "-- BigQuery temporary functions: they live for one script, so paste them above a query",
    "-- (`logarchive query` and the pack loader prepend them).",
    "",
    "CREATE TEMP FUNCTION json_field(msg STRING, path STRING) AS (JSON_VALUE(SAFE.PARSE_JSON(msg, wide_number_mode => 'round'), path));",
    `CREATE TEMP FUNCTION json_level(message STRING) AS (${jsonLevelSql("bigquery", "message")});`,
    `CREATE TEMP FUNCTION level_severity(level STRING) AS (${levelSeveritySql("bigquery", "level")});`,
    `CREATE TEMP FUNCTION text_severity(message STRING) AS (${textSeveritySql("bigquery", "message")});`,
    `CREATE TEMP FUNCTION severity(message STRING) AS (CASE WHEN json_level(message) IS NOT NULL THEN level_severity(json_level(message)) WHEN ${DIALECTS.bigquery.isJson("message")} THEN NULL ELSE text_severity(message) END);`,
    `CREATE TEMP FUNCTION error_signature(message STRING) AS (${signatureSql("bigquery", "message")});`,
    "CREATE TEMP FUNCTION is_error(message STRING) AS (COALESCE(severity(message) IN ('ERROR', 'FATAL'), FALSE));",
    "",
  ].join("\n");
}

/** The Athena view the pack reads: the table plus json_level, is_json, severity and error_signature. */
export const ATHENA_VIEW = "container_logs_v";

/** The named query (queries/athena/_definitions.sql) that creates ATHENA_VIEW. */
export const ATHENA_DEFINITIONS_QUERY = "_definitions";

/** The Glue table over the compacted parts (infra/components/athena-catalog.ts), beside the originals' `container_logs`. */
export const ATHENA_COMPACTED_TABLE = "container_logs_compacted";

export interface AthenaArchiveSource {
  /** The originals' table. */
  readonly originals: string;
  /** The record's data columns (lib/record/ddl.ts athenaColumns), in order. */
  readonly columns: readonly string[];
  /** With archive compaction on: the compacted parts' table, and the stack setting archiveCompaction.athenaCutoffHours. */
  readonly compaction?: { readonly compacted: string; readonly cutoffHours: number };
}

/**
 * What ATHENA_VIEW reads: the record's columns, tier, namespace, dt, hour and the object a line
 * came from (`archive_path`, the table's hidden "$path", which a view does not pass on).
 *
 * With compaction on, the archive's lines each once (docs/queries.md#reads-and-compaction):
 * Athena cannot see manifests, so the hour decides. An hour that ended at least cutoffHours
 * before the query's current_timestamp (one instant for the whole query) is read from the
 * compacted table, any newer hour from the originals' table; the two conditions are each
 * other's negation over the same (dt, hour), so no hour is read from both or from neither.
 * An hour is compacted-side when its start is at or before now - (cutoff + 1) hours, i.e.
 * when its `YYYY-MM-DD HH` is at or before that instant's (both hour-aligned, compared as
 * text, on partition columns only). Only `.ndjson.gz` objects of the compacted prefix are
 * rows: its manifests sit in the same partitions.
 */
export function athenaArchiveSource(o: AthenaArchiveSource): string {
  const columns = o.columns.map((c) => `"${c}"`).join(", ");
  const originals = `SELECT ${columns}, tier, namespace, dt, hour, "$path" AS archive_path FROM ${o.originals}`;
  if (o.compaction === undefined) return `(${originals})`;
  const { compacted, cutoffHours } = o.compaction;
  if (!Number.isSafeInteger(cutoffHours) || cutoffHours < 1) {
    throw new Error(`athenaCutoffHours ${cutoffHours} is not a whole number of hours, at least 1`);
  }
  const hourKey = "concat(dt, ' ', hour)";
  const cutoff = `date_format((current_timestamp AT TIME ZONE 'UTC') - INTERVAL '${cutoffHours + 1}' HOUR, '%Y-%m-%d %H')`;
  return [
    "(",
    `    ${originals}`,
    `    WHERE ${hourKey} > ${cutoff}`,
    "    UNION ALL",
    `    SELECT ${columns}, 'compacted' AS tier, namespace, dt, hour, "$path" AS archive_path FROM ${compacted}`,
    `    WHERE ${hourKey} <= ${cutoff} AND "$path" LIKE '%.ndjson.gz'`,
    "  )",
  ].join("\n");
}

/**
 * queries/athena/_definitions.sql: a view over the archive table (Athena has no SQL macros).
 * `source` is athenaArchiveSource's: the archive table, or with compaction on both tables.
 */
export function athenaDefinitions(
  source = athenaArchiveSource({ originals: DEFAULT_TABLE, columns: athenaColumns().map((c) => c.name) }),
): string {
  return [
    GENERATED,
    "-- Athena (Trino) has no SQL macros: this view adds the shared columns. Create it once in the",
    "-- database of the archive table; Athena pushes the queries' partition filters through it.",
    "-- Every pack query reads this view. With archive compaction on, the stack saves this named",
    "-- query reading the originals' table for recent hours and the compacted table for older ones",
    "-- (docs/queries.md#reads-and-compaction): run it again after changing athenaCutoffHours.",
    "",
    `CREATE OR REPLACE VIEW ${ATHENA_VIEW} AS`,
    "SELECT",
    "  l.*,",
    `  CASE WHEN l.json_level IS NOT NULL THEN ${levelSeveritySql("athena", "l.json_level")}`,
    `    WHEN l.is_json THEN NULL ELSE ${textSeveritySql("athena", "l.message")} END AS severity,`,
    `  ${signatureSql("athena", "l.message")} AS error_signature`,
    "FROM (",
    "  SELECT t.*,",
    `    ${jsonLevelSql("athena", "t.message")} AS json_level,`,
    `    ${DIALECTS.athena.isJson("t.message")} AS is_json`,
    `  FROM ${source} t`,
    ") l;",
    "",
  ].join("\n");
}

export const DEFINITIONS: Record<Engine, () => string> = {
  duckdb: duckDbDefinitions,
  bigquery: bigQueryDefinitions,
  athena: athenaDefinitions,
};
