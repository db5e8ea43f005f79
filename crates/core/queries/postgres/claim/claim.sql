-- The batch claim, one statement: the ready jobs of these queues in priority order become running
-- with a fresh lease token (the fencing token), this worker, a lease and the attempt's deadline.
-- SKIP LOCKED lets concurrent claimers (other workers, other machines) pass over the rows another
-- claim is taking instead of waiting for it, so no job is handed out twice and nobody queues up.
-- The lease never runs past the deadline, so the reaper finds both lost workers and timeouts by
-- lease_until alone. RETURNING order is unspecified: the caller sorts.
-- $1 namespace, $2 queues, $3 limit, $4 worker_id, $5 lease_ms, $6 tasks (the worker's task names:
-- jobs of other tasks are never read, so a queue full of another service's jobs costs nothing),
-- $7 the most each task may start (policy::flow::gate, NULL for a task with no flow gate; the
-- caller left out the tasks that may start none). A task held by a RateLimitExceededError
-- (task_flow.hold_until) is skipped here too, so a worker without flow options honours it.
-- $8..$12 the worker's claim cursors (postgres/cursor.rs), one per (queue, task): queue, task and
-- the claim-order position (priority, run_at, id) of the last job it claimed there; a pair
-- without one is scanned from the start. Empty arrays: every pair from the start.
-- synchronous_commit off for this statement's own transaction: a claim lost in a server crash
-- only means the attempt runs again (the job is back to its previous state), so it need not wait
-- for the WAL flush; settles and enqueues still do. The lost attempt's worker may still run it and
-- settle late: the token (policy::next_token, the later of the last token + 1 and the clock in ms)
-- keeps the next claim from handing out the lost claim's token again, so that settle is stale.
-- $13 the clock a flow gate decided at (postgres/flow.rs, read once its rows were locked), NULL
-- without one: the starts are stamped with the time their tokens were taken, so the rate limit's
-- bound holds for startedAt too, however long the claim took between the two.
WITH now AS MATERIALIZED (
    SELECT COALESCE($13::bigint, (extract(epoch FROM clock_timestamp()) * 1000)::bigint) AS ms,
           set_config('synchronous_commit', 'off', true) AS async_commit
),
-- The worker's queues less the paused ones (policy::queues::claimable), read in this statement: a
-- pause waits for running claims and claims wait for it (queues/lock.sql), so a committed pause
-- holds for every claim after it. Nothing paused: one probe of an empty index per queue.
open_queues AS (
    SELECT q.name FROM unnest($2::text[]) AS q(name)
    WHERE NOT EXISTS (SELECT 1 FROM paused_queues AS p WHERE p.namespace = $1::text AND p.queue = q.name)
),
-- The worker's tasks less those held by a RateLimitExceededError.
open_tasks AS (
    SELECT t.name, t.lim FROM unnest($6::text[], $7::bigint[]) AS t(name, lim)
    WHERE NOT EXISTS (SELECT 1 FROM task_flow f WHERE f.namespace = $1::text
                      AND f.task_name = t.name AND f.hold_until > (SELECT ms FROM now))
),
-- Per (queue, task), the best ready rows in index order (jobs_ready serves an ordered scan only for
-- one queue and task at a time: `= ANY(...)` would read and sort every ready row), locked with SKIP
-- LOCKED where they are found; then the best of those across them (policy::claim_order). Rows
-- locked but not picked are released when the statement ends.
picked AS (
    SELECT id, status FROM (
        SELECT c.id, c.status, c.priority, c.run_at, t.lim,
               row_number() OVER (PARTITION BY t.name ORDER BY c.priority DESC, c.run_at, c.id) AS n
        FROM open_queues AS q
        CROSS JOIN open_tasks AS t
        LEFT JOIN unnest($8::text[], $9::text[], $10::bigint[], $11::bigint[], $12::bigint[])
            AS cur(queue, task, priority, run_at, id) ON cur.queue = q.name AND cur.task = t.name
        -- The pair's part of jobs_ready from the start when it has no cursor; with one, three
        -- ranges in claim order, taken in that order (the Append runs its parts one after the
        -- other and the LIMIT stops it, so a later part is not read, nor its rows locked, once the
        -- earlier ones gave enough): the priorities above the cursor's, the cursor's priority
        -- after its position, the priorities below. Each range is an index condition (a bound of
        -- the scan), not a filter, and `cur.id IS NULL` a one-time filter of the first part. Why: a job claimed leaves jobs_ready, but its index
        -- entry stays until no snapshot in the database can see the row version it points to; a
        -- scan from the start walks every such entry, and while any session holds a snapshot
        -- (a report, pg_dump, a session idle in a transaction) the claims of a drain walk all the
        -- jobs drained since, each a heap fetch. Starting after the cursor skips them. A job that
        -- came back behind the cursor at its priority (a release, a row skipped locked) waits
        -- for the next scan from the start (cursor.rs: when a claim comes short, or FULL_SCAN).
        CROSS JOIN LATERAL (
            SELECT * FROM (
                SELECT * FROM (SELECT id, priority, run_at, status FROM jobs
                 WHERE namespace = $1::text AND queue = q.name AND task_name = t.name
                   AND status IN (0, 3) AND run_at <= (SELECT ms FROM now)
                   AND cur.id IS NULL
                   -- policy::schedules::expired: never handed out, even before the expiry sweep ends it.
                   AND (start_by IS NULL OR start_by > (SELECT ms FROM now))
                 ORDER BY priority DESC, run_at, id
                 LIMIT LEAST($3::bigint, t.lim)
                 FOR UPDATE SKIP LOCKED) AS whole
                UNION ALL
                SELECT * FROM (SELECT id, priority, run_at, status FROM jobs
                 WHERE namespace = $1::text AND queue = q.name AND task_name = t.name
                   AND status IN (0, 3) AND run_at <= (SELECT ms FROM now)
                   AND priority > cur.priority
                   AND (start_by IS NULL OR start_by > (SELECT ms FROM now))
                 ORDER BY priority DESC, run_at, id
                 LIMIT LEAST($3::bigint, t.lim)
                 FOR UPDATE SKIP LOCKED) AS above
                UNION ALL
                SELECT * FROM (SELECT id, priority, run_at, status FROM jobs
                 WHERE namespace = $1::text AND queue = q.name AND task_name = t.name
                   AND status IN (0, 3) AND run_at <= (SELECT ms FROM now)
                   AND priority = cur.priority AND (run_at, id) > (cur.run_at, cur.id)
                   AND (start_by IS NULL OR start_by > (SELECT ms FROM now))
                 ORDER BY run_at, id
                 LIMIT LEAST($3::bigint, t.lim)
                 FOR UPDATE SKIP LOCKED) AS after
                UNION ALL
                SELECT * FROM (SELECT id, priority, run_at, status FROM jobs
                 WHERE namespace = $1::text AND queue = q.name AND task_name = t.name
                   AND status IN (0, 3) AND run_at <= (SELECT ms FROM now)
                   AND priority < cur.priority
                   AND (start_by IS NULL OR start_by > (SELECT ms FROM now))
                 ORDER BY priority DESC, run_at, id
                 LIMIT LEAST($3::bigint, t.lim)
                 FOR UPDATE SKIP LOCKED) AS below
            ) AS ranges
            LIMIT LEAST($3::bigint, t.lim)
        ) AS c
    ) AS per_task
    -- A task read in several queues starts no more than its gate allows in all of them.
    WHERE lim IS NULL OR n <= lim
    ORDER BY priority DESC, run_at, id
    LIMIT $3::bigint
)
UPDATE jobs AS j
SET status = 1,
    lease_token = GREATEST(j.lease_token + 1, now.ms),
    worker_id = $4::text,
    started_at = now.ms,
    -- policy::deadline_at, and policy::lease_end (lease_ms from now, never past the deadline).
    deadline_at = CASE WHEN j.timeout_ms IS NULL THEN NULL ELSE now.ms + j.timeout_ms END,
    lease_until = CASE WHEN j.timeout_ms IS NULL THEN now.ms + $5::bigint
                       ELSE now.ms + LEAST($5::bigint, j.timeout_ms) END
FROM picked, now
-- The ids as an array besides the join: the claim runs on a generic plan
-- (plans/generic_begin.sql), which does not know the limit ($3) and so expects thousands of picked
-- rows; joined on `picked.id` alone, it hashes every row of jobs to find them. `= ANY` of the
-- array is an index condition on the primary key whatever the estimate, so jobs is read at the
-- picked rows only.
WHERE j.id = ANY (ARRAY(SELECT id FROM picked)) AND j.id = picked.id
RETURNING j.id, j.task_name, j.queue, j.args, j.retry_count, j.lease_token, j.max_retries,
          j.timeout_ms, j.soft_timeout_ms, j.priority, j.run_at, j.started_at, j.deadline_at,
          j.trace_context, picked.status;
