-- title: Incident timeline for one error signature
-- answers: When an error signature (from top_error_signatures) first and last appeared in the
--   range, and how often per minute; minutes without it are not listed.
-- param: namespaces STRING_LIST namespaces to read, comma-separated; example: payments
-- param: from TIMESTAMP start of the range, inclusive, UTC; example: 2026-11-21 10:00
-- param: to TIMESTAMP end of the range, exclusive, UTC; example: 2026-11-21 12:00
-- param: signature STRING the signature exactly as top_error_signatures prints it; example: Charge failed
-- cost: Prunes to the day partitions of the range; reads namespace, timestamp and message.
-- run: prepend _definitions.sql (temp functions) in the same script; set the default dataset to the archive dataset.
WITH hits AS (
  SELECT `timestamp`
  FROM container_logs
  WHERE `timestamp` >= @from AND `timestamp` < @to
    AND namespace IN UNNEST(@namespaces)
    AND is_error(message)
    AND error_signature(message) = @signature
)
SELECT
  TIMESTAMP_TRUNC(`timestamp`, MINUTE) AS minute,
  COUNT(*) AS occurrences,
  MIN(MIN(`timestamp`)) OVER () AS first_seen,
  MAX(MAX(`timestamp`)) OVER () AS last_seen
FROM hits
GROUP BY minute
ORDER BY minute;
