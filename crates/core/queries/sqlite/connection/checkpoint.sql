-- Copies the WAL back into the database file as far as it can without waiting for, or blocking,
-- the writer or the readers (PASSIVE).
PRAGMA wal_checkpoint(PASSIVE);
