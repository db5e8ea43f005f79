-- Copies the WAL back into the database file as far as it can without waiting for, or blocking,
-- the writer or the readers (PASSIVE). Its row: busy (0), the WAL's frames, the frames copied.
PRAGMA wal_checkpoint(PASSIVE);
