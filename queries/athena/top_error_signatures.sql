-- title: Top error signatures
-- answers: The most frequent errors in a range, with numbers, UUIDs and hex ids replaced by
--   <n>, <uuid> and <hex> so that one error's occurrences count together; first and last seen.
--   Feed a signature to incident_timeline.
-- param: namespaces STRING_LIST namespaces to read, comma-separated; example: payments,checkout
-- param: from TIMESTAMP start of the range, inclusive, UTC; example: 2026-11-21
-- param: to TIMESTAMP end of the range, exclusive, UTC; example: 2026-11-22
-- param: limit INT64 how many signatures to list; example: 20; default: 20
-- positional: namespaces, from, to, from, from, to, to, from, to, limit
-- cost: Reads only the namespace/dt/hour partitions of the range (partition projection).
-- run: create the view of _definitions.sql once; ExecutionParameters in the order of "positional" (a list fills its IN (?) with one ? per item).
SELECT
  error_signature AS signature,
  count(*) AS occurrences,
  count(DISTINCT concat(namespace, '/', container)) AS containers,
  min("timestamp") AS first_seen,
  max("timestamp") AS last_seen
FROM container_logs_v
WHERE namespace IN (?)
  AND dt BETWEEN substr(?, 1, 10) AND substr(?, 1, 10)
  AND (dt > substr(?, 1, 10) OR hour >= substr(?, 12, 2))
  AND (dt < substr(?, 1, 10) OR hour <= substr(?, 12, 2))
  AND "timestamp" >= CAST(? AS timestamp) AND "timestamp" < CAST(? AS timestamp)
  AND severity IN ('ERROR', 'FATAL')
GROUP BY error_signature
ORDER BY occurrences DESC, signature
LIMIT ?;
