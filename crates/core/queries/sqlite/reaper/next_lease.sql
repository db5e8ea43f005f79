-- The earliest lease to run out, over every namespace of the file, but for the attempts not
-- started (:unstarted, as in reaper/expired.sql): their lease may have ended with the claim's
-- deadline while they wait, and the reaper has nothing to do about them.
SELECT MIN(lease_until) FROM jobs
WHERE status = 1 AND id NOT IN (SELECT value FROM json_each(:unstarted));
