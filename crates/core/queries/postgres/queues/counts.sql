-- Jobs of a namespace counted by queue and status, for queues(): the caller adds the paused
-- queues and puts the rows together (policy::queues::queue_rows). $1 namespace.
SELECT queue, status, COUNT(*) AS count FROM jobs WHERE namespace = $1::text GROUP BY queue, status;
