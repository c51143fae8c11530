-- title: Noisiest pods and containers
-- answers: The top talkers of a range (lines and message bytes per pod and container), with
--   first and last line in the range, and whether the container is new: it logged nothing in
--   the day before the range.
-- param: namespaces STRING_LIST namespaces to read, comma-separated; example: payments,checkout
-- param: from TIMESTAMP start of the range, inclusive, UTC; example: 2026-11-21
-- param: to TIMESTAMP end of the range, exclusive, UTC; example: 2026-11-22
-- param: limit INT64 how many containers to list; example: 20; default: 20
-- cost: Scans namespace, pod, container, timestamp and message of the range and the day before it.
-- lookback_hours: 24
WITH lines AS (
  SELECT namespace, pod, container, "timestamp", strlen(message) AS bytes,
    "timestamp" >= $from::TIMESTAMP AS in_range
  FROM container_logs
  WHERE list_contains(string_split($namespaces, ','), namespace)
    AND "timestamp" >= $from::TIMESTAMP - INTERVAL 1 DAY AND "timestamp" < $to::TIMESTAMP
)
SELECT
  namespace, pod, container,
  count(*) FILTER (WHERE in_range) AS lines,
  sum(bytes) FILTER (WHERE in_range) AS message_bytes,
  min("timestamp") FILTER (WHERE in_range) AS first_seen,
  max("timestamp") AS last_seen,
  count(*) FILTER (WHERE NOT in_range) = 0 AS new_in_range
FROM lines
GROUP BY namespace, pod, container
HAVING count(*) FILTER (WHERE in_range) > 0
ORDER BY lines DESC, namespace, pod, container
LIMIT $limit;
