-- Set once, in the replay's transaction: a second replay returns this job. $1 id, $2 job id.
UPDATE dead_letters SET replayed_job_id = $2::bigint WHERE id = $1::bigint AND replayed_job_id IS NULL;
