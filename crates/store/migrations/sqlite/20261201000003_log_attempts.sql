-- The upstream calls that failed before the one a log describes (retries and
-- fallbacks), as a JSON array; empty when there were none.
ALTER TABLE request_logs ADD COLUMN attempts TEXT NOT NULL DEFAULT '';
