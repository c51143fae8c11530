-- title: Error rate per namespace and container, per hour
-- answers: Which containers log errors, when, and what share of their lines are errors
--   (severity ERROR or FATAL, from the JSON level or the text patterns of _definitions.sql).
-- param: namespaces STRING_LIST namespaces to read, comma-separated; example: payments,checkout
-- param: from TIMESTAMP start of the range, inclusive, UTC; example: 2026-11-21
-- param: to TIMESTAMP end of the range, exclusive, UTC; example: 2026-11-22
-- positional: namespaces, from, to, from, from, to, to, from, to
-- cost: Reads only the namespace/dt/hour partitions of the range (partition projection); billed on
--   the gzip bytes of those objects.
-- run: create the view of _definitions.sql once; ExecutionParameters in the order of "positional" (a list fills its IN (?) with one ? per item).
SELECT
  namespace,
  container,
  date_trunc('hour', "timestamp") AS hour,
  count(*) AS lines,
  count_if(severity IN ('ERROR', 'FATAL')) AS errors,
  round(CAST(count_if(severity IN ('ERROR', 'FATAL')) AS double) / count(*), 4) AS error_rate
FROM container_logs_v
WHERE namespace IN (?)
  AND dt BETWEEN substr(?, 1, 10) AND substr(?, 1, 10)
  AND (dt > substr(?, 1, 10) OR hour >= substr(?, 12, 2))
  AND (dt < substr(?, 1, 10) OR hour <= substr(?, 12, 2))
  AND "timestamp" >= CAST(? AS timestamp) AND "timestamp" < CAST(? AS timestamp)
GROUP BY namespace, container, date_trunc('hour', "timestamp")
ORDER BY hour, namespace, container;
