-- Takes one tick: the compare-and-set on next_run_at that makes a tick one job over every process.
-- Only the process that read :expected changes the row; any other finds next_run_at moved on (or
-- the schedule paused or gone) and changes nothing. The caller inserts the job in this same
-- transaction only when a row changed.
UPDATE schedules
SET next_run_at = :next, last_run_at = :tick
WHERE namespace = :namespace AND name = :name AND next_run_at = :expected AND paused = 0;
