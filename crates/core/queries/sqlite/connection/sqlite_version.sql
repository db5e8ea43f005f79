-- The SQLite library's version ("3.54.1"): the JS core warns when its driver's SQLite has a known
-- bug that matters to a queue (the WAL-reset bug before 3.51.3, src/core/js/sqlite.ts). The
-- native core bundles its SQLite and tests its version instead (tests/sqlite_library.rs).
SELECT sqlite_version();
