-- The upstream calls that failed before the one a log describes (retries and
-- fallbacks), as a JSON array; empty when there were none. (MySQL takes a TEXT
-- column's default only as an expression, in parentheses.)
ALTER TABLE request_logs ADD COLUMN attempts MEDIUMTEXT NOT NULL DEFAULT ('');
