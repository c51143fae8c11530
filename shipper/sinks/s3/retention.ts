// The Object Lock retention a PUT carries (docs/shipper.md#object-lock-retention).
//
// The archive bucket locks every new object version for its default retention (a year), which
// is right for the record of what was shipped and wrong for copies that exist only to be
// loaded: a stream object would be billed for a year although its lifecycle rule expires it
// after analytics.stream_expiration_days, since S3 removes a locked version only once its
// retention has passed. So stream objects, and archive objects when compaction keeps their
// originals only for landing_days, are PUT with a retention of their own. Hour indexes and
// loss records are evidence and keep the bucket's default. An archive object PUT with the landing
// retention also carries the landing tag (lib/object/landing.ts), which the tier prefixes'
// lifecycle expiry filters on, so that rule never expires an original written without it.
//
// The date is computed from the hour in the object's key, never from the clock, so a PUT
// replayed after a crash carries the same headers as the first attempt, as it carries the
// same key and bytes.

import { parseAnyObjectKey } from "../../../lib/keys/layout.ts";
import { longLivedTiers } from "../../../lib/keys/tiers.ts";

/** The `object_lock_mode` setting: "off", or the bucket's default retention mode. */
export const OBJECT_LOCK_SETTINGS = ["off", "GOVERNANCE", "COMPLIANCE"] as const;
export type ObjectLockSetting = (typeof OBJECT_LOCK_SETTINGS)[number];
export type ObjectLockMode = Exclude<ObjectLockSetting, "off">;

export interface RetentionSettings {
  mode: ObjectLockSetting;
  /** The policy's analytics.stream_expiration_days: stream objects' lock past their hour. */
  streamExpirationDays: number;
  /** Archive-tier objects' lock past their hour; 0: the bucket's default retention. */
  landingDays: number;
}

export interface ObjectRetention {
  mode: ObjectLockMode;
  retainUntil: Date;
  /**
   * A landing original's retention (an archive-tier object kept landing_days), which is PUT with
   * the landing tag (lib/object/landing.ts) for the tier prefixes' expiry rule to match; a stream
   * object's retention is not (the stream prefix expires whole).
   */
  landing: boolean;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/**
 * The shortest lock a late upload gets. S3 refuses a retain-until date in the past, so a
 * batch uploaded after its own retention would have ended (a node down for days) is locked
 * until the end of a day after the hour it is uploaded in: still far below the bucket's
 * default, and the same for every retry within that hour.
 */
const LATE_UPLOAD_DAYS = 1;

/**
 * The retention `key` is PUT with, or undefined for the bucket's default (and for no lock
 * headers at all when the mode is off). `kind` is the sealed batch's: loss records and hour
 * indexes never carry one. `now` matters only for a late upload (LATE_UPLOAD_DAYS).
 */
export function objectRetention(
  settings: RetentionSettings,
  object: { key: string; kind?: "loss" | "index" | undefined },
  now: number,
): ObjectRetention | undefined {
  if (settings.mode === "off" || object.kind !== undefined) return undefined;
  const parsed = parseAnyObjectKey(object.key);
  let days: number;
  const landing = parsed.kind !== "stream";
  if (parsed.kind === "stream") days = settings.streamExpirationDays;
  else if (longLivedTiers().includes(parsed.tier) && settings.landingDays > 0) days = settings.landingDays;
  else return undefined;
  const until = hourEnd(parsed.dt, parsed.hour) + days * DAY_MS;
  const earliest = Math.floor(now / HOUR_MS) * HOUR_MS + HOUR_MS + LATE_UPLOAD_DAYS * DAY_MS;
  // An hour's margin: the date must still be in the future when S3 receives the last retry.
  return {
    mode: settings.mode,
    retainUntil: new Date(until > now + HOUR_MS ? until : earliest),
    landing,
  };
}

/** The end of the UTC hour `hour` (00-23) of `dt` (YYYY-MM-DD), in ms since the epoch. */
function hourEnd(dt: string, hour: string): number {
  return Date.parse(`${dt}T${hour}:00:00Z`) + HOUR_MS;
}
