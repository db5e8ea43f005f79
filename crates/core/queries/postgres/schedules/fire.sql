-- Takes one tick: the compare-and-set on next_run_at that makes a tick one job over every process.
-- Only the process that read $5 changes the row (a concurrent one waits for this row lock, then
-- finds next_run_at moved on and changes nothing); a paused or removed schedule changes nothing.
-- The caller inserts the job in this same transaction only when a row changed.
-- $1 namespace, $2 name, $3 next, $4 tick, $5 expected.
UPDATE schedules
SET next_run_at = $3::bigint, last_run_at = $4::bigint
WHERE namespace = $1::text AND name = $2::text AND next_run_at = $5::bigint AND NOT paused;
