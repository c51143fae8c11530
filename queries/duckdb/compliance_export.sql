-- title: Compliance export
-- answers: Every line of one namespace in a range, in time order, each with the archive
--   object that holds it (the key under <prefix>/<tier>/, which `aws s3 cp` can fetch as written).
-- param: namespace NAMESPACE the namespace to export; example: payments
-- param: from TIMESTAMP start of the range, inclusive, UTC; example: 2026-11-01
-- param: to TIMESTAMP end of the range, exclusive, UTC; example: 2026-12-01
-- cost: Reads every column of the namespace and range: export to a file (--format csv|json).
SELECT
  *,
  'namespace=' || namespace || '/' || strftime("timestamp", 'dt=%Y-%m-%d/hour=%H') || '/' || batch_id || '.ndjson.gz'
    AS archive_object
FROM container_logs
WHERE namespace = $namespace
  AND "timestamp" >= $from::TIMESTAMP AND "timestamp" < $to::TIMESTAMP
ORDER BY "timestamp", timestamp_nanos, batch_id, seq;
