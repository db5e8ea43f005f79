//! When an SQLite engine copies the WAL back into the database file. Both cores do it on a
//! connection of their own in the background (the native engine's checkpointer thread, the JS
//! core's heartbeat thread), with PASSIVE checkpoints that never wait for, nor block, a writer or
//! a reader, so that no commit on the way of a job pays for a checkpoint's fsyncs; the committing
//! connection's automatic checkpoint stays only as the bound a busy writer needs
//! (connection/writer.sql). Twin: `src/core/policy/checkpoint.ts`; cases:
//! `tests/policy_cases/checkpoint.json`.

/// How often the background connection looks at the commits made since its last checkpoint.
pub const CHECKPOINT_INTERVAL_MS: u64 = 200;

/// How many commits of this process a checkpoint waits for. A checkpoint that catches up with the
/// WAL makes the next commit start it over, and that commit syncs the new WAL's header (an fsync,
/// 0.5-2 ms here): one checkpoint per look would put it on every commit of a producer that
/// enqueues a job now and then (a lone `delay()` after 200 ms idle took 1.1 ms against 0.19 ms
/// back to back, docs/PERFORMANCE.md "A lone enqueue after idle"). Under load a look finds many
/// more; the writer's bound holds whatever comes.
pub const CHECKPOINT_COMMITS: u64 = 32;

/// Whether a look that counts `commits` commits of this process, the last checkpoint having been
/// at `seen`, checkpoints now.
pub fn checkpoint_due(commits: u64, seen: u64) -> bool {
    commits.saturating_sub(seen) >= CHECKPOINT_COMMITS
}
