SELECT MIN(expires_at) FROM jobs WHERE expires_at IS NOT NULL;
