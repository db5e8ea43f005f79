-- A new job depends on the jobs $1: marks each as having dependents (their settles then look for
-- them) and reads their statuses (policy::workflows::start); an id missing from the answer is
-- unknown in namespace $2. The rows are locked in id order (two enqueues sharing dependencies
-- cannot deadlock), and the lock orders this against a concurrent settle of a dependency:
-- whichever commits second sees the other.
WITH deps AS MATERIALIZED (
    SELECT id FROM jobs
    WHERE id = ANY($1::bigint[]) AND namespace = $2::text
    ORDER BY id
    FOR UPDATE
)
UPDATE jobs AS j SET has_dependents = 1
FROM deps
WHERE j.id = deps.id
RETURNING j.id, j.status;
