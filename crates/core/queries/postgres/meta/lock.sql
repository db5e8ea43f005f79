-- Serializes migrations of one schema across every process that opens it at the same time; held
-- until the migration transaction ends. $1: schema name.
SELECT pg_advisory_xact_lock(hashtextextended('taskito.migrate.' || $1::text, 0));
