-- The writer's WAL bounds. Checkpoints mostly run on their own connection (the engine's
-- checkpointer, connection/checkpoint.sql), so few commits pay for one. But a checkpoint beside a
-- busy writer never catches up with the end of the WAL, and only a checkpoint that does lets the
-- next commit start the WAL over: without a bound the WAL grows for as long as the load lasts.
-- Past 4000 pages (4 KiB each, about 16 MiB) the commit that crosses the line finishes the
-- checkpoint itself (what is left after the background one); a WAL file left larger than 64 MiB
-- by a burst is cut back to that.
PRAGMA wal_autocheckpoint = 4000;
PRAGMA journal_size_limit = 67108864;
