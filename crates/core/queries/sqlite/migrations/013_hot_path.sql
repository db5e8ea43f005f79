-- Version 13: one index entry fewer to move per attempt. jobs_running (the running attempts per
-- task, for the concurrency cap and the half-open probes) took an entry at every claim and gave
-- it back at every settle, reap, release or cancel: two of the seven index entries a claim and a
-- complete moved. Those counts now read jobs_leased (flow/running.sql), which indexes the same
-- rows (status = 1) and is kept for the reaper anyway: they scan the running jobs of the file,
-- which the workers' concurrency bounds, and only for tasks with a concurrency cap or a
-- half-open breaker. Still counted from the jobs themselves, so every way an attempt ends gives
-- its slot back with no counter to keep right. docs/PERFORMANCE.md ("Hot path, round 2") gives
-- the measured cost.
DROP INDEX jobs_running;
