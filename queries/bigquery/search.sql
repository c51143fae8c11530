-- title: Full-text search
-- answers: Lines of one namespace in a range that contain a text (ignoring case), match a regular
--   expression, or both, oldest first.
-- param: namespace NAMESPACE the namespace to search; example: checkout
-- param: from TIMESTAMP start of the range, inclusive, UTC; example: 2026-11-21 10:00
-- param: to TIMESTAMP end of the range, exclusive, UTC; example: 2026-11-21 11:00
-- param: text STRING text the line must contain, taken literally, ignoring case (empty: any); example: InventoryUnavailable; default: ''
-- param: pattern REGEX a regular expression the line must match, RE2 syntax, case-sensitive unless it starts with (?i) (empty: any); example: SKU-[0-9]+; default: ''
-- param: limit INT64 most lines to return; example: 100; default: 100
-- cost: Prunes to the day partitions of the range and the namespace's clustered blocks; reads
--   every column returned (message dominates). LIMIT does not reduce bytes billed.
-- run: prepend _definitions.sql (temp functions) in the same script; set the default dataset to the archive dataset.
SELECT `timestamp`, namespace, pod, container, stream, message
FROM container_logs
WHERE `timestamp` >= @from AND `timestamp` < @to
  AND namespace = @namespace
  AND (@text = '' OR STRPOS(LOWER(message), LOWER(@text)) > 0)
  AND (@pattern = '' OR REGEXP_CONTAINS(message, @pattern))
ORDER BY `timestamp`, timestamp_nanos, batch_id, seq
LIMIT @limit;
