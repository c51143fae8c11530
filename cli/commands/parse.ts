// `logarchive parse`: the records the shipper would archive from given log files, as
// NDJSON on stdout, through the shipper's own decoder and encoder. Multi-line stack traces
// are merged as the shipper would merge them: by one mode for every file (`--multiline`),
// or by the rules of a shipper config file for each file's namespace and container
// (`--config`).
//
// The record's pod metadata comes from kubelet's file names, or from flags (`--namespace`,
// `--pod`, `--container`, …), which also let a file named any other way be parsed. A
// damaged `.gz` is read up to the damage, like the shipper reads it: every record before it
// is printed, then one line names the file and the damage, and the exit code is 1.

import { createReadStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { hostname } from "node:os";
import type { Writable } from "node:stream";
import { Command, InvalidArgumentError, Option } from "commander";
import { ConfigError } from "../../lib/config/errors.ts";
import { formatSize, parseSize } from "../../lib/config/units.ts";
import { MAX_RECORD_MESSAGE_BYTES } from "../../lib/record/limits.ts";
import { instantFromMs } from "../../lib/record/timestamp.ts";
import { parseShipperConfigFile } from "../../shipper/config.ts";
import { type DecodedLine, FileDecoder } from "../../shipper/sources/kubernetes_logs/file_decoder.ts";
import {
  describeGzipDamage,
  type GzipDamage,
  type SalvagingGunzip,
  salvageGzipFile,
} from "../../shipper/sources/kubernetes_logs/gunzip_salvage.ts";
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
import { EXIT } from "../options.ts";

export interface ParseOptions {
  merge: boolean;
  node: string;
  maxLineBytes: number;
  /** Stack-trace merging rules, applied by each file's namespace and container; absent or empty: off. */
  multiline?: readonly MultilineRule[];
}

/** Record fields named on the command line: they win over what file names say, and let any file be parsed. */
export interface MetadataFlags {
  namespace?: string;
  pod?: string;
  podUid?: string;
  container?: string;
  containerId?: string;
  restartCount?: number;
}

/** The command's flags: ParseOptions, with --multiline as a mode and --config as a path. */
type ParseFlags = Omit<ParseOptions, "multiline"> &
  MetadataFlags & { multiline?: MultilineMode; config?: string };

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
  else if (maxLineBytes !== undefined && maxLineBytes > MAX_RECORD_MESSAGE_BYTES)
    problems.push(`max_line_bytes (in ${path}): ${TOO_LONG_FOR_A_RECORD}`);
  const rules = parsed.rules;
  rules?.forEach((rule, i) => {
    if (rule.maxBytes > MAX_RECORD_MESSAGE_BYTES)
      problems.push(`multiline[${i}].max_bytes (in ${path}): ${TOO_LONG_FOR_A_RECORD}`);
  });
  if (rules === null || maxLineBytes === null || problems.length > 0) throw new ConfigError(path, problems);
  return { multiline: rules, ...(maxLineBytes !== undefined ? { maxLineBytes } : {}) };
}

/** A `.gz` that is damaged: what was printed from it, and where its bytes went wrong. */
export interface DamagedFile {
  file: string;
  damage: GzipDamage;
  /** Records printed from the file, all from before the damage. */
  records: number;
}

export interface ParseSummary {
  records: number;
  parseErrors: number;
  truncated: number;
  damaged: DamagedFile[];
}

/** The one line `parse` prints for a damaged file. */
export function describeDamagedFile(d: DamagedFile): string {
  const printed =
    d.records === 0 ? "no record was printed" : `the ${d.records} record(s) before it were printed`;
  return `${d.file}: ${describeGzipDamage(d.damage)}; ${printed}`;
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

/** Why a message cap above MAX_RECORD_MESSAGE_BYTES is refused. */
const TOO_LONG_FOR_A_RECORD = `at most ${formatSize(MAX_RECORD_MESSAGE_BYTES)}: the loader refuses a record with a longer message, and with it the whole object`;

/** `--max-line-bytes`: a size, no larger than a record's message can be. */
export function parseMaxLineBytes(value: string): number {
  const n = parseByteSize(value);
  if (n > MAX_RECORD_MESSAGE_BYTES) throw new InvalidArgumentError(`${TOO_LONG_FOR_A_RECORD}.`);
  return n;
}

const DNS_LABEL = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;
const POD_UID = /^[A-Za-z0-9][A-Za-z0-9-]*$/;
const CONTAINER_ID = /^[0-9a-f]{1,64}$/;

function nameParser(pattern: RegExp, what: string): (value: string) => string {
  return (value) => {
    if (!pattern.test(value)) throw new InvalidArgumentError(`expected ${what}.`);
    return value;
  };
}

export const parseNamespaceFlag = nameParser(DNS_LABEL, "a Kubernetes namespace (a DNS label: a-z, 0-9, -)");
export const parsePodFlag = nameParser(DNS_SUBDOMAIN, "a pod name (a DNS subdomain: a-z, 0-9, -, .)");
export const parseContainerFlag = nameParser(DNS_LABEL, "a container name (a DNS label: a-z, 0-9, -)");
export const parsePodUidFlag = nameParser(POD_UID, "a pod UID");
export const parseContainerIdFlag = nameParser(CONTAINER_ID, "a container ID (up to 64 hex digits)");

export function parseRestartCountFlag(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n))
    throw new InvalidArgumentError("expected a restart count (0, 1, 2, …).");
  return n;
}

/** The flags that make any file parseable. */
const REQUIRED_METADATA = ["namespace", "pod", "container"] as const;

function withFlags(meta: LogFileMeta, flags: MetadataFlags): LogFileMeta {
  const given = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined));
  return { ...meta, ...given };
}

/**
 * Each file's metadata (from its name, then the flags), or the list of problems (one line
 * per file). A file outside kubelet's layouts needs --namespace, --pod and --container; it
 * is read as gzip when its name ends in `.gz`.
 */
export function checkLogPaths(
  files: readonly string[],
  flags: MetadataFlags = {},
): { metas: LogFileMeta[]; problems: string[] } {
  const metas: LogFileMeta[] = [];
  const problems: string[] = [];
  const missing = REQUIRED_METADATA.filter((name) => flags[name] === undefined);
  for (const file of files) {
    const r = parseLogPath(file);
    if (r.ok) metas.push(withFlags(r.meta, flags));
    else if (missing.length === 0) {
      const named = { namespace: flags.namespace!, pod: flags.pod!, container: flags.container! };
      metas.push(withFlags({ ...named, rotated: true, compressed: file.endsWith(".gz") }, flags));
    } else if (missing.length === REQUIRED_METADATA.length) {
      problems.push(
        `${r.error.message}; to parse it anyway, name its pod with --namespace, --pod and --container`,
      );
    } else {
      const flagList = missing.map((name) => `--${name}`).join(" and ");
      problems.push(`${r.error.message}; to parse it anyway, also give ${flagList}`);
    }
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
  const summary: ParseSummary = { records: 0, parseErrors: 0, truncated: 0, damaged: [] };
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
    const recordsBefore = summary.records;
    // A damaged .gz gives what inflates and then ends, as the shipper reads it.
    const gunzip: SalvagingGunzip | null = meta.compressed ? salvageGzipFile(file) : null;
    const input: AsyncIterable<Buffer> = gunzip ?? createReadStream(file, { highWaterMark: 256 * 1024 });
    for await (const chunk of input) {
      decoder.push(chunk as Buffer, sink);
      if (out.length >= FLUSH_BYTES) await drain.write(out);
    }
    // A file handed to `parse` is read as finished: its tail, pending partials and open traces
    // are emitted. There is no idle timeout (the file is read at once); a trace ends at a line
    // logged flush_timeout after its last one, which is what the shipper sees live.
    decoder.end(sink);
    await drain.write(out);
    if (gunzip?.damage) {
      summary.damaged.push({ file, damage: gunzip.damage, records: summary.records - recordsBefore });
    }
  }
  return summary;
}

export function parseCommand(): Command {
  return new Command("parse")
    .description(
      "Print, as NDJSON, the records the shipper would archive from container log files " +
        "(CRI or Docker json-file, plain or .gz), with metadata from the file names or flags.",
    )
    .argument(
      "<files...>",
      "container log files under /var/log/pods or /var/log/containers (any file, with --namespace, --pod and --container)",
    )
    .option(
      "--no-merge",
      'one record per physical line, partial chunks unjoined, with an added "partial" field',
    )
    .addOption(
      new Option("--node <name>", "node name to put in records").env("NODE_NAME").default(hostname()),
    )
    .addOption(
      new Option("--namespace <name>", "namespace to put in records (instead of the file name's)").argParser(
        parseNamespaceFlag,
      ),
    )
    .addOption(new Option("--pod <name>", "pod name to put in records").argParser(parsePodFlag))
    .addOption(
      new Option("--container <name>", "container name to put in records").argParser(parseContainerFlag),
    )
    .addOption(new Option("--pod-uid <uid>", "pod UID to put in records").argParser(parsePodUidFlag))
    .addOption(
      new Option("--container-id <id>", "container ID to put in records").argParser(parseContainerIdFlag),
    )
    .addOption(
      new Option("--restart-count <n>", "container restart count to put in records").argParser(
        parseRestartCountFlag,
      ),
    )
    .addOption(
      new Option(
        "--max-line-bytes <size>",
        "cap on a line's message; longer lines are cut and marked truncated",
      )
        .argParser(parseMaxLineBytes)
        .default(DEFAULT_MAX_LINE_BYTES, formatSize(DEFAULT_MAX_LINE_BYTES)),
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
        "",
        "Any other file (read as gzip when its name ends in .gz) is parsed when --namespace, --pod",
        "and --container name its pod; these flags, and --pod-uid, --container-id and --restart-count,",
        "also replace what a kubelet file name says.",
        "",
        "A damaged .gz is read up to the damage (a file cut short, garbage after a member): its",
        "records before it are printed, then one line names the file and the damage, and the exit",
        "code is 1. Damage inside a gzip member (a flipped bit, found by its CRC-32) makes what",
        "inflates untrustworthy: nothing of that file is printed, as the shipper archives nothing of it.",
      ].join("\n"),
    )
    .action(async function (this: Command, files: string[], flags: ParseFlags) {
      const {
        multiline: mode,
        config,
        namespace,
        pod,
        podUid,
        container,
        containerId,
        restartCount,
        ...opts
      } = flags;
      const metadataFlags: MetadataFlags = { namespace, pod, podUid, container, containerId, restartCount };
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
      const { metas, problems } = checkLogPaths(files, metadataFlags);
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
        let problem: string | null = null;
        try {
          if (!(await stat(file)).isFile()) problem = "not a regular file";
        } catch (error) {
          problem = (error as Error).message;
        }
        if (problem !== null)
          this.error(`logarchive parse: cannot read ${file}: ${problem}`, {
            exitCode: 2,
            code: "logarchive.parse.read",
          });
      }
      let summary: ParseSummary;
      try {
        summary = await writeParsedFiles(files, metas, options, process.stdout);
      } catch (error) {
        // `logarchive parse ... | head` closes the pipe early; that is not a failure.
        if ((error as NodeJS.ErrnoException).code !== "EPIPE") throw error;
        return;
      }
      for (const damaged of summary.damaged)
        process.stderr.write(`logarchive parse: ${describeDamagedFile(damaged)}\n`);
      // A data problem, not a usage one: what could be read was printed.
      if (summary.damaged.length > 0) process.exitCode = EXIT.verdict;
    });
}
