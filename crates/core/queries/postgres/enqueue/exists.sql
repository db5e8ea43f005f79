-- After a lost COMMIT reply: did the batch with this pre-allocated id land? $1 id.
SELECT EXISTS (SELECT 1 FROM jobs WHERE id = $1::bigint);
