-- Running: the worker's heartbeat learns the request and aborts the attempt.
UPDATE jobs SET cancel_requested = 1
WHERE id = :id AND namespace = :namespace AND status = 1;
