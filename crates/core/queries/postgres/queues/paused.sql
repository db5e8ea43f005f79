-- The paused queues of a namespace, by name. $1 namespace.
SELECT queue FROM paused_queues WHERE namespace = $1::text ORDER BY queue;
