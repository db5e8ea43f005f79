-- The ending of enqueue/insert_rows.sql for a batch without uniqueKeys or dependencies: no row has
-- a key for jobs_unique_live to refuse, so every row is inserted and the caller knows the ids
-- and the counts beforehand. Hence no ON CONFLICT (an arbiter index makes every row a
-- speculative insertion: one more WAL record and an index probe each, about 15 % of the
-- statement for 1,000 rows), no ORDER BY and no RETURNING: the jobs are listed (job_listing)
-- straight from the batch's arrays.
)
INSERT INTO job_listing (id, namespace, queue, task_name)
SELECT l.id, $1::text, l.queue, l.task_name
FROM unnest($2::bigint[], $3::text[], $4::text[]) AS l(id, queue, task_name);
