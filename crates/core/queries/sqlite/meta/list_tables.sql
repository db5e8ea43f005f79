-- Every user table of the file: decides whether a file is taskito's before anything is written.
SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%';
