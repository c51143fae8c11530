-- title: Full-text search
-- answers: Lines of one namespace in a range that contain a text (ignoring case), match a regular
--   expression, or both, oldest first.
-- param: namespace NAMESPACE the namespace to search; example: checkout
-- param: from TIMESTAMP start of the range, inclusive, UTC; example: 2026-11-21 10:00
-- param: to TIMESTAMP end of the range, exclusive, UTC; example: 2026-11-21 11:00
-- param: text STRING text the line must contain, taken literally, ignoring case (empty: any); example: InventoryUnavailable; default: ''
-- param: pattern REGEX a regular expression the line must match, RE2 syntax, case-sensitive unless it starts with (?i) (empty: any); example: SKU-[0-9]+; default: ''
-- param: limit INT64 most lines to return; example: 100; default: 100
-- positional: namespace, from, to, from, from, to, to, from, to, text, text, pattern, pattern, limit
-- cost: Reads only namespace=<namespace>/dt=<days>/hour=<hours of the range> (partition projection);
--   Athena bills whole objects, so keep ranges short.
-- run: create the view of _definitions.sql once; ExecutionParameters in the order of "positional" (a list fills its IN (?) with one ? per item).
SELECT "timestamp", namespace, pod, container, stream, message
FROM container_logs_v
WHERE namespace = ?
  AND dt BETWEEN substr(?, 1, 10) AND substr(?, 1, 10)
  AND (dt > substr(?, 1, 10) OR hour >= substr(?, 12, 2))
  AND (dt < substr(?, 1, 10) OR hour <= substr(?, 12, 2))
  AND "timestamp" >= CAST(? AS timestamp) AND "timestamp" < CAST(? AS timestamp)
  AND (? = '' OR strpos(lower(message), lower(?)) > 0)
  AND (? = '' OR regexp_like(message, ?))
ORDER BY "timestamp", timestamp_nanos, batch_id, seq
LIMIT ?;
