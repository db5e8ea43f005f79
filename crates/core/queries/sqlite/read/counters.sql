-- Every key of the namespace's counters (migrations/008_observability.sql), by the primary key.
SELECT metric, queue, task_name, label, n, total FROM counters
WHERE namespace = :namespace;
