INSERT INTO jobs (
    namespace, queue, task_name, args, status, priority, run_at, created_at, max_retries,
    timeout_ms, soft_timeout_ms, result_ttl_ms, backoff_base_ms, backoff_max_ms, backoff_jitter,
    unique_key, start_by, trace_context
) VALUES (
    :namespace, :queue, :task_name, :args, 0, :priority, :run_at, :now, :max_retries,
    :timeout_ms, :soft_timeout_ms, :result_ttl_ms, :backoff_base_ms, :backoff_max_ms, :backoff_jitter,
    :unique_key, :start_by, :trace_context
);
