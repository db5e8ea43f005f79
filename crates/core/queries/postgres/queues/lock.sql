-- First statement of a pause's transaction: waits for every claim statement that is reading
-- paused_queues to end (each holds the table's ACCESS SHARE lock until its transaction ends), and
-- makes claims that start meanwhile wait for this transaction; they then run on a snapshot taken
-- after its commit. So no claim, in any process, starts a job of the queue once pause() has
-- returned. Claims wait at most the length of one claim statement; a pause is rare.
LOCK TABLE paused_queues IN ACCESS EXCLUSIVE MODE;
