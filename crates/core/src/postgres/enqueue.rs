//! Enqueue: validation, then one INSERT of the whole batch (a transaction when uniqueKeys are
//! involved), retried on a fresh connection when the connection fails; and the combiner, which
//! lets concurrent enqueue calls share one INSERT and so one WAL flush.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::time::Instant;
use tokio_postgres::types::ToSql;

use super::retry::{ENQUEUE_RETRY_BUDGET, READ_RETRY_BUDGET};
use super::rows::Cell;
use super::{conn, counters, sql, workflows, Inner};
use crate::error::{Error, Result};
use crate::model::*;
use crate::policy;
use crate::policy::counters::{Change, Counts};

/// Where an enqueue call hears of its jobs.
pub(super) type Reply = oneshot::Sender<Result<Vec<Enqueued>>>;

/// An enqueue call waiting for the combiner.
pub(super) struct EnqueueRequest {
    pub(super) jobs: Vec<NewJob>,
    pub(super) reply: Reply,
}

impl Inner {
    pub(super) async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>> {
        self.check_open()?;
        for (i, j) in jobs.iter().enumerate() {
            policy::validate_job(i, j)?;
        }
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        if jobs
            .iter()
            .any(|j| j.unique_key.is_some() || !j.depends_on.is_empty())
        {
            return self.enqueue_now(&jobs, &mut None).await;
        }
        // Without uniqueKeys, concurrent enqueues share one INSERT (and one WAL flush).
        let (reply, answer) = oneshot::channel();
        self.enqueue_tx
            .send(EnqueueRequest { jobs, reply })
            .map_err(|_| Error::Closed)?;
        answer.await.map_err(|_| Error::Closed)?
    }

    /// Enqueues now: one statement (a transaction when uniqueKeys are involved), retried on a
    /// fresh connection when the connection fails; then announces the new jobs. A batch without
    /// keys or dependencies answers through `early` (taken) as soon as its insert committed,
    /// before the NOTIFY and the next ids pipelined behind it come back.
    async fn enqueue_now(
        &self,
        jobs: &[NewJob],
        early: &mut Option<Reply>,
    ) -> Result<Vec<Enqueued>> {
        self.check_open()?;
        let n = jobs.len() as i64;
        let cols = Columns::of(jobs);
        let keys = &cols.keys;
        let has_keys = keys.iter().any(|k| k.is_some());
        // Dependencies are written after the insert, in its transaction.
        let has_deps = jobs.iter().any(|j| !j.depends_on.is_empty());

        let give_up = Instant::now() + ENQUEUE_RETRY_BUDGET;
        let mut attempt = 0u32;
        // Whether the insert's own NOTIFY told the other processes.
        let told = AtomicBool::new(false);
        // Whether the caller is to hear at the insert's commit: then this process's idle claims
        // heard then too (the reply taken out of `early` says it happened).
        let answers_early = early.is_some();
        loop {
            told.store(false, Ordering::Relaxed);
            // Ok(Ok(result)) done; Ok(Err(())) the live holder of a key finished meanwhile: rerun.
            let res: Result<std::result::Result<Vec<Enqueued>, ()>> = async {
                let mut c = self.client().await?;
                let allocate = c.prepare_cached(sql::ENQUEUE_ALLOCATE_IDS).await?;
                let plain = !has_keys && !has_deps;
                let spare = plain.then(|| self.take_spare_ids(jobs.len())).flatten();
                let mut ids: Vec<i64> = match spare {
                    Some(ids) => ids,
                    None => {
                        let ids: Vec<i64> = c.query_one(&allocate, &[&n]).await?.cell(0)?;
                        self.used_ids(&ids);
                        ids
                    }
                };
                ids.sort_unstable();
                let none = counters::Columns::default();
                let all_created = || -> Vec<Enqueued> {
                    ids.iter()
                        .map(|&id| Enqueued { id, created: true })
                        .collect()
                };
                if plain {
                    // One statement is atomic on its own and commits with one WAL flush: every
                    // row is inserted, so its counts are known and go in the same statement, and
                    // without keys it needs neither ON CONFLICT nor RETURNING (insert_plain.sql).
                    let counted = Columns::of_counts(jobs, &self.ns);
                    let counted = counters::Columns::of(&counted);
                    let params = cols.params(&self.ns, &ids, &counted);
                    let st = c.prepare_cached(sql::ENQUEUE_INSERT_PLAIN).await?;
                    let wake = c.prepare_cached(sql::NOTIFY).await?;
                    // The NOTIFY goes on the wire right behind the INSERT, as a transaction of
                    // its own (each request ends with its own Sync; so not inside the insert's
                    // commit, see notify.rs): other processes hear of the jobs as soon as they
                    // are committed, not after this commit's reply, a task switch and a
                    // statement of the notifier. An insert that fails wakes them for nothing.
                    let insert = async {
                        let r = c.execute(&st, &params).await;
                        if let Some(reply) = r.is_ok().then(|| early.take()).flatten() {
                            // Committed: the caller and this process's idle claims hear now,
                            // not a NOTIFY's and an id allocation's execution later (~0.1 ms).
                            self.ready.notify_waiters();
                            let _ = reply.send(Ok(all_created()));
                        }
                        r
                    };
                    let wake_args: [&(dyn ToSql + Sync); 2] = [&self.channel, &self.ns];
                    let notify = c.execute(&wake, &wake_args);
                    // The ids of this store's next enqueue of this size go on the wire behind
                    // them: that enqueue then starts with its insert, not with a round trip to
                    // allocate ids (the reply comes in the same read as the NOTIFY's).
                    let refill = async {
                        if jobs.len() > SPARE_IDS_MAX {
                            return None;
                        }
                        c.query_one(&allocate, &[&n]).await.ok()
                    };
                    let (inserted, notify, spare) = tokio::join!(biased; insert, notify, refill);
                    // Unreadable ids go as a failed refill does: the insert stands.
                    if let Some(ids) = spare.and_then(|row| row.cell(0).ok()) {
                        self.keep_spare_ids(ids);
                    }
                    told.store(inserted.is_ok() && notify.is_ok(), Ordering::Relaxed);
                    return match inserted {
                        Ok(_) => Ok(Ok(all_created())),
                        Err(e) => match conn::from_pg(e) {
                            e @ Error::Unavailable(_) if self.landed(ids[0]).await? => {
                                drop(e);
                                Ok(Ok(all_created()))
                            }
                            e => Err(e),
                        },
                    };
                }
                let tx = c.transaction().await?;
                let st = tx.prepare_cached(sql::ENQUEUE_INSERT).await?;
                let params = cols.params(&self.ns, &ids, &none);
                let inserted: HashSet<i64> = tx
                    .query(&st, &params)
                    .await?
                    .iter()
                    .map(|r| r.cell(0))
                    .collect::<Result<_>>()?;
                let mut out: Vec<Enqueued> = ids
                    .iter()
                    .map(|&id| Enqueued {
                        id,
                        created: inserted.contains(&id),
                    })
                    .collect();
                if inserted.len() < ids.len() {
                    let missing: Vec<&str> = out
                        .iter()
                        .zip(keys)
                        .filter(|(e, _)| !e.created)
                        .filter_map(|(_, k)| *k)
                        .collect();
                    let st = tx.prepare_cached(sql::ENQUEUE_FIND_LIVE_UNIQUE).await?;
                    let live: HashMap<String, i64> = tx
                        .query(&st, &[&self.ns, &missing])
                        .await?
                        .iter()
                        .map(|r| Ok((r.cell(0)?, r.cell(1)?)))
                        .collect::<Result<_>>()?;
                    for (e, k) in out.iter_mut().zip(keys) {
                        if e.created {
                            continue;
                        }
                        match k.and_then(|k| live.get(k)) {
                            Some(&id) => e.id = id,
                            None => return Ok(Err(())),
                        }
                    }
                }
                let mut counts = Counts::default();
                for (j, e) in jobs.iter().zip(&out) {
                    if e.created {
                        counts.add(&self.ns, &Change::inserted(&j.queue, &j.task_name, 0));
                    }
                }
                if has_deps {
                    let batch: Vec<i64> = out.iter().map(|e| e.id).collect();
                    for ((j, e), i) in jobs.iter().zip(&out).zip(0..) {
                        if e.created && !j.depends_on.is_empty() {
                            let ns = &self.ns;
                            workflows::depend(&tx, &mut counts, ns, e.id, j, &batch[..i]).await?;
                        }
                    }
                }
                counters::append(&tx, &counts).await?;
                let probe = out.iter().find(|e| e.created).map(|e| e.id);
                match tx.commit().await {
                    Ok(()) => Ok(Ok(out)),
                    Err(e) => match (conn::from_pg(e), probe) {
                        // The COMMIT may have landed with its reply lost: the pre-allocated id
                        // tells.
                        (e @ Error::Unavailable(_), Some(probe)) if self.landed(probe).await? => {
                            drop(e);
                            Ok(Ok(out))
                        }
                        (e, _) => Err(e),
                    },
                }
            }
            .await;
            match res {
                Ok(Ok(out)) => {
                    if told.load(Ordering::Relaxed) {
                        // Other processes were told with the insert: only this one's claims,
                        // unless they heard at the commit.
                        if !(answers_early && early.is_none()) {
                            self.ready.notify_waiters();
                        }
                    } else if out.iter().any(|e| e.created) {
                        self.announce(false);
                    }
                    return Ok(out);
                }
                Ok(Err(())) if attempt < 5 => attempt += 1,
                Ok(Err(())) => {
                    return Err(Error::Queue(
                        "enqueue: a uniqueKey kept changing hands while enqueueing; retry".into(),
                    ))
                }
                Err(e) if self.retry_after(&e, give_up, &mut attempt).await => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// `n` spare ids allocated within [`SPARE_IDS_FRESH`] and above every id this store used,
    /// lowest first, if there are that many.
    fn take_spare_ids(&self, n: usize) -> Option<Vec<i64>> {
        let mut spare = self.spare_ids.lock().expect("spare ids");
        let now = Instant::now();
        let used = spare.used;
        while spare
            .ids
            .front()
            .is_some_and(|&(id, at)| id <= used || now - at > SPARE_IDS_FRESH)
        {
            spare.ids.pop_front();
        }
        if spare.ids.len() < n {
            return None;
        }
        let ids: Vec<i64> = spare.ids.drain(..n).map(|(id, _)| id).collect();
        spare.used = spare.used.max(ids[n - 1]);
        Some(ids)
    }

    /// Ids this store allocated for itself: spare ids below them are never taken.
    fn used_ids(&self, ids: &[i64]) {
        let mut spare = self.spare_ids.lock().expect("spare ids");
        spare.used = ids.iter().copied().fold(spare.used, i64::max);
    }

    /// Keeps freshly allocated ids for the next small enqueues (at most [`SPARE_IDS_MAX`]; the
    /// rest are never used: ids have gaps anyway, and are never reused).
    fn keep_spare_ids(&self, ids: Vec<i64>) {
        let mut spare = self.spare_ids.lock().expect("spare ids");
        let now = Instant::now();
        let room = SPARE_IDS_MAX.saturating_sub(spare.ids.len());
        spare
            .ids
            .extend(ids.into_iter().take(room).map(|id| (id, now)));
        // Lowest first: an allocation's ids come in any order, and those of concurrent enqueues
        // may land out of order.
        spare.ids.make_contiguous().sort_unstable();
    }

    /// After a lost reply: did the statement that inserted this pre-allocated id commit?
    async fn landed(&self, probe: i64) -> Result<bool> {
        self.retrying(READ_RETRY_BUDGET, |c| async move {
            let st = c.prepare_cached(sql::ENQUEUE_EXISTS).await?;
            c.query_one(&st, &[&probe]).await?.cell::<bool>(0)
        })
        .await
    }
}

/// Ids allocated ahead for this store's next enqueues of at most [`SPARE_IDS_MAX`] jobs without
/// uniqueKeys or dependencies: each such enqueue asks for the next one's ids on the wire behind
/// its own insert, so a lone `delay()` is one round trip (its insert), not two. An id is taken
/// once or never (a gap, as a rolled-back insert leaves). Only ids allocated within
/// [`SPARE_IDS_FRESH`] are taken, and none below an id the store already used: a store's jobs
/// get ascending ids, and ids follow the order of enqueues across processes to within that
/// window, as newest-first listings expect.
#[derive(Default)]
pub(crate) struct SpareIds {
    /// Lowest first, with when each was allocated.
    ids: VecDeque<(i64, Instant)>,
    /// The highest id this store used.
    used: i64,
}

/// The largest enqueue that takes spare ids and asks for its successor's (a bulk enqueue pays its
/// allocation once for many jobs).
const SPARE_IDS_MAX: usize = 64;
/// How long an allocated id stays usable.
const SPARE_IDS_FRESH: Duration = Duration::from_millis(250);

/// A batch of jobs as the column arrays of enqueue/insert.sql (and insert_plain.sql), in input
/// order.
pub(super) struct Columns<'a> {
    queue: Vec<&'a str>,
    task: Vec<&'a str>,
    args: Vec<&'a str>,
    priority: Vec<i64>,
    run_at: Vec<Option<i64>>,
    delay: Vec<Option<i64>>,
    max_retries: Vec<i64>,
    timeout: Vec<Option<i64>>,
    soft: Vec<Option<i64>>,
    ttl: Vec<Option<i64>>,
    base: Vec<i64>,
    max: Vec<i64>,
    jitter: Vec<bool>,
    keys: Vec<Option<&'a str>>,
    expires: Vec<Option<i64>>,
    traces: Vec<Option<&'a str>>,
}

impl<'a> Columns<'a> {
    /// What inserting all of `jobs` counts.
    fn of_counts(jobs: &[NewJob], ns: &str) -> Counts {
        let mut counts = Counts::default();
        for j in jobs {
            counts.add(ns, &Change::inserted(&j.queue, &j.task_name, 0));
        }
        counts
    }

    pub(super) fn of(jobs: &'a [NewJob]) -> Self {
        Columns {
            queue: jobs.iter().map(|j| j.queue.as_str()).collect(),
            task: jobs.iter().map(|j| j.task_name.as_str()).collect(),
            args: jobs.iter().map(|j| j.args.as_str()).collect(),
            priority: jobs.iter().map(|j| j.priority).collect(),
            run_at: jobs.iter().map(|j| j.run_at).collect(),
            delay: jobs.iter().map(|j| j.delay_ms).collect(),
            max_retries: jobs.iter().map(|j| j.max_retries).collect(),
            timeout: jobs.iter().map(|j| j.timeout_ms).collect(),
            soft: jobs.iter().map(|j| j.soft_timeout_ms).collect(),
            ttl: jobs.iter().map(|j| j.result_ttl_ms).collect(),
            base: jobs.iter().map(|j| j.backoff_base_ms).collect(),
            max: jobs.iter().map(|j| j.backoff_max_ms).collect(),
            jitter: jobs.iter().map(|j| j.backoff_jitter).collect(),
            keys: jobs.iter().map(|j| j.unique_key.as_deref()).collect(),
            expires: jobs.iter().map(|j| j.expires_in_ms).collect(),
            traces: jobs.iter().map(|j| j.trace_context.as_deref()).collect(),
        }
    }

    /// The parameters of enqueue/insert.sql for these jobs under pre-allocated `ids`, with
    /// `counts` to append in the same statement (empty: none).
    pub(super) fn params<'p>(
        &'p self,
        ns: &'p String,
        ids: &'p Vec<i64>,
        counts: &'p counters::Columns<'p>,
    ) -> [&'p (dyn ToSql + Sync); 25] {
        let [c0, c1, c2, c3, c4, c5, c6] = counts.params();
        [
            ns,
            ids,
            &self.queue,
            &self.task,
            &self.args,
            &self.priority,
            &self.run_at,
            &self.delay,
            &self.max_retries,
            &self.timeout,
            &self.soft,
            &self.ttl,
            &self.base,
            &self.max,
            &self.jitter,
            &self.keys,
            &self.expires,
            &self.traces,
            c0,
            c1,
            c2,
            c3,
            c4,
            c5,
            c6,
        ]
    }
}

/// Most enqueue statements of one store at once, and most jobs one of them combines.
const ENQUEUE_PARALLEL: usize = 4;
const ENQUEUE_COMBINE_MAX: usize = 5000;

/// Group commit for enqueues: the calls waiting when a statement slot frees share one INSERT,
/// so 64 concurrent `delay()` calls cost a few WAL flushes instead of 64 (each flush is several
/// milliseconds on an ordinary disk). Calls with uniqueKeys never come here.
pub(super) async fn combiner(inner: Arc<Inner>, mut rx: mpsc::UnboundedReceiver<EnqueueRequest>) {
    let slots = Arc::new(Semaphore::new(ENQUEUE_PARALLEL));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else {
            return;
        };
        let mut total = first.jobs.len();
        let mut requests = vec![first];
        while total < ENQUEUE_COMBINE_MAX {
            match rx.try_recv() {
                Ok(r) => {
                    total += r.jobs.len();
                    requests.push(r);
                }
                Err(_) => break,
            }
        }
        let inner2 = inner.clone();
        inner.rt.spawn(async move {
            combined(&inner2, requests).await;
            drop(slot);
        });
    }
}

async fn combined(inner: &Inner, mut requests: Vec<EnqueueRequest>) {
    if requests.len() == 1 {
        let r = requests.pop().expect("one request");
        let mut reply = Some(r.reply);
        let out = inner.enqueue_now(&r.jobs, &mut reply).await;
        if let Some(reply) = reply {
            let _ = reply.send(out);
        }
        return;
    }
    let lens: Vec<usize> = requests.iter().map(|r| r.jobs.len()).collect();
    let mut all = Vec::with_capacity(lens.iter().sum());
    for r in &mut requests {
        all.append(&mut r.jobs);
    }
    match inner.enqueue_now(&all, &mut None).await {
        Ok(mut out) => {
            for (r, n) in requests.into_iter().zip(lens) {
                let rest = out.split_off(n);
                let _ = r.reply.send(Ok(std::mem::replace(&mut out, rest)));
            }
        }
        // The database refused the statement: one call's jobs must not fail the others', so
        // each call is tried on its own.
        Err(Error::Queue(_)) => {
            for (r, n) in requests.into_iter().zip(lens) {
                let rest = all.split_off(n);
                let mine = std::mem::replace(&mut all, rest);
                let _ = r.reply.send(inner.enqueue_now(&mine, &mut None).await);
            }
        }
        Err(e) => {
            for r in requests {
                let _ = r.reply.send(Err(e.clone()));
            }
        }
    }
}
