-- A new job depends on :id: marks it as having dependents (its settles then look for them) and
-- reads its status (policy::workflows::start). No row: the id is unknown in this namespace.
UPDATE jobs SET has_dependents = 1
WHERE id = :id AND namespace = :namespace
RETURNING status;
