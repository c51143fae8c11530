-- title: Noisiest pods and containers
-- answers: The top talkers of a range (lines and message bytes per pod and container), with
--   first and last line in the range, and whether the container is new: it logged nothing in
--   the day before the range.
-- param: namespaces STRING_LIST namespaces to read, comma-separated; example: payments,checkout
-- param: from TIMESTAMP start of the range, inclusive, UTC; example: 2026-11-21
-- param: to TIMESTAMP end of the range, exclusive, UTC; example: 2026-11-22
-- param: limit INT64 how many containers to list; example: 20; default: 20
-- positional: from, namespaces, from, to, from, from, to, to, from, to, limit
-- cost: Reads only the namespace/dt/hour partitions of the range and the day before it.
-- lookback_hours: 24
-- run: create the view of _definitions.sql once; ExecutionParameters in the order of "positional" (a list fills its IN (?) with one ? per item).
WITH lines AS (
  SELECT namespace, pod, container, "timestamp", length(to_utf8(message)) AS bytes,
    ("timestamp" >= CAST(? AS timestamp)) AS in_range
  FROM container_logs_v
  WHERE namespace IN (?)
    AND dt BETWEEN date_format(date_add('day', -1, CAST(? AS timestamp)), '%Y-%m-%d') AND substr(?, 1, 10)
    AND (dt > date_format(date_add('day', -1, CAST(? AS timestamp)), '%Y-%m-%d') OR hour >= substr(?, 12, 2))
    AND (dt < substr(?, 1, 10) OR hour <= substr(?, 12, 2))
    AND "timestamp" >= date_add('day', -1, CAST(? AS timestamp)) AND "timestamp" < CAST(? AS timestamp)
)
SELECT
  namespace, pod, container,
  count_if(in_range) AS lines,
  sum(IF(in_range, bytes, 0)) AS message_bytes,
  min(IF(in_range, "timestamp")) AS first_seen,
  max("timestamp") AS last_seen,
  count_if(NOT in_range) = 0 AS new_in_range
FROM lines
GROUP BY namespace, pod, container
HAVING count_if(in_range) > 0
ORDER BY lines DESC, namespace, pod, container
LIMIT ?;
