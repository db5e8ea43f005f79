-- Recorded in the same transaction as the migration that reached it.
INSERT INTO taskito_meta (key, value) VALUES ('schema_version', :version)
ON CONFLICT (key) DO UPDATE SET value = excluded.value;
