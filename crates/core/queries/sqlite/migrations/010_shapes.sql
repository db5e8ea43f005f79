-- Version 10: a claim costs neither O(queues) nor O(delayed jobs) (docs/PERFORMANCE.md, "Shapes").
--
-- jobs_ready is per (namespace, queue, task): a worker serving 50 queues read 50 ranges per claim
-- and merged them (policy::claim_plan). jobs_due holds the same rows in claim order over the whole
-- namespace, so such a claim reads one priority level at a time from the front, due jobs only
-- (run_at follows the priority: the range stops at the first job not yet due, however many
-- delayed jobs sit behind it), and checks each row's queue and task itself.
-- jobs_ready stays: a worker of one queue and task reads it without passing over anybody else's
-- jobs, and the unroutable check and a claim's wake-up time step through it by (queue, task).
CREATE INDEX jobs_due ON jobs (namespace, priority DESC, run_at, id) WHERE status IN (0, 3);
