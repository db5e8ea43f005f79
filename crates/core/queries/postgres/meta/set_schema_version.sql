-- Recorded in the same transaction as the migration that reached it. $1: version.
INSERT INTO taskito_meta (key, value) VALUES ('schema_version', $1::text)
ON CONFLICT (key) DO UPDATE SET value = excluded.value;
