-- Ids for a batch, taken before the insert: they give the results in input order (RETURNING order
-- is unspecified) and let a retry after a lost COMMIT reply find out whether the batch landed.
-- $1: how many.
SELECT nextval(pg_get_serial_sequence('jobs', 'id')) FROM generate_series(1, $1::bigint);
