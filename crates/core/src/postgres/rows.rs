//! Row mapping: the columns of the `.sql` files' results, in the order those files select them,
//! into the model's types. A column added to a query is added here in the same position.

use tokio_postgres::Row;

use crate::model::*;

/// `read/get_job.sql`, `read/list_jobs.sql`.
pub(super) fn job(r: &Row) -> JobRow {
    JobRow {
        id: r.get(0),
        task_name: r.get(1),
        queue: r.get(2),
        status: r.get(3),
        priority: r.get(4),
        args: r.get(5),
        max_retries: r.get(6),
        retry_count: r.get(7),
        timeout_ms: r.get(8),
        soft_timeout_ms: r.get(9),
        result_ttl_ms: r.get(10),
        progress: r.get(11),
        created_at: r.get(12),
        run_at: r.get(13),
        started_at: r.get(14),
        finished_at: r.get(15),
        result: r.get(16),
        error: r.get(17),
        cancel_requested: r.get(18),
        unique_key: r.get(19),
    }
}

/// `claim/claim.sql`.
pub(super) fn claimed_job(r: &Row) -> ClaimedJob {
    ClaimedJob {
        id: r.get(0),
        task_name: r.get(1),
        queue: r.get(2),
        args: r.get(3),
        attempt: r.get(4),
        token: r.get(5),
        max_retries: r.get(6),
        timeout_ms: r.get(7),
        soft_timeout_ms: r.get(8),
        priority: r.get(9),
        run_at: r.get(10),
        started_at: r.get(11),
    }
}

/// `read/job_errors.sql`.
pub(super) fn error_record(r: &Row) -> ErrorRecordRow {
    ErrorRecordRow {
        id: r.get(0),
        job_id: r.get(1),
        attempt: r.get(2),
        error: r.get(3),
        traceback: r.get(4),
        failed_at: r.get(5),
    }
}

/// `read/dead_letters.sql`.
pub(super) fn dead_letter(r: &Row) -> DeadLetterRow {
    DeadLetterRow {
        id: r.get(0),
        job_id: r.get(1),
        task_name: r.get(2),
        queue: r.get(3),
        error: r.get(4),
        retry_count: r.get(5),
        args: r.get(6),
        failed_at: r.get(7),
        replayed_job_id: r.get(8),
    }
}
