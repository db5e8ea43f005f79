//! Runs the shared table of policy cases (`policy_cases.json`) against `taskito_core::policy`.
//! ava runs the same file against the JS core's twin (`__test__/policy.test.mjs`), so the two
//! cannot drift: a case that one answers differently fails the build.

use serde_json::{Map, Value};
use taskito_core::policy::workflows::{self, Start};
use taskito_core::policy::{
    self, Backoff, Blackout, ClaimKey, Expired, Failure, FailureDecision, Routing,
};
use taskito_core::{ClaimRequest, DependencyRef, NewJob, Takes, WorkerInfo};

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
        expires_in_ms: opt_int(&j, "expiresInMs"),
        depends_on: Vec::new(),
        takes: Takes::Nothing,
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
    for case in section(&all, "next_token") {
        let got = policy::next_token(int(case, "last"), int(case, "now"));
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
fn list_cases() {
    use taskito_core::policy::list::{self, ListEstimates};
    let all = cases();
    for case in section(&all, "needs_estimates") {
        let got = list::needs_estimates(
            case["task"].as_bool().expect("task"),
            case["queue"].as_bool().expect("queue"),
        );
        assert_eq!(
            got,
            case["expect"].as_bool().expect("expect"),
            "case {case}"
        );
    }
    for case in section(&all, "list_source") {
        let est = ListEstimates {
            total: int(case, "total"),
            status: opt_int(case, "by_status"),
            task: opt_int(case, "by_task"),
            queue: opt_int(case, "by_queue"),
        };
        let got = list::list_source(opt_int(case, "status"), int(case, "want"), &est);
        assert_eq!(got.as_str(), text(case, "expect"), "case {case}");
    }
}

#[test]
fn claim_plan_cases() {
    use taskito_core::policy::claim_plan::{self, Plan};
    let all = cases();
    for case in section(&all, "claim_plan") {
        let got = match claim_plan::plan(int(case, "queues") as usize, int(case, "tasks") as usize)
        {
            Plan::ByPair => "byPair",
            Plan::Scan => "scan",
        };
        assert_eq!(got, case["expect"], "{case}");
    }
    for case in section(&all, "scan_budget") {
        let got = claim_plan::scan_budget(int(case, "pairs") as usize, int(case, "limit"));
        assert_eq!(got, int(case, "expect"), "{case}");
    }
    for case in section(&all, "spread_pairs") {
        let got = claim_plan::spread_pairs(int(case, "limit"));
        assert_eq!(got as i64, int(case, "expect"), "{case}");
    }
    for case in section(&all, "spread_heads") {
        let got = claim_plan::spread_heads(int(case, "limit"));
        assert_eq!(got, int(case, "expect"), "{case}");
    }
    for case in section(&all, "spread_shares") {
        let heads: Vec<(&str, &str)> = case["heads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h[0].as_str().unwrap(), h[1].as_str().unwrap()))
            .collect();
        let got: Vec<serde_json::Value> =
            claim_plan::spread_shares(&heads, int(case, "limit"), int(case, "most") as usize)
                .into_iter()
                .map(|s| serde_json::json!([s.queue, s.task, s.n]))
                .collect();
        assert_eq!(serde_json::Value::from(got), case["expect"], "{case}");
    }
}

#[test]
fn queues_cases() {
    use taskito_core::policy::queues;
    use taskito_core::{QueueCount, QueueRow, StatsRow};
    let all = cases();
    for case in section(&all, "validate_queue_name") {
        let got = error_of(queues::validate_queue_name(
            &text(case, "what"),
            &text(case, "name"),
        ));
        assert_eq!(got, expected_error(case), "case {case}");
    }
    for case in section(&all, "claimable") {
        let (worker, paused) = (strings(&case["queues"]), strings(&case["paused"]));
        let got = queues::claimable(&worker, &paused);
        assert_eq!(*got, strings(&case["expect"]), "case {case}");
    }
    for case in section(&all, "queue_rows") {
        let counts: Vec<QueueCount> = case["counts"]
            .as_array()
            .expect("counts")
            .iter()
            .map(|c| QueueCount {
                queue: text(c, "queue"),
                status: int(c, "status"),
                count: int(c, "count"),
            })
            .collect();
        let got = queues::queue_rows(&counts, &strings(&case["paused"]));
        let want: Vec<QueueRow> = case["expect"]
            .as_array()
            .expect("expect")
            .iter()
            .map(|r| {
                let c = &r["counts"];
                QueueRow {
                    name: text(r, "name"),
                    paused: r["paused"].as_bool().expect("paused"),
                    counts: StatsRow {
                        pending: int(c, "pending"),
                        running: int(c, "running"),
                        completed: int(c, "completed"),
                        failed: int(c, "failed"),
                        dead: int(c, "dead"),
                        cancelled: int(c, "cancelled"),
                    },
                }
            })
            .collect();
        assert_eq!(got, want, "case {case}");
    }
}

// ---- flow control (policy_cases/flow.json) ----------------------------------------------------

mod flow_cases {
    use super::*;
    use taskito_core::policy::flow::{self, FlowState};
    use taskito_core::{BreakerOptions, BreakerState, RateLimit, TaskFlow};

    fn state_name(s: BreakerState) -> &'static str {
        s.as_str()
    }

    fn breaker_state(v: &Value) -> BreakerState {
        match v.as_str().expect("breaker state") {
            "open" => BreakerState::Open,
            "half-open" => BreakerState::HalfOpen,
            _ => BreakerState::Closed,
        }
    }

    fn rate(v: &Value) -> Option<RateLimit> {
        (!v.is_null()).then(|| RateLimit {
            limit: int(v, "limit"),
            per_ms: int(v, "perMs"),
        })
    }

    fn breaker(v: &Value) -> Option<BreakerOptions> {
        (!v.is_null()).then(|| BreakerOptions {
            threshold: int(v, "threshold"),
            window_ms: int(v, "windowMs"),
            cooldown_ms: int(v, "cooldownMs"),
            half_open_probes: int(v, "halfOpenProbes"),
        })
    }

    fn task_flow(v: &Value) -> TaskFlow {
        TaskFlow {
            task: "t".into(),
            rate_limit: rate(&v["rateLimit"]),
            concurrency: opt_int(v, "concurrency"),
            breaker: breaker(&v["breaker"]),
        }
    }

    fn ints(v: &Value) -> Vec<i64> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|x| x.as_i64().expect("int"))
            .collect()
    }

    fn state(v: &Value) -> FlowState {
        FlowState {
            tokens: v["tokens"].as_f64().unwrap_or(0.0),
            refilled_at: v["refilledAt"].as_i64().unwrap_or(0),
            hold_until: v["holdUntil"].as_i64().unwrap_or(0),
            breaker: breaker_state(&v["breaker"]),
            failures: ints(&v["failures"]),
            opened_at: opt_int(v, "openedAt"),
            probe_successes: int(v, "probeSuccesses"),
        }
    }

    fn rate_json(r: taskito_core::Result<RateLimit>) -> Result<Value, String> {
        r.map(|r| serde_json::json!({ "limit": r.limit, "perMs": r.per_ms }))
            .map_err(|e| e.message().to_string())
    }

    /// `expect` or `error` of a case, as the result of a validator.
    fn want(case: &Value) -> Result<Value, String> {
        match expected_error(case) {
            Some(e) => Err(e),
            None => Ok(case["expect"].clone()),
        }
    }

    #[test]
    fn constants() {
        let all = cases();
        let c = &all["flow_constants"];
        assert_eq!(int(c, "FLOW_RECHECK_MS"), flow::FLOW_RECHECK_MS);
        assert_eq!(int(c, "MAX_CONCURRENCY") as f64, flow::MAX_CONCURRENCY);
    }

    #[test]
    fn validation() {
        let all = cases();
        for case in section(&all, "flow_parse_rate_limit") {
            let got = rate_json(flow::parse_rate_limit(&text(case, "spec")));
            assert_eq!(got, want(case), "case {case}");
        }
        for case in section(&all, "flow_rate_limit_of") {
            let (l, p) = (case["limit"].as_f64(), case["per"].as_f64());
            let got = rate_json(flow::rate_limit_of(l.unwrap(), p.unwrap()));
            assert_eq!(got, want(case), "case {case}");
        }
        for case in section(&all, "flow_concurrency_of") {
            let got = flow::concurrency_of(case["value"].as_f64().unwrap())
                .map(|n| serde_json::json!(n))
                .map_err(|e| e.message().to_string());
            assert_eq!(got, want(case), "case {case}");
        }
        for case in section(&all, "flow_breaker_of") {
            let f = |k: &str| case[k].as_f64().unwrap();
            let got = flow::breaker_of(f("threshold"), f("window"), f("cooldown"), f("probes"))
                .map(|b| {
                    serde_json::json!({ "threshold": b.threshold, "windowMs": b.window_ms,
                        "cooldownMs": b.cooldown_ms, "halfOpenProbes": b.half_open_probes })
                })
                .map_err(|e| e.message().to_string());
            assert_eq!(got, want(case), "case {case}");
        }
    }

    #[test]
    fn bucket_and_gate() {
        let all = cases();
        for case in section(&all, "flow_refill") {
            let r = rate(&case["rate"]).unwrap();
            let got = flow::refill(
                r,
                case["tokens"].as_f64().unwrap(),
                int(case, "refilledAt"),
                int(case, "now"),
            );
            assert_eq!(got, case["expect"].as_f64().unwrap(), "case {case}");
        }
        for case in section(&all, "flow_gate") {
            let g = flow::gate(
                &task_flow(&case["flow"]),
                &state(&case["state"]),
                int(case, "running"),
                int(case, "now"),
            );
            let e = &case["expect"];
            let allowed = (g.allowed != i64::MAX).then_some(g.allowed);
            assert_eq!(allowed, opt_int(e, "allowed"), "case {case}");
            assert_eq!(g.next_at, opt_int(e, "nextAt"), "case {case}");
            assert_eq!(g.state.tokens, e["tokens"].as_f64().unwrap(), "case {case}");
            assert_eq!(g.state.refilled_at, int(e, "refilledAt"), "case {case}");
            assert_eq!(
                state_name(g.state.breaker),
                text(e, "breaker"),
                "case {case}"
            );
        }
        for case in section(&all, "flow_took") {
            let s = FlowState {
                tokens: case["tokens"].as_f64().unwrap(),
                ..FlowState::fresh(&TaskFlow::none("t"), 0)
            };
            let got = flow::took(&task_flow(&case["flow"]), &s, int(case, "started"));
            assert_eq!(got.tokens, case["expect"].as_f64().unwrap(), "case {case}");
        }
    }

    #[test]
    fn breaker_transitions() {
        let all = cases();
        for case in section(&all, "flow_breaker") {
            let b = breaker(&case["breaker"]).unwrap();
            let s = state(&case["state"]);
            let now = int(case, "now");
            let got = match text(case, "event").as_str() {
                "failed" => flow::breaker_failed(&b, &s, now),
                _ => flow::breaker_succeeded(&b, &s, now),
            };
            let e = &case["expect"];
            assert_eq!(state_name(got.breaker), text(e, "breaker"), "case {case}");
            assert_eq!(got.failures, ints(&e["failures"]), "case {case}");
            assert_eq!(got.opened_at, opt_int(e, "openedAt"), "case {case}");
            assert_eq!(got.probe_successes, int(e, "probeSuccesses"), "case {case}");
        }
        for case in section(&all, "flow_breaker_view") {
            let b = breaker(&case["breaker"]).unwrap();
            let v = flow::breaker_view(&b, &state(&case["state"]), int(case, "now"));
            let e = &case["expect"];
            assert_eq!(state_name(v.state), text(e, "state"), "case {case}");
            assert_eq!(v.failures, int(e, "failures"), "case {case}");
            assert_eq!(v.opened_at, opt_int(e, "openedAt"), "case {case}");
            assert_eq!(v.closes_at, opt_int(e, "closesAt"), "case {case}");
        }
        for case in section(&all, "flow_failures_text") {
            let got = flow::failures_from_text(&text(case, "text"));
            assert_eq!(got, ints(&case["expect"]), "case {case}");
            assert_eq!(flow::failures_from_text(&flow::failures_to_text(&got)), got);
        }
    }
}

#[test]
fn schedule_cases() {
    use taskito_core::policy::schedules as s;
    use taskito_core::NewSchedule;
    let all = cases();
    let c = &section(&all, "schedule_constants")[0];
    assert_eq!(text(c, "EXPIRED_ERROR"), s::EXPIRED_ERROR);
    assert_eq!(int(c, "EXPIRE_BATCH"), s::EXPIRE_BATCH);
    assert_eq!(int(c, "SCHEDULE_REFRESH_MS"), s::SCHEDULE_REFRESH_MS);
    for case in section(&all, "start_by") {
        let got = s::start_by(int(case, "now"), opt_int(case, "expiresInMs"));
        assert_eq!(got, opt_int(case, "expect"), "{case}");
    }
    for case in section(&all, "expired") {
        let got = s::expired(opt_int(case, "startBy"), int(case, "now"));
        assert_eq!(Some(got), case["expect"].as_bool(), "{case}");
    }
    for case in section(&all, "schedule_fire") {
        let got = s::fire(
            int(case, "nextRunAt"),
            case["paused"].as_bool().expect("paused"),
            int(case, "now"),
            opt_int(case, "latest"),
            int(case, "following"),
        );
        let want = case["expect"]
            .as_array()
            .map(|a| (a[0].as_i64().unwrap(), a[1].as_i64().unwrap()));
        assert_eq!(got, want, "{case}");
    }
    for case in section(&all, "schedule_sleep") {
        let got = s::sleep_ms(
            int(case, "waitMs"),
            case["hasSchedules"].as_bool().expect("hasSchedules"),
            opt_int(case, "nextDue"),
            int(case, "now"),
        );
        assert_eq!(got, int(case, "expect"), "{case}");
    }
    for case in section(&all, "schedule_next_on_redeclare") {
        let stored = case["stored"].as_array().map(|a| {
            (
                a[0].as_str().unwrap(),
                a[1].as_str().unwrap(),
                a[2].as_i64().unwrap(),
            )
        });
        let got = s::next_on_redeclare(
            stored,
            &text(case, "cron"),
            &text(case, "timezone"),
            int(case, "declaredNext"),
        );
        assert_eq!(got, int(case, "expect"), "{case}");
    }
    for case in section(&all, "validate_schedule") {
        let o = &case["schedule"];
        let field = |k: &str, d: &str| o[k].as_str().unwrap_or(d).to_string();
        let sched = NewSchedule {
            name: field("name", "nightly"),
            task_name: field("taskName", "report"),
            queue: field("queue", "default"),
            priority: 0,
            cron: field("cron", "0 3 * * *"),
            timezone: field("timezone", "UTC"),
            args: "[]".into(),
            next_run_at: 0,
        };
        let got = error_of(s::validate_schedule(&sched));
        assert_eq!(got, expected_error(case), "{case}");
    }
    let defaults = all["job_defaults"].as_object().expect("job_defaults");
    for case in section(&all, "validate_job_expires") {
        let got = error_of(policy::validate_job(0, &job_of(defaults, &case["job"])));
        assert_eq!(got, expected_error(case), "{case}");
    }
}

#[test]
fn workflow_rules_match_the_table() {
    let all = cases();
    for c in section(&all, "workflow_start") {
        let statuses: Vec<i64> = c["statuses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        let e = &c["expect"];
        let want = match e["kind"].as_str().unwrap() {
            "ready" => Start::Ready,
            "blocked" => Start::Blocked {
                left: int(e, "left"),
            },
            _ => Start::Cancelled {
                index: int(e, "index") as usize,
            },
        };
        assert_eq!(workflows::start(&statuses), want, "{c}");
    }
    for c in section(&all, "workflow_ends_dependents") {
        let want = c["expect"].as_bool().unwrap();
        assert_eq!(workflows::ends_dependents(int(c, "status")), want, "{c}");
    }
    for c in section(&all, "workflow_shown_status") {
        assert_eq!(
            workflows::shown_status(int(c, "status")),
            int(c, "expect"),
            "{c}"
        );
    }
    for c in section(&all, "workflow_cancelled_message") {
        let got = workflows::cancelled_message(int(c, "dependencyId"), int(c, "status"));
        assert_eq!(got, text(c, "expect"), "{c}");
    }
    for c in section(&all, "workflow_released_run_at") {
        let got = workflows::released_run_at(int(c, "now"), opt_int(c, "delayMs"), int(c, "runAt"));
        assert_eq!(got, int(c, "expect"), "{c}");
    }
    for c in section(&all, "workflow_step_args") {
        let results: Vec<Option<String>> = c["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect();
        let got =
            workflows::step_args(Takes::from_i64(int(c, "takes")), &text(c, "args"), &results).map(
                |t| {
                    let body = t
                        .strip_prefix(workflows::STEP_ARGS_PREFIX)
                        .expect("the prefix");
                    serde_json::from_str::<Value>(body).expect("JSON after the prefix")
                },
            );
        assert_eq!(got.unwrap_or(Value::Null), c["expect"], "{c}");
    }
    for c in section(&all, "workflow_validate_dependencies") {
        let mut job = NewJob::new("t", "[]");
        job.takes = Takes::from_i64(int(c, "takes"));
        job.depends_on = c["dependsOn"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| match v {
                Value::String(s) => DependencyRef::Job(s.parse().unwrap()),
                n => DependencyRef::Batch(n.as_u64().unwrap() as usize),
            })
            .collect();
        let got = error_of(workflows::validate_dependencies(
            int(c, "index") as usize,
            &job,
        ));
        assert_eq!(got, expected_error(c), "{c}");
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

#[test]
fn wake_cases() {
    use taskito_core::policy::wake::{self, Trust};
    let all = cases();
    let trust = |v: &Value| Trust {
        trusted: v["trusted"].as_bool().expect("trusted"),
        suspect: v["suspect"].as_bool().expect("suspect"),
    };
    let flag = |v: &Value, key: &str| v[key].as_bool().unwrap_or_else(|| panic!("{key} in {v}"));
    let c = &section(&all, "wake_constants")[0];
    assert_eq!(text(c, "WATCH_ENV"), wake::WATCH_ENV);
    assert_eq!(text(c, "POLL_ENV"), wake::POLL_ENV);
    assert_eq!(int(c, "POLL_MS") as u64, wake::POLL_MS);
    assert_eq!(int(c, "TRUSTED_POLL_MS") as u64, wake::TRUSTED_POLL_MS);
    assert_eq!(int(c, "RECHECK_MS") as u64, wake::RECHECK_MS);
    assert_eq!(int(c, "WATCH_LINGER_MS") as u64, wake::WATCH_LINGER_MS);
    for case in section(&all, "wake_start") {
        let got = wake::start(flag(case, "watching"));
        assert_eq!(got, trust(&case["expect"]), "{case}");
    }
    for case in section(&all, "wake_watch_enabled") {
        let got = wake::watch_enabled(case["env"].as_str());
        assert_eq!(got, flag(case, "expect"), "{case}");
    }
    for case in section(&all, "wake_poll_override") {
        let got = wake::poll_override(case["env"].as_str()).map(|ms| ms as i64);
        assert_eq!(got, opt_int(case, "expect"), "{case}");
    }
    for case in section(&all, "wake_judge") {
        let got = wake::judge(
            trust(&case["trust"]),
            flag(case, "changed"),
            flag(case, "notified"),
        );
        assert_eq!(got, trust(&case["expect"]), "{case}");
    }
    for case in section(&all, "wake_poll_ms") {
        let over = opt_int(case, "override").map(|ms| ms as u64);
        let got = wake::poll_ms(flag(case, "watching"), trust(&case["trust"]), over);
        assert_eq!(got as i64, int(case, "expect"), "{case}");
    }
}

#[test]
fn checkpoint_cases() {
    use taskito_core::policy::checkpoint;
    let all = cases();
    let c = &section(&all, "checkpoint_constants")[0];
    let interval = int(c, "CHECKPOINT_INTERVAL_MS") as u64;
    assert_eq!(interval, checkpoint::CHECKPOINT_INTERVAL_MS);
    assert_eq!(
        int(c, "CHECKPOINT_COMMITS") as u64,
        checkpoint::CHECKPOINT_COMMITS
    );
    assert_eq!(
        int(c, "CHECKPOINT_FULL_FRAMES"),
        checkpoint::CHECKPOINT_FULL_FRAMES
    );
    assert_eq!(
        int(c, "CHECKPOINT_FULL_WAIT_MS") as u64,
        checkpoint::CHECKPOINT_FULL_WAIT_MS
    );
    for case in section(&all, "checkpoint_due") {
        let (commits, seen) = (int(case, "commits") as u64, int(case, "seen") as u64);
        let got = checkpoint::checkpoint_due(commits, seen);
        assert_eq!(Value::Bool(got), case["expect"], "{case}");
    }
    for case in section(&all, "full_checkpoint_due") {
        let got = checkpoint::full_checkpoint_due(int(case, "wal_frames"));
        assert_eq!(Value::Bool(got), case["expect"], "{case}");
    }
}
