// `logarchive parse`: the records the shipper would archive from given log files, as
// NDJSON on stdout, through the shipper's own decoder and encoder.

import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { hostname } from "node:os";
import type { Writable } from "node:stream";
import { createGunzip } from "node:zlib";
import { Command, InvalidArgumentError, Option } from "commander";
import { parseSize } from "../../lib/config/units.ts";
import { instantFromMs } from "../../lib/record/timestamp.ts";
import { type DecodedLine, FileDecoder } from "../../shipper/sources/kubernetes_logs/file_decoder.ts";
import { DEFAULT_MAX_LINE_BYTES } from "../../shipper/sources/kubernetes_logs/partial_merger.ts";
import {
  ACCEPTED_LAYOUTS,
  type LogFileMeta,
  parseLogPath,
} from "../../shipper/sources/kubernetes_logs/paths.ts";
import { appendRecordEnd, OutputBuffer, RecordEncoder } from "../../shipper/transforms/record_encoder.ts";

export interface ParseOptions {
  merge: boolean;
  node: string;
  maxLineBytes: number;
}

export interface ParseSummary {
  records: number;
  parseErrors: number;
  truncated: number;
}

const FLUSH_BYTES = 256 * 1024;
const PARTIAL_TRUE = Buffer.from(',"partial":true}\n');
const PARTIAL_FALSE = Buffer.from(',"partial":false}\n');
export function parseByteSize(value: string): number {
  const n = parseSize(value);
  if (n === null || n < 1) {
    throw new InvalidArgumentError("expected a positive size in bytes, e.g. 1048576, 256KiB or 1MiB.");
  }
  return n;
}

/** Each file's name metadata, or the list of problems (one line per file). */
export function checkLogPaths(files: readonly string[]): { metas: LogFileMeta[]; problems: string[] } {
  const metas: LogFileMeta[] = [];
  const problems: string[] = [];
  for (const file of files) {
    const r = parseLogPath(file);
    if (r.ok) metas.push(r.meta);
    else problems.push(r.error.message);
  }
  return { metas, problems };
}

/** Writes to `output`, waiting when it pushes back; rethrows the stream's error (EPIPE). */
class Drain {
  private failed: Error | null = null;
  private readonly output: Writable;

  constructor(output: Writable) {
    this.output = output;
    output.on("error", (error) => {
      this.failed = error;
    });
  }

  async write(out: OutputBuffer): Promise<void> {
    if (this.failed !== null) throw this.failed;
    if (out.length === 0 || this.output.write(out.take())) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.output.off("drain", done);
        this.output.off("error", done);
        resolve();
      };
      this.output.on("drain", done);
      this.output.on("error", done);
    });
    if (this.failed !== null) throw this.failed;
  }
}

/**
 * Decodes and encodes `files` (names already checked) to `output`, in order. Records end
 * after the fields the shipper writes before batching; batch_id and seq are not added.
 */
export async function writeParsedFiles(
  files: readonly string[],
  metas: readonly LogFileMeta[],
  options: ParseOptions,
  output: Writable,
): Promise<ParseSummary> {
  const summary: ParseSummary = { records: 0, parseErrors: 0, truncated: 0 };
  const out = new OutputBuffer(FLUSH_BYTES * 2);
  const drain = new Drain(output);
  for (let f = 0; f < files.length; f++) {
    const file = files[f]!;
    const meta = metas[f]!;
    const encoder = new RecordEncoder({ ...meta, node: options.node });
    // Malformed lines before the first good one are dated by the file's mtime (see FileDecoder).
    const mtimeMs = (await stat(file)).mtimeMs;
    const decoder = new FileDecoder({
      merge: options.merge,
      maxLineBytes: options.maxLineBytes,
      fallbackTime: instantFromMs(mtimeMs),
    });
    const sink = (l: DecodedLine) => {
      encoder.encodeLine(out, l);
      if (options.merge) appendRecordEnd(out);
      else out.append(l.partial ? PARTIAL_TRUE : PARTIAL_FALSE);
      summary.records++;
      if (l.parseError !== null) summary.parseErrors++;
      if (l.truncated) summary.truncated++;
    };
    const source = createReadStream(file, { highWaterMark: 256 * 1024 });
    const input = meta.compressed ? source.pipe(createGunzip()) : source;
    source.on("error", (error) => input.destroy(error));
    for await (const chunk of input) {
      decoder.push(chunk as Buffer, sink);
      if (out.length >= FLUSH_BYTES) await drain.write(out);
    }
    // A file handed to `parse` is read as finished: its tail and pending partials are emitted.
    decoder.end(sink);
    await drain.write(out);
  }
  return summary;
}

export function parseCommand(): Command {
  return new Command("parse")
    .description(
      "Print, as NDJSON, the records the shipper would archive from container log files " +
        "(CRI or Docker json-file, plain or .gz), with metadata from the file names.",
    )
    .argument("<files...>", "container log files under /var/log/pods or /var/log/containers")
    .option(
      "--no-merge",
      'one record per physical line, partial chunks unjoined, with an added "partial" field',
    )
    .addOption(
      new Option("--node <name>", "node name to put in records").env("NODE_NAME").default(hostname()),
    )
    .addOption(
      new Option(
        "--max-line-bytes <size>",
        "cap on a line's message; longer lines are cut and marked truncated",
      )
        .argParser(parseByteSize)
        .default(DEFAULT_MAX_LINE_BYTES, "1MiB"),
    )
    .addHelpText(
      "after",
      [
        "",
        "Records carry every field but batch_id and seq, which the shipper assigns when it",
        "batches records into an archive object. A line that does not parse is printed with its",
        "raw content in message and the reason in parse_error; none is dropped.",
        "",
        "Accepted file names:",
        ...ACCEPTED_LAYOUTS.map((layout) => `  ${layout}`),
      ].join("\n"),
    )
    .action(async function (this: Command, files: string[], opts: ParseOptions) {
      const { metas, problems } = checkLogPaths(files);
      if (problems.length > 0) {
        const layouts = ACCEPTED_LAYOUTS.map((layout) => `\n  ${layout}`).join("");
        this.error(
          `logarchive parse: ${problems.join("\nlogarchive parse: ")}\naccepted layouts:${layouts}`,
          {
            exitCode: 2,
            code: "logarchive.parse.path",
          },
        );
      }
      for (const file of files) {
        try {
          await stat(file);
        } catch (error) {
          this.error(`logarchive parse: cannot read ${file}: ${(error as Error).message}`, {
            exitCode: 2,
            code: "logarchive.parse.read",
          });
        }
      }
      try {
        await writeParsedFiles(files, metas, opts, process.stdout);
      } catch (error) {
        // `logarchive parse ... | head` closes the pipe early; that is not a failure.
        if ((error as NodeJS.ErrnoException).code !== "EPIPE") throw error;
      }
    });
}
