-- The database's clock, in milliseconds since the epoch: every lease, schedule and timestamp of
-- the PostgreSQL store is taken from it, so machines with skewed clocks agree.
SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
