-- A transaction's counts (policy::counters, folded per key in code) appended as delta rows, one
-- statement for the whole batch. Append-only: concurrent workers never wait on a counter row;
-- the fold (counters/compact.sql) sums them back to one row per key.
-- Arrays, one element per key: $1 namespace, $2 metric, $3 queue, $4 task_name, $5 label, $6 n,
-- $7 total.
INSERT INTO counters (namespace, metric, queue, task_name, label, n, total)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[],
                     $7::bigint[]);
