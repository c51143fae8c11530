-- title: Log volume per namespace per day
-- answers: How many lines and message bytes each namespace logged each UTC day, for cost attribution.
--   Bytes are the UTF-8 length of `message`, the part of a record a team controls.
-- param: namespaces STRING_LIST namespaces to read, comma-separated; example: payments,checkout
-- param: from TIMESTAMP start of the range, inclusive, UTC; example: 2026-11-21
-- param: to TIMESTAMP end of the range, exclusive, UTC; example: 2026-11-22
-- cost: The timestamp filter prunes to the day partitions of the range; namespace is a clustering
--   column, so blocks of other namespaces are skipped. Reads namespace, timestamp and message.
-- run: prepend _definitions.sql (temp functions) in the same script; set the default dataset to the archive dataset.
SELECT
  namespace,
  DATE(`timestamp`) AS day,
  COUNT(*) AS lines,
  SUM(BYTE_LENGTH(message)) AS message_bytes
FROM container_logs
WHERE `timestamp` >= @from AND `timestamp` < @to
  AND namespace IN UNNEST(@namespaces)
GROUP BY namespace, day
ORDER BY day, namespace;
