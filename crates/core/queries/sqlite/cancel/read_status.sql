SELECT status FROM jobs WHERE id = :id AND namespace = :namespace;
