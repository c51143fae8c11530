-- title: Compliance export
-- answers: Every line of one namespace in a range, in time order, each with the archive
--   object that holds it (the key under <prefix>/<tier>/, which `aws s3 cp` can fetch as written).
-- param: namespace NAMESPACE the namespace to export; example: payments
-- param: from TIMESTAMP start of the range, inclusive, UTC; example: 2026-11-01
-- param: to TIMESTAMP end of the range, exclusive, UTC; example: 2026-12-01
-- cost: Prunes to the day partitions of the range; reads every column: export to a table or GCS
--   (bq query --destination_table) rather than to the console.
-- run: prepend _definitions.sql (temp functions) in the same script; set the default dataset to the archive dataset.
SELECT
  *,
  CONCAT('namespace=', namespace, '/', FORMAT_TIMESTAMP('dt=%Y-%m-%d/hour=%H', `timestamp`), '/', batch_id, '.ndjson.gz')
    AS archive_object
FROM container_logs
WHERE `timestamp` >= @from AND `timestamp` < @to
  AND namespace = @namespace
ORDER BY `timestamp`, timestamp_nanos, batch_id, seq;
