-- The BEGIN of a claim (claim/claim.sql), with the claim's plan taken from the plan cache: left to
-- itself, PostgreSQL keeps choosing a custom plan for claim.sql (its generic plan's estimate is
-- far above a custom plan's for a small limit) and so plans it anew at every execution, 0.4-0.7
-- ms of the server's time per claim against about 0.2 ms of execution: most of the wait between
-- a NOTIFY's arrival and the job's start. The generic plan reads the same index the same way
-- (claim.sql keeps it safe for any limit). A settle batch of completes only begins the same way:
-- settle/complete.sql was re-planned at every call too (about 0.6 ms), and its generic plan reads
-- jobs by the primary key alone (the lookup per settle is a LATERAL); a batch that must run more
-- (a job with dependents) sets the mode back first. LOCAL: only this transaction; plan_cache_mode
-- exists from PostgreSQL 12, older servers get a plain BEGIN (`Inner::generic_begin`).
BEGIN;
SET LOCAL plan_cache_mode = force_generic_plan;
