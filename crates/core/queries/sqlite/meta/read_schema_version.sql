-- The schema version this file was migrated to (absent on a brand-new file).
SELECT value FROM taskito_meta WHERE key = 'schema_version';
