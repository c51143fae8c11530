-- title: Pipeline health
-- answers: Objects and lines per namespace per hour, with every hour of the range listed so
--   that a gap shows as a row of zeros, and the newest timestamp per namespace (how far behind it is).
-- param: namespaces STRING_LIST namespaces to check, comma-separated; example: payments,checkout
-- param: from TIMESTAMP start of the range, inclusive, UTC (whole hours); example: 2026-11-21
-- param: to TIMESTAMP end of the range, exclusive, UTC; example: 2026-11-22
-- cost: Scans namespace, timestamp and batch_id only.
WITH hours AS (
  SELECT unnest(string_split($namespaces, ',')) AS namespace, hour
  FROM generate_series(
    date_trunc('hour', $from::TIMESTAMP),
    $to::TIMESTAMP - INTERVAL 1 MICROSECOND,
    INTERVAL 1 HOUR
  ) AS g(hour)
),
loaded AS (
  SELECT namespace, date_trunc('hour', "timestamp") AS hour, count(DISTINCT batch_id) AS objects,
    count(*) AS lines, max("timestamp") AS newest
  FROM container_logs
  WHERE list_contains(string_split($namespaces, ','), namespace)
    AND "timestamp" >= $from::TIMESTAMP AND "timestamp" < $to::TIMESTAMP
  GROUP BY ALL
)
SELECT
  h.namespace,
  h.hour,
  coalesce(l.objects, 0) AS objects,
  coalesce(l.lines, 0) AS lines,
  max(l.newest) OVER (PARTITION BY h.namespace) AS newest_in_namespace
FROM hours h
LEFT JOIN loaded l USING (namespace, hour)
ORDER BY h.namespace, h.hour;
