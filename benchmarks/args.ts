// The benchmarks' command lines. node:util's parseArgs throws a TypeError on an unknown flag, a
// missing value or a stray argument, which at a module's top level prints a stack trace and
// exits 1; a flag the user got wrong is a usage error: one line naming it, exit 2. Each
// benchmark parses its flags and checks their values in one benchArgs call, so every such
// mistake ends the same way before anything is set up.

import { type ParseArgsOptionsConfig, parseArgs } from "node:util";

/** A flag or value the user got wrong; its message is the one line to print. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** The values parseArgs gives for these options (strict, no positionals). */
export type BenchValues<O extends ParseArgsOptionsConfig> = ReturnType<
  typeof parseArgs<{ options: O; strict: true; allowPositionals: false }>
>["values"];

/**
 * parseArgs over `args` (strict, no positionals), its errors turned into UsageError, then
 * `read` over the values (where the checks below throw UsageError for a bad value).
 */
export function parseBenchArgs<const O extends ParseArgsOptionsConfig, R>(
  options: O,
  args: readonly string[],
  read: (values: BenchValues<O>) => R,
): R {
  let values: BenchValues<O>;
  try {
    ({ values } = parseArgs({ args: [...args], options, strict: true, allowPositionals: false }));
  } catch (error) {
    // Node's parseArgs errors are TypeErrors with an ERR_PARSE_ARGS_* code and a message that
    // names the flag or argument ("Unknown option '--foo'").
    const code = (error as { code?: unknown }).code;
    if (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS_")) {
      throw new UsageError(String((error as Error).message).split("\n")[0]);
    }
    throw error;
  }
  return read(values);
}

/**
 * parseBenchArgs over this process's arguments; on a UsageError, prints its one line to stderr
 * and exits 2.
 */
export function benchArgs<const O extends ParseArgsOptionsConfig, R = BenchValues<O>>(
  options: O,
  read: (values: BenchValues<O>) => R = (values) => values as R,
): R {
  try {
    return parseBenchArgs(options, process.argv.slice(2), read);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(2);
  }
}

/** `--flag`'s value as a number above 0 (decimals allowed), or a UsageError naming the flag. */
export function positiveNumber(flag: string, text: string): number {
  const value = /^\d+(\.\d+)?$/.test(text) ? Number(text) : Number.NaN;
  if (!(value > 0)) throw new UsageError(`--${flag}: expected a number above 0, got ${JSON.stringify(text)}`);
  return value;
}

/** `--flag`'s value as a whole number of at least `min`, or a UsageError naming the flag. */
export function wholeNumber(flag: string, text: string, min: number): number {
  const value = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!(value >= min)) {
    throw new UsageError(`--${flag}: expected a whole number of ${min} or more, got ${JSON.stringify(text)}`);
  }
  return value;
}

/** `--flag`'s value if it is one of `choices`, or a UsageError naming the flag and the choices. */
export function oneOf<const C extends string>(flag: string, text: string, choices: readonly C[]): C {
  if (!(choices as readonly string[]).includes(text)) {
    throw new UsageError(`--${flag}: expected one of ${choices.join(", ")}, got ${JSON.stringify(text)}`);
  }
  return text as C;
}
