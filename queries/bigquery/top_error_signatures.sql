-- title: Top error signatures
-- answers: The most frequent errors in a range, with numbers, UUIDs and hex ids replaced by
--   <n>, <uuid> and <hex> so that one error's occurrences count together; first and last seen.
--   Feed a signature to incident_timeline.
-- param: namespaces STRING_LIST namespaces to read, comma-separated; example: payments,checkout
-- param: from TIMESTAMP start of the range, inclusive, UTC; example: 2026-11-21
-- param: to TIMESTAMP end of the range, exclusive, UTC; example: 2026-11-22
-- param: limit INT64 how many signatures to list; example: 20; default: 20
-- cost: Prunes to the day partitions of the range; reads namespace, container, timestamp and message.
-- run: prepend _definitions.sql (temp functions) in the same script; set the default dataset to the archive dataset.
SELECT
  error_signature(message) AS signature,
  COUNT(*) AS occurrences,
  COUNT(DISTINCT CONCAT(namespace, '/', container)) AS containers,
  MIN(`timestamp`) AS first_seen,
  MAX(`timestamp`) AS last_seen
FROM container_logs
WHERE `timestamp` >= @from AND `timestamp` < @to
  AND namespace IN UNNEST(@namespaces)
  AND is_error(message)
GROUP BY signature
ORDER BY occurrences DESC, signature
LIMIT @limit;
