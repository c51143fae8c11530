-- title: Trace lookup
-- answers: Every line that carries a trace id (in a JSON field or anywhere in the text),
--   across the namespaces given, in time order: one request's path through the services.
-- param: namespaces STRING_LIST namespaces the request may have crossed, comma-separated; example: ingress-nginx,payments,checkout
-- param: from TIMESTAMP start of the range, inclusive, UTC; example: 2026-11-21 10:00
-- param: to TIMESTAMP end of the range, exclusive, UTC; example: 2026-11-21 11:00
-- param: trace_id STRING the trace id, as logged; example: 4bf92f3577b34da6a3ce929d0e0e4736
-- positional: namespaces, from, to, from, from, to, to, from, to, trace_id
-- cost: Reads only the namespace/dt/hour partitions of the range; the injected namespace projection
--   means the namespaces must be named (there is no "all namespaces" scan by design).
-- run: create the view of _definitions.sql once; ExecutionParameters in the order of "positional" (a list fills its IN (?) with one ? per item).
SELECT "timestamp", timestamp_nanos, namespace, pod, container, stream, message
FROM container_logs_v
WHERE namespace IN (?)
  AND dt BETWEEN substr(?, 1, 10) AND substr(?, 1, 10)
  AND (dt > substr(?, 1, 10) OR hour >= substr(?, 12, 2))
  AND (dt < substr(?, 1, 10) OR hour <= substr(?, 12, 2))
  AND "timestamp" >= CAST(? AS timestamp) AND "timestamp" < CAST(? AS timestamp)
  AND strpos(message, ?) > 0
ORDER BY "timestamp", timestamp_nanos, batch_id, seq;
