-- Pauses or resumes a schedule; a resume starts again from :next_run_at (the ticks missed while
-- paused are skipped), a pause keeps the stored one (NULL).
UPDATE schedules
SET paused = :paused, next_run_at = COALESCE(:next_run_at, next_run_at)
WHERE namespace = :namespace AND name = :name;
