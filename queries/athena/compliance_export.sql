-- title: Compliance export
-- answers: Every line of one namespace in a range, in time order, each with the archive
--   object that holds it (the object's full s3:// URI: the original, or for a compacted hour
--   the compacted part, whose manifest maps the line's batch_id to the original's byte range).
-- param: namespace NAMESPACE the namespace to export; example: payments
-- param: from TIMESTAMP start of the range, inclusive, UTC; example: 2026-11-01
-- param: to TIMESTAMP end of the range, exclusive, UTC; example: 2026-12-01
-- positional: namespace, from, to, from, from, to, to, from, to
-- cost: Reads only namespace=<namespace>/dt=<days>/hour=<hours of the range>; every byte of them. Athena also
--   writes the result to its output location: large exports are better as UNLOAD or CTAS.
-- run: create the view of _definitions.sql once; ExecutionParameters in the order of "positional" (a list fills its IN (?) with one ? per item).
SELECT
  "timestamp", timestamp_nanos, pod, pod_uid, container, container_id, restart_count, node, stream,
  message, message_base64, truncated, parse_error, batch_id, seq, tier, namespace, dt, hour,
  archive_path AS archive_object
FROM container_logs_v
WHERE namespace = ?
  AND dt BETWEEN substr(?, 1, 10) AND substr(?, 1, 10)
  AND (dt > substr(?, 1, 10) OR hour >= substr(?, 12, 2))
  AND (dt < substr(?, 1, 10) OR hour <= substr(?, 12, 2))
  AND "timestamp" >= CAST(? AS timestamp) AND "timestamp" < CAST(? AS timestamp)
ORDER BY "timestamp", timestamp_nanos, batch_id, seq;
