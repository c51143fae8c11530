-- title: Log volume per namespace per day
-- answers: How many lines and message bytes each namespace logged each UTC day, for cost attribution.
--   Bytes are the UTF-8 length of `message`, the part of a record a team controls.
-- param: namespaces STRING_LIST namespaces to read, comma-separated; example: payments,checkout
-- param: from TIMESTAMP start of the range, inclusive, UTC; example: 2026-11-21
-- param: to TIMESTAMP end of the range, exclusive, UTC; example: 2026-11-22
-- positional: namespaces, from, to, from, from, to, to, from, to
-- cost: Partition projection reads only namespace=<each>/dt=<day>/hour=<each hour of the range> (both tiers);
--   the injected namespace projection requires the namespaces to be named. Athena bills the
--   gzip bytes of those objects: the whole lines, since NDJSON has no columns to skip.
-- run: create the view of _definitions.sql once; ExecutionParameters in the order of "positional" (a list fills its IN (?) with one ? per item).
SELECT
  namespace,
  CAST("timestamp" AS date) AS day,
  count(*) AS lines,
  sum(length(to_utf8(message))) AS message_bytes
FROM container_logs_v
WHERE namespace IN (?)
  AND dt BETWEEN substr(?, 1, 10) AND substr(?, 1, 10)
  AND (dt > substr(?, 1, 10) OR hour >= substr(?, 12, 2))
  AND (dt < substr(?, 1, 10) OR hour <= substr(?, 12, 2))
  AND "timestamp" >= CAST(? AS timestamp) AND "timestamp" < CAST(? AS timestamp)
GROUP BY namespace, CAST("timestamp" AS date)
ORDER BY day, namespace;
