-- The server's version as a number (150004 for 15.4): a claim on PostgreSQL 12 or newer runs on
-- a generic plan (plans/generic_begin.sql).
SELECT current_setting('server_version_num')::int;
