-- One edge: :job_id waits on :depends_on_id; :position orders the results it may take.
INSERT OR IGNORE INTO job_dependencies (job_id, depends_on_id, position)
VALUES (:job_id, :depends_on_id, :position);
