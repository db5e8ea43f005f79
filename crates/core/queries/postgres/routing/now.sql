-- The database's clock, in ms since the epoch: what every timestamp of the schema is taken from.
SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
