-- title: Latency percentiles per path
-- answers: p50, p95 and p99 request latency in milliseconds per container and path, from JSON
--   logs (path/route/url with latency_ms/duration_ms/responseTime, "-" when the line names no
--   path) and from nginx/ingress access lines (the request path without its query string, and
--   $request_time).
-- param: namespaces STRING_LIST namespaces to read, comma-separated; example: ingress-nginx,payments
-- param: from TIMESTAMP start of the range, inclusive, UTC; example: 2026-11-21
-- param: to TIMESTAMP end of the range, exclusive, UTC; example: 2026-11-22
-- cost: Scans namespace, container, timestamp and message; exact percentiles (quantile_cont).
WITH timed AS (
  SELECT namespace, container, 'json' AS source,
    coalesce(json_field(message, '$.path'), json_field(message, '$.route'), json_field(message, '$.url'), '-') AS path,
    TRY_CAST(coalesce(json_field(message, '$.latency_ms'), json_field(message, '$.duration_ms'),
      json_field(message, '$.responseTime')) AS DOUBLE) AS latency_ms
  FROM container_logs
  WHERE list_contains(string_split($namespaces, ','), namespace)
    AND "timestamp" >= $from::TIMESTAMP AND "timestamp" < $to::TIMESTAMP
    AND json_valid(message)
  UNION ALL
  SELECT namespace, container, 'access' AS source,
    regexp_extract(message, '"[A-Z]+ ([^ ?"]+)[^"]* HTTP/[0-9.]+" [0-9]{3} [0-9]+ "[^"]*" "[^"]*" [0-9]+ ([0-9.]+)', 1),
    TRY_CAST(regexp_extract(message, '"[A-Z]+ ([^ ?"]+)[^"]* HTTP/[0-9.]+" [0-9]{3} [0-9]+ "[^"]*" "[^"]*" [0-9]+ ([0-9.]+)', 2) AS DOUBLE) * 1000
  FROM container_logs
  WHERE list_contains(string_split($namespaces, ','), namespace)
    AND "timestamp" >= $from::TIMESTAMP AND "timestamp" < $to::TIMESTAMP
    AND NOT json_valid(message)
    AND regexp_matches(message, 'HTTP/[0-9.]+" [0-9]{3} ')
)
SELECT
  namespace, container, source, path,
  count(*) AS requests,
  round(quantile_cont(latency_ms, 0.5), 1) AS p50_ms,
  round(quantile_cont(latency_ms, 0.95), 1) AS p95_ms,
  round(quantile_cont(latency_ms, 0.99), 1) AS p99_ms
FROM timed
WHERE latency_ms IS NOT NULL AND path <> ''
GROUP BY namespace, container, source, path
ORDER BY requests DESC, namespace, container, path;
