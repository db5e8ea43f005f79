-- One fold at a time per schema, over all processes; a process that does not get the lock skips
-- its turn (the holder folds the same rows). Released at the end of the transaction.
SELECT pg_try_advisory_xact_lock(hashtext('taskito.counters.' || current_schema()));
