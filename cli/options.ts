// Option parsers shared by commands: each failure names the flag and what it accepts.

import { InvalidArgumentError } from "commander";
import { UserError } from "../lib/config/errors.ts";
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

/** Where a command's S3 client points, named as the user set it: the flags a one-line error tells them to fix. */
export interface S3Target {
  /** The bucket and where it came from, e.g. `--bucket logs-archive` or `--archive s3://logs-archive/logs`. */
  bucket: string;
  /** The endpoint flag and its value, when one was given; undefined is AWS's own endpoint for the region. */
  endpoint?: string;
  /** The flag or variable that sets the region, e.g. `--region (or AWS_REGION)`. */
  region: string;
}

const CONNECTION_ERRORS: Record<string, string> = {
  ECONNREFUSED: "refuses connections",
  ENOTFOUND: "has a host name that does not resolve",
  EAI_AGAIN: "has a host name that does not resolve",
  EHOSTUNREACH: "is unreachable",
  ENETUNREACH: "is unreachable",
};

/** A network error's code; Node's connect over several addresses (localhost) throws an AggregateError whose members carry it. */
function connectionCode(error: Error): string | undefined {
  const code = (error as NodeJS.ErrnoException).code;
  if (typeof code === "string" && code in CONNECTION_ERRORS) return code;
  const members = (error as { errors?: unknown }).errors;
  if (Array.isArray(members)) {
    for (const member of members) {
      const inner = (member as NodeJS.ErrnoException | null)?.code;
      if (typeof inner === "string" && inner in CONNECTION_ERRORS) return inner;
    }
  }
  return undefined;
}

/**
 * The S3 client errors that are the user's setup to fix, not a bug: no credentials, no region,
 * a bucket that does not exist, an endpoint that cannot be reached. Each becomes one line
 * naming the flag or environment variable to change (README.md#exit-codes: exit 2); anything
 * else is undefined, for the caller to rethrow.
 */
export function s3SetupError(error: unknown, target: S3Target): UserError | undefined {
  if (!(error instanceof Error)) return undefined;
  const message = error.message ?? "";
  const firstLine = message.split("\n")[0];
  if (error.name === "CredentialsProviderError" || /Could not load credentials/i.test(message)) {
    return new UserError(
      `no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (the SDK said: ${firstLine})`,
    );
  }
  if (/Region is missing/i.test(message)) {
    return new UserError(`no AWS region: set ${target.region}`);
  }
  // AWS answers 404 NoSuchBucket; S3rver (the local S3) answers ListObjectVersions with a 500
  // whose message starts "NoSuchBucket:".
  const code = (error as { Code?: unknown }).Code;
  if (error.name === "NoSuchBucket" || code === "NoSuchBucket" || /^NoSuchBucket\b/.test(message)) {
    return new UserError(
      `${target.bucket}: no such bucket${target.endpoint === undefined ? "" : ` at ${target.endpoint}`}`,
    );
  }
  const network = connectionCode(error);
  if (network !== undefined) {
    const where = target.endpoint ?? `AWS's S3 endpoint (for the region ${target.region} sets)`;
    return new UserError(
      `${where} ${CONNECTION_ERRORS[network]} (${network}): check the URL, and that the S3 there is running`,
    );
  }
  return undefined;
}

/** Runs an S3 operation; a setup error (s3SetupError) becomes a one-line UserError, anything else is rethrown. */
export async function withS3Setup<T>(target: S3Target, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw s3SetupError(error, target) ?? error;
  }
}
