-- Schema version 9: the counters of migration 008 are kept in code (policy::counters, as on
-- SQLite): every statement that changes a job's status returns the rows it changed, and its
-- transaction appends the batch's summed deltas (counters/append.sql) before it commits. The
-- per-statement triggers are gone: they cost every UPDATE of jobs two transition tables and up to
-- two more statements, also for the updates that change no status.
-- The counters themselves are right as they stand (the triggers kept them to this commit), so
-- nothing is recounted.
DROP TRIGGER jobs_counted_insert ON jobs;
DROP TRIGGER jobs_counted_delete ON jobs;
DROP TRIGGER jobs_counted_update ON jobs;
DROP FUNCTION jobs_counted_insert();
DROP FUNCTION jobs_counted_delete();
DROP FUNCTION jobs_counted_update();
