-- Of the jobs callers wait for (:ids, a JSON array of ids of one namespace), those that ended
-- (complete 2, dead 4, cancelled 5; policy isFinal) or are gone. The JS core's job waiters look with
-- this one statement after another connection's commit, instead of a read of each waited job: with
-- thousands of results awaited, those reads held the event loop for tens of ms at every commit.
SELECT w.value AS id
FROM json_each(:ids) AS w
WHERE NOT EXISTS (
  SELECT 1 FROM jobs
  WHERE jobs.id = w.value AND jobs.namespace = :namespace AND jobs.status NOT IN (2, 4, 5)
);
