-- title: Trace lookup
-- answers: Every line that carries a trace id (in a JSON field or anywhere in the text),
--   across the namespaces given, in time order: one request's path through the services.
-- param: namespaces STRING_LIST namespaces the request may have crossed, comma-separated; example: ingress-nginx,payments,checkout
-- param: from TIMESTAMP start of the range, inclusive, UTC; example: 2026-11-21 10:00
-- param: to TIMESTAMP end of the range, exclusive, UTC; example: 2026-11-21 11:00
-- param: trace_id STRING the trace id, as logged; example: 4bf92f3577b34da6a3ce929d0e0e4736
-- cost: Prunes to the day partitions of the range; reads the returned columns of the namespaces.
-- run: prepend _definitions.sql (temp functions) in the same script; set the default dataset to the archive dataset.
SELECT `timestamp`, timestamp_nanos, namespace, pod, container, stream, message
FROM container_logs
WHERE `timestamp` >= @from AND `timestamp` < @to
  AND namespace IN UNNEST(@namespaces)
  AND STRPOS(message, @trace_id) > 0
ORDER BY `timestamp`, timestamp_nanos, batch_id, seq;
