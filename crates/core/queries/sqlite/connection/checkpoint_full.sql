-- Copies the rest of the WAL back into the database file, waiting (the connection's busy handler)
-- for the writer's transaction and holding the next one off while it copies (FULL): what a PASSIVE
-- checkpoint beside a busy writer never finishes. The next commit can then start the WAL over.
PRAGMA wal_checkpoint(FULL);
