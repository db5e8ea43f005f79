-- The namespace's worker rows (policy::worker_alive then keeps the live ones, on the database's
-- clock, the last column), once per queue the worker takes jobs from (in its order), each with
-- how many running jobs it holds, counted from the running jobs only.
-- $1 namespace.
SELECT w.id, w.hostname, w.pid, q.name, w.concurrency, w.lease_ms, w.started_at,
       w.last_seen_at, COALESCE(r.n, 0)::bigint,
       (extract(epoch FROM clock_timestamp()) * 1000)::bigint
FROM workers AS w
CROSS JOIN LATERAL jsonb_array_elements_text(w.queues::jsonb) WITH ORDINALITY AS q(name, i)
LEFT JOIN (SELECT worker_id, COUNT(*) AS n FROM jobs
           WHERE status = 1 AND namespace = $1::text
           GROUP BY worker_id) AS r ON r.worker_id = w.id
WHERE w.namespace = $1::text
ORDER BY w.started_at, w.id, q.i;
