-- Version 12 (PostgreSQL; SQLite did the same in its version 13): one index entry fewer per claim.
-- No update of a job's status is HOT here (status is in the partial indexes' predicates), so every
-- claim wrote a new entry into jobs_running (the running attempts per task, for the concurrency
-- cap and the half-open probes) besides the entries every index takes. Those counts now read
-- jobs_leased (flow/running.sql), which indexes the same rows (status = 1) and is kept for the
-- reaper anyway: a scan of the running jobs of every namespace, which the workers' concurrency
-- bounds, and only for tasks with a concurrency cap or a half-open breaker. Still counted from the
-- jobs themselves, so every way an attempt ends gives its slot back with no counter to keep right.
-- docs/PERFORMANCE.md ("PostgreSQL: one index fewer per claim") has the measured cost.
DROP INDEX jobs_running;
