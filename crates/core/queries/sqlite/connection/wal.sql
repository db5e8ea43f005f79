-- The writer's first statement on a file: WAL mode (persistent in the file). Returns the mode
-- now in force, which is not WAL where the file system cannot share memory (a network share).
PRAGMA journal_mode = WAL;
