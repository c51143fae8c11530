-- title: Pipeline health
-- answers: Objects and lines per namespace per hour, with every hour of the range listed so
--   that a gap shows as a row of zeros, and the newest timestamp per namespace (how far behind it is).
-- param: namespaces STRING_LIST namespaces to check, comma-separated; example: payments,checkout
-- param: from TIMESTAMP start of the range, inclusive, UTC (whole hours); example: 2026-11-21
-- param: to TIMESTAMP end of the range, exclusive, UTC; example: 2026-11-22
-- positional: namespaces, from, to, namespaces, from, to, from, from, to, to, from, to
-- cost: Reads only the namespace/dt/hour partitions of the range (partition projection).
-- run: create the view of _definitions.sql once; ExecutionParameters in the order of "positional" (a list fills its IN (?) with one ? per item).
WITH hours AS (
  SELECT n.namespace, g.hour
  FROM UNNEST(ARRAY[?]) AS n(namespace)
  CROSS JOIN UNNEST(sequence(
    date_trunc('hour', CAST(? AS timestamp)),
    date_add('millisecond', -1, CAST(? AS timestamp)),
    INTERVAL '1' HOUR)) AS g(hour)
),
loaded AS (
  SELECT namespace, date_trunc('hour', "timestamp") AS hour, count(DISTINCT batch_id) AS objects,
    count(*) AS lines, max("timestamp") AS newest
  FROM container_logs_v
  WHERE namespace IN (?)
  AND dt BETWEEN substr(?, 1, 10) AND substr(?, 1, 10)
  AND (dt > substr(?, 1, 10) OR hour >= substr(?, 12, 2))
  AND (dt < substr(?, 1, 10) OR hour <= substr(?, 12, 2))
  AND "timestamp" >= CAST(? AS timestamp) AND "timestamp" < CAST(? AS timestamp)
  GROUP BY namespace, date_trunc('hour', "timestamp")
)
SELECT
  h.namespace,
  h.hour,
  coalesce(l.objects, 0) AS objects,
  coalesce(l.lines, 0) AS lines,
  max(l.newest) OVER (PARTITION BY h.namespace) AS newest_in_namespace
FROM hours h
LEFT JOIN loaded l ON l.namespace = h.namespace AND l.hour = h.hour
ORDER BY h.namespace, h.hour;
