// The S3 object tag that marks an archive object written as a landing original: an object the
// shipper PUT with its own short Object Lock retention (landing_days) because archive compaction
// will copy it into a compacted part (docs/design/compaction.md). The tier prefixes' lifecycle
// expiry filters on this tag, so it removes only landing originals and never an older original
// written before compaction was on, which no compacted part holds (docs/shipper.md#object-lock-retention).
// The shipper and the infrastructure import it from here, so the tag PUT and the tag the rule
// matches cannot differ.

/** The tag on every landing original, and only on them. */
export const LANDING_TAG = { key: "logarchive-landing", value: "1" } as const;

/**
 * LANDING_TAG in the form of PutObject's `Tagging` parameter (the x-amz-tagging header): URL
 * query parameters, each key and value URL-encoded.
 */
export const LANDING_TAGGING = `${encodeURIComponent(LANDING_TAG.key)}=${encodeURIComponent(LANDING_TAG.value)}`;
