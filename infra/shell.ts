// POSIX shell quoting for the commands the stack runs (`command.local.Command`, interpreter
// /bin/sh -c) or prints for an operator to paste. Every value interpolated into such a command
// goes through shellQuote, so a resource name holding a space, a quote or `$(…)` stays one word and
// is never run.

/** Characters that never need quoting in a POSIX shell word (as Python's shlex.quote). */
const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * `value` as one POSIX shell word: bare when it holds only safe characters (so the usual resource
 * paths stay readable), else in single quotes, inside which the shell expands nothing; a single
 * quote itself is closed, escaped and reopened (`'\''`).
 */
export function shellQuote(value: string | number): string {
  const text = String(value);
  if (SAFE_WORD.test(text)) return text;
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/** `program` and its arguments as one command line, each word quoted. */
export function shellCommand(program: string, ...args: readonly (string | number)[]): string {
  return [program, ...args].map(shellQuote).join(" ");
}
