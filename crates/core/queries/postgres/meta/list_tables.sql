-- Every table of the schema: decides whether the schema is taskito's before anything is written.
-- $1: schema name.
SELECT tablename::text FROM pg_catalog.pg_tables WHERE schemaname = $1::text;
