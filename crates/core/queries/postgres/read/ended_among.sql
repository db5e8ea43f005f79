-- $1 ids (bigint[]) of one namespace, $2 namespace. Of the jobs callers wait for, those that ended
-- (complete 2, dead 4, cancelled 5) or are gone: after a settle in this process, one statement
-- for every waiter instead of a read of each waited job (with thousands of results awaited, those
-- reads queued on the pool for tens of seconds).
SELECT w.id
FROM unnest($1::bigint[]) AS w(id)
WHERE NOT EXISTS (
  SELECT 1 FROM jobs
  WHERE jobs.id = w.id AND jobs.namespace = $2::text AND jobs.status NOT IN (2, 4, 5)
);
