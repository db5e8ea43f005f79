-- Resumes a queue (a queue that is not paused stays as it is); the caller NOTIFYs after the
-- commit so idle claims in every process look again at once. $1 namespace, $2 queue.
DELETE FROM paused_queues WHERE namespace = $1::text AND queue = $2::text;
