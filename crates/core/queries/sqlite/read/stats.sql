SELECT status, COUNT(*) FROM jobs WHERE namespace = :namespace GROUP BY status;
