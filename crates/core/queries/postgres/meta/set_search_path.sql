-- The migration's tables are created unqualified, in the taskito schema: its transaction puts
-- that schema first, whatever the session had. $1 schema.
SELECT set_config('search_path', quote_ident($1::text), true);
