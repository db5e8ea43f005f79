-- A RateLimitExceededError's hold: no attempt of the task starts before :hold_until (a later hold
-- already there stands). A task without flow options gets a row holding only this.
INSERT INTO task_flow (namespace, task_name, hold_until)
VALUES (:namespace, :task_name, :hold_until)
ON CONFLICT (namespace, task_name) DO UPDATE SET
    hold_until = max(hold_until, excluded.hold_until);
