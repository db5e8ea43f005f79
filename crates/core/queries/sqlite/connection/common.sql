-- Every connection: NORMAL sync (durable at checkpoints, never corrupt, in WAL mode), and a page
-- cache that holds the hot indexes of a busy queue (32 MiB; the default is 2 MB).
PRAGMA synchronous = NORMAL;
PRAGMA cache_size = -32768;
PRAGMA temp_store = MEMORY;
