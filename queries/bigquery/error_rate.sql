-- title: Error rate per namespace and container, per hour
-- answers: Which containers log errors, when, and what share of their lines are errors
--   (severity ERROR or FATAL, from the JSON level or the text patterns of _definitions.sql).
-- param: namespaces STRING_LIST namespaces to read, comma-separated; example: payments,checkout
-- param: from TIMESTAMP start of the range, inclusive, UTC; example: 2026-11-21
-- param: to TIMESTAMP end of the range, exclusive, UTC; example: 2026-11-22
-- cost: Prunes to the day partitions of the range and clusters on namespace; reads namespace,
--   container, timestamp and message. Severity parses JSON per line (slot time, not bytes billed).
-- run: prepend _definitions.sql (temp functions) in the same script; set the default dataset to the archive dataset.
SELECT
  namespace,
  container,
  TIMESTAMP_TRUNC(`timestamp`, HOUR) AS hour,
  COUNT(*) AS lines,
  COUNTIF(is_error(message)) AS errors,
  ROUND(COUNTIF(is_error(message)) / COUNT(*), 4) AS error_rate
FROM container_logs
WHERE `timestamp` >= @from AND `timestamp` < @to
  AND namespace IN UNNEST(@namespaces)
GROUP BY namespace, container, hour
ORDER BY hour, namespace, container;
