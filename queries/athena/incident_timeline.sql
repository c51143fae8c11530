-- title: Incident timeline for one error signature
-- answers: When an error signature (from top_error_signatures) first and last appeared in the
--   range, and how often per minute; minutes without it are not listed.
-- param: namespaces STRING_LIST namespaces to read, comma-separated; example: payments
-- param: from TIMESTAMP start of the range, inclusive, UTC; example: 2026-11-21 10:00
-- param: to TIMESTAMP end of the range, exclusive, UTC; example: 2026-11-21 12:00
-- param: signature STRING the signature exactly as top_error_signatures prints it; example: Charge failed
-- positional: namespaces, from, to, from, from, to, to, from, to, signature
-- cost: Reads only the namespace/dt/hour partitions of the range; keep the range to the incident.
-- run: create the view of _definitions.sql once; ExecutionParameters in the order of "positional" (a list fills its IN (?) with one ? per item).
WITH hits AS (
  SELECT "timestamp"
  FROM container_logs_v
  WHERE namespace IN (?)
  AND dt BETWEEN substr(?, 1, 10) AND substr(?, 1, 10)
  AND (dt > substr(?, 1, 10) OR hour >= substr(?, 12, 2))
  AND (dt < substr(?, 1, 10) OR hour <= substr(?, 12, 2))
  AND "timestamp" >= CAST(? AS timestamp) AND "timestamp" < CAST(? AS timestamp)
    AND severity IN ('ERROR', 'FATAL')
    AND error_signature = ?
)
SELECT
  date_trunc('minute', "timestamp") AS minute,
  count(*) AS occurrences,
  min(min("timestamp")) OVER () AS first_seen,
  max(max("timestamp")) OVER () AS last_seen
FROM hits
GROUP BY date_trunc('minute', "timestamp")
ORDER BY minute;
