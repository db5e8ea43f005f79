-- The checkpointer is opened as a reader, but a checkpoint writes the database file.
PRAGMA query_only = 0;
