-- Set once, in the replay's transaction: a second replay returns this job.
UPDATE dead_letters SET replayed_job_id = :job_id WHERE id = :id AND replayed_job_id IS NULL;
