-- Fenced like a settle.
UPDATE jobs SET progress = :progress
WHERE id = :id AND namespace = :namespace AND lease_token = :token AND status = 1;
