/**
 * When an SQLite engine copies the WAL back into the database file. Both cores do it on a
 * connection of their own in the background (the native engine's checkpointer thread, the JS
 * core's heartbeat thread), with PASSIVE checkpoints that never wait for, nor block, a writer or a
 * reader, so that no commit on the way of a job pays for a checkpoint's fsyncs; a look that leaves
 * the WAL long (a writer busy beside it) follows it with a FULL one; the committing connection's
 * automatic checkpoint stays as the backstop bound (connection/writer.sql). The TypeScript twin of crates/core/src/policy/checkpoint.rs;
 * crates/core/tests/policy_cases/checkpoint.json holds both to the same answers.
 */

/** How often the background connection looks at the commits made since its last checkpoint. */
export const CHECKPOINT_INTERVAL_MS = 200

/** How many commits of this process a checkpoint waits for: a checkpoint that catches up with the
 * WAL makes the next commit start it over and sync the new WAL's header (see checkpoint.rs). */
export const CHECKPOINT_COMMITS = 32

/** Whether a look that counts `commits` commits of this process, the last checkpoint having been
 * at `seen`, checkpoints now. The JS core counts in a shared 32-bit slot that wraps: the difference
 * is taken modulo 2^32. */
export function checkpointDue(commits: number, seen: number): boolean {
  return (commits - seen) >>> 0 >= CHECKPOINT_COMMITS
}

/** How long the WAL (in frames, after the look's PASSIVE checkpoint) a look leaves to the next one;
 * longer, a FULL checkpoint follows (see checkpoint.rs). */
export const CHECKPOINT_FULL_FRAMES = 1000

/** Whether a look whose PASSIVE checkpoint left `walFrames` frames in the WAL follows it with a FULL
 * one. */
export function fullCheckpointDue(walFrames: number): boolean {
  return walFrames >= CHECKPOINT_FULL_FRAMES
}

/** How long (ms) the FULL checkpoint waits for the writer's transaction (and readers of older
 * snapshots) before it gives up until the next look. */
export const CHECKPOINT_FULL_WAIT_MS = 10
