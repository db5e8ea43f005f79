-- What the release of a blocked job needs: its run_at and arguments.
SELECT run_at, args FROM jobs WHERE id = :id AND status = 6;
