//! Round trips of the packed formats. The decoders here read the packed replies the way
//! `src/core/native.ts` does (JSON.parse, then UTF-16 slices of the joined args), so a wrong
//! offset or a wrong field order fails here rather than in a worker.

use serde_json::{json, Value};

use super::*;

/// Args that are hard to slice: astral-plane characters (4 bytes in UTF-8, a surrogate pair in
/// UTF-16), BMP characters (2 and 3 bytes, one unit), JSON escapes, and nothing at all.
const AWKWARD_ARGS: [&str; 8] = [
    r#"["😀"]"#,
    r#"[1,2]"#,
    r#"["𝄞 clef","🇫🇷 flag"]"#,
    "",
    r#"["é","中文"]"#,
    "[\"quote \\\" backslash \\\\ newline \\n tab \\t\"]",
    "\u{1F600}\u{1F600}\u{1F600}",
    "\u{0}\u{1f}\u{7f}\u{2028}",
];

fn claimed(id: i64, args: &str) -> core::ClaimedJob {
    core::ClaimedJob {
        id,
        task_name: format!("task-{id}"),
        queue: if id % 2 == 0 { "even" } else { "odd" }.into(),
        args: args.into(),
        attempt: id % 3,
        token: 1000 + id,
        max_retries: 3,
        timeout_ms: (id % 2 == 0).then_some(30_000),
        soft_timeout_ms: (id % 2 == 1).then_some(10_000),
        started_at: 1_700_000_000_000 + id,
        trace_context: (id % 2 == 0).then(|| format!("00-{id:032x}-{id:016x}-01")),
        priority: 0,
        run_at: 0,
        status: 0,
    }
}

/// An id as `String(a[i])` reads it in JavaScript.
fn js_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn opt(v: &Value) -> Option<i64> {
    v.as_i64()
}

/// `unpackClaimed` of `src/core/native.ts`: the fields of each job, its args sliced out of the
/// joined string in UTF-16 units. A slice that cuts a surrogate pair does not decode.
fn unpack_claimed(text: &str) -> Vec<core::ClaimedJob> {
    unpack_split(text, Vec::new())
}

/// The same with the large args that travel beside the reply (argsLength -1), in order.
fn unpack_split(text: &str, big: Vec<String>) -> Vec<core::ClaimedJob> {
    let a: Vec<Value> = serde_json::from_str(text).expect("the claim reply is JSON");
    let joined: Vec<u16> = a[0].as_str().expect("args first").encode_utf16().collect();
    let mut big = big.into_iter();
    let mut at = 0;
    let mut jobs = Vec::new();
    assert_eq!((a.len() - 1) % 11, 0, "eleven values per job");
    for f in a[1..].chunks(11) {
        let len = f[9].as_i64().expect("argsLength");
        let args = if len < 0 {
            big.next().expect("a large args per argsLength -1")
        } else {
            let len = len as usize;
            let args = String::from_utf16(&joined[at..at + len])
                .expect("each job's slice holds whole characters");
            at += len;
            args
        };
        jobs.push(core::ClaimedJob {
            id: js_string(&f[0]).parse().expect("id"),
            token: f[1].as_i64().expect("token"),
            attempt: f[2].as_i64().expect("attempt"),
            max_retries: f[3].as_i64().expect("maxRetries"),
            timeout_ms: opt(&f[4]),
            soft_timeout_ms: opt(&f[5]),
            started_at: f[6].as_i64().expect("startedAt"),
            task_name: f[7].as_str().expect("taskName").into(),
            queue: f[8].as_str().expect("queue").into(),
            args,
            trace_context: f[10].as_str().map(String::from),
            priority: 0,
            run_at: 0,
            status: 0,
        });
    }
    assert_eq!(at, joined.len(), "the slices cover the joined args exactly");
    assert!(big.next().is_none(), "every large args belongs to a job");
    jobs
}

/// Args just over the line, with astral characters, and exactly on it.
fn big_args(fill: char, bytes: usize) -> String {
    let mut s = String::from("[\"😀");
    while s.len() < bytes - 2 {
        s.push(fill);
    }
    s.push_str("\"]");
    s
}

#[test]
fn large_args_travel_beside_the_claim_reply_and_small_ones_in_it() {
    let over = big_args('x', BIG_ARGS + 1);
    let on = big_args('y', BIG_ARGS);
    assert!(over.len() > BIG_ARGS && on.len() <= BIG_ARGS);
    let jobs = vec![
        claimed(1, r#"["😀"]"#),
        claimed(2, &over),
        claimed(3, &on),
        claimed(4, &big_args('z', 3 * BIG_ARGS)),
        claimed(5, "[]"),
    ];
    let (text, big) = split_claimed(jobs.clone());
    assert_eq!(big.len(), 2, "the two args over the line");
    assert!(
        text.len() < 2 * BIG_ARGS,
        "the reply holds the small args only"
    );
    assert_eq!(unpack_split(&text, big), jobs);
    let (text, big) = split_claimed(
        AWKWARD_ARGS
            .iter()
            .enumerate()
            .map(|(i, a)| claimed(i as i64, a))
            .collect(),
    );
    assert!(big.is_empty());
    assert_eq!(unpack_claimed(&text).len(), AWKWARD_ARGS.len());
}

#[test]
fn an_enqueue_batch_takes_the_args_left_out_of_it_in_order() {
    let (a, b) = (big_args('a', BIG_ARGS + 10), big_args('b', BIG_ARGS + 20));
    let mut first = core::NewJob::new("add", "");
    first.args = a.clone();
    let small = core::NewJob::new("add", "[1]");
    let mut last = core::NewJob::new("add", "");
    last.args = b.clone();
    let mut packed = vec![pack_job(&first), pack_job(&small), pack_job(&last)];
    packed[0][2] = Value::Null;
    packed[2][2] = Value::Null;
    let text = Value::Array(packed).to_string();
    assert_eq!(
        unpack_jobs(&text, vec![a.clone(), b.clone()]).unwrap(),
        vec![first, small, last]
    );
    // One large args too few or too many: the batch is refused whole.
    for big in [vec![a.clone()], vec![a, b.clone(), b]] {
        let err = unpack_jobs(&text, big).unwrap_err();
        assert_eq!(err.code(), "INVALID_ARGUMENT");
        assert!(
            err.message().starts_with("enqueue: malformed batch"),
            "{err}"
        );
    }
}

#[test]
fn a_claim_reply_of_several_jobs_gives_each_job_its_own_astral_plane_args() {
    let jobs: Vec<_> = AWKWARD_ARGS
        .iter()
        .enumerate()
        .map(|(i, args)| claimed(i as i64 + 1, args))
        .collect();
    assert_eq!(unpack_claimed(&pack_claimed(&jobs)), jobs);
}

#[test]
fn claim_reply_lengths_count_utf16_units_not_bytes_or_characters() {
    let text = pack_claimed(&[claimed(1, "😀"), claimed(2, "é"), claimed(3, "ab")]);
    let a: Vec<Value> = serde_json::from_str(&text).unwrap();
    let lengths: Vec<u64> = a[1..].chunks(11).map(|f| f[9].as_u64().unwrap()).collect();
    // 😀 is 4 bytes, 1 character, 2 units; é is 2 bytes, 1 unit.
    assert_eq!(lengths, [2, 1, 2]);
}

#[test]
fn an_empty_claim_reply_is_an_empty_args_string_and_no_jobs() {
    assert_eq!(pack_claimed(&[]), r#"[""]"#);
    assert!(unpack_claimed(&pack_claimed(&[])).is_empty());
}

#[test]
fn ids_beyond_a_double_travel_as_strings() {
    let big = (1_i64 << 53) + 1;
    let jobs = [claimed(big, "[]"), claimed((1 << 53) - 1, "[]")];
    let text = pack_claimed(&jobs);
    let a: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(a[1], json!(big.to_string()));
    assert_eq!(a[12], json!((1_i64 << 53) - 1));
    assert_eq!(unpack_claimed(&text), jobs);

    let enqueued = [
        core::Enqueued {
            id: 7,
            created: true,
        },
        core::Enqueued {
            id: 8,
            created: false,
        },
        core::Enqueued {
            id: big,
            created: true,
        },
        core::Enqueued {
            id: big,
            created: false,
        },
    ];
    assert_eq!(
        pack_enqueued(&enqueued),
        format!(r#"[7,-8,"{big}","-{big}"]"#)
    );
}

/// `packJobs` of `src/core/native.ts`: each NewJob as an array of its fields.
fn pack_job(j: &core::NewJob) -> Value {
    json!([
        j.task_name,
        j.queue,
        j.args,
        j.priority,
        j.run_at,
        j.delay_ms,
        j.max_retries,
        j.timeout_ms,
        j.soft_timeout_ms,
        j.result_ttl_ms,
        j.backoff_base_ms,
        j.backoff_max_ms,
        j.backoff_jitter,
        j.unique_key,
        if j.expires_in_ms.is_none() && j.trace_context.is_none() {
            Value::Null
        } else {
            json!([j.expires_in_ms, j.trace_context])
        },
        if j.depends_on.is_empty() {
            Value::Null
        } else {
            let deps: Vec<Value> = j
                .depends_on
                .iter()
                .map(|d| match d {
                    core::DependencyRef::Job(id) => json!(id.to_string()),
                    core::DependencyRef::Batch(k) => json!(k),
                })
                .collect();
            json!([deps, j.takes as i64])
        },
    ])
}

#[test]
fn an_enqueue_batch_unpacks_to_the_jobs_that_were_packed() {
    let plain = core::NewJob::new("add", "[1,2]");
    let full = core::NewJob {
        task_name: "emoji 😀".into(),
        queue: "q-𝄞".into(),
        args: r#"["😀","\"quoted\""]"#.into(),
        priority: -5,
        run_at: Some(1_700_000_000_000),
        delay_ms: Some(250),
        max_retries: 0,
        timeout_ms: Some(30_000),
        soft_timeout_ms: Some(10_000),
        result_ttl_ms: Some(3_600_000),
        backoff_base_ms: 10,
        backoff_max_ms: 20,
        backoff_jitter: false,
        unique_key: Some("key 🇫🇷".into()),
        expires_in_ms: Some(60_000),
        depends_on: vec![core::DependencyRef::Job(42), core::DependencyRef::Batch(0)],
        takes: core::Takes::All,
        trace_context: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
    };
    let text = Value::Array(vec![pack_job(&plain), pack_job(&full)]).to_string();
    assert_eq!(unpack_jobs(&text, vec![]).unwrap(), vec![plain, full]);
    assert_eq!(unpack_jobs("[]", vec![]).unwrap(), vec![]);
}

#[test]
fn a_malformed_enqueue_batch_is_an_invalid_argument() {
    let short = json!([["add", "default", "[]", 0]]).to_string();
    for text in ["", "{}", "[1]", short.as_str()] {
        let err = unpack_jobs(text, vec![]).unwrap_err();
        assert_eq!(err.code(), "INVALID_ARGUMENT", "{text:?}");
        assert!(
            err.message().starts_with("enqueue: malformed batch"),
            "{err}"
        );
    }
}

#[test]
fn a_settle_batch_unpacks_with_absent_and_null_fields_as_none() {
    let text = json!([
        { "id": "1", "token": 5, "kind": "complete", "result": "\"😀\"" },
        { "id": "2", "token": 6, "kind": "fail", "error": "Error: x", "traceback": null, "retryable": false },
        { "id": "3", "token": 7, "kind": "cancel" },
    ])
    .to_string();
    let settles = unpack_settles(&text).unwrap();
    assert_eq!(
        settles,
        vec![
            core::Settle {
                id: 1,
                token: 5,
                kind: core::SettleKind::Complete,
                result: Some("\"😀\"".into()),
                error: None,
                traceback: None,
                retryable: None,
                retry_after_ms: None,
                breaker: false,
            },
            core::Settle {
                id: 2,
                token: 6,
                kind: core::SettleKind::Fail,
                result: None,
                error: Some("Error: x".into()),
                traceback: None,
                retryable: Some(false),
                retry_after_ms: None,
                breaker: false,
            },
            core::Settle {
                id: 3,
                token: 7,
                kind: core::SettleKind::Cancel,
                result: None,
                error: None,
                traceback: None,
                retryable: None,
                retry_after_ms: None,
                breaker: false,
            },
        ]
    );
}

#[test]
fn a_settle_batch_with_one_bad_settle_is_refused_whole() {
    let bad_kind = json!([
        { "id": "1", "token": 1, "kind": "complete" },
        { "id": "2", "token": 1, "kind": "done" },
    ])
    .to_string();
    let err = unpack_settles(&bad_kind).unwrap_err();
    assert_eq!(err.code(), "INVALID_ARGUMENT");
    assert!(err.message().contains("\"done\""), "{err}");

    let bad_id = json!([{ "id": "x1", "token": 1, "kind": "complete" }]).to_string();
    assert_eq!(unpack_settles(&bad_id).unwrap_err().code(), "JOB_NOT_FOUND");

    let no_token = json!([{ "id": "1", "kind": "complete" }]).to_string();
    assert_eq!(
        unpack_settles(&no_token).unwrap_err().code(),
        "INVALID_ARGUMENT"
    );
}

#[test]
fn settle_outcomes_pack_as_status_index_and_run_at() {
    let out: Vec<_> = core::SettleStatus::ALL
        .iter()
        .enumerate()
        .map(|(i, status)| core::SettleOutcome {
            id: i as i64,
            status: *status,
            run_at: (*status == core::SettleStatus::Failed).then_some(1_700_000_000_000),
        })
        .collect();
    assert_eq!(
        pack_outcomes(&out),
        "[0,null,1,1700000000000,2,null,3,null,4,null,5,null]"
    );
    assert_eq!(pack_outcomes(&[]), "[]");
}

#[test]
fn the_typescript_side_numbers_settle_statuses_in_the_same_order() {
    let native_ts = include_str!("../../../../src/core/native.ts");
    let names: Vec<String> = core::SettleStatus::ALL
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    let mirror = format!("[{}]", names.join(", "));
    assert!(
        native_ts.contains(&mirror),
        "src/core/native.ts must list the settle statuses as {mirror}"
    );
}

#[test]
fn job_ids_that_do_not_parse_are_not_found() {
    assert_eq!(parse_id("42").unwrap(), 42);
    for id in ["", "abc", "1.5", "99999999999999999999"] {
        assert_eq!(parse_id(id).unwrap_err().code(), "JOB_NOT_FOUND", "{id:?}");
    }
}
