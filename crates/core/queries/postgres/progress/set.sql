-- Fenced like a settle. $1 id, $2 namespace, $3 token, $4 progress.
UPDATE jobs SET progress = $4::float8
WHERE id = $1::bigint AND namespace = $2::text AND lease_token = $3::bigint AND status = 1;
