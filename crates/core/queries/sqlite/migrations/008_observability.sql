-- Version 8: observability. Counters of the jobs by (namespace, queue, status), so stats() reads a
-- few rows instead of counting jobs, and the figures queue.metrics() exposes (enqueued jobs,
-- attempts by outcome, attempt duration and wait histograms), all kept by TRIGGERS on jobs: every
-- path that inserts a job, changes its status or deletes it (today's and any written later, in
-- either core) keeps them exact, inside the transaction that made the change, so they cannot
-- drift and survive restarts. The same shape on PostgreSQL (queries/postgres/migrations), where
-- the triggers are per statement (each settle or claim batch writes one aggregated row per key).

-- One row per key. metric / label:
--   'jobs'      jobs now in `queue` with status `label` ('0'..'5'; n goes up and down)
--   'enqueued'  jobs ever inserted of task `task_name` (label '')
--   'attempts'  attempts of `task_name` that ended with outcome `label`: complete, failed,
--               timeout, cancelled (one per attempt), and retried or dead (what followed a failed
--               or timed-out attempt)
--   'duration'  attempts of `task_name` by run time, `label` the bucket's upper bound in ms
--               ('+Inf' past the last one); total is the sum of the run times in ms
--   'wait'      claims of `task_name` by the time they waited since they were due (run_at), the
--               same buckets
CREATE TABLE counters (
    namespace TEXT    NOT NULL,
    metric    TEXT    NOT NULL,
    queue     TEXT    NOT NULL,
    task_name TEXT    NOT NULL,
    label     TEXT    NOT NULL,
    n         INTEGER NOT NULL,
    total     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (namespace, metric, queue, task_name, label)
) WITHOUT ROWID;

-- The histogram buckets' upper bounds (ms), the one list the triggers and the exposition read.
CREATE TABLE metric_buckets (le_ms INTEGER PRIMARY KEY);
INSERT INTO metric_buckets (le_ms) VALUES (5), (10), (25), (50), (100), (250), (500), (1000),
    (2500), (5000), (10000), (30000), (60000), (300000), (900000), (3600000);

-- OpenTelemetry: the enqueue's trace context (a W3C traceparent), so an attempt's span links to it.
ALTER TABLE jobs ADD COLUMN trace_context TEXT;

-- The jobs already there.
INSERT INTO counters (namespace, metric, queue, task_name, label, n, total)
SELECT namespace, 'jobs', queue, '', status, COUNT(*), 0 FROM jobs GROUP BY namespace, queue, status;

CREATE TRIGGER jobs_counted_insert AFTER INSERT ON jobs BEGIN
    INSERT INTO counters (namespace, metric, queue, task_name, label, n, total)
    VALUES (NEW.namespace, 'jobs', NEW.queue, '', NEW.status, 1, 0),
           (NEW.namespace, 'enqueued', '', NEW.task_name, '', 1, 0)
    ON CONFLICT (namespace, metric, queue, task_name, label) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER jobs_counted_delete AFTER DELETE ON jobs BEGIN
    UPDATE counters SET n = n - 1
    WHERE namespace = OLD.namespace AND metric = 'jobs' AND queue = OLD.queue AND task_name = ''
      AND label = CAST(OLD.status AS TEXT);
END;

CREATE TRIGGER jobs_counted_status AFTER UPDATE OF status ON jobs
WHEN OLD.status <> NEW.status BEGIN
    UPDATE counters SET n = n - 1
    WHERE namespace = OLD.namespace AND metric = 'jobs' AND queue = OLD.queue AND task_name = ''
      AND label = CAST(OLD.status AS TEXT);
    INSERT INTO counters (namespace, metric, queue, task_name, label, n, total)
    VALUES (NEW.namespace, 'jobs', NEW.queue, '', NEW.status, 1, 0)
    ON CONFLICT (namespace, metric, queue, task_name, label) DO UPDATE SET n = n + 1;
END;

-- A claim (ready → running): how long the job waited since it was due.
CREATE TRIGGER jobs_counted_claim AFTER UPDATE OF status ON jobs
WHEN OLD.status IN (0, 3) AND NEW.status = 1 BEGIN
    INSERT INTO counters (namespace, metric, queue, task_name, label, n, total)
    SELECT NEW.namespace, 'wait', '', NEW.task_name,
           COALESCE((SELECT MIN(le_ms) FROM metric_buckets WHERE le_ms >= w.ms), '+Inf'), 1, w.ms
    FROM (SELECT MAX(0, NEW.started_at - OLD.run_at) AS ms) AS w
    WHERE true
    ON CONFLICT (namespace, metric, queue, task_name, label) DO UPDATE
    SET n = n + 1, total = total + excluded.total;
END;

-- An attempt ended (running → complete, failed, dead or cancelled; running → pending is a release
-- or a hold, not an attempt). A timeout is told by its error, which the worker and the reaper both
-- write as "TaskTimeoutError: ..." (policy::ReapReason::message, TaskTimeoutError's name). A retry
-- records no finish time on the job: its run time ends at the database clock.
CREATE TRIGGER jobs_counted_attempt AFTER UPDATE OF status ON jobs
WHEN OLD.status = 1 AND NEW.status IN (2, 3, 4, 5) BEGIN
    INSERT INTO counters (namespace, metric, queue, task_name, label, n, total)
    SELECT NEW.namespace, 'attempts', '', NEW.task_name, o.outcome, 1, 0
    FROM (SELECT CASE NEW.status WHEN 2 THEN 'complete' WHEN 5 THEN 'cancelled'
                 ELSE CASE WHEN substr(NEW.error, 1, 17) = 'TaskTimeoutError:' THEN 'timeout'
                      ELSE 'failed' END END AS outcome
          UNION ALL
          SELECT CASE NEW.status WHEN 3 THEN 'retried' ELSE 'dead' END WHERE NEW.status IN (3, 4))
         AS o
    WHERE true
    ON CONFLICT (namespace, metric, queue, task_name, label) DO UPDATE SET n = n + 1;
    INSERT INTO counters (namespace, metric, queue, task_name, label, n, total)
    SELECT NEW.namespace, 'duration', '', NEW.task_name,
           COALESCE((SELECT MIN(le_ms) FROM metric_buckets WHERE le_ms >= d.ms), '+Inf'), 1, d.ms
    FROM (SELECT MAX(0, COALESCE(NEW.finished_at,
                                 CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER))
                        - OLD.started_at) AS ms) AS d
    WHERE true
    ON CONFLICT (namespace, metric, queue, task_name, label) DO UPDATE
    SET n = n + 1, total = total + excluded.total;
END;
