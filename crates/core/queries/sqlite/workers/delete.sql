-- A worker closed (or was found gone: policy::worker_alive): its row leaves the workers table.
DELETE FROM workers WHERE namespace = :namespace AND id = :id;
