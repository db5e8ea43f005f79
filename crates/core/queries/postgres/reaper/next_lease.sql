-- How long until the earliest lease runs out, over every namespace of the schema, and the
-- database's clock (the reaper's last look at the database, for its blackouts).
WITH now AS MATERIALIZED (
    SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms
)
SELECT (SELECT MIN(lease_until) FROM jobs WHERE status = 1) - (SELECT ms FROM now),
       (SELECT ms FROM now);
