-- A claim started attempts of a task whose row it read unchanged but for its bucket: the tokens
-- left (policy::flow::took) as of :refilled_at. The common write of a rate-limited claim, kept to
-- the two columns it changes (flow/write.sql writes the whole row when options or breaker moved).
UPDATE task_flow SET tokens = :tokens, refilled_at = :refilled_at
WHERE namespace = :namespace AND task_name = :task_name;
