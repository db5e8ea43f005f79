-- Wakes the idle claims of every process listening on this schema's channel. Sent right after
-- the commit that made jobs ready (see the notifier in background.rs for why not inside it).
-- $1 channel (taskito_<schema>), $2 namespace as the payload ('' = every namespace).
SELECT pg_notify($1::text, $2::text);
