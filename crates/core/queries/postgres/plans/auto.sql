-- Back to the server's own choice between custom and generic plans for the rest of a transaction
-- that began with plans/generic_begin.sql: a settle batch whose completes left a job with
-- dependents runs the workflow statements next, whose generic plans were never checked.
SET LOCAL plan_cache_mode = auto;
