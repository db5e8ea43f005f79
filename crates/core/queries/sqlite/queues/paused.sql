-- The paused queues of a namespace, by name. Read by every claim inside its own transaction (the
-- writer's, which holds the write lock, so a pause committed by any process before it counts) to
-- leave those queues out (policy::queues::claimable); no row at all while nothing is paused.
-- `= +:name`, never `= :name`: see claim/ready.sql (SQLite 3.54 would re-prepare it at every run).
SELECT queue FROM paused_queues WHERE namespace = +:namespace ORDER BY queue;
