-- Folds the counter delta rows of the schema (every namespace) into one row per key, in one
-- statement. Exact under concurrency: a delta committed after this statement's snapshot is not
-- deleted and stays as it is; the caller holds counters/lock.sql, so two folds never take the
-- same rows in turns. Keys that sum to nothing (a queue with no jobs left) are dropped.
WITH gone AS (
    DELETE FROM counters RETURNING namespace, metric, queue, task_name, label, n, total
)
INSERT INTO counters (namespace, metric, queue, task_name, label, n, total)
SELECT namespace, metric, queue, task_name, label, SUM(n), SUM(total) FROM gone
GROUP BY namespace, metric, queue, task_name, label
HAVING SUM(n) <> 0 OR SUM(total) <> 0;
