-- Every dead letter of the namespace goes; the dead jobs themselves stay (status 4), so a
-- job's history is still there to read. By dead_letters_ns (namespace, id).
DELETE FROM dead_letters WHERE namespace = :namespace;
