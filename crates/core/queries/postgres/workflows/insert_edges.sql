-- The edges of job $1: it waits on each of $2, their position in $2 ordering the results it may take.
INSERT INTO job_dependencies (job_id, depends_on_id, position)
SELECT $1::bigint, t.dep, t.pos - 1
FROM unnest($2::bigint[]) WITH ORDINALITY AS t(dep, pos)
ON CONFLICT DO NOTHING;
