-- A new job with dependencies still to complete: out of the ready index until its release.
UPDATE jobs SET status = 6 WHERE id = :id;
