//! Pausing queues: what a queue name given to `pause`/`resume` must be, which of a worker's
//! queues a claim may serve, and how `queues()` puts the counts and the pauses together.
//! The TypeScript twin is `src/core/policy/queues.ts`; `tests/policy_cases/queues.json` holds both
//! to the same answers.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::model::{QueueCount, QueueRow};

/// A queue name as `pause` or `resume` (`what`) take it: any non-empty string. A queue that has
/// no job yet may be paused (it stays paused for the jobs enqueued later), so the name is not
/// looked up.
pub fn validate_queue_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid(format!(
            "{what} needs the name of a queue, a non-empty string such as \"emails\" (the queue \
             option of a task or of apply()), got {}; nothing was written",
            crate::json::quote(name)
        )));
    }
    Ok(())
}

/// The queues a claim serves: the worker's queues (as `policy::claim_queues` gives them) that
/// are not paused, in the same order. Empty when every one is paused: the claim then reads no
/// job and waits until a resume wakes it.
pub fn claimable<'q>(queues: &'q [String], paused: &[String]) -> Cow<'q, [String]> {
    if paused.is_empty() {
        // The usual case costs the claim no copy.
        return Cow::Borrowed(queues);
    }
    queues
        .iter()
        .filter(|q| !paused.contains(q))
        .cloned()
        .collect()
}

/// `queues()`: one row per queue that has jobs (counted by status) or is paused, by name. A
/// count of a status code that is none is left out, as `stats()` leaves it out.
pub fn queue_rows(counts: &[QueueCount], paused: &[String]) -> Vec<QueueRow> {
    fn row<'m, 'a>(rows: &'m mut BTreeMap<&'a str, QueueRow>, name: &'a str) -> &'m mut QueueRow {
        rows.entry(name).or_insert_with(|| QueueRow {
            name: name.to_string(),
            ..QueueRow::default()
        })
    }
    let mut rows = BTreeMap::new();
    for c in counts {
        if let Some(n) = row(&mut rows, &c.queue).counts.count_mut(c.status) {
            *n += c.count;
        }
    }
    for p in paused {
        row(&mut rows, p).paused = true;
    }
    rows.into_values().collect()
}
