-- Running: the worker's heartbeat learns the request and aborts the attempt. $1 id.
UPDATE jobs SET cancel_requested = TRUE WHERE id = $1::bigint AND status = 1;
