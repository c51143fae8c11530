-- title: Log volume per namespace per day
-- answers: How many lines and message bytes each namespace logged each UTC day, for cost attribution.
--   Bytes are the UTF-8 length of `message`, the part of a record a team controls; the archive's
--   gzip objects are smaller, and the record's metadata adds about 200 bytes per line.
-- param: namespaces STRING_LIST namespaces to count, comma-separated; example: payments,checkout
-- param: from TIMESTAMP start of the range, inclusive, UTC; example: 2026-11-21
-- param: to TIMESTAMP end of the range, exclusive, UTC; example: 2026-11-22
-- cost: Scans the table's namespace, timestamp and message columns; the local warehouse is small.
SELECT
  namespace,
  CAST("timestamp" AS DATE) AS day,
  count(*) AS lines,
  sum(strlen(message)) AS message_bytes
FROM container_logs
WHERE list_contains(string_split($namespaces, ','), namespace)
  AND "timestamp" >= $from::TIMESTAMP AND "timestamp" < $to::TIMESTAMP
GROUP BY namespace, day
ORDER BY day, namespace;
