-- A new job depends on $1: marks it as having dependents (its settles then look for them) and
-- reads its status (policy::workflows::start); no row: unknown in namespace $2. The row lock
-- orders this against a concurrent settle of $1: whichever commits second sees the other.
UPDATE jobs SET has_dependents = 1
WHERE id = $1::bigint AND namespace = $2::text
RETURNING status;
