-- Jobs of a namespace counted by queue and status, for queues(): the caller adds the paused
-- queues and puts the rows together (policy::queues::queue_rows). Reads every job of the
-- namespace (no index is by queue and status); an inspection read, not on any worker's path.
SELECT queue, status, COUNT(*) AS count FROM jobs WHERE namespace = :namespace GROUP BY queue, status;
