-- One edge: $1 waits on $2; $3 orders the results it may take.
INSERT INTO job_dependencies (job_id, depends_on_id, position)
VALUES ($1::bigint, $2::bigint, $3::bigint)
ON CONFLICT DO NOTHING;
