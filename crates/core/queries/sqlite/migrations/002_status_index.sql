-- Version 2: no index entry changes when a job is claimed, and one instead of two when it settles.
-- jobs_status indexed every job by status, so every status change moved an entry in it (two
-- b-tree writes), a quarter of the writer's time in a drain. The statuses it helped to count
-- are now counted from the partial indexes: pending and failed from jobs_ready, running from
-- jobs_leased, and the rest from jobs_settled below, which a job enters once, when it leaves
-- running for good or for a retry.
DROP INDEX jobs_status;
CREATE INDEX jobs_settled ON jobs (namespace, status) WHERE status NOT IN (0, 1);
