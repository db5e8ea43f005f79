-- Pauses or resumes a schedule; a resume starts again from $4 (the ticks missed while paused are
-- skipped), a pause keeps the stored one (NULL). $1 namespace, $2 name, $3 paused, $4 next_run_at.
UPDATE schedules
SET paused = $3::bool, next_run_at = COALESCE($4::bigint, next_run_at)
WHERE namespace = $1::text AND name = $2::text;
