-- title: Full-text search
-- answers: Lines of one namespace in a range that contain a text, ignoring case, oldest first.
-- param: namespace NAMESPACE the namespace to search; example: checkout
-- param: from TIMESTAMP start of the range, inclusive, UTC; example: 2026-11-21 10:00
-- param: to TIMESTAMP end of the range, exclusive, UTC; example: 2026-11-21 11:00
-- param: text STRING the text to find, taken literally (not a pattern); example: InventoryUnavailable
-- param: limit INT64 most lines to return; example: 100; default: 100
-- cost: Scans the message column of one namespace and range.
SELECT "timestamp", namespace, pod, container, stream, message
FROM container_logs
WHERE namespace = $namespace
  AND "timestamp" >= $from::TIMESTAMP AND "timestamp" < $to::TIMESTAMP
  AND contains(lower(message), lower($text))
ORDER BY "timestamp", timestamp_nanos, batch_id, seq
LIMIT $limit;
