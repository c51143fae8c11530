-- title: Latency percentiles per path
-- answers: p50, p95 and p99 request latency in milliseconds per container and path, from JSON
--   logs (path/route/url with latency_ms/duration_ms/responseTime, "-" when the line names no
--   path) and from nginx/ingress access lines (the request path without its query string, and
--   $request_time).
-- param: namespaces STRING_LIST namespaces to read, comma-separated; example: ingress-nginx,payments
-- param: from TIMESTAMP start of the range, inclusive, UTC; example: 2026-11-21
-- param: to TIMESTAMP end of the range, exclusive, UTC; example: 2026-11-22
-- positional: namespaces, from, to, from, from, to, to, from, to, namespaces, from, to, from, from, to, to, from, to
-- cost: Reads only the namespace/dt/hour partitions of the range, twice (one pass per source; Athena
--   bills both). Percentiles are approx_percentile.
-- run: create the view of _definitions.sql once; ExecutionParameters in the order of "positional" (a list fills its IN (?) with one ? per item).
WITH timed AS (
  SELECT namespace, container, 'json' AS source,
    coalesce(json_extract_scalar(try(json_parse(message)), '$.path'), json_extract_scalar(try(json_parse(message)), '$.route'),
      json_extract_scalar(try(json_parse(message)), '$.url'), '-') AS path,
    try_cast(coalesce(json_extract_scalar(try(json_parse(message)), '$.latency_ms'),
      json_extract_scalar(try(json_parse(message)), '$.duration_ms'),
      json_extract_scalar(try(json_parse(message)), '$.responseTime')) AS double) AS latency_ms
  FROM container_logs_v
  WHERE namespace IN (?)
    AND dt BETWEEN substr(?, 1, 10) AND substr(?, 1, 10)
    AND (dt > substr(?, 1, 10) OR hour >= substr(?, 12, 2))
    AND (dt < substr(?, 1, 10) OR hour <= substr(?, 12, 2))
    AND "timestamp" >= CAST(? AS timestamp) AND "timestamp" < CAST(? AS timestamp)
    AND is_json
  UNION ALL
  SELECT namespace, container, 'access' AS source,
    regexp_extract(message, '"[A-Z]+ ([^ ?"]+)[^"]* HTTP/[0-9.]+" [0-9]{3} [0-9]+ "[^"]*" "[^"]*" [0-9]+ ([0-9.]+)', 1),
    try_cast(regexp_extract(message, '"[A-Z]+ ([^ ?"]+)[^"]* HTTP/[0-9.]+" [0-9]{3} [0-9]+ "[^"]*" "[^"]*" [0-9]+ ([0-9.]+)', 2) AS double) * 1000
  FROM container_logs_v
  WHERE namespace IN (?)
    AND dt BETWEEN substr(?, 1, 10) AND substr(?, 1, 10)
    AND (dt > substr(?, 1, 10) OR hour >= substr(?, 12, 2))
    AND (dt < substr(?, 1, 10) OR hour <= substr(?, 12, 2))
    AND "timestamp" >= CAST(? AS timestamp) AND "timestamp" < CAST(? AS timestamp)
    AND NOT is_json
    AND regexp_like(message, 'HTTP/[0-9.]+" [0-9]{3} ')
)
SELECT
  namespace, container, source, path,
  count(*) AS requests,
  round(approx_percentile(latency_ms, 0.5), 1) AS p50_ms,
  round(approx_percentile(latency_ms, 0.95), 1) AS p95_ms,
  round(approx_percentile(latency_ms, 0.99), 1) AS p99_ms
FROM timed
WHERE latency_ms IS NOT NULL AND path <> ''
GROUP BY namespace, container, source, path
ORDER BY requests DESC, namespace, container, path;
