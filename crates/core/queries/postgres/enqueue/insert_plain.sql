-- The ending of enqueue/insert_rows.sql for a batch without uniqueKeys or dependencies: no row has
-- a key for jobs_unique_live to refuse, so every row is inserted and the caller knows the ids
-- and the counts beforehand. Hence no ON CONFLICT (an arbiter index makes every row a
-- speculative insertion: one more WAL record and an index probe each, about 15 % of the
-- statement for 1,000 rows), no ORDER BY and no RETURNING.
;
