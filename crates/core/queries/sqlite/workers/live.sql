-- The namespace's worker rows (policy::worker_alive then keeps the live ones), once per queue the
-- worker takes jobs from (in its order), each with how many running jobs it holds, counted from the
-- running jobs only (jobs_leased): a few rows per worker.
-- `= +:name`, never `= :name`: see claim/ready.sql (SQLite 3.54 would re-prepare it at every run).
SELECT w.id, w.hostname, w.pid, q.value, w.concurrency, w.lease_ms, w.started_at,
       w.last_seen_at, COALESCE(r.n, 0)
FROM workers AS w
CROSS JOIN json_each(w.queues) AS q
LEFT JOIN (SELECT worker_id, COUNT(*) AS n FROM jobs INDEXED BY jobs_leased
           WHERE status = 1 AND namespace = +:namespace
           GROUP BY worker_id) AS r ON r.worker_id = w.id
WHERE w.namespace = +:namespace
ORDER BY w.started_at, w.id, q.key;
