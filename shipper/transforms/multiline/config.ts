// The `multiline` option of the shipper's config file: a list of rules, the first whose
// namespace and container globs match a container deciding how its stack traces are
// merged. Off for every container no rule matches. YAML only: a list of objects has no
// sensible flag or environment form. The rule fields' docs table in docs/shipper.md is
// generated from MULTILINE_RULE_FIELDS, and docs.test.ts checks that they agree.

import { matchesGlob } from "node:path";
import { z } from "zod";
import { describeIssues } from "../../../lib/config/errors.ts";
import { formatSize, parseDuration, parseSize } from "../../../lib/config/units.ts";
import { MAX_RECORD_MESSAGE_BYTES } from "../../../lib/record/limits.ts";
import { MULTILINE_DEFAULTS, type MultilineSettings } from "./merger.ts";
import { MULTILINE_MODES, type MultilineMode } from "./rules.ts";

export interface MultilineRule {
  namespaces: string[];
  containers: string[];
  mode: MultilineMode | "off";
  maxLines: number;
  maxBytes: number;
  flushTimeoutMs: number;
}

export interface RuleFieldSpec {
  key: string;
  unit: string;
  default: string;
  description: string;
}

const LIMITS = {
  maxLines: { min: 2, max: 100_000 },
  // A group is one record's message: the loader refuses a longer one, and the object with it.
  maxBytes: { min: 1024, max: MAX_RECORD_MESSAGE_BYTES },
  flushTimeoutMs: { min: 10, max: 60_000 },
} as const;

export const MULTILINE_RULE_FIELDS: readonly RuleFieldSpec[] = [
  {
    key: "namespaces",
    unit: "list of globs",
    default: "required",
    description: "Namespaces the rule applies to, as globs (`*`, `?`, `[a-z]`, `{a,b}`) like the policy's.",
  },
  {
    key: "containers",
    unit: "list of globs",
    default: "`*`",
    description:
      "Containers of those namespaces' pods the rule applies to, e.g. `[app]` to leave sidecars alone.",
  },
  {
    key: "mode",
    unit: "`java`, `go`, `python`, `auto`, `off`",
    default: "required",
    description:
      "Built-in rules to merge by; `auto` tries Python, Go and Java on every line; `off` merges nothing, to exempt containers from a later, wider rule.",
  },
  {
    key: "max_lines",
    unit: `integer (min ${LIMITS.maxLines.min}, max ${LIMITS.maxLines.max})`,
    default: `\`${MULTILINE_DEFAULTS.maxLines}\``,
    description:
      "Most lines in one record; a longer trace is cut there, marked truncated, and goes on in the next record.",
  },
  {
    key: "max_bytes",
    unit: `bytes (min ${formatSize(LIMITS.maxBytes.min)}, max ${formatSize(LIMITS.maxBytes.max)})`,
    default: `\`${formatSize(MULTILINE_DEFAULTS.maxBytes)}\``,
    description:
      "Most message bytes in one record (lines and the `\\n` between them); past it, as for max_lines. Memory per stream is at most this.",
  },
  {
    key: "flush_timeout",
    unit: `duration (min ${LIMITS.flushTimeoutMs.min}ms, max ${LIMITS.flushTimeoutMs.max}ms)`,
    default: `\`${MULTILINE_DEFAULTS.flushTimeoutMs / 1000}s\``,
    description:
      "A trace ends when its stream has been quiet this long, or when the next line's timestamp is this much later than its last line's.",
  },
];

// Namespaces and container names are DNS labels: lowercase letters, digits and `-`.
const LABEL_GLOB = /^[a-z0-9\-*?[\]{},!]+$/;

const globs = (what: string) =>
  z
    .array(
      z
        .string()
        .regex(
          LABEL_GLOB,
          `is not a ${what} glob: ${what}s are lowercase letters, digits and '-', globs add * ? [] {}`,
        ),
      {
        error: (issue) =>
          issue.input === undefined
            ? `required: a list of ${what} globs`
            : `expected a list of ${what} globs (got ${JSON.stringify(issue.input)})`,
      },
    )
    .min(1, `list at least one ${what} glob`);

function bounded(
  n: number,
  limits: { min: number; max: number },
  show: (v: number) => string,
  ctx: z.RefinementCtx,
) {
  if (n < limits.min) ctx.addIssue({ code: "custom", message: `must be at least ${show(limits.min)}` });
  else if (n > limits.max) ctx.addIssue({ code: "custom", message: `must be at most ${show(limits.max)}` });
  return n;
}

const ruleSchema = z.strictObject({
  namespaces: globs("namespace"),
  containers: globs("container").default(["*"]),
  mode: z.enum([...MULTILINE_MODES, "off"], {
    error: (issue) =>
      issue.input === undefined
        ? "required: java, go, python, auto or off"
        : `expected java, go, python, auto or off (got ${JSON.stringify(issue.input)})`,
  }),
  max_lines: z
    .int({ error: "expected an integer" })
    .default(MULTILINE_DEFAULTS.maxLines)
    .transform((n, ctx) => bounded(n, LIMITS.maxLines, String, ctx)),
  max_bytes: z
    .union([z.string(), z.number()], { error: "expected a size such as 512KiB or a number of bytes" })
    .default(MULTILINE_DEFAULTS.maxBytes)
    .transform((v, ctx) => {
      const n = parseSize(v);
      if (n !== null) return bounded(n, LIMITS.maxBytes, formatSize, ctx);
      ctx.addIssue({ code: "custom", message: `expected a size such as 512KiB (got ${JSON.stringify(v)})` });
      return 0;
    }),
  flush_timeout: z
    .string({ error: "expected a duration such as 500ms or 2s" })
    .optional()
    .transform((v, ctx) => {
      if (v === undefined) return MULTILINE_DEFAULTS.flushTimeoutMs;
      const n = parseDuration(v);
      if (n !== null) return bounded(n, LIMITS.flushTimeoutMs, (x) => `${x}ms`, ctx);
      ctx.addIssue({
        code: "custom",
        message: `expected a duration such as 500ms or 2s (got ${JSON.stringify(v)})`,
      });
      return 0;
    }),
});

const rulesSchema = z.array(ruleSchema, { error: "expected a list of rules ({namespaces, mode, ...})" });

/**
 * The `multiline` value of a config file → rules, or problems each naming the field, e.g.
 * `multiline[1].mode (in shipper.yaml): expected java, go, python, auto or off (got "jav")`.
 */
export function parseMultilineRules(
  raw: unknown,
  where: string,
): { rules: MultilineRule[]; problems: [] } | { rules: null; problems: string[] } {
  if (raw === undefined || raw === null) return { rules: [], problems: [] };
  const result = rulesSchema.safeParse(raw);
  if (!result.success) {
    const problems = describeIssues(result.error).map((p) => {
      const at = p.indexOf(": ");
      const path = p.slice(0, at);
      return `multiline${path === "(top level)" ? "" : path} (in ${where}): ${p.slice(at + 2)}`;
    });
    return { rules: null, problems };
  }
  return {
    rules: result.data.map((r) => ({
      namespaces: r.namespaces,
      containers: r.containers,
      mode: r.mode,
      maxLines: r.max_lines,
      maxBytes: r.max_bytes,
      flushTimeoutMs: r.flush_timeout,
    })),
    problems: [],
  };
}

/** The settings of the first rule matching the container; null when none matches or it is `off`. */
export function multilineFor(
  rules: readonly MultilineRule[],
  namespace: string,
  container: string,
): MultilineSettings | null {
  const rule = rules.find(
    (r) =>
      r.namespaces.some((g) => matchesGlob(namespace, g)) &&
      r.containers.some((g) => matchesGlob(container, g)),
  );
  if (rule === undefined || rule.mode === "off") return null;
  return {
    mode: rule.mode,
    maxLines: rule.maxLines,
    maxBytes: rule.maxBytes,
    flushTimeoutMs: rule.flushTimeoutMs,
  };
}

/** The rule-field table of docs/shipper.md. */
export function multilineFieldsMarkdownTable(): string {
  return [
    "| field | default | unit | description |",
    "|---|---|---|---|",
    ...MULTILINE_RULE_FIELDS.map((f) => `| \`${f.key}\` | ${f.default} | ${f.unit} | ${f.description} |`),
  ].join("\n");
}
