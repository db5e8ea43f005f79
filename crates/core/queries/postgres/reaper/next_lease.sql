-- How long until the earliest lease runs out, over every namespace of the schema, but for the
-- attempts not started ($1, as in reaper/expired.sql: their lease may have ended with the claim's
-- deadline while they wait, and the reaper has nothing to do about them), and the database's
-- clock (the reaper's last look at the database, for its blackouts).
WITH now AS MATERIALIZED (
    SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms
)
SELECT (SELECT MIN(lease_until) FROM jobs WHERE status = 1 AND id <> ALL ($1::bigint[]))
           - (SELECT ms FROM now),
       (SELECT ms FROM now);
