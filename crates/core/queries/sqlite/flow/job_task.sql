-- The task of a job just completed, for its breaker (settles of tasks with one only).
SELECT task_name FROM jobs WHERE id = :id;
