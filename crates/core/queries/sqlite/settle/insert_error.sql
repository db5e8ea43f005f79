-- One row per failed attempt; attempt is the 0-indexed retry_count of that attempt.
INSERT INTO job_errors (job_id, attempt, error, traceback, failed_at)
VALUES (:job_id, :attempt, :error, :traceback, :now);
