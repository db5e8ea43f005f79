-- One worker's heartbeat: extends the leases of the attempts it holds (by id and token, so an
-- attempt whose claim reply was lost with a dropped connection is not kept alive by nobody),
-- never past the deadline, and reports their cancel requests. A lease that already ran out is
-- renewed too: it ran out while the row was locked or the database away, the worker still runs
-- the attempt, and the reaper of its process leaves attempts its workers hold alone
-- (policy::reap_decision). One that a reaper did take has left running and is not touched.
-- SKIP LOCKED: a row locked right now is being settled by this worker, reaped, or cancelled; the
-- heartbeat must not queue behind it (or, locking rows in another order than a settle batch of
-- the same worker, deadlock with it); the next beat renews it if it still runs.
-- synchronous_commit off for this statement's own transaction: a renewal lost in a server crash
-- only shortens a lease the next beat extends again, so it need not wait for the WAL flush;
-- settles and enqueues still do.
-- $1 worker_id, $2 lease_ms; arrays: $3 ids, $4 tokens.
WITH now AS MATERIALIZED (
    SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms,
           set_config('synchronous_commit', 'off', true) AS async_commit
),
-- One primary-key lookup per held attempt (a plain join against unnest once got a nested loop
-- over the whole table: minutes, with every held row locked meanwhile).
mine AS MATERIALIZED (
    SELECT j.id FROM unnest($3::bigint[], $4::bigint[]) AS h(id, token)
    CROSS JOIN LATERAL (
        SELECT id, status, worker_id, lease_until FROM jobs
        WHERE id = h.id AND lease_token = h.token
        FOR UPDATE SKIP LOCKED
    ) AS j
    -- Outside the lookup and as an expression (see settle/complete.sql).
    WHERE j.status + 0 = 1 AND j.worker_id = $1::text
)
-- The lease end is policy::lease_end: lease_ms from now, never past the deadline.
UPDATE jobs AS j
SET lease_until = CASE WHEN j.deadline_at IS NULL THEN now.ms + $2::bigint
                       ELSE LEAST(now.ms + $2::bigint, j.deadline_at) END
FROM mine, now
WHERE j.id = mine.id
RETURNING j.id, j.cancel_requested;
