-- What the release of blocked job $1 needs: its run_at and arguments; the database's clock.
SELECT run_at, args, (extract(epoch FROM clock_timestamp()) * 1000)::bigint
FROM jobs WHERE id = $1::bigint AND status = 6;
