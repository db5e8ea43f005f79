-- The ending of enqueue/insert_rows.sql for a batch with uniqueKeys (or dependencies, or a
-- schedule's tick). A uniqueKey that a live job (pending, running, failed awaiting retry) already
-- holds inserts nothing: the partial unique index jobs_unique_live decides, also against
-- concurrent enqueues from other processes. The jobs inserted are listed (job_listing); returns
-- their ids.
    -- Input order, so the first of two jobs with one key in a batch is the one created.
    ORDER BY t.id
    ON CONFLICT (namespace, unique_key) WHERE unique_key IS NOT NULL AND status IN (0, 1, 3)
    DO NOTHING
    RETURNING id, queue, task_name
)
INSERT INTO job_listing (id, namespace, queue, task_name)
SELECT id, $1::text, queue, task_name FROM inserted
RETURNING id;
