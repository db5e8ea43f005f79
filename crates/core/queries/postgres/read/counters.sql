-- Every key of the namespace's counters (migrations/008_observability.sql): the sum of its delta
-- rows, few since the fold (counters/compact.sql); and the histogram buckets (metric 'bucket',
-- label the upper bound in ms), so that the exposition lists every bucket from the one list the
-- triggers use.
-- $1 namespace.
SELECT metric, queue, task_name, label, SUM(n)::bigint, SUM(total)::bigint FROM counters
WHERE namespace = $1::text
GROUP BY metric, queue, task_name, label
UNION ALL
SELECT 'bucket', '', '', le_ms::text, 0, 0 FROM metric_buckets;
