-- title: Noisiest pods and containers
-- answers: The top talkers of a range (lines and message bytes per pod and container), with
--   first and last line in the range, and whether the container is new: it logged nothing in
--   the day before the range.
-- param: namespaces STRING_LIST namespaces to read, comma-separated; example: payments,checkout
-- param: from TIMESTAMP start of the range, inclusive, UTC; example: 2026-11-21
-- param: to TIMESTAMP end of the range, exclusive, UTC; example: 2026-11-22
-- param: limit INT64 how many containers to list; example: 20; default: 20
-- cost: Prunes to the day partitions of the range and the day before it; reads namespace, pod,
--   container, timestamp and message.
-- lookback_hours: 24
-- run: prepend _definitions.sql (temp functions) in the same script; set the default dataset to the archive dataset.
WITH lines AS (
  SELECT namespace, pod, container, `timestamp`, BYTE_LENGTH(message) AS bytes,
    `timestamp` >= @from AS in_range
  FROM container_logs
  WHERE `timestamp` >= TIMESTAMP_SUB(@from, INTERVAL 1 DAY) AND `timestamp` < @to
    AND namespace IN UNNEST(@namespaces)
)
SELECT
  namespace, pod, container,
  COUNTIF(in_range) AS lines,
  SUM(IF(in_range, bytes, 0)) AS message_bytes,
  MIN(IF(in_range, `timestamp`, NULL)) AS first_seen,
  MAX(`timestamp`) AS last_seen,
  COUNTIF(NOT in_range) = 0 AS new_in_range
FROM lines
GROUP BY namespace, pod, container
HAVING COUNTIF(in_range) > 0
ORDER BY lines DESC, namespace, pod, container
LIMIT @limit;
