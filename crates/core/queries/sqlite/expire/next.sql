-- The earliest start-by time of a pending job (jobs_start_by): when the expiry sweep is next due.
SELECT MIN(start_by) FROM jobs WHERE status = 0 AND start_by IS NOT NULL;
