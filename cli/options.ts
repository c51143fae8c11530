// Option parsers shared by commands: each failure names the flag and what it accepts.

import { InvalidArgumentError } from "commander";
import { isNamespaceName } from "../lib/policy/policy.ts";

/**
 * Exit codes, the same for every command (README.md#exit-codes): a check that found a
 * problem in the data is `verdict`, a mistake in how the command was called or configured
 * is `usage`.
 */
export const EXIT = { ok: 0, verdict: 1, usage: 2 } as const;

export function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65_535) {
    throw new InvalidArgumentError("expected a port number 0-65535 (0 picks a free port).");
  }
  return n;
}

const MONTHS = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];

/** Throws unless year-month-day is a day of the calendar: Date.parse would roll 2026-02-30 over to March 2. */
export function checkCalendarDate(value: string, year: number, month: number, day: number): void {
  if (!(month >= 1 && month <= 12))
    throw new InvalidArgumentError(`${value} is not a date: months are 01-12.`);
  const days = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (!(day >= 1 && day <= days)) {
    throw new InvalidArgumentError(`${value} is not a date: ${MONTHS[month - 1]} ${year} has ${days} days.`);
  }
}

/** A calendar date, YYYY-MM-DD. */
export function parseDateArg(value: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (m === null) throw new InvalidArgumentError("expected a date, YYYY-MM-DD.");
  checkCalendarDate(value, Number(m[1]), Number(m[2]), Number(m[3]));
  return value;
}

/** An http(s) endpoint URL, such as http://127.0.0.1:9000. */
export function parseEndpointUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError("expected an http(s) URL such as http://127.0.0.1:9000.");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new InvalidArgumentError(`expected an http(s) URL, not ${url.protocol}.`);
  }
  return value;
}

export function parseNamespaceArg(value: string): string {
  if (!isNamespaceName(value)) {
    throw new InvalidArgumentError(
      "expected a Kubernetes namespace name: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit.",
    );
  }
  return value;
}

/** The policy file a command uses: the one given, else ./namespaces.yaml if present, else none (built-in default). */
export async function policyPathOrDefault(given: string | undefined): Promise<string | undefined> {
  if (given !== undefined) return given;
  const { access } = await import("node:fs/promises");
  try {
    await access("namespaces.yaml");
    return "namespaces.yaml";
  } catch {
    return undefined;
  }
}
