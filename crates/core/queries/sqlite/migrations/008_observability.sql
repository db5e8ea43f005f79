-- Version 8: observability. Counters of the jobs by (namespace, queue, status), so stats() reads a
-- few rows instead of counting jobs, and the figures queue.metrics() exposes (enqueued jobs,
-- attempts by outcome, attempt duration and wait histograms). They are kept IN CODE, not by
-- triggers (a row trigger cost +50 % CPU on a no-op drain): every path that inserts a job,
-- changes its status or deletes it adds policy::counters::deltas to its transaction's counts, and
-- the engine writes them as one upsert per key before the COMMIT (counters/apply.sql), so they are
-- exact, survive restarts, and cost one statement per key per group commit. The drift guard
-- (Store::recount, the contract tests) recounts jobs and compares.

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

-- The histogram buckets' upper bounds (ms): policy::counters::BUCKETS_MS, listed for the exposition
-- (a test checks they agree).
CREATE TABLE metric_buckets (le_ms INTEGER PRIMARY KEY);
INSERT INTO metric_buckets (le_ms) VALUES (5), (10), (25), (50), (100), (250), (500), (1000),
    (2500), (5000), (10000), (30000), (60000), (300000), (900000), (3600000);

-- OpenTelemetry: the enqueue's trace context (a W3C traceparent), so an attempt's span links to it.
ALTER TABLE jobs ADD COLUMN trace_context TEXT;

-- The jobs already there.
INSERT INTO counters (namespace, metric, queue, task_name, label, n, total)
SELECT namespace, 'jobs', queue, '', status, COUNT(*), 0 FROM jobs GROUP BY namespace, queue, status;
