// Encoding and checking of record lines, derived from RECORD_FIELDS.
//
// encodeRecord is the reference encoder: fields in schema order, unset nullable fields
// omitted. The shipper's hot-path encoder must produce the same bytes; a test compares them.

import { type FieldSpec, type LogRecord, RECORD_FIELDS } from "./schema.ts";

const RECORD_TIMESTAMP = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$/;

export function encodeRecord(record: LogRecord): string {
  const values = record as unknown as Record<string, unknown>;
  let out = "{";
  for (const field of RECORD_FIELDS) {
    const value = values[field.name];
    if (value === undefined || value === null) {
      if (field.required) throw new Error(`record field ${field.name} is required`);
      continue;
    }
    if (out.length > 1) out += ",";
    out += `"${field.name}":${JSON.stringify(value)}`;
  }
  return `${out}}`;
}

function checkValue(field: FieldSpec, value: unknown): string | null {
  switch (field.type) {
    case "STRING":
      if (typeof value !== "string") return "expected a string";
      // JSON lets `\ud800` stand alone; BigQuery and DuckDB refuse a string holding an
      // unpaired surrogate, so a load would fail on a line this check had passed.
      return value.isWellFormed()
        ? null
        : "holds an unpaired UTF-16 surrogate (a lone \\uD800-\\uDFFF escape)";
    case "TIMESTAMP":
      return typeof value === "string" && RECORD_TIMESTAMP.test(value)
        ? null
        : "expected `YYYY-MM-DD HH:MM:SS.ffffff`";
    case "INT64":
      return Number.isSafeInteger(value) ? null : "expected an integer";
    case "BOOL":
      return typeof value === "boolean" ? null : "expected true or false";
  }
}

const KNOWN_FIELDS = new Map<string, FieldSpec>(RECORD_FIELDS.map((f) => [f.name, f]));

/**
 * Checks one NDJSON line against the record schema, the way a strict warehouse load would.
 * Returns null when it conforms, else a one-line reason naming the field.
 */
export function checkRecordLine(line: string): string | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch (error) {
    return `not JSON: ${(error as Error).message}`;
  }
  return checkRecordValue(parsed);
}

/** Checks a parsed NDJSON line against the record schema; null when it conforms. */
export function checkRecordValue(parsed: unknown): string | null {
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return "not a JSON object";
  const obj = parsed as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!KNOWN_FIELDS.has(key)) return `unknown field ${key}`;
  }
  for (const field of RECORD_FIELDS) {
    const value = obj[field.name];
    if (value === undefined || value === null) {
      if (field.required) return `missing required field ${field.name}`;
      continue;
    }
    const problem = checkValue(field, value);
    if (problem !== null) return `field ${field.name}: ${problem}`;
  }
  return null;
}
