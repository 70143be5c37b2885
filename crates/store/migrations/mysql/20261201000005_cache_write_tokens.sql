-- Input tokens written to the provider's prompt cache (part of input_tokens),
-- priced apart.
ALTER TABLE request_logs ADD COLUMN cache_write_tokens BIGINT NOT NULL DEFAULT 0;
