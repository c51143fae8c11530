-- title: Latency percentiles per path
-- answers: p50, p95 and p99 request latency in milliseconds per container and path, from JSON
--   logs (path/route/url with latency_ms/duration_ms/responseTime, "-" when the line names no
--   path) and from nginx/ingress access lines (the request path without its query string, and
--   $request_time).
-- param: namespaces STRING_LIST namespaces to read, comma-separated; example: ingress-nginx,payments
-- param: from TIMESTAMP start of the range, inclusive, UTC; example: 2026-11-21
-- param: to TIMESTAMP end of the range, exclusive, UTC; example: 2026-11-22
-- cost: Prunes to the day partitions of the range; reads namespace, container, timestamp and
--   message. Percentiles are APPROX_QUANTILES (within about 1% of DuckDB's exact ones).
-- run: prepend _definitions.sql (temp functions) in the same script; set the default dataset to the archive dataset.
WITH timed AS (
  SELECT namespace, container, 'json' AS source,
    COALESCE(json_field(message, '$.path'), json_field(message, '$.route'), json_field(message, '$.url'), '-') AS path,
    SAFE_CAST(COALESCE(json_field(message, '$.latency_ms'), json_field(message, '$.duration_ms'),
      json_field(message, '$.responseTime')) AS FLOAT64) AS latency_ms
  FROM container_logs
  WHERE `timestamp` >= @from AND `timestamp` < @to
    AND namespace IN UNNEST(@namespaces)
    AND SAFE.PARSE_JSON(message, wide_number_mode => 'round') IS NOT NULL
  UNION ALL
  SELECT namespace, container, 'access' AS source,
    REGEXP_EXTRACT(message, r'"[A-Z]+ ([^ ?"]+)[^"]* HTTP/[0-9.]+" [0-9]{3} [0-9]+ "[^"]*" "[^"]*" [0-9]+ (?:[0-9.]+)'),
    SAFE_CAST(REGEXP_EXTRACT(message, r'"[A-Z]+ (?:[^ ?"]+)[^"]* HTTP/[0-9.]+" [0-9]{3} [0-9]+ "[^"]*" "[^"]*" [0-9]+ ([0-9.]+)') AS FLOAT64) * 1000
  FROM container_logs
  WHERE `timestamp` >= @from AND `timestamp` < @to
    AND namespace IN UNNEST(@namespaces)
    AND SAFE.PARSE_JSON(message, wide_number_mode => 'round') IS NULL
    AND REGEXP_CONTAINS(message, r'HTTP/[0-9.]+" [0-9]{3} ')
)
SELECT
  namespace, container, source, path,
  COUNT(*) AS requests,
  ROUND(APPROX_QUANTILES(latency_ms, 100)[OFFSET(50)], 1) AS p50_ms,
  ROUND(APPROX_QUANTILES(latency_ms, 100)[OFFSET(95)], 1) AS p95_ms,
  ROUND(APPROX_QUANTILES(latency_ms, 100)[OFFSET(99)], 1) AS p99_ms
FROM timed
WHERE latency_ms IS NOT NULL AND path <> ''
GROUP BY namespace, container, source, path
ORDER BY requests DESC, namespace, container, path;
