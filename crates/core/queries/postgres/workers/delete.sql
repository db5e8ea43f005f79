-- A worker closed (or was found gone: policy::worker_alive): its row leaves the workers table.
-- $1 namespace, $2 id.
DELETE FROM workers WHERE namespace = $1::text AND id = $2::text;
