-- Newest first.
-- `= +:name`, never `= :name`: see claim/ready.sql (SQLite 3.54 would re-prepare it at every run).
SELECT id, job_id, task_name, queue, error, retry_count, args, failed_at, replayed_job_id
FROM dead_letters WHERE namespace = +:namespace
ORDER BY id DESC
LIMIT :limit + 0 OFFSET :offset;
