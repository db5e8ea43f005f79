-- Wakes the idle claims of every process listening on this schema's channel (delivered at commit,
-- so a woken claim sees the rows). $1 channel (taskito_<schema>), $2 namespace as the payload.
SELECT pg_notify($1::text, $2::text);
