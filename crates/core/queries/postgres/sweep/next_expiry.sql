-- How long until the earliest result expires.
SELECT MIN(expires_at) - (extract(epoch FROM clock_timestamp()) * 1000)::bigint
FROM jobs WHERE expires_at IS NOT NULL;
