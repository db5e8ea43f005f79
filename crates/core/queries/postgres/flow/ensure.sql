-- Makes sure a task's flow row exists before a claim locks it (flow/read.sql, FOR UPDATE): claims
-- of the task in every process then take tokens and count running attempts one after the other
-- (policy::flow::gate). One row inserted: the task is new here. $1 namespace, $2 task.
INSERT INTO task_flow (namespace, task_name) VALUES ($1::text, $2::text)
ON CONFLICT (namespace, task_name) DO NOTHING;
