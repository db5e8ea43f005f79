//! When an SQLite engine copies the WAL back into the database file. Both cores do it on a
//! connection of their own in the background (the native engine's checkpointer thread, the JS
//! core's heartbeat thread), with PASSIVE checkpoints that never wait for, nor block, a writer or
//! a reader, so that no commit on the way of a job pays for a checkpoint's fsyncs. Beside a busy
//! writer a PASSIVE checkpoint never catches up (the writer appends while it copies), so a look
//! that leaves the WAL long follows it with a FULL one, which holds the writer off for what is
//! left and lets the next commit start the WAL over. The committing connection's automatic
//! checkpoint stays as the backstop bound (connection/writer.sql). Twin:
//! `src/core/policy/checkpoint.ts`; cases: `tests/policy_cases/checkpoint.json`.

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

/// How long the WAL (in frames, after the look's PASSIVE checkpoint) a look leaves to the next
/// one. Longer, a writer busy beside the checkpoint is keeping it behind: a FULL checkpoint then
/// waits for the writer's transaction and copies the rest with the writer held off (a few
/// hundred frames and two fsyncs: 3-6 ms here), rather than the commit that crosses the writer's
/// bound of 4000 pages copying the 1,500-3,500 frames the background had not (10-18 ms, four times
/// a second in a web server at 20k requests/s; docs/PERFORMANCE.md "The web server's tail").
pub const CHECKPOINT_FULL_FRAMES: i64 = 1000;

/// Whether a look whose PASSIVE checkpoint left `wal_frames` frames in the WAL follows it with a
/// FULL one.
pub fn full_checkpoint_due(wal_frames: i64) -> bool {
    wal_frames >= CHECKPOINT_FULL_FRAMES
}

/// How long (ms) the FULL checkpoint waits for the writer's transaction (and readers of older
/// snapshots) before it gives up until the next look.
pub const CHECKPOINT_FULL_WAIT_MS: u64 = 10;
