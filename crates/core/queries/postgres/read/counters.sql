-- Every key of the namespace's counters (migrations/008_observability.sql): the sum of its delta
-- rows, few since the fold (counters/compact.sql).
-- $1 namespace.
SELECT metric, queue, task_name, label, SUM(n)::bigint, SUM(total)::bigint FROM counters
WHERE namespace = $1::text
GROUP BY metric, queue, task_name, label;
