-- A client key's limits (requests and tokens per minute, calls in flight,
-- models, expiry) as JSON; empty when it has none.
ALTER TABLE api_keys ADD COLUMN limits MEDIUMTEXT NOT NULL DEFAULT ('');
