-- title: Incident timeline for one error signature
-- answers: When an error signature (from top_error_signatures) first and last appeared in the
--   range, and how often per minute; minutes without it are not listed.
-- param: namespaces STRING_LIST namespaces to read, comma-separated; example: payments
-- param: from TIMESTAMP start of the range, inclusive, UTC; example: 2026-11-21 10:00
-- param: to TIMESTAMP end of the range, exclusive, UTC; example: 2026-11-21 12:00
-- param: signature STRING the signature exactly as top_error_signatures prints it; example: Charge failed
-- cost: Scans namespace, timestamp and message of the range; keep the range to the incident.
WITH hits AS (
  SELECT "timestamp"
  FROM container_logs
  WHERE list_contains(string_split($namespaces, ','), namespace)
    AND "timestamp" >= $from::TIMESTAMP AND "timestamp" < $to::TIMESTAMP
    AND is_error(message)
    AND error_signature(message) = $signature
)
SELECT
  date_trunc('minute', "timestamp") AS minute,
  count(*) AS occurrences,
  min(min("timestamp")) OVER () AS first_seen,
  max(max("timestamp")) OVER () AS last_seen
FROM hits
GROUP BY minute
ORDER BY minute;
