-- How long until the earliest lease runs out, over every namespace of the schema.
SELECT MIN(lease_until) - (extract(epoch FROM clock_timestamp()) * 1000)::bigint
FROM jobs WHERE status = 1;
