-- A new job with dependencies still to complete: out of the ready index until its release. $1 id.
UPDATE jobs SET status = 6 WHERE id = $1::bigint;
