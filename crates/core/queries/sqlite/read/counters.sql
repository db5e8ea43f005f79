-- Every key of the namespace's counters (migrations/008_observability.sql), by the primary key,
-- and the histogram buckets (metric 'bucket', label the upper bound in ms), so that the exposition
-- lists every bucket from the one list the triggers use.
SELECT metric, queue, task_name, label, n, total FROM counters
WHERE namespace = :namespace
UNION ALL
SELECT 'bucket', '', '', CAST(le_ms AS TEXT), 0, 0 FROM metric_buckets;
