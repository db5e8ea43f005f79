-- After a lost reply, a settle is retried: this tells whether the first try landed (the row still
-- carries that attempt's token and has left running) and what the last recorded error was.
-- $1 ids.
SELECT j.id, j.lease_token, j.status, j.run_at,
       (SELECT e.error FROM job_errors e WHERE e.job_id = j.id ORDER BY e.id DESC LIMIT 1)
FROM jobs j WHERE j.id = ANY($1::bigint[]);
