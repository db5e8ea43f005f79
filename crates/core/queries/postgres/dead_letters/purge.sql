-- Every dead letter of the namespace goes; the dead jobs themselves stay (status 4).
-- $1 namespace.
DELETE FROM dead_letters WHERE namespace = $1::text;
