// Picks the parser for a file from its first recognisable line.
//
// The format belongs to the runtime that wrote the file, so it is decided per file, not
// per node: files left by an earlier runtime (a node moved from dockershim to containerd)
// still parse. A first line that is neither format (garbage, a cut write) decides
// nothing; detection is retried on the next line, and the unrecognised ones come out as
// parse errors.

import { parseCriLine } from "./cri.ts";
import { parseDockerLine } from "./docker.ts";
import { ParsedLine } from "./parsed_line.ts";

export type LogFormat = "cri" | "docker";

const probe = new ParsedLine();

// A CRI line starts with a timestamp digit; a Docker line is a JSON object.
function looksLikeDocker(b: Buffer, start: number, end: number): boolean {
  let i = start;
  while (i < end && (b[i] === 0x20 || b[i] === 0x09)) i++;
  return i < end && b[i] === 0x7b;
}

/** The format `b[start, end)` parses as, or null when it parses as neither. */
export function detectFormat(b: Buffer, start: number, end: number): LogFormat | null {
  if (looksLikeDocker(b, start, end)) return parseDockerLine(b, start, end, probe) ? "docker" : null;
  return parseCriLine(b, start, end, probe) ? "cri" : null;
}

/** Parses one line of a known format into `out`; see parseCriLine and parseDockerLine. */
export function parseLine(
  format: LogFormat,
  b: Buffer,
  start: number,
  end: number,
  out: ParsedLine,
): boolean {
  return format === "cri" ? parseCriLine(b, start, end, out) : parseDockerLine(b, start, end, out);
}

/**
 * Parses a file's lines, detecting the format on the first line that parses. Holds the
 * per-file decision; use one per file.
 */
export class FormatDetector {
  format: LogFormat | null = null;

  parse(b: Buffer, start: number, end: number, out: ParsedLine): boolean {
    if (this.format !== null) return parseLine(this.format, b, start, end, out);
    // Until a line parses, each is tried as the format it resembles, which also makes the
    // parse error's reason fit the line.
    const docker = looksLikeDocker(b, start, end);
    const ok = docker ? parseDockerLine(b, start, end, out) : parseCriLine(b, start, end, out);
    if (ok) this.format = docker ? "docker" : "cri";
    return ok;
  }
}
