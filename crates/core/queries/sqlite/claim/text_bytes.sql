-- The text columns a claim hands out, as the bytes stored: the JS core's driver decodes text
-- leniently (bytes that are not UTF-8 become U+FFFD), so a claimed value holding U+FFFD is checked
-- against its bytes before the job is handed out. The native core checks the bytes as it reads.
SELECT CAST(task_name AS BLOB) AS task_name, CAST(queue AS BLOB) AS queue, CAST(args AS BLOB) AS args
FROM jobs WHERE id = :id;
