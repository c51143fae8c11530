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

/** Milliseconds in a duration like `500ms`, `60s`, `5m` or `1h`; null if it is not one. */
export function parseDuration(text: string | number): number | null {
  if (typeof text === "number") return null;
  const m = DURATION.exec(text.trim());
  if (m === null) return null;
  return Math.round(Number(m[1]) * DURATION_UNITS[m[2]!]!);
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
