-- One row per failed attempt; attempt is the 0-indexed retry_count of that attempt.
-- $1 job_id, $2 attempt, $3 error, $4 traceback, $5 now.
INSERT INTO job_errors (job_id, attempt, error, traceback, failed_at)
VALUES ($1::bigint, $2::bigint, $3::text, $4::text, $5::bigint);
