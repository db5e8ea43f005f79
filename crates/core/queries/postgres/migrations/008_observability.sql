-- Schema version 8: observability, the twin of queries/sqlite/migrations/008_observability.sql
-- (same table, keys and meaning: read that file's comments for the metrics and labels).
--
-- Unlike SQLite, several processes write at once here: one counter row per key updated by every
-- settle would serialize all workers on its row lock and bloat with a dead version per update. So
-- the triggers are per STATEMENT, over its transition tables: each claim, settle, enqueue or sweep
-- batch appends one aggregated delta row per key it changed, and nothing is ever updated in place
-- by a worker (appends do not wait on each other). A reader sums the rows of a key; the sweep loop
-- folds them (counters/compact.sql) so the table stays a few rows per key whatever the number of
-- jobs. The counts are exact: a delta commits with the change it counts, in its transaction.
CREATE TABLE counters (
    namespace TEXT   NOT NULL,
    metric    TEXT   NOT NULL,
    queue     TEXT   NOT NULL,
    task_name TEXT   NOT NULL,
    label     TEXT   NOT NULL,
    n         BIGINT NOT NULL,
    total     BIGINT NOT NULL DEFAULT 0
);
-- Small and churned by the fold: vacuumed often so that reads do not wade through dead rows.
ALTER TABLE counters SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);

CREATE TABLE metric_buckets (le_ms BIGINT PRIMARY KEY);
INSERT INTO metric_buckets (le_ms) VALUES (5), (10), (25), (50), (100), (250), (500), (1000),
    (2500), (5000), (10000), (30000), (60000), (300000), (900000), (3600000);

ALTER TABLE jobs ADD COLUMN trace_context TEXT;

INSERT INTO counters (namespace, metric, queue, task_name, label, n, total)
SELECT namespace, 'jobs', queue, '', status::text, COUNT(*), 0 FROM jobs
GROUP BY namespace, queue, status;

-- search_path FROM CURRENT: the functions find this schema's tables whatever the caller's path.
CREATE FUNCTION jobs_counted_insert() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO counters (namespace, metric, queue, task_name, label, n, total)
    SELECT namespace, 'jobs', queue, '', status::text, COUNT(*), 0 FROM new_rows
    GROUP BY namespace, queue, status
    UNION ALL
    SELECT namespace, 'enqueued', '', task_name, '', COUNT(*), 0 FROM new_rows
    GROUP BY namespace, task_name;
    RETURN NULL;
END $$;

CREATE FUNCTION jobs_counted_delete() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO counters (namespace, metric, queue, task_name, label, n, total)
    SELECT namespace, 'jobs', queue, '', status::text, -COUNT(*), 0 FROM old_rows
    GROUP BY namespace, queue, status;
    RETURN NULL;
END $$;

-- Every UPDATE of jobs (a column list is not allowed with transition tables): rows whose status
-- did not change cancel out in the sums and write nothing. Attempts and waits as in the SQLite
-- triggers: a claim is ready → running, an attempt's end is running → 2, 3, 4 or 5.
CREATE FUNCTION jobs_counted_update() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO counters (namespace, metric, queue, task_name, label, n, total)
    SELECT namespace, 'jobs', queue, '', status::text, SUM(d), 0
    FROM (SELECT namespace, queue, status, 1 AS d FROM new_rows
          UNION ALL
          SELECT namespace, queue, status, -1 FROM old_rows) AS s
    GROUP BY namespace, queue, status
    HAVING SUM(d) <> 0;

    WITH moved AS (
        SELECT n.namespace, n.task_name, o.status AS was, n.status AS now, n.error,
               CASE WHEN n.status = 1 THEN GREATEST(0, n.started_at - o.run_at)
                    ELSE GREATEST(0, COALESCE(n.finished_at,
                             (extract(epoch FROM clock_timestamp()) * 1000)::bigint)
                         - o.started_at) END AS ms
        FROM old_rows AS o JOIN new_rows AS n ON n.id = o.id
        WHERE (o.status IN (0, 3) AND n.status = 1) OR (o.status = 1 AND n.status IN (2, 3, 4, 5))
    ), observed AS (
        SELECT namespace, CASE WHEN now = 1 THEN 'wait' ELSE 'duration' END AS metric, task_name,
               COALESCE((SELECT MIN(le_ms) FROM metric_buckets WHERE le_ms >= ms)::text, '+Inf')
                   AS label, ms
        FROM moved
        UNION ALL
        SELECT namespace, 'attempts', task_name,
               CASE now WHEN 2 THEN 'complete' WHEN 5 THEN 'cancelled'
                   ELSE CASE WHEN left(error, 17) = 'TaskTimeoutError:' THEN 'timeout'
                        ELSE 'failed' END END, 0
        FROM moved WHERE now <> 1
        UNION ALL
        SELECT namespace, 'attempts', task_name, CASE now WHEN 3 THEN 'retried' ELSE 'dead' END, 0
        FROM moved WHERE was = 1 AND now IN (3, 4)
    )
    INSERT INTO counters (namespace, metric, queue, task_name, label, n, total)
    SELECT namespace, metric, '', task_name, label, COUNT(*), SUM(ms) FROM observed
    GROUP BY namespace, metric, task_name, label;
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_counted_insert AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION jobs_counted_insert();
CREATE TRIGGER jobs_counted_delete AFTER DELETE ON jobs
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION jobs_counted_delete();
CREATE TRIGGER jobs_counted_update AFTER UPDATE ON jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_counted_update();
