// logarchive's own structured logs: one JSON object per line on stderr, so stdout stays
// free for command output (NDJSON records, summaries) and log collectors parse ours too.

import { pino } from "pino";

export type Logger = pino.Logger;

export function createLogger(name: string, level = process.env.LOGARCHIVE_LOG_LEVEL ?? "info"): Logger {
  return pino(
    { name, level, base: { component: name }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination(2),
  );
}

/** Adapts a pino logger to the `(event, fields)` callbacks the stages take. */
export function eventLog(logger: Logger): (event: string, fields: Record<string, unknown>) => void {
  return (event, fields) => logger.warn({ event, ...fields }, event);
}

/** How a stage reports what it did: a level, an event name and structured fields. */
export type StageLog = (
  level: "debug" | "info" | "warn" | "error",
  event: string,
  fields: Record<string, unknown>,
) => void;
