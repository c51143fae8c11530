// Human sizes and durations in config files and flags: "8MiB", "1GiB", "60s", "500ms".

const SIZE = /^(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB|TB|TiB)?$/;
const SIZE_UNITS: Record<string, number> = {
  B: 1,
  KB: 1e3,
  KiB: 2 ** 10,
  MB: 1e6,
  MiB: 2 ** 20,
  GB: 1e9,
  GiB: 2 ** 30,
  TB: 1e12,
  TiB: 2 ** 40,
};

/** Bytes in a size like `8MiB`, `256KiB`, `1GB` or a plain number of bytes; null if it is not one. */
export function parseSize(text: string | number): number | null {
  if (typeof text === "number") return Number.isSafeInteger(text) && text >= 0 ? text : null;
  const m = SIZE.exec(text.trim());
  if (m === null) return null;
  // Fractions are fine where they make whole bytes (1.5KiB), not otherwise (1.5 bytes).
  const n = Number(m[1]) * SIZE_UNITS[m[2] ?? "B"]!;
  return Number.isSafeInteger(n) ? n : null;
}

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)$/;
const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * The longest delay a Node timer honours (2^31-1 ms, about 24.8 days). Node clamps a
 * longer setTimeout to 1 ms, so an over-long timeout would fire at once: every duration
 * is bounded by this, whatever its field allows.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Milliseconds in a duration like `500ms`, `60s`, `5m` or `1h`; null if it is not one, or
 * if it is longer than `max` (default: the longest timer Node can set). Callers that name
 * the field in their message should use checkDuration, which says which bound was broken.
 */
export function parseDuration(text: string | number, max: number = MAX_TIMER_MS): number | null {
  const checked = checkDuration(text, { max });
  return "ms" in checked ? checked.ms : null;
}

export interface DurationLimits {
  min?: number;
  /** Capped at MAX_TIMER_MS whatever is given. */
  max?: number;
}

/**
 * A duration checked against its field's limits, or the problem in words for a message that
 * already names the field: `upload_timeout: must be at most 24d... (got "900h")`.
 */
export function checkDuration(
  raw: unknown,
  limits: DurationLimits = {},
): { ms: number } | { problem: string } {
  const m = typeof raw === "string" ? DURATION.exec(raw.trim()) : null;
  if (m === null) return { problem: "expected a duration such as 500ms, 60s or 5m" };
  const ms = Math.round(Number(m[1]) * DURATION_UNITS[m[2]!]!);
  const max = Math.min(limits.max ?? MAX_TIMER_MS, MAX_TIMER_MS);
  if (limits.min !== undefined && ms < limits.min)
    return { problem: `must be at least ${formatDuration(limits.min)}` };
  if (!(ms <= max)) {
    return {
      problem:
        max === MAX_TIMER_MS
          ? `must be at most ${formatDuration(max)} (about 24.8 days), the longest timer Node can set`
          : `must be at most ${formatDuration(max)}`,
    };
  }
  return { ms };
}

/** Milliseconds in the largest unit that states them exactly: `90s`, `5m`, `1h`, `250ms`. */
export function formatDuration(ms: number): string {
  for (const [unit, factor] of [
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1000],
  ] as const) {
    if (ms >= factor && ms % factor === 0) return `${ms / factor}${unit}`;
  }
  return `${ms}ms`;
}

export function formatSize(bytes: number): string {
  for (const [unit, factor] of [
    ["GiB", 2 ** 30],
    ["MiB", 2 ** 20],
    ["KiB", 2 ** 10],
  ] as const) {
    if (bytes >= factor && bytes % factor === 0) return `${bytes / factor}${unit}`;
  }
  return `${bytes}B`;
}
