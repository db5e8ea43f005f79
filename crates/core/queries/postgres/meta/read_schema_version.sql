-- The schema version the schema was migrated to.
SELECT value FROM taskito_meta WHERE key = 'schema_version';
