-- Every worker row of the file, live or not (policy::worker_alive decides), once per task it has:
-- few rows, read whole by the unroutable check.
SELECT w.namespace, w.id, t.value AS task_name, w.lease_ms, w.unroutable_after_ms, w.started_at,
       w.last_seen_at
FROM workers AS w, json_each(w.tasks) AS t;
