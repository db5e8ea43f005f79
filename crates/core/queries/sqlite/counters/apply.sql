-- A transaction's summed deltas (policy::counters): one upsert per key, eight keys per statement.
-- A 50-queue drain's commit holds ~150 keys (one `jobs` row per queue and status): one statement
-- per key paid each statement's own run (bind, step, reset) ~150 times per commit; eight rows per
-- run cost ~30-45 % less there (better-sqlite3, measured: docs/PERFORMANCE.md, "Shapes, round 2"),
-- and one queue's 4-5 keys are one run. The caller fills the rows it has and pads the rest with
-- n = 0 and total = 0, which the WHERE drops (a real key's deltas never both cancel: the caller
-- leaves such keys out). One JSON array of all the keys over json_each was slower than one
-- statement per key: each `->>` re-parses its row's text.
INSERT INTO counters (namespace, metric, queue, task_name, label, n, total)
SELECT column1, column2, column3, column4, column5, column6, column7
FROM (VALUES (:namespace0, :metric0, :queue0, :task_name0, :label0, :n0, :total0),
       (:namespace1, :metric1, :queue1, :task_name1, :label1, :n1, :total1),
       (:namespace2, :metric2, :queue2, :task_name2, :label2, :n2, :total2),
       (:namespace3, :metric3, :queue3, :task_name3, :label3, :n3, :total3),
       (:namespace4, :metric4, :queue4, :task_name4, :label4, :n4, :total4),
       (:namespace5, :metric5, :queue5, :task_name5, :label5, :n5, :total5),
       (:namespace6, :metric6, :queue6, :task_name6, :label6, :n6, :total6),
       (:namespace7, :metric7, :queue7, :task_name7, :label7, :n7, :total7))
WHERE column6 <> 0 OR column7 <> 0
ON CONFLICT (namespace, metric, queue, task_name, label) DO UPDATE
SET n = n + excluded.n, total = total + excluded.total;
