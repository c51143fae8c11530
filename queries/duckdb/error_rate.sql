-- title: Error rate per namespace and container, per hour
-- answers: Which containers log errors, when, and what share of their lines are errors
--   (severity ERROR or FATAL, from the JSON level or the text patterns of _definitions.sql).
-- param: namespaces STRING_LIST namespaces to read, comma-separated; example: payments,checkout
-- param: from TIMESTAMP start of the range, inclusive, UTC; example: 2026-11-21
-- param: to TIMESTAMP end of the range, exclusive, UTC; example: 2026-11-22
-- cost: Scans namespace, container, timestamp and message; severity parses JSON per line (CPU, not bytes).
SELECT
  namespace,
  container,
  date_trunc('hour', "timestamp") AS hour,
  count(*) AS lines,
  count(*) FILTER (WHERE is_error(message)) AS errors,
  round(count(*) FILTER (WHERE is_error(message)) / count(*), 4) AS error_rate
FROM container_logs
WHERE list_contains(string_split($namespaces, ','), namespace)
  AND "timestamp" >= $from::TIMESTAMP AND "timestamp" < $to::TIMESTAMP
GROUP BY namespace, container, hour
ORDER BY hour, namespace, container;
