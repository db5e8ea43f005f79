-- Several queues: the best ready jobs of one queue (in index order); the caller merges the
-- queues' candidates and claims the overall best with claim/take.sql in the same transaction.
SELECT id, priority, run_at FROM jobs
WHERE namespace = :namespace AND queue = :queue AND status IN (0, 3) AND run_at <= :now
ORDER BY priority DESC, run_at, id
LIMIT :limit;
