-- Resumes a queue (a queue that is not paused stays as it is). The caller wakes waiting claims
-- after the commit: those of this process at once, other processes' through their data_version
-- watch.
DELETE FROM paused_queues WHERE namespace = :namespace AND queue = :queue;
