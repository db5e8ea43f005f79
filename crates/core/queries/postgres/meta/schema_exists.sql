-- Whether the schema exists, checked before creating it (see meta/create_schema.sql). $1 schema.
SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1::text;
