-- A number that changes whenever another connection commits to the file: a cheap way to notice
-- other processes' commits.
PRAGMA data_version;
