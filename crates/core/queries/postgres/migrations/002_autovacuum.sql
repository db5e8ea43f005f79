-- Version 2: autovacuum keeps up with a queue's churn. Every job leaves about three dead row
-- versions (claim, settle, the sweep's delete); with the server defaults autovacuum waits for
-- dead rows worth a fifth of the table and then runs throttled, so at thousands of jobs a second
-- the tables and their indexes grow faster than it reclaims them. Trigger it after 1% (plus
-- 1000 rows) and let it run unthrottled on these two tables. The sweep also vacuums them itself
-- (sweep/vacuum.sql), since autovacuum visits a database only once per autovacuum_naptime.
ALTER TABLE jobs SET (
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_cost_delay = 0,
    autovacuum_analyze_scale_factor = 0.05
);
ALTER TABLE job_errors SET (
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_cost_delay = 0
);
