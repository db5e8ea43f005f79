-- Deletes a schedule; the jobs it already made are untouched. $1 namespace, $2 name.
DELETE FROM schedules WHERE namespace = $1::text AND name = $2::text;
