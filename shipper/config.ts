// Every option of `logarchive ship`, declared once: its YAML key, flag, environment
// variable, default, unit and one line of docs. The config-file schema, the CLI flags
// and the option table in docs/shipper.md are all generated from this list, and
// config.test.ts fails when the docs drift.
//
// Precedence: flag > environment > config file > default.

import { hostname } from "node:os";
import { z } from "zod";
import { ConfigError } from "../lib/config/errors.ts";
import { checkDuration, formatSize, parseSize } from "../lib/config/units.ts";
import { parseYamlConfig } from "../lib/config/yaml.ts";
import { prefixProblem } from "../lib/keys/layout.ts";
import { MAX_RECORD_MESSAGE_BYTES } from "../lib/record/limits.ts";
import { OBJECT_LOCK_SETTINGS, type ObjectLockSetting } from "./sinks/s3/retention.ts";
import { type MultilineRule, parseMultilineRules } from "./transforms/multiline/config.ts";

type Kind = "string" | "strings" | "size" | "duration" | "integer" | "boolean";

export interface OptionSpec {
  /** YAML key in the config file. */
  key: string;
  kind: Kind;
  /** Human default as documented ("8MiB", "60s"); undefined = unset or required. */
  default?: string | number | boolean | readonly string[];
  /** Shown in the docs when the default is computed. */
  defaultText?: string;
  required?: boolean;
  min?: number;
  max?: number;
  /** A string option's own rule: the problem in words, or undefined when the value is fine. */
  check?: (value: string) => string | undefined;
  description: string;
}

export const SHIPPER_OPTIONS = [
  {
    key: "logs",
    kind: "strings",
    default: ["/var/log/pods/*/*/*.log*"],
    description:
      "Globs of container log files to tail; /var/log/pods and /var/log/containers layouts are understood. Rotated `.gz` and `.tmp` files are never picked up as new files.",
  },
  {
    key: "state_dir",
    kind: "string",
    default: "/var/lib/logarchive",
    description: "Directory for the checkpoint and the spool; mount a hostPath so it survives pod restarts.",
  },
  { key: "bucket", kind: "string", required: true, description: "S3 bucket of the archive." },
  {
    key: "prefix",
    kind: "string",
    defaultText: "archive.prefix of the policy (`logs`)",
    // Checked here, so a bad prefix stops the shipper at start-up, not at its first upload.
    check: prefixProblem,
    description: "Key prefix of the archive in the bucket.",
  },
  {
    key: "policy",
    kind: "string",
    defaultText: "none: archive every namespace, load none",
    description: "Namespace policy YAML: which namespaces are shipped and which go to the analytics tier.",
  },
  {
    key: "node",
    kind: "string",
    defaultText: "$NODE_NAME, else the host name",
    description: "Kubernetes node name written into records and object keys.",
  },
  {
    key: "s3_endpoint",
    kind: "string",
    defaultText: "AWS's regional endpoint",
    description: "S3 endpoint URL; when set, path-style addressing is used (MinIO, s3rver, VPC endpoints).",
  },
  {
    key: "region",
    kind: "string",
    defaultText: "$AWS_REGION, else us-east-1",
    description: "AWS region of the bucket. Credentials come from the AWS SDK's standard chain.",
  },
  {
    key: "batch_max_bytes",
    kind: "size",
    default: "8MiB",
    min: 4096,
    max: 5 * 2 ** 30,
    description:
      "Cut a namespace's batch when its compressed size reaches this; keep it far above S3's 128 KB cold-tier billing floor.",
  },
  {
    key: "batch_max_age",
    kind: "duration",
    default: "60s",
    min: 1000,
    max: 3_600_000,
    description: "Cut a batch this long after its first line was added, whatever its size.",
  },
  {
    key: "max_line_bytes",
    kind: "size",
    default: formatSize(MAX_RECORD_MESSAGE_BYTES),
    min: 1024,
    // The loader refuses a record with a longer message, and with it the whole object.
    max: MAX_RECORD_MESSAGE_BYTES,
    description: "Cap on one merged log line; longer lines are cut and marked truncated, never dropped.",
  },
  {
    key: "spool_max_bytes",
    kind: "size",
    default: "1GiB",
    min: 64 * 1024,
    description:
      "Disk the spool may use for batches not yet in S3; when full the shipper stops reading (backpressure).",
  },
  {
    key: "commit_interval",
    kind: "duration",
    default: "1s",
    min: 50,
    max: 60_000,
    description: "How often open batches are flushed to the spool, fsynced and the read offsets committed.",
  },
  {
    key: "gzip_level",
    kind: "integer",
    default: 6,
    min: 1,
    max: 9,
    description: "gzip compression level of archive objects (1 fastest, 9 smallest).",
  },
  {
    key: "read_chunk_bytes",
    kind: "size",
    default: "256KiB",
    min: 4096,
    max: 16 * 2 ** 20,
    description: "Bytes read from a log file per read call.",
  },
  {
    key: "scan_interval",
    kind: "duration",
    default: "1s",
    min: 50,
    max: 60_000,
    description: "How often log globs are rescanned for new, rotated and removed files.",
  },
  {
    key: "upload_concurrency",
    kind: "integer",
    default: 4,
    min: 1,
    max: 64,
    description: "Batches uploaded to S3 at once.",
  },
  {
    key: "upload_timeout",
    kind: "duration",
    default: "60s",
    min: 1000,
    max: 3_600_000,
    description: "Time limit of one PutObject attempt before it is retried.",
  },
  {
    key: "retry_initial",
    kind: "duration",
    default: "200ms",
    min: 1,
    max: 60_000,
    description: "First delay before retrying a failed upload; doubles per attempt, with full jitter.",
  },
  {
    key: "retry_max",
    kind: "duration",
    default: "30s",
    min: 1,
    max: 3_600_000,
    description: "Longest delay between upload retries. Uploads are retried until they succeed.",
  },
  {
    key: "drain_timeout",
    kind: "duration",
    default: "25s",
    min: 0,
    max: 3_600_000,
    description:
      "On SIGTERM, time to cut, spool and upload open batches; keep it under the pod's terminationGracePeriodSeconds.",
  },
  {
    key: "object_lock_mode",
    kind: "string",
    default: "off",
    check: (value) =>
      (OBJECT_LOCK_SETTINGS as readonly string[]).includes(value)
        ? undefined
        : `expected one of ${OBJECT_LOCK_SETTINGS.join(", ")}`,
    description:
      "Object Lock mode of the retention each stream object (and, with `landing_days`, each archive object) is PUT with: `off` sends no lock headers (a bucket without Object Lock refuses them); otherwise the bucket's default retention mode. See [Object Lock retention](#object-lock-retention).",
  },
  {
    key: "landing_days",
    kind: "integer",
    default: 0,
    min: 0,
    max: 365,
    description:
      "Days after the end of its UTC hour an archive object stays locked, when archive compaction replaces the originals; 0 keeps the bucket's default retention. Needs `object_lock_mode`.",
  },
  {
    key: "listen",
    kind: "string",
    default: "0.0.0.0:2021",
    description: "Address of the HTTP server for /metrics, /healthz and /readyz; empty disables it.",
  },
  {
    key: "once",
    kind: "boolean",
    default: false,
    description: "Ship everything present, drain and exit 0, for backfills and tests.",
  },
] as const satisfies readonly OptionSpec[];

export type OptionKey = (typeof SHIPPER_OPTIONS)[number]["key"];

/**
 * Options only the config file can set: structured values with no sensible flag or
 * environment form. Listed in the same docs table, with "config file only".
 */
export const FILE_ONLY_OPTIONS = [
  {
    key: "multiline",
    defaultText: "none: no merging",
    unit: "list of rules",
    description:
      "Merge multi-line stack traces (Java, Go, Python) into one record, per namespace and container; the first matching rule applies. See [Multi-line stack traces](#multi-line-stack-traces).",
  },
] as const;

export interface ShipperConfig {
  logs: string[];
  stateDir: string;
  bucket: string;
  /** undefined: take the policy's archive.prefix. */
  prefix: string | undefined;
  policy: string | undefined;
  node: string;
  s3Endpoint: string | undefined;
  region: string;
  batchMaxBytes: number;
  batchMaxAgeMs: number;
  maxLineBytes: number;
  spoolMaxBytes: number;
  commitIntervalMs: number;
  gzipLevel: number;
  readChunkBytes: number;
  scanIntervalMs: number;
  uploadConcurrency: number;
  uploadTimeoutMs: number;
  retryInitialMs: number;
  retryMaxMs: number;
  drainTimeoutMs: number;
  /** Retention mode of the lock headers the uploader sends; "off": none. */
  objectLockMode: ObjectLockSetting;
  /** Days an archive-tier object is locked past its hour's end; 0: the bucket's default retention. */
  landingDays: number;
  listen: string;
  once: boolean;
  /** Stack-trace merging rules, first match wins; empty: off everywhere. */
  multiline: MultilineRule[];
}

export function flagOf(key: string): string {
  return `--${key.replaceAll("_", "-")}`;
}

export function envOf(key: string): string {
  return `LOGARCHIVE_${key.toUpperCase()}`;
}

function camel(key: string): string {
  return key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

function configFieldName(spec: OptionSpec): string {
  const base = camel(spec.key);
  return spec.kind === "duration" ? `${base}Ms` : base;
}

/** The value as written in YAML, a flag or the environment → its typed value, or a problem. */
function convert(spec: OptionSpec, raw: unknown): { value: unknown } | { problem: string } {
  const range = (n: number, show: (n: number) => string) => {
    if (spec.min !== undefined && n < spec.min) return { problem: `must be at least ${show(spec.min)}` };
    if (spec.max !== undefined && n > spec.max) return { problem: `must be at most ${show(spec.max)}` };
    return { value: n };
  };
  switch (spec.kind) {
    case "string": {
      if (typeof raw !== "string") return { problem: "expected a string" };
      const problem = spec.check?.(raw);
      return problem === undefined ? { value: raw } : { problem };
    }
    case "strings": {
      const list = typeof raw === "string" ? raw.split(",").map((s) => s.trim()) : raw;
      if (
        !Array.isArray(list) ||
        list.length === 0 ||
        !list.every((s) => typeof s === "string" && s !== "")
      ) {
        return { problem: "expected a non-empty list of strings (comma-separated in flags and env)" };
      }
      return { value: list };
    }
    case "size": {
      const n = typeof raw === "string" || typeof raw === "number" ? parseSize(raw) : null;
      return n === null
        ? { problem: "expected a size such as 8MiB, 256KiB or a number of bytes" }
        : range(n, formatSize);
    }
    case "duration": {
      const checked = checkDuration(raw, {
        ...(spec.min === undefined ? {} : { min: spec.min }),
        ...(spec.max === undefined ? {} : { max: spec.max }),
      });
      return "ms" in checked ? { value: checked.ms } : checked;
    }
    case "integer": {
      const n =
        typeof raw === "number" ? raw : typeof raw === "string" && /^-?\d+$/.test(raw) ? Number(raw) : NaN;
      return Number.isSafeInteger(n) ? range(n, String) : { problem: "expected an integer" };
    }
    case "boolean": {
      if (typeof raw === "boolean") return { value: raw };
      if (raw === "true" || raw === "1") return { value: true };
      if (raw === "false" || raw === "0") return { value: false };
      return { problem: "expected true or false" };
    }
  }
}

export type RawOptions = Partial<Record<OptionKey, unknown>>;

export interface ConfigSources {
  /** Parsed YAML config file, if any, and its path for messages. */
  file?: { path: string; values: Record<string, unknown> };
  /** Flags the user gave, keyed by option key. */
  flags?: RawOptions;
  env?: NodeJS.ProcessEnv;
}

const KNOWN_KEYS = new Set<string>([...SHIPPER_OPTIONS, ...FILE_ONLY_OPTIONS].map((o) => o.key));

/**
 * Resolves every option from flags, environment, config file and defaults. All problems
 * are reported at once, each naming the option where it was set.
 */
export function resolveShipperConfig(sources: ConfigSources): ShipperConfig {
  const env = sources.env ?? process.env;
  const problems: string[] = [];
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(sources.file?.values ?? {})) {
    if (!KNOWN_KEYS.has(key))
      problems.push(`${key} (in ${sources.file!.path}): unknown option; see docs/shipper.md`);
  }
  for (const spec of SHIPPER_OPTIONS as readonly OptionSpec[]) {
    const candidates: [string, unknown][] = [
      [flagOf(spec.key), sources.flags?.[spec.key as OptionKey]],
      [envOf(spec.key), env[envOf(spec.key)]],
      [`${spec.key} (in ${sources.file?.path})`, sources.file?.values[spec.key]],
    ];
    // An empty flag is a choice (`--listen ""` disables the server); an empty variable is unset.
    const given = candidates.find(([name, v]) => v !== undefined && (v !== "" || name === flagOf(spec.key)));
    if (given === undefined) {
      if (spec.required) {
        problems.push(
          `${spec.key}: required; set ${flagOf(spec.key)}, ${envOf(spec.key)} or \`${spec.key}:\` in the config file`,
        );
      } else if (spec.default !== undefined) {
        const converted = convert(spec, spec.default);
        if ("value" in converted) out[configFieldName(spec)] = converted.value;
      }
      continue;
    }
    const converted = convert(spec, given[1]);
    if ("problem" in converted)
      problems.push(`${given[0]}: ${converted.problem} (got ${JSON.stringify(given[1])})`);
    else out[configFieldName(spec)] = converted.value;
  }
  const multiline = parseMultilineRules(sources.file?.values.multiline, sources.file?.path ?? "config file");
  problems.push(...multiline.problems);
  out.multiline = multiline.rules ?? [];
  out.node ??= env.NODE_NAME || hostname();
  out.region ??= env.AWS_REGION || env.AWS_DEFAULT_REGION || "us-east-1";
  if (typeof out.listen === "string" && out.listen !== "" && parseListen(out.listen) === null) {
    problems.push(`listen: expected host:port such as 0.0.0.0:2021 (got ${JSON.stringify(out.listen)})`);
  }
  if (out.objectLockMode === "off" && typeof out.landingDays === "number" && out.landingDays > 0) {
    // A landing retention is a lock header: without a mode there is nothing to send it with.
    problems.push(
      `landing_days: ${out.landingDays} needs object_lock_mode GOVERNANCE or COMPLIANCE (the bucket's default retention mode); it is off`,
    );
  }
  if (problems.length > 0) throw new ConfigError("shipper configuration", problems);
  return out as unknown as ShipperConfig;
}

export function parseListen(listen: string): { host: string; port: number } | null {
  const m = /^(.*):(\d{1,5})$/.exec(listen);
  if (m === null || Number(m[2]) > 65_535) return null;
  return { host: m[1] === "" ? "0.0.0.0" : m[1]!.replace(/^\[|\]$/g, ""), port: Number(m[2]) };
}

const configFileSchema = z.record(z.string(), z.unknown());

export function parseShipperConfigFile(text: string, path: string): Record<string, unknown> {
  return parseYamlConfig(text, configFileSchema, path);
}

function defaultText(spec: OptionSpec): string {
  if (spec.required) return "required";
  if (spec.defaultText !== undefined) return spec.defaultText;
  if (spec.default === undefined) return "_none_";
  return Array.isArray(spec.default)
    ? spec.default.map((d) => `\`${d}\``).join(", ")
    : `\`${String(spec.default)}\``;
}

const UNIT: Record<Kind, string> = {
  string: "text",
  strings: "list",
  size: "bytes (B, KiB, MiB, GiB)",
  duration: "duration (ms, s, m, h)",
  integer: "integer",
  boolean: "true/false",
};

/** The option table of docs/shipper.md. */
export function optionsMarkdownTable(): string {
  const rows = (SHIPPER_OPTIONS as readonly OptionSpec[]).map((o) => {
    const limits = [
      o.min !== undefined
        ? `min ${o.kind === "size" ? formatSize(o.min) : o.kind === "duration" ? `${o.min}ms` : o.min}`
        : "",
      o.max !== undefined
        ? `max ${o.kind === "size" ? formatSize(o.max) : o.kind === "duration" ? `${o.max}ms` : o.max}`
        : "",
    ]
      .filter(Boolean)
      .join(", ");
    return `| \`${o.key}\` | \`${flagOf(o.key)}\` / \`${envOf(o.key)}\` | ${defaultText(o)} | ${UNIT[o.kind]}${limits ? ` (${limits})` : ""} | ${o.description} |`;
  });
  for (const o of FILE_ONLY_OPTIONS) {
    rows.push(`| \`${o.key}\` | config file only | ${o.defaultText} | ${o.unit} | ${o.description} |`);
  }
  return ["| key | flag / env | default | unit | description |", "|---|---|---|---|---|", ...rows].join("\n");
}
