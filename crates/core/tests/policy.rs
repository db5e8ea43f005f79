//! Runs the shared table of policy cases (`policy_cases.json`) against `taskito_core::policy`.
//! ava runs the same file against the JS core's twin (`__test__/policy.test.mjs`), so the two
//! cannot drift: a case that one answers differently fails the build.

use serde_json::{Map, Value};
use taskito_core::policy::{
    self, Backoff, Blackout, ClaimKey, Expired, Failure, FailureDecision, Routing,
};
use taskito_core::{ClaimRequest, NewJob, WorkerInfo};

/// The table: `policy_cases.json` and every `policy_cases/*.json` beside it (one file per feature,
/// so features add their rules without touching each other's sections), merged into one object.
/// A section named in two files is an error, not an override.
fn cases() -> Value {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests");
    let read = |path: &std::path::Path| -> Map<String, Value> {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        match serde_json::from_str(&text) {
            Ok(Value::Object(map)) => map,
            other => panic!("{path:?} is not a JSON object: {other:?}"),
        }
    };
    let mut all = read(&std::path::Path::new(dir).join("policy_cases.json"));
    let mut extra: Vec<_> = std::fs::read_dir(std::path::Path::new(dir).join("policy_cases"))
        .map(|d| d.map(|e| e.expect("read policy_cases/").path()).collect())
        .unwrap_or_default();
    extra.sort();
    for path in extra
        .iter()
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
    {
        for (name, value) in read(path) {
            if name == "$comment" {
                continue;
            }
            assert!(
                all.insert(name.clone(), value).is_none(),
                "section {name} of {path:?} is already in the table"
            );
        }
    }
    Value::Object(all)
}

fn section<'a>(all: &'a Value, name: &str) -> &'a Vec<Value> {
    let s = all[name]
        .as_array()
        .unwrap_or_else(|| panic!("no section {name}"));
    assert!(!s.is_empty(), "section {name} has no cases");
    s
}

fn int(v: &Value, key: &str) -> i64 {
    v[key]
        .as_i64()
        .unwrap_or_else(|| panic!("{key} is not an integer in {v}"))
}

fn opt_int(v: &Value, key: &str) -> Option<i64> {
    match &v[key] {
        Value::Null => None,
        x => Some(x.as_i64().unwrap_or_else(|| panic!("{key} in {v}"))),
    }
}

fn text(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {v}"))
        .to_string()
}

/// The error a case expects: its exact message, or None.
fn expected_error(case: &Value) -> Option<String> {
    case["error"].as_str().map(str::to_string)
}

fn error_of(r: taskito_core::Result<()>) -> Option<String> {
    r.err().map(|e| {
        assert_eq!(e.code(), "INVALID_ARGUMENT", "{e:?}");
        e.message().to_string()
    })
}

fn job_of(defaults: &Map<String, Value>, over: &Value) -> NewJob {
    let mut j = defaults.clone();
    for (k, v) in over.as_object().expect("job is an object") {
        j.insert(k.clone(), v.clone());
    }
    let j = Value::Object(j);
    NewJob {
        task_name: text(&j, "taskName"),
        queue: text(&j, "queue"),
        args: text(&j, "args"),
        priority: int(&j, "priority"),
        run_at: opt_int(&j, "runAt"),
        delay_ms: opt_int(&j, "delayMs"),
        max_retries: int(&j, "maxRetries"),
        timeout_ms: opt_int(&j, "timeoutMs"),
        soft_timeout_ms: opt_int(&j, "softTimeoutMs"),
        result_ttl_ms: opt_int(&j, "resultTtlMs"),
        backoff_base_ms: int(&j, "backoffBaseMs"),
        backoff_max_ms: int(&j, "backoffMaxMs"),
        backoff_jitter: j["backoffJitter"].as_bool().expect("backoffJitter"),
        unique_key: j["uniqueKey"].as_str().map(str::to_string),
        trace_context: None,
    }
}

#[test]
fn constants_match_the_table() {
    let all = cases();
    let c = &all["constants"];
    assert_eq!(int(c, "DEFAULT_LEASE_MS") as u64, policy::DEFAULT_LEASE_MS);
    assert_eq!(int(c, "MIN_LEASE_MS") as u64, policy::MIN_LEASE_MS);
    assert_eq!(int(c, "MAX_LEASE_MS") as u64, policy::MAX_LEASE_MS);
    assert_eq!(int(c, "MAX_HEARTBEAT_MS") as u64, policy::MAX_HEARTBEAT_MS);
    assert_eq!(int(c, "REAP_GRACE_MS"), policy::REAP_GRACE_MS);
    assert_eq!(int(c, "BLACKOUT_MS"), policy::BLACKOUT_MS);
    assert_eq!(int(c, "RENEW_WINDOW_MS"), policy::RENEW_WINDOW_MS);
    assert_eq!(
        int(c, "DEFAULT_FILE_MODE") as u32,
        policy::DEFAULT_FILE_MODE
    );
    assert_eq!(int(c, "SWEEP_MIN_BATCH"), policy::SWEEP_MIN_BATCH);
    assert_eq!(int(c, "SWEEP_MAX_BATCH"), policy::SWEEP_MAX_BATCH);
    assert_eq!(int(c, "SWEEP_BUSY_PAUSE_MS"), policy::SWEEP_BUSY_PAUSE_MS);
    assert_eq!(int(c, "SWEEP_IDLE_PAUSE_MS"), policy::SWEEP_IDLE_PAUSE_MS);
    assert_eq!(
        int(c, "DEFAULT_UNROUTABLE_AFTER_MS") as u64,
        policy::DEFAULT_UNROUTABLE_AFTER_MS
    );
    assert_eq!(int(c, "ROUTE_INTERVAL_MS"), policy::ROUTE_INTERVAL_MS);
    assert_eq!(int(c, "ROUTE_BATCH"), policy::ROUTE_BATCH);
    assert_eq!(
        text(c, "CANCELLED_BEFORE_RUN"),
        policy::CANCELLED_BEFORE_RUN
    );
    assert_eq!(text(c, "CANCELLED"), policy::CANCELLED);
    assert_eq!(text(c, "NO_MESSAGE"), policy::NO_MESSAGE);
}

#[test]
fn validate_job_cases() {
    let all = cases();
    let defaults = all["job_defaults"].as_object().expect("job_defaults");
    for case in section(&all, "validate_job") {
        let job = job_of(defaults, &case["job"]);
        let got = error_of(policy::validate_job(int(case, "index") as usize, &job));
        assert_eq!(got, expected_error(case), "case {case}");
    }
}

#[test]
fn validate_worker_lease_claim_page_progress_cases() {
    let all = cases();
    for case in section(&all, "validate_worker_id") {
        let got = error_of(policy::validate_worker_id(&text(case, "workerId")));
        assert_eq!(got, expected_error(case), "case {case}");
    }
    for case in section(&all, "validate_lease") {
        let got = error_of(policy::validate_lease(int(case, "leaseMs") as u64));
        assert_eq!(got, expected_error(case), "case {case}");
    }
    for case in section(&all, "validate_claim") {
        let req = ClaimRequest {
            worker_id: text(case, "workerId"),
            queues: strings(&case["queues"]),
            tasks: strings(&case["tasks"]),
            limit: int(case, "limit"),
            wait_ms: 0,
        };
        let got = error_of(policy::validate_claim(&req));
        assert_eq!(got, expected_error(case), "case {case}");
    }
    for case in section(&all, "validate_worker") {
        let w = WorkerInfo {
            queues: strings(&case["queues"]),
            tasks: strings(&case["tasks"]),
            ..WorkerInfo::new(text(case, "id"), int(case, "leaseMs") as u64)
        };
        let got = error_of(policy::validate_worker(&w));
        assert_eq!(got, expected_error(case), "case {case}");
    }
    for case in section(&all, "validate_page") {
        let got = error_of(policy::validate_page(
            int(case, "limit"),
            int(case, "offset"),
        ));
        assert_eq!(got, expected_error(case), "case {case}");
    }
    for case in section(&all, "validate_progress") {
        let p = match &case["progress"] {
            Value::String(s) if s == "NaN" => f64::NAN,
            Value::String(s) if s == "Infinity" => f64::INFINITY,
            Value::String(s) if s == "-Infinity" => f64::NEG_INFINITY,
            v => v.as_f64().expect("progress"),
        };
        let got = error_of(policy::validate_progress(p));
        assert_eq!(got, expected_error(case), "case {case}");
    }
}

/// A blackout of the table (`{ "from", "back" }`), or None for null.
fn blackout(v: &Value) -> Option<Blackout> {
    (!v.is_null()).then(|| Blackout {
        from: int(v, "from"),
        back: int(v, "back"),
    })
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect()
}

#[test]
fn claim_cases() {
    let all = cases();
    for case in section(&all, "claim_queues") {
        let got = policy::claim_queues(&strings(&case["queues"]));
        assert_eq!(got, strings(&case["expect"]), "case {case}");
    }
    for case in section(&all, "claim_tasks") {
        let got = policy::claim_tasks(&strings(&case["tasks"]));
        assert_eq!(got, strings(&case["expect"]), "case {case}");
    }
    for case in section(&all, "claim_order") {
        let mut keys: Vec<ClaimKey> = case["jobs"]
            .as_array()
            .expect("jobs")
            .iter()
            .map(|j| ClaimKey {
                id: int(j, "id"),
                priority: int(j, "priority"),
                run_at: int(j, "runAt"),
            })
            .collect();
        keys.sort_by(policy::claim_order);
        let ids: Vec<i64> = keys.iter().map(|k| k.id).collect();
        let want: Vec<i64> = case["expect"]
            .as_array()
            .expect("expect")
            .iter()
            .map(|v| v.as_i64().expect("id"))
            .collect();
        assert_eq!(ids, want, "case {case}");
    }
}

#[test]
fn lease_and_time_cases() {
    let all = cases();
    for case in section(&all, "heartbeat_interval_ms") {
        let got = policy::heartbeat_interval_ms(int(case, "leaseMs") as u64);
        assert_eq!(got as i64, int(case, "expect"), "case {case}");
    }
    for case in section(&all, "deadline_at") {
        let got = policy::deadline_at(int(case, "startedAt"), opt_int(case, "timeoutMs"));
        assert_eq!(got, opt_int(case, "expect"), "case {case}");
    }
    for case in section(&all, "lease_end") {
        let got = policy::lease_end(
            int(case, "now"),
            int(case, "leaseMs"),
            opt_int(case, "deadlineAt"),
        );
        assert_eq!(got, int(case, "expect"), "case {case}");
    }
    for case in section(&all, "reap_cutoff") {
        assert_eq!(
            policy::reap_cutoff(int(case, "now")),
            int(case, "expect"),
            "case {case}"
        );
    }
    for case in section(&all, "blackout_after") {
        let got = policy::blackout_after(
            blackout(&case["last"]),
            int(case, "seen"),
            int(case, "now"),
            int(case, "waitedMs"),
        );
        assert_eq!(got, blackout(&case["expect"]), "case {case}");
    }
    for case in section(&all, "reap_cutoff_after") {
        let got = policy::reap_cutoff_after(int(case, "now"), blackout(&case["blackout"]));
        assert_eq!(got, int(case, "expect"), "case {case}");
    }
    for case in section(&all, "renew_window_end") {
        let b = blackout(&case["blackout"]).expect("a blackout");
        assert_eq!(
            policy::renew_window_end(b),
            int(case, "expect"),
            "case {case}"
        );
    }
    for case in section(&all, "run_at") {
        let got = policy::run_at(
            int(case, "now"),
            opt_int(case, "delayMs"),
            opt_int(case, "runAt"),
        );
        assert_eq!(got, int(case, "expect"), "case {case}");
    }
    for case in section(&all, "unreadable") {
        let problems: Vec<String> = case["problems"]
            .as_array()
            .expect("problems")
            .iter()
            .map(|p| {
                policy::unreadable_value(&text(p, "column"), p["found"].as_str(), &text(p, "want"))
            })
            .collect();
        assert_eq!(
            policy::unreadable_job(int(case, "id"), &problems),
            text(case, "message"),
            "case {case}"
        );
        assert_eq!(
            policy::unreadable_dead_letter(int(case, "id"), &problems),
            text(case, "dead_letter"),
            "case {case}"
        );
        let placeholders: Vec<String> = problems
            .iter()
            .map(|p| policy::unreadable_placeholder(p))
            .collect();
        assert_eq!(
            serde_json::to_value(placeholders).unwrap(),
            case["placeholders"],
            "case {case}"
        );
    }
    for case in section(&all, "expires_at") {
        let got = policy::expires_at(int(case, "finishedAt"), opt_int(case, "resultTtlMs"));
        assert_eq!(got, opt_int(case, "expect"), "case {case}");
    }
}

#[test]
fn failure_cases() {
    let all = cases();
    for case in section(&all, "decide_failure") {
        let got = policy::decide_failure(Failure {
            retry_count: int(case, "retryCount"),
            max_retries: int(case, "maxRetries"),
            retryable: case["retryable"].as_bool().expect("retryable"),
            cancel_requested: case["cancelRequested"].as_bool().expect("cancelRequested"),
        });
        assert_eq!(got.as_str(), text(case, "expect"), "case {case}");
        if let FailureDecision::Retry { retry } = got {
            assert_eq!(retry, int(case, "retry"), "case {case}");
        }
    }
    for case in section(&all, "retry_delay_ms") {
        let b = Backoff {
            base_ms: int(case, "baseMs"),
            max_ms: int(case, "maxMs"),
            jitter: case["jitter"].as_bool().expect("jitter"),
        };
        let draw = case["draw"].as_f64().expect("draw");
        let got = policy::retry_delay_ms(int(case, "n"), b, draw);
        assert_eq!(got, int(case, "expect"), "case {case}");
    }
}

#[test]
fn reap_cases() {
    let all = cases();
    for case in section(&all, "reap_decision") {
        let got = policy::reap_decision(Expired {
            now: int(case, "now"),
            deadline_at: opt_int(case, "deadlineAt"),
            timeout_ms: opt_int(case, "timeoutMs"),
            worker_alive_here: case["workerAliveHere"].as_bool().expect("alive"),
        });
        assert_eq!(
            got.map(|r| r.as_str().to_string()),
            case["expect"].as_str().map(str::to_string),
            "case {case}"
        );
        assert_eq!(
            got.map(|r| r.message()),
            case["message"].as_str().map(str::to_string),
            "case {case}"
        );
    }
}

#[test]
fn sweep_cases() {
    let all = cases();
    for case in section(&all, "sweep_next") {
        let got = policy::sweep_next(
            int(case, "deleted"),
            int(case, "limit"),
            opt_int(case, "nextExpiryInMs"),
        );
        let want = &case["expect"];
        assert_eq!(
            got,
            policy::SweepStep {
                limit: int(want, "limit"),
                pause_ms: int(want, "pauseMs"),
            },
            "case {case}"
        );
    }
}

#[test]
fn file_mode_cases() {
    let all = cases();
    for case in section(&all, "validate_file_mode") {
        let got = error_of(policy::validate_file_mode(int(case, "mode") as u32));
        assert_eq!(got, expected_error(case), "case {case}");
    }
    for case in section(&all, "read_only_refusal") {
        let got = policy::read_only_refusal(&text(case, "what"));
        assert_eq!(got, text(case, "expect"), "case {case}");
    }
    for case in section(&all, "dir_mode") {
        let got = policy::dir_mode(int(case, "fileMode") as u32);
        assert_eq!(got as i64, int(case, "expect"), "case {case}");
    }
}

#[test]
fn routing_cases() {
    let all = cases();
    for case in section(&all, "worker_alive") {
        let got = policy::worker_alive(
            int(case, "now"),
            int(case, "lastSeenAt"),
            int(case, "leaseMs"),
        );
        assert_eq!(
            got,
            case["expect"].as_bool().expect("expect"),
            "case {case}"
        );
    }
    for case in section(&all, "unroutable") {
        let got = policy::unroutable(Routing {
            now: int(case, "now"),
            ready_since: int(case, "readySince"),
            task_live: case["taskLive"].as_bool().expect("taskLive"),
            workers_since: opt_int(case, "workersSince"),
            grace_ms: int(case, "graceMs"),
        });
        assert_eq!(
            got,
            case["expect"].as_bool().expect("expect"),
            "case {case}"
        );
    }
    for case in section(&all, "unroutable_message") {
        let got = policy::unroutable_message(
            &text(case, "taskName"),
            &text(case, "queue"),
            int(case, "graceMs"),
        );
        assert_eq!(got, text(case, "expect"), "case {case}");
    }
}

#[test]
fn counter_deltas() {
    use taskito_core::policy::counters::{deltas, Change};
    let all = cases();
    for case in section(&all, "counter_deltas") {
        let (queue, task) = (text(case, "queue"), text(case, "task"));
        let error = case["error"].as_str();
        let got: Vec<Value> = deltas(&Change {
            queue: &queue,
            task: &task,
            from: opt_int(case, "from"),
            to: opt_int(case, "to"),
            run_at: opt_int(case, "runAt"),
            started_at: opt_int(case, "startedAt"),
            now: int(case, "now"),
            error,
        })
        .into_iter()
        .map(|d| serde_json::json!([d.metric, d.queue, d.task, d.label, d.n, d.total]))
        .collect();
        assert_eq!(Value::Array(got), case["expect"], "case {case}");
    }
}
