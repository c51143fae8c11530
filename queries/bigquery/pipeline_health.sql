-- title: Pipeline health
-- answers: Objects and lines per namespace per hour, with every hour of the range listed so
--   that a gap shows as a row of zeros, and the newest timestamp per namespace (how far behind it is).
-- param: namespaces STRING_LIST namespaces to check, comma-separated; example: payments,checkout
-- param: from TIMESTAMP start of the range, inclusive, UTC (whole hours); example: 2026-11-21
-- param: to TIMESTAMP end of the range, exclusive, UTC; example: 2026-11-22
-- cost: Prunes to the day partitions of the range; reads namespace, timestamp and batch_id only.
-- run: prepend _definitions.sql (temp functions) in the same script; set the default dataset to the archive dataset.
WITH hours AS (
  SELECT namespace, hour
  FROM UNNEST(@namespaces) AS namespace
  CROSS JOIN UNNEST(GENERATE_TIMESTAMP_ARRAY(
    TIMESTAMP_TRUNC(@from, HOUR), TIMESTAMP_SUB(@to, INTERVAL 1 MICROSECOND), INTERVAL 1 HOUR)) AS hour
),
loaded AS (
  SELECT namespace, TIMESTAMP_TRUNC(`timestamp`, HOUR) AS hour, COUNT(DISTINCT batch_id) AS objects,
    COUNT(*) AS lines, MAX(`timestamp`) AS newest
  FROM container_logs
  WHERE `timestamp` >= @from AND `timestamp` < @to
    AND namespace IN UNNEST(@namespaces)
  GROUP BY namespace, hour
)
SELECT
  h.namespace,
  h.hour,
  COALESCE(l.objects, 0) AS objects,
  COALESCE(l.lines, 0) AS lines,
  MAX(l.newest) OVER (PARTITION BY h.namespace) AS newest_in_namespace
FROM hours h
LEFT JOIN loaded l USING (namespace, hour)
ORDER BY h.namespace, h.hour;
