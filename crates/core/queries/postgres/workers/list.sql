-- Every worker row of the schema, live or not (policy::worker_alive decides), once per task it has,
-- with the database's clock: few rows, read whole by the unroutable check.
SELECT w.namespace, w.id, t.name, w.lease_ms, w.unroutable_after_ms, w.started_at, w.last_seen_at
FROM workers AS w
CROSS JOIN LATERAL jsonb_array_elements_text(w.tasks::jsonb) AS t(name);
