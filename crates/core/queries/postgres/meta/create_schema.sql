-- Creates the taskito schema. A schema name cannot be a parameter: the store puts the name,
-- already checked to be lowercase letters, digits and _ only, where the placeholder in braces is.
-- Not IF NOT EXISTS: that needs the CREATE privilege on the database even when the schema is
-- there, so the store asks meta/schema_exists.sql first.
CREATE SCHEMA "{schema}";
