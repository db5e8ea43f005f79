-- The task of a job just completed, for its breaker (settles of tasks with one only). $1 id.
SELECT task_name FROM jobs WHERE id = $1::bigint;
