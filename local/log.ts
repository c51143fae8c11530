// The structured log of a `logarchive local` run: every component's JSON events go to one
// file in the data directory, so the terminal shows only the run's human lines. The run
// counts the warnings and errors it logged, to say so (and where to look) on its status line.

import { pino } from "pino";
import type { Logger } from "../lib/log.ts";

export interface LocalLog {
  logger: Logger;
  path: string;
  /** Events logged at warn level and above (errors included). */
  problems(): number;
  errors(): number;
  /** The event name of the last warning or error, if any. */
  lastProblem(): string | null;
  /** Writes out what is buffered; call before the process exits. */
  flush(): void;
}

export function openLocalLog(path: string, level: string): LocalLog {
  const file = pino.destination({ dest: path, mkdir: true, sync: false });
  let problems = 0;
  let errors = 0;
  let last: string | null = null;
  const noteProblem = {
    write(line: string) {
      problems++;
      try {
        const event = (JSON.parse(line) as { event?: unknown; msg?: unknown }).event;
        last = typeof event === "string" ? event : null;
      } catch {
        last = null;
      }
    },
  };
  const noteError = {
    write() {
      errors++;
    },
  };
  const logger = pino(
    { name: "local", level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.multistream([
      { level: level as pino.Level, stream: file },
      { level: "warn", stream: noteProblem },
      { level: "error", stream: noteError },
    ]),
  );
  return {
    logger,
    path,
    problems: () => problems,
    errors: () => errors,
    lastProblem: () => last,
    flush() {
      try {
        file.flushSync();
      } catch {
        // Not open yet (nothing was written): nothing to flush.
      }
    },
  };
}
