// Test support for end-to-end tests: `logarchive` child processes whose JSON log and
// /metrics a test waits on, instead of guessing how long something takes. CI runs on a
// loaded 2-core machine where Node's start-up alone can take seconds, so every wait here is
// for an event (a log line, a metric, a file), and its timeout is only a guard that turns
// a hang into a failure naming what never happened.

import { type ChildProcess, spawn } from "node:child_process";
import { appendFileSync, readFileSync } from "node:fs";
import { get } from "node:http";
import { after } from "node:test";
import { type LocalS3, startLocalS3 } from "../../local/s3.ts";
import { type Checkpoint, CheckpointStore } from "../state/checkpoint.ts";

const CLI = new URL("../../cli/logarchive.ts", import.meta.url).pathname;

/**
 * How long a wait may take before it fails. Generous: it only has to be shorter than the
 * test's own timeout, so the failure says what was awaited. LOGARCHIVE_E2E_GUARD_MS overrides it.
 */
export const GUARD_MS = Number(process.env.LOGARCHIVE_E2E_GUARD_MS ?? 120_000);

/**
 * The timeout of an e2e suite: a last resort against a hang, far above what a loaded 2-core
 * machine needs (the waits inside fail first, each naming what it waited for).
 */
export const SUITE_GUARD_MS = 30 * 60_000;

/** Paces a writer loop. Never a way to wait for the system under test: use waitFor. */
export function pace(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface WaitOptions {
  /** The guard: fail after this long (default GUARD_MS). */
  timeoutMs?: number;
  /** Time between checks (default 25 ms). */
  intervalMs?: number;
  /** Runs before each check, e.g. to keep writers writing while waiting. */
  whilePolling?: () => void | Promise<void>;
  /** Appended to the failure message, e.g. the tail of a process's log. */
  detail?: () => string;
}

/**
 * Waits until `check` returns a value that is neither undefined, null nor false, and
 * returns it. Throws `timed out waiting for <what>` once the guard runs out.
 */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  options: WaitOptions = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? GUARD_MS);
  for (;;) {
    await options.whilePolling?.();
    const value = await check();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() > deadline) {
      const detail = options.detail?.() ?? "";
      throw new Error(`timed out waiting for ${what}${detail === "" ? "" : `\n${detail}`}`);
    }
    await pace(options.intervalMs ?? 25);
  }
}

/** One line of a process's JSON (pino) log. */
export type LogEvent = Record<string, unknown> & { event: string };

export interface LoggedProcess {
  child: ChildProcess;
  /** Everything the process logged on stderr so far (the last few MB of it). */
  log(): string;
  exited: Promise<number | null>;
  /** The exit code, or null while it runs (or when a signal ended it). */
  exitCode(): number | null;
  /** Whether the process has exited. */
  hasExited(): boolean;
  /** The log lines with this `event`, parsed, in the order they were logged. */
  events(event: string): LogEvent[];
  /**
   * Waits until the process logs `event` (one for which `where` holds) and returns it; fails
   * at once if the process exits first.
   */
  waitForEvent(
    event: string,
    options?: WaitOptions & { where?: (e: LogEvent) => boolean; after?: number },
  ): Promise<LogEvent>;
  /** Sends `signal` and waits for the exit; resolves to the exit code. */
  kill(signal: NodeJS.Signals): Promise<number | null>;
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  /** Appends the child's stderr to this file too (for LOGARCHIVE_DEBUG runs). */
  teeTo?: string | null;
}

/** Every child still running, so a test that fails or times out does not leave one behind. */
const running = new Set<ChildProcess>();
if (process.env.NODE_TEST_CONTEXT !== undefined) {
  // Inside `node --test` only: after the file's last test, whatever became of it, nothing
  // it started may go on running (and keep the file's process alive).
  after(() => {
    for (const child of running) child.kill("SIGKILL");
  });
}

/** Runs `logarchive <args>` with the repository's Node, keeping its stderr log. */
export function startCli(args: readonly string[], options: SpawnOptions = {}): LoggedProcess {
  const child = spawn(process.execPath, [CLI, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: options.env ?? process.env,
  });
  running.add(child);
  child.stdout!.resume();
  let stderr = "";
  let partial = "";
  // Each event's log lines, indexed as they arrive, so a poll does not rescan the whole log.
  const byEvent = new Map<string, string[]>();
  const index = (text: string) => {
    const lines = (partial + text).split("\n");
    partial = lines.pop()!;
    for (const line of lines) {
      const m = /"event":"([^"]+)"/.exec(line);
      if (m === null) continue;
      let list = byEvent.get(m[1]!);
      if (list === undefined) {
        list = [];
        byEvent.set(m[1]!, list);
      }
      list.push(line);
      if (list.length > 200_000) list.splice(0, 100_000);
    }
  };
  child.stderr!.on("data", (c: Buffer) => {
    if (options.teeTo) appendFileSync(options.teeTo, c);
    const text = c.toString();
    stderr += text;
    if (stderr.length > 4_000_000) stderr = stderr.slice(-2_000_000);
    index(text);
  });
  let exitCode: number | null = null;
  let hasExited = false;
  // "close", not "exit": by then stderr is read to its end, so the log holds the last lines.
  const exited = new Promise<number | null>((resolve) =>
    child.once("close", (code) => {
      running.delete(child);
      exitCode = code;
      hasExited = true;
      resolve(code);
    }),
  );
  const events = (event: string): LogEvent[] => {
    const out: LogEvent[] = [];
    for (const line of byEvent.get(event) ?? []) {
      try {
        out.push(JSON.parse(line) as LogEvent);
      } catch {
        // Not a JSON line after all (a human line quoting an event).
      }
    }
    return out;
  };
  const tail = () => `log tail:\n${stderr.slice(-3000)}`;
  const proc: LoggedProcess = {
    child,
    log: () => stderr,
    exited,
    exitCode: () => exitCode,
    hasExited: () => hasExited,
    events,
    waitForEvent: (event, o = {}) => {
      const where = o.where ?? (() => true);
      const after = o.after ?? 0;
      return waitFor(
        `${event} in the log of logarchive ${args[0]}`,
        () => {
          const found = events(event)
            .slice(after)
            .find((e) => where(e));
          if (found !== undefined) return found;
          if (hasExited)
            throw new Error(`logarchive ${args[0]} exited (${exitCode}) before ${event}\n${tail()}`);
          return undefined;
        },
        { detail: tail, ...o },
      );
    },
    kill: async (signal) => {
      if (!hasExited) child.kill(signal);
      return exited;
    },
  };
  return proc;
}

/** A scrape of the shipper's /metrics. Names may omit the `logarchive_shipper_` prefix. */
export class MetricsSnapshot {
  readonly text: string;
  readonly #values = new Map<string, { labels: string; value: number }[]>();

  constructor(text: string) {
    this.text = text;
    for (const line of text.split("\n")) {
      if (line === "" || line.startsWith("#")) continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
      if (m === null) continue;
      let list = this.#values.get(m[1]!);
      if (list === undefined) {
        list = [];
        this.#values.set(m[1]!, list);
      }
      list.push({ labels: m[2] ?? "", value: Number(m[3]) });
    }
  }

  #series(name: string) {
    return this.#values.get(name) ?? this.#values.get(`logarchive_shipper_${name}`) ?? [];
  }

  /** The sum over every label set of a metric; 0 when the metric has no series yet. */
  sum(name: string): number {
    return this.#series(name).reduce((n, s) => n + s.value, 0);
  }

  /** The value of one series, matched by its labels (`{reason="rotation"}`), or undefined. */
  value(name: string, labels: Record<string, string> = {}): number | undefined {
    const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
    return this.#series(name).find((s) => want.every((w) => s.labels.includes(w)))?.value;
  }
}

function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    // No keep-alive: a socket left open would hold the shipper's HTTP server at its stop.
    get(url, { agent: false }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (c: Buffer) => chunks.push(c));
      response.on("end", () =>
        response.statusCode === 200
          ? resolve(Buffer.concat(chunks).toString("utf8"))
          : reject(new Error(`GET ${url}: ${response.statusCode}`)),
      );
      response.on("error", reject);
    }).on("error", reject);
  });
}

export interface ShipperProcess extends LoggedProcess {
  /** Highest VmHWM (peak RSS) seen in /proc, in bytes. */
  peakRss(): number;
  /** Scrapes /metrics (waiting for the server to listen first). */
  metrics(): Promise<MetricsSnapshot>;
  /** Scrapes /metrics until `check` holds for a scrape, and returns that scrape. */
  waitForMetrics(
    what: string,
    check: (m: MetricsSnapshot) => boolean,
    options?: WaitOptions,
  ): Promise<MetricsSnapshot>;
}

/**
 * Starts `logarchive ship` against `s3Endpoint` with `args`. It serves /metrics on a free
 * loopback port (a later `--listen` in `args` wins), so a test can wait on its metrics.
 */
export function startShipper(args: readonly string[], s3Endpoint: string): ShipperProcess {
  const proc = startCli(["ship", "--listen", "127.0.0.1:0", "--s3-endpoint", s3Endpoint, ...args], {
    env: {
      ...process.env,
      AWS_ACCESS_KEY_ID: "S3RVER",
      AWS_SECRET_ACCESS_KEY: "S3RVER",
      AWS_REGION: "us-east-1",
      // As the shipper image runs it (shipper/deploy/Dockerfile), so memory is measured as deployed.
      NODE_OPTIONS: process.env.NODE_OPTIONS ?? "--max-semi-space-size=2",
    },
    teeTo: process.env.LOGARCHIVE_DEBUG ? "/tmp/e2e-shipper.log" : null,
  });
  let peak = 0;
  const poll = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${proc.child.pid}/status`, "utf8"));
      if (m) peak = Math.max(peak, Number(m[1]) * 1024);
    } catch {
      // The process is gone.
    }
  }, 100);
  void proc.exited.then(() => clearInterval(poll));
  const metrics = async () => {
    const listening = await proc.waitForEvent("http_listening");
    return new MetricsSnapshot(await httpGet(`${listening.url as string}/metrics`));
  };
  return {
    ...proc,
    peakRss: () => peak,
    metrics,
    waitForMetrics: (what, check, options = {}) =>
      waitFor(
        what,
        async () => {
          if (proc.hasExited()) throw new Error(`the shipper exited (${proc.exitCode()}) before ${what}`);
          const m = await metrics().catch((error: unknown) => {
            // The shipper may exit between the check above and the scrape.
            if (proc.hasExited()) throw new Error(`the shipper exited (${proc.exitCode()}) before ${what}`);
            throw error;
          });
          return check(m) ? m : undefined;
        },
        { intervalMs: 50, detail: () => `shipper log tail:\n${proc.log().slice(-3000)}`, ...options },
      ),
  };
}

/** Runs `logarchive ship --once …` to its end and returns it; fails unless it exits 0. */
export async function shipOnce(args: readonly string[], s3Endpoint: string): Promise<ShipperProcess> {
  const shipper = startShipper(["--once", ...args], s3Endpoint);
  const code = await shipper.exited;
  if (code !== 0) throw new Error(`ship --once exited ${code}\n${shipper.log().slice(-3000)}`);
  return shipper;
}

export interface ShipArgs {
  logs: string | readonly string[];
  stateDir: string;
  bucket?: string;
  node?: string;
  config?: string;
}

/**
 * `logarchive ship` arguments: the usual ones, then `flags` in order (`"batch-max-age": "1s"`
 * becomes `--batch-max-age 1s`; `true` is a bare flag).
 */
export function shipArgs(o: ShipArgs, flags: Record<string, string | true> = {}): string[] {
  const args: string[] = [];
  if (o.config !== undefined) args.push("--config", o.config);
  for (const glob of typeof o.logs === "string" ? [o.logs] : o.logs) args.push("--logs", glob);
  args.push("--state-dir", o.stateDir);
  if (o.bucket !== undefined) args.push("--bucket", o.bucket);
  if (o.node !== undefined) args.push("--node", o.node);
  for (const [flag, value] of Object.entries(flags)) {
    args.push(`--${flag}`);
    if (value !== true) args.push(value);
  }
  return args;
}

/** The shipper's committed checkpoint as it is on disk now (an empty one before the first commit). */
export function committedCheckpoint(stateDir: string): Promise<Checkpoint> {
  return new CheckpointStore(stateDir).load();
}

/**
 * The local S3 (s3rver) on 127.0.0.1, with the given buckets, its data under `dataDir`. Its
 * stop() is an outage (local/s3.ts cuts kept-alive connections too) and safe to call twice.
 */
export async function startTestS3(dataDir: string, buckets: readonly string[], port = 0): Promise<LocalS3> {
  return startLocalS3({ host: "127.0.0.1", port, dataDir, buckets: [...buckets] });
}
