-- After many sweep deletes: makes the dead row versions of finished jobs reusable now rather
-- than at autovacuum's next visit (job_listing loses a row with each deleted job). SKIP_LOCKED: a
-- vacuum already running is left to finish. Unqualified: the connection's search_path names the
-- schema.
VACUUM (SKIP_LOCKED) jobs, job_errors, job_listing;
