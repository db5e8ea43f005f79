-- One key's summed delta of a transaction (policy::counters): one upsert per key per commit.
INSERT INTO counters (namespace, metric, queue, task_name, label, n, total)
VALUES (:namespace, :metric, :queue, :task_name, :label, :n, :total)
ON CONFLICT (namespace, metric, queue, task_name, label) DO UPDATE
SET n = n + excluded.n, total = total + excluded.total;
