// The Object Lock retention a PUT carries (docs/shipper.md#object-lock-retention).
//
// The archive bucket locks every new object version for its default retention (a year), which
// is right for the record of what was shipped and wrong for copies that exist only to be
// loaded: a stream object would be billed for a year although its lifecycle rule expires it
// after analytics.stream_expiration_days, since S3 removes a locked version only once its
// retention has passed. So stream objects, and archive objects when compaction keeps their
// originals only for landing_days, are PUT with a retention of their own. Hour indexes and
// loss records are evidence and keep the bucket's default. (The compactor puts a delete marker
// on each original it compacted and extends the lock of those it could not compact:
// docs/design/compaction.md.)
//
// The date is computed from the hour in the object's key, never from the clock, so a PUT
// replayed after a crash carries the same headers as the first attempt, as it carries the
// same key and bytes. The clock only bounds it, to the hour of the upload: see objectRetention.

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
 * The longest lock past its own days an object gets, counted from the end of the hour it is
 * uploaded in. A key's hour can lie ahead of the upload (a node clock or CRI timestamps in the
 * future), and the shipper's IAM grant caps the retention a PUT may ask for at the longest
 * days + 2 (infra/iam.ts RETENTION_CAP_SLACK_DAYS): past it S3 answers AccessDenied to every
 * retry and the batch never leaves the node. An hour's allowance keeps the key's own date for a
 * batch of the next hour (a clock a little fast at the turn of the hour).
 */
const FUTURE_HOUR_ALLOWANCE_MS = HOUR_MS;

/**
 * The retention `key` is PUT with, or undefined for the bucket's default (and for no lock
 * headers at all when the mode is off). `kind` is the sealed batch's: loss records and hour
 * indexes never carry one. `now` matters only for a late upload (LATE_UPLOAD_DAYS) and for a
 * key whose hour lies ahead of it (FUTURE_HOUR_ALLOWANCE_MS); both bounds are counted from the
 * end of the hour of `now`, so every retry within that hour sends the same date.
 */
export function objectRetention(
  settings: RetentionSettings,
  object: { key: string; kind?: "loss" | "index" | undefined },
  now: number,
): ObjectRetention | undefined {
  if (settings.mode === "off" || object.kind !== undefined) return undefined;
  const parsed = parseAnyObjectKey(object.key);
  let days: number;
  if (parsed.kind === "stream") days = settings.streamExpirationDays;
  else if (longLivedTiers().includes(parsed.tier) && settings.landingDays > 0) days = settings.landingDays;
  else return undefined;
  const until = hourEnd(parsed.dt, parsed.hour) + days * DAY_MS;
  const uploadHourEnd = Math.floor(now / HOUR_MS) * HOUR_MS + HOUR_MS;
  const earliest = uploadHourEnd + LATE_UPLOAD_DAYS * DAY_MS;
  const latest = uploadHourEnd + days * DAY_MS + FUTURE_HOUR_ALLOWANCE_MS;
  // An hour's margin: the date must still be in the future when S3 receives the last retry.
  // (latest is always past it: at least an hour after the end of the current hour.)
  return {
    mode: settings.mode,
    retainUntil: new Date(until > now + HOUR_MS ? Math.min(until, latest) : earliest),
  };
}

/** The end of the UTC hour `hour` (00-23) of `dt` (YYYY-MM-DD), in ms since the epoch. */
function hourEnd(dt: string, hour: string): number {
  return Date.parse(`${dt}T${hour}:00:00Z`) + HOUR_MS;
}
