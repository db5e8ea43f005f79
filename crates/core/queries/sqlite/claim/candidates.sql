-- Several queues: the best ready jobs of one queue (in index order); the caller merges the
-- queues' candidates and claims the overall best with claim/take.sql in the same transaction.
-- LIMIT takes `:limit + 0`, not a bare parameter: SQLite plans a bare LIMIT parameter for its
-- bound value and so re-prepares the statement on every run.
SELECT id, priority, run_at FROM jobs
WHERE namespace = :namespace AND queue = :queue AND status IN (0, 3) AND run_at <= :now
ORDER BY priority DESC, run_at, id
LIMIT :limit + 0;
