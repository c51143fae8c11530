// The compactor's errors and its rule for when an hour may be compacted at all.

export class CompactionError extends Error {
  override name = "CompactionError";
}

/** The hour has not ended plus the settle delay: compacting now would miss batches still being cut. */
export class HourNotSettledError extends CompactionError {
  override name = "HourNotSettledError";
  readonly settlesAt: Date;
  constructor(message: string, settlesAt: Date) {
    super(message);
    this.settlesAt = settlesAt;
  }
}

/** Start of the UTC hour `dt` `hour`, ms since the epoch. */
export function hourStartMs(dt: string, hour: string): number {
  return Date.parse(`${dt}T${hour}:00:00Z`);
}

/** Throws HourNotSettledError unless `now` is at least the hour's end plus the settle delay. */
export function checkHourSettled(dt: string, hour: string, settleMs: number, now: Date): void {
  const settlesAt = new Date(hourStartMs(dt, hour) + 3_600_000 + settleMs);
  if (now.getTime() < settlesAt.getTime()) {
    throw new HourNotSettledError(
      `hour ${dt}T${hour} is not closed plus the settle delay (${Math.round(settleMs / 60_000)} min) until ${settlesAt.toISOString()}; it is ${now.toISOString()}`,
      settlesAt,
    );
  }
}
