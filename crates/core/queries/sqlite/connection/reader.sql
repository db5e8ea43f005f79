-- Reader connections only read. They read through mmap (256 MiB): their page cache is dropped
-- at every commit of the writer, and mmap spares them re-reading each page. Not the writer: with
-- mmap, SQLite looks every page it reads up in the WAL index first, even one already in its
-- cache (getPageMMap), which cost the writer 13 % of its time per enqueue; its cache survives
-- its own commits anyway.
PRAGMA query_only = 1;
PRAGMA mmap_size = 268435456;
