// Which tiers of the key layout hold a namespace's objects for their whole retention, and so
// must all be read by anything that asks "every line of namespace N in hours H" (compliance
// retrieval, audits). Today that is both tiers of the layout: analytics namespaces were
// written under `analytics/`, the rest under `archive/`, and a namespace that changed tier
// has objects in both. A short-lived tier (stream delivery's per-table `stream/` objects,
// which expire once loaded) repeats lines that are also in a long-lived tier, so it is never
// read for retrieval; listing it too would count those lines twice.

import { TIERS, type Tier } from "./layout.ts";

/** Tier segments whose objects expire: copies for delivery, never the record of what was shipped. */
const SHORT_LIVED_TIERS: ReadonlySet<string> = new Set(["stream"]);

/** The tiers to list, per namespace and hour, to find every archived object of a namespace. */
export function longLivedTiers(): readonly Tier[] {
  return TIERS.filter((tier) => !SHORT_LIVED_TIERS.has(tier));
}
