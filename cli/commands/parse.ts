// `logarchive parse`: the records the shipper would archive from given log files, as
// NDJSON on stdout, through the shipper's own decoder and encoder. Multi-line stack traces
// are merged as the shipper would merge them: by one mode for every file (`--multiline`),
// or by the rules of a shipper config file for each file's namespace and container
// (`--config`).

import { createReadStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { hostname } from "node:os";
import type { Writable } from "node:stream";
import { createGunzip } from "node:zlib";
import { Command, InvalidArgumentError, Option } from "commander";
import { ConfigError } from "../../lib/config/errors.ts";
import { parseSize } from "../../lib/config/units.ts";
import { instantFromMs } from "../../lib/record/timestamp.ts";
import { parseShipperConfigFile } from "../../shipper/config.ts";
import { type DecodedLine, FileDecoder } from "../../shipper/sources/kubernetes_logs/file_decoder.ts";
import { DEFAULT_MAX_LINE_BYTES } from "../../shipper/sources/kubernetes_logs/partial_merger.ts";
import {
  ACCEPTED_LAYOUTS,
  type LogFileMeta,
  parseLogPath,
} from "../../shipper/sources/kubernetes_logs/paths.ts";
import {
  type MultilineRule,
  multilineFor,
  parseMultilineRules,
} from "../../shipper/transforms/multiline/config.ts";
import { MULTILINE_DEFAULTS } from "../../shipper/transforms/multiline/merger.ts";
import { MULTILINE_MODES, type MultilineMode } from "../../shipper/transforms/multiline/rules.ts";
import { appendRecordEnd, OutputBuffer, RecordEncoder } from "../../shipper/transforms/record_encoder.ts";

export interface ParseOptions {
  merge: boolean;
  node: string;
  maxLineBytes: number;
  /** Stack-trace merging rules, applied by each file's namespace and container; absent or empty: off. */
  multiline?: readonly MultilineRule[];
}

/** The command's flags: ParseOptions, with --multiline as a mode and --config as a path. */
type ParseFlags = Omit<ParseOptions, "multiline"> & { multiline?: MultilineMode; config?: string };

/** `--multiline <mode>`: one rule for every file, with the shipper's defaults for the rest. */
export function multilineForEveryFile(mode: MultilineMode): MultilineRule[] {
  return [{ namespaces: ["*"], containers: ["*"], mode, ...MULTILINE_DEFAULTS }];
}

/** The `multiline` rules and `max_line_bytes` of a shipper config file (other options do not affect records). */
export async function parseSettingsFromConfig(
  path: string,
): Promise<{ multiline: MultilineRule[]; maxLineBytes?: number }> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new ConfigError(path, [`cannot read the file: ${(error as NodeJS.ErrnoException).code ?? error}`]);
  }
  const values = parseShipperConfigFile(text, path);
  const parsed = parseMultilineRules(values.multiline, path);
  const problems = [...parsed.problems];
  const raw = values.max_line_bytes;
  const maxLineBytes = typeof raw === "string" || typeof raw === "number" ? parseSize(raw) : undefined;
  if (maxLineBytes === null) problems.push(`max_line_bytes (in ${path}): expected a size such as 1MiB`);
  const rules = parsed.rules;
  if (rules === null || maxLineBytes === null || problems.length > 0) throw new ConfigError(path, problems);
  return { multiline: rules, ...(maxLineBytes !== undefined ? { maxLineBytes } : {}) };
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
      multiline: multilineFor(options.multiline ?? [], meta.namespace, meta.container),
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
    // A file handed to `parse` is read as finished: its tail, pending partials and open traces
    // are emitted. There is no idle timeout (the file is read at once); a trace ends at a line
    // logged flush_timeout after its last one, which is what the shipper sees live.
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
    .addOption(
      new Option(
        "--multiline <mode>",
        "merge multi-line stack traces into one record, as the shipper's `multiline` option does, in every file",
      ).choices(MULTILINE_MODES),
    )
    .addOption(
      new Option(
        "--config <file>",
        "shipper config file: apply its multiline rules (by each file's namespace and container) and max_line_bytes",
      ).conflicts("multiline"),
    )
    .addHelpText(
      "after",
      [
        "",
        "Records carry every field but batch_id and seq, which the shipper assigns when it",
        "batches records into an archive object. A line that does not parse is printed with its",
        "raw content in message and the reason in parse_error; none is dropped.",
        "",
        "With --multiline or --config, the lines of a Java, Go or Python stack trace come out as one",
        'record, joined by \\n (docs/shipper.md, "Multi-line stack traces").',
        "",
        "Accepted file names:",
        ...ACCEPTED_LAYOUTS.map((layout) => `  ${layout}`),
      ].join("\n"),
    )
    .action(async function (this: Command, files: string[], flags: ParseFlags) {
      const { multiline: mode, config, ...opts } = flags;
      const options: ParseOptions = { ...opts };
      if (mode !== undefined) {
        if (!opts.merge)
          this.error("logarchive parse: --multiline merges lines; it cannot go with --no-merge", {
            exitCode: 2,
            code: "logarchive.parse.options",
          });
        options.multiline = multilineForEveryFile(mode);
      }
      if (config !== undefined) {
        let fromFile: Awaited<ReturnType<typeof parseSettingsFromConfig>>;
        try {
          fromFile = await parseSettingsFromConfig(config);
        } catch (error) {
          if (!(error instanceof ConfigError)) throw error;
          this.error(`logarchive parse: ${error.message}`, { exitCode: 2, code: "logarchive.parse.config" });
        }
        options.multiline = fromFile.multiline;
        if (fromFile.maxLineBytes !== undefined && this.getOptionValueSource("maxLineBytes") === "default")
          options.maxLineBytes = fromFile.maxLineBytes;
      }
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
        await writeParsedFiles(files, metas, options, process.stdout);
      } catch (error) {
        // `logarchive parse ... | head` closes the pipe early; that is not a failure.
        if ((error as NodeJS.ErrnoException).code !== "EPIPE") throw error;
      }
    });
}
