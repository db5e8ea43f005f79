-- The earliest lease to run out, over every namespace of the file.
SELECT MIN(lease_until) FROM jobs WHERE status = 1;
