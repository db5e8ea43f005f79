-- Deletes a schedule; the jobs it already made are untouched.
DELETE FROM schedules WHERE namespace = :namespace AND name = :name;
